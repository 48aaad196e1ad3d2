"""Trust: how sure we are of who is reporting, and what each department needs before it acts.

The vocabulary is GOV.UK One Login's (GPG 45 identity confidence): P0 none, P1 low, P2
medium. A case carries its *proofs*, each one piece of evidence with where it came from:

* ``identity_provider``: the reporter signed in with an identity provider (One Login in
  production, the development provider on ``router up``) at the confidence it returned,
  and the identity matched the reporter's name and date of birth in the report;
* ``counter``: counter staff at a named Post Office branch checked an identity document
  (P2; the document's kind is kept, never its number);
* ``register``: the event was found in a General Register Office source (deaths and
  births), matching the name and date reported;
* ``vouched``: a partner API client trusted for it vouched (a registrar's own system
  vouching for the registration it has just made).

Each department declares, per event, a ``Need``: the least confidence and whether the
registration must be verified. A delivery whose need is not met waits; ``unmet`` says
why. Everything here is pure: no Redis, no clock unless given, no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Literal

ProofKind = Literal["identity_provider", "counter", "register", "vouched"]
# What a proof vouches for: the reporter's identity, or the event's registration.
Covers = Literal["identity", "registration"]
# Why a delivery waits: more identity confidence, or a verified registration.
Missing = Literal["identity", "registration"]


class Confidence(IntEnum):
    """GPG 45 identity confidence, as GOV.UK One Login names it."""

    P0 = 0
    P1 = 1
    P2 = 2

    @classmethod
    def parse(cls, value: object) -> Confidence:
        """``"P2"`` (or a vector of trust such as ``"P2.Cl.Cm"``) -> P2; P0 if none."""
        text = str(value or "")
        for part in text.split("."):
            if part in cls.__members__:
                return cls[part]
        return cls.P0


@dataclass(frozen=True)
class Need:
    """What a department needs before it acts on one event."""

    confidence: Confidence = Confidence.P0
    registration: bool = False

    @property
    def code(self) -> str:
        """As written in a declaration or a stored plan: "P2", "P0+registration"."""
        return self.confidence.name + ("+registration" if self.registration else "")

    @classmethod
    def from_code(cls, code: str) -> Need:
        """Parse ``code``; raise ``ValueError`` with how to write it."""
        level, _, extra = str(code).strip().partition("+")
        if level not in Confidence.__members__ or extra not in ("", "registration"):
            raise ValueError(
                f"{code!r} is not a need: write P0, P1 or P2, with +registration to need a "
                "verified registration (for example P0+registration)"
            )
        return cls(Confidence[level], extra == "registration")

    def unmet(self, evidence: Evidence) -> tuple[Missing, ...]:
        """What is still missing for this need, given ``evidence`` (empty: it is met)."""
        missing: list[Missing] = []
        if evidence.confidence < self.confidence:
            missing.append("identity")
        if self.registration and not evidence.registration_verified:
            missing.append("registration")
        return tuple(missing)

    def met_by(self, evidence: Evidence) -> bool:
        return not self.unmet(evidence)


@dataclass(frozen=True)
class Proof:
    """One piece of evidence on a case. ``source`` names where it came from (an identity
    provider's issuer, a branch id, a register's name, an API client's name);
    ``detail`` is the document kind or how the registration was given. Never personal
    data: the identity's name and date of birth are compared, then dropped."""

    kind: ProofKind
    covers: Covers
    confidence: Confidence
    source: str
    detail: str = ""
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = {
            "kind": self.kind,
            "covers": self.covers,
            "confidence": self.confidence.name,
            "source": self.source,
            "at": self.at,
        }
        if self.detail:
            data["detail"] = self.detail
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Proof:
        return cls(
            kind=data["kind"],
            covers=data["covers"],
            confidence=Confidence.parse(data.get("confidence")),
            source=str(data.get("source", "")),
            detail=str(data.get("detail", "")),
            at=str(data.get("at", "")),
        )

    @classmethod
    def signed_in(cls, issuer: str, confidence: Confidence, at: str = "") -> Proof:
        return cls("identity_provider", "identity", confidence, issuer, at=at or _now())

    @classmethod
    def counter_check(cls, branch: str, document: str, at: str = "") -> Proof:
        """An identity document checked by counter staff: medium confidence (P2)."""
        return cls("counter", "identity", Confidence.P2, branch, document, at=at or _now())

    @classmethod
    def registered(cls, register: str, how: str, at: str = "") -> Proof:
        """The event found in ``register``; ``how``: "reference" or "entry"."""
        return cls("register", "registration", Confidence.P0, register, how, at=at or _now())

    @classmethod
    def vouched(cls, client: str, covers: Covers = "registration", at: str = "") -> Proof:
        return cls("vouched", covers, Confidence.P0, client, at=at or _now())


@dataclass(frozen=True)
class Evidence:
    """Every proof a case has, oldest first."""

    proofs: tuple[Proof, ...] = ()

    @property
    def confidence(self) -> Confidence:
        """The highest identity confidence any proof gives (P0 with none)."""
        levels = [p.confidence for p in self.proofs if p.covers == "identity"]
        return max(levels, default=Confidence.P0)

    @property
    def registration_verified(self) -> bool:
        return any(p.covers == "registration" for p in self.proofs)

    def with_proof(self, proof: Proof) -> Evidence:
        return Evidence((*self.proofs, proof))

    def to_list(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.proofs]

    @classmethod
    def from_list(cls, items: Iterable[Mapping[str, Any]]) -> Evidence:
        return cls(tuple(Proof.from_dict(i) for i in items))


@dataclass(frozen=True)
class Identity:
    """An identity an identity provider returned: who signed in, and how sure it is.

    Only compared with the report (``matches``) and turned into a ``Proof``; never stored,
    logged or put in a job (its repr shows no personal data).
    """

    issuer: str
    subject: str
    confidence: Confidence
    full_name: str
    birthdate: str  # ISO date

    def __repr__(self) -> str:
        return f"Identity({self.issuer}, {self.confidence.name})"

    def matches(self, names: Iterable[str], birthdate: str) -> bool:
        """Whether this is the reporter: the same date of birth, and one of ``names``
        (the reporter's, and their former name for a change of name), compared without
        regard to case, accents' composition or spacing."""
        if not birthdate or self.birthdate != birthdate:
            return False
        mine = same_name_key(self.full_name)
        return any(mine == same_name_key(n) for n in names if n)


def same_name_key(name: str) -> str:
    """A name as compared: composed (NFC), case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
