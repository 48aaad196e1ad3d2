"""The promises of router/reference.py that a planted bug would break unnoticed:
a status secret's strength, a whole-hash comparison, and the counter's reason for
refusing each kind of mistyped reference."""

from __future__ import annotations

import base64

import pytest

from router import reference


def test_a_status_secret_carries_128_random_bits() -> None:
    secrets = {reference.new_secret() for _ in range(200)}
    assert len(secrets) == 200
    for secret in secrets:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        assert len(raw) >= 16, secret


def test_a_secret_matches_only_its_own_whole_hash() -> None:
    secret = reference.new_secret()
    stored = reference.hash_secret(secret)
    assert reference.secret_matches(secret, stored)
    # A hash differing in any one place, first or last, does not match.
    for at in (0, len(stored) // 2, len(stored) - 1):
        other = "0" if stored[at] != "0" else "1"
        assert not reference.secret_matches(secret, stored[:at] + other + stored[at + 1 :])
    assert not reference.secret_matches(secret + "x", stored)
    assert not reference.secret_matches(secret, "")


@pytest.mark.parametrize(
    ("typed", "kind"),
    [
        ("ACDE-FGHJ", "length"),  # a short reference
        ("A", "length"),
        ("", "length"),
        ("ACDE-FGHJ-KK", "length"),  # one too many
        ("ACDE-FGHJ-0", "characters"),  # 0 is not in the alphabet (no 0/O)
        ("ACDE-FGH1-K", "characters"),
    ],
)
def test_each_kind_of_mistake_is_named(typed: str, kind: str) -> None:
    assert reference.mistake(typed) == kind


def test_a_typo_the_check_character_catches_is_a_check_mistake() -> None:
    ref = reference.new_reference()
    wrong = next(c for c in reference.ALPHABET if c != ref[0])
    assert reference.mistake(wrong + ref[1:]) == "check"
    assert reference.mistake(reference.display(ref)) == ""
    assert reference.mistake(reference.display(ref).lower()) == ""
