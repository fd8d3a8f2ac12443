"""Whose entry the worker takes next (server/fairshare.py): turns by what each sender's entries cost."""

from __future__ import annotations

from server.fairshare import FairShare


def drain(share: FairShare[str], costs: dict[str, float]) -> list[str]:
    """Take every entry in turn, charging each to its sender (an entry's first letter)."""
    order = []
    while (entry := share.take()) is not None:
        order.append(entry)
        share.charge(entry[0], costs[entry[0]])
    return order


def test_a_costly_sender_waits_while_a_cheap_one_catches_up() -> None:
    share: FairShare[str] = FairShare()
    for entry in ("c1", "c2", "c3", "k1", "k2", "k3"):
        share.add(entry[0], entry)
    assert len(share) == 6
    assert drain(share, {"c": 10.0, "k": 1.0}) == ["c1", "k1", "k2", "k3", "c2", "c3"]
    assert len(share) == 0


def test_a_sender_on_its_own_gets_every_turn_in_order() -> None:
    share: FairShare[str] = FairShare()
    for entry in ("a1", "a2", "a3"):
        share.add("a", entry)
    assert drain(share, {"a": 5.0}) == ["a1", "a2", "a3"]


def test_a_sender_that_comes_back_starts_at_the_clock_not_with_saved_up_time() -> None:
    share: FairShare[str] = FairShare()
    for entry in ("b1", "b2", "b3"):
        share.add("b", entry)
    assert drain(share, {"b": 1.0}) == ["b1", "b2", "b3"]
    for entry in ("q1", "q2", "b4", "b5"):  # "q" was idle all along
        share.add(entry[0], entry)
    assert drain(share, {"b": 1.0, "q": 1.0}) == ["q1", "b4", "q2", "b5"]


def test_a_debt_is_kept_while_its_sender_is_idle() -> None:
    share: FairShare[str] = FairShare()
    share.add("c", "c1")
    share.add("k", "k1")
    assert drain(share, {"c": 100.0, "k": 1.0}) == ["c1", "k1"]
    for entry in ("c2", "k2", "k3"):
        share.add(entry[0], entry)
    assert drain(share, {"c": 100.0, "k": 1.0}) == ["k2", "k3", "c2"]


def test_a_removed_entry_loses_its_turn() -> None:
    share: FairShare[str] = FairShare()
    for entry in ("a1", "b1", "b2"):
        share.add(entry[0], entry)
    share.remove("a", "a1")
    share.remove("a", "a1")  # gone already: nothing happens
    assert len(share) == 2 and list(share.firsts()) == ["b1"]
    assert drain(share, {"b": 1.0}) == ["b1", "b2"]
