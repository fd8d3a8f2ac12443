"""One process's share of a room: which of its seats hear which room events."""

from __future__ import annotations

from server.classroom import messages
from server.classroom.fanout import Fanout, tell
from tests.test_rooms import Inbox


def seated(student: str, holder: str) -> dict[str, str]:
    return {"e": "seated", "id": student, "holder": holder}


def test_a_join_hears_only_the_events_after_redis_seated_it() -> None:
    fanout, inbox = Fanout(), Inbox()
    fanout.expect("p:1", inbox)
    fanout.dispatch(tell(messages.prompt(1)))  # already in what the join answers
    fanout.answered("p:1", "s1")
    fanout.dispatch(seated("s1", "p:1"))
    fanout.dispatch(tell(messages.prompt(2)))
    assert inbox.messages == [messages.prompt(2)]


def test_a_seat_another_connection_was_seated_in_hears_nothing_more() -> None:
    fanout, older, newer = Fanout(), Inbox(), Inbox()
    fanout.expect("p:1", older)
    fanout.dispatch(seated("s1", "p:1"))
    fanout.expect("p:2", newer)
    fanout.dispatch(seated("s1", "p:2"))
    fanout.let_go("s1", "p:1")  # the older connection ends late: the seat stays the newer one's
    fanout.dispatch(tell(messages.prompt(3)))
    assert (older.messages, newer.messages) == ([], [messages.prompt(3)])


def test_answered_joins_whose_seated_event_was_lost_hold_their_seats() -> None:
    fanout, answered, unanswered = Fanout(), Inbox(), Inbox()
    fanout.expect("p:1", answered)
    fanout.expect("p:2", unanswered)
    fanout.answered("p:1", "s1")
    fanout.settle()  # Redis was away: its events, the seated one among them, are lost
    fanout.dispatch(tell(messages.prompt(4)))
    assert (answered.messages, unanswered.messages) == ([messages.prompt(4)], [])
    assert not fanout.empty


def test_a_join_let_go_before_it_was_seated_leaves_nothing_to_listen_for() -> None:
    fanout = Fanout()
    fanout.expect("p:1", Inbox())
    fanout.let_go(None, "p:1")
    fanout.dispatch(seated("s1", "p:1"))
    assert fanout.empty
