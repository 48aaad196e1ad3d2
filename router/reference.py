"""Case references a person can read aloud at a counter, and the secrets for links.

A reference is 8 random characters and 1 check character from an alphabet with no
look-alikes or sound-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V), shown as ``ABCD-EFGH-J``.
The check character makes the weighted sum of all nine characters (their places in
the alphabet, weighted 1 to 9) a multiple of 23. As 23 is prime and larger than the
alphabet, that catches every single mistyped character (a change of d at weight w
changes the sum by w*d, never a multiple of 23) and every swap of two neighbours,
the check character included (weights one apart: the sum changes by the difference
of the two characters). One body in 23 would need a 23rd check character; such bodies
are never issued. (Luhn mod 22, used before, missed the swap of A and 9.)
References are not secret: the status link carries a separate random secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

ALPHABET = "ACDEFGHJKMNPQRTWXY3469"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
BODY_LENGTH = 8
_MODULUS = 23  # prime, and larger than the alphabet (22)


def _weighted(text: str) -> int:
    return sum(weight * _INDEX[char] for weight, char in enumerate(text, start=1))


def _check_char(body: str) -> str | None:
    """The character that completes ``body``, or None for the one body in 23 that
    would need a check value the alphabet does not have."""
    weight = BODY_LENGTH + 1
    # weight * value = -sum (mod 23): multiply by weight's inverse mod 23.
    value = -_weighted(body) * pow(weight, -1, _MODULUS) % _MODULUS
    return ALPHABET[value] if value < len(ALPHABET) else None


def new_reference() -> str:
    """A fresh reference in canonical form (9 characters, no separators)."""
    while True:
        body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
        check = _check_char(body)
        if check is not None:
            return body + check


def normalise(text: str) -> str | None:
    """The canonical reference for what a person typed or read out, or None if invalid.

    Spaces, hyphens and case do not matter; a typo fails the check character.
    """
    compact = re.sub(r"[\s\-]", "", str(text)).upper()
    if len(compact) != BODY_LENGTH + 1 or any(c not in _INDEX for c in compact):
        return None
    if _weighted(compact) % _MODULUS:
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
    if _weighted(compact) % _MODULUS:
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
