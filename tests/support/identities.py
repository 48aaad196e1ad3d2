"""Identities an identity provider would return for the sample events' reporters."""

from __future__ import annotations

from typing import Any

from router.catalogue import EVENTS
from router.trust import Confidence, Identity

ISSUER = "https://identity.test"


def reporter_identity(
    event_name: str, answers: dict[str, Any], confidence: Confidence = Confidence.P2
) -> Identity:
    """The identity of the reporter the (clean or raw) ``answers`` name."""
    reporter = EVENTS[event_name].reporter
    return Identity(
        issuer=ISSUER,
        subject=f"urn:test:{event_name}",
        confidence=confidence,
        full_name=reporter.names(answers)[0],
        birthdate=reporter.date_of_birth(answers),
    )
