"""Join codes and teacher secrets.

A join code is 8 characters from a 32-symbol alphabet without look-alikes (no 0/O, 1/I):
8 × log2(32) = 40 bits, about 1.1 × 10^12 codes, read aloud or typed from a projector. It is
not a password (every student knows it); guessing one is made hopeless by its size together
with the per-address limit on failed joins (docs/classroom.md). The teacher secret is the
password: 192 random bits, created with the room and sent only to the teacher who created it.
"""

from __future__ import annotations

import hmac
import secrets

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8
SECRET_BYTES = 24


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: object) -> str | None:
    """What a person typed ("abcd-efgh", " ABCD EFGH ") as a code, or None if it cannot be one."""
    if not isinstance(text, str) or len(text) > 4 * CODE_LENGTH:
        return None
    code = "".join(text.split()).replace("-", "").upper()
    if len(code) != CODE_LENGTH or any(symbol not in ALPHABET for symbol in code):
        return None
    return code


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_matches(expected: str, given: object) -> bool:
    """Constant-time, so the answer's timing says nothing about how much of a guess was right."""
    # surrogatepass: a lone surrogate is a wrong secret, not an encoding error
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))
