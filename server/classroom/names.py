"""Display names: what a student types, checked before anyone else sees it.

Names are stored and sent as typed (after trimming), never HTML-escaped on the server: JSON is
not HTML, and the pages render names with `textContent`. What is refused here is what no page
can render honestly as text: control characters, invisible format characters (zero-width
spaces and joiners, soft hyphens, bidirectional overrides) that make two names look alike,
and stacks of combining marks that spill over the tiles around them. Lengths are checked
before any per-character work, so a long name costs nothing.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_LENGTH = 32
# Room for the spaces trimmed away; anything longer is refused before a character is looked at.
MAX_TYPED_LENGTH = 4 * MAX_NAME_LENGTH
# Real scripts put at most three marks on one letter (Thai, Devanagari); "Zalgo" text puts dozens.
MAX_COMBINING_MARKS = 3
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
COMBINING_CATEGORIES = frozenset({"Mn", "Mc", "Me"})
# Letters and marks that draw nothing, outside the categories above.
INVISIBLE = frozenset("\u034f\u115f\u1160\u2800\u3164\uffa0")


class BadName(ValueError):
    pass


def display_name(raw: object) -> str:
    if not isinstance(raw, str):
        raise BadName("Choose a display name.")
    if len(raw) > MAX_TYPED_LENGTH:
        raise BadName(f"A display name has at most {MAX_NAME_LENGTH} characters.")
    if any(unicodedata.category(char) in REFUSED_CATEGORIES or char in INVISIBLE for char in raw):
        raise BadName("A display name cannot contain control or invisible characters.")
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if not name:
        raise BadName("Choose a display name.")
    if len(name) > MAX_NAME_LENGTH:
        raise BadName(f"A display name has at most {MAX_NAME_LENGTH} characters.")
    if longest_mark_run(name) > MAX_COMBINING_MARKS:
        raise BadName("A display name cannot stack that many accents on one letter.")
    return name


def longest_mark_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if unicodedata.category(char) in COMBINING_CATEGORIES else 0
        longest = max(longest, run)
    return longest
