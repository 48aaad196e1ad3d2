"""Case references a person can read aloud at a counter, and the secrets for links.

A reference is 8 random characters and 1 check character from an alphabet with no
look-alikes or sound-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V), shown as ``ABCD-EFGH-J``.
The check character is Luhn mod N, which catches every single mistyped character and
nearly every swap of two neighbours. References are not secret: the status link carries a
separate random secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

ALPHABET = "ACDEFGHJKMNPQRTWXY3469"
_N = len(ALPHABET)
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
BODY_LENGTH = 8


def _check_char(body: str) -> str:
    total = 0
    factor = 2
    for char in reversed(body):
        addend = factor * _INDEX[char]
        total += addend // _N + addend % _N
        factor = 1 if factor == 2 else 2
    return ALPHABET[(_N - total % _N) % _N]


def new_reference() -> str:
    """A fresh reference in canonical form (9 characters, no separators)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return body + _check_char(body)


def normalise(text: str) -> str | None:
    """The canonical reference for what a person typed or read out, or None if invalid.

    Spaces, hyphens and case do not matter; a typo fails the check character.
    """
    compact = re.sub(r"[\s\-]", "", str(text)).upper()
    if len(compact) != BODY_LENGTH + 1 or any(c not in _INDEX for c in compact):
        return None
    if _check_char(compact[:-1]) != compact[-1]:
        return None
    return compact


def mistake(text: str) -> str:
    """What is wrong with a typed reference: "length", "characters", "check" (a typo the
    check character caught), or "" when it is a valid reference."""
    compact = re.sub(r"[\s\-]", "", str(text)).upper()
    if len(compact) != BODY_LENGTH + 1:
        return "length"
    if any(c not in _INDEX for c in compact):
        return "characters"
    if _check_char(compact[:-1]) != compact[-1]:
        return "check"
    return ""


def display(ref: str) -> str:
    """``ACDE-FGHJ-K``: grouped for reading aloud."""
    return f"{ref[:4]}-{ref[4:8]}-{ref[8:]}"


def new_secret() -> str:
    """An unguessable secret for a case's status link (128 bits)."""
    return secrets.token_urlsafe(16)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
