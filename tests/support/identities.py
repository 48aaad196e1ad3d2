"""Identities an identity provider would return for the sample events' reporters."""

from __future__ import annotations

from typing import Any

from router.catalogue import EVENTS
from router.trust import Confidence, Identity, Proof

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


def evidence_for(event_name: str, answers: dict[str, Any]) -> dict[str, Any]:
    """What a partner channel brings with a report (``core.submit(**evidence_for(...))``):
    the reporter signed in at P2, and for a death or birth a registrar's system vouching
    for its registration (the chaos and benchmark workloads are registrars' reports)."""
    proofs = [Proof.vouched("registrar")] if EVENTS[event_name].registration else []
    return {"identity": reporter_identity(event_name, answers), "proofs": proofs}
