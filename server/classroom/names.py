"""Display names: what a student types, checked before anyone else sees it.

Names are stored and sent as typed (after trimming), never HTML-escaped on the server: JSON is
not HTML, and the pages render names with `textContent`. What is refused here is what no page
can render safely as text: control characters and the bidirectional overrides that make a
name display as something else.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_LENGTH = 32
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class BadName(ValueError):
    pass


def display_name(raw: object) -> str:
    if not isinstance(raw, str):
        raise BadName("Choose a display name.")
    if any(unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn") or char in BIDI_CONTROLS for char in raw):
        raise BadName("A display name cannot contain control characters.")
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if not name:
        raise BadName("Choose a display name.")
    if len(name) > MAX_NAME_LENGTH:
        raise BadName(f"A display name has at most {MAX_NAME_LENGTH} characters.")
    return name
