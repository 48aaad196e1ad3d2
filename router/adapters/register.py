"""The contract of a register source: an authoritative record the router *queries*.

A department adapter is told about an event; a register source is asked about one.
Before anything about a death or a birth is sent, the router looks its registration up
in a General Register Office source, by the registrar's reference or by the register
entry (district, entry number, date of registration), and compares what the register
holds with what was reported (the name and the date of the death or birth). A register
that cannot answer now raises ``RetryableError``: the case is accepted, its deliveries
wait "for the register", and the router asks again with backoff.

A register source declares ``name``, ``title`` and ``timeout`` and implements
``find(kind, query)``, returning the ``Entry`` or None when there is no such
registration. It must not change anything: the router may ask the same question many
times. It is found through the ``tell_us_once.registers`` entry-point group (the mock
GRO registers the same way), or ``ROUTER_REGISTER=module:Class``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from importlib.metadata import entry_points
from typing import Any, ClassVar

from redis import Redis

from router.adapters.contract import RegistryError
from router.catalogue import Registration
from router.i18n import N_
from router.trust import same_name_key

ENTRY_POINT_GROUP = "tell_us_once.registers"


@dataclass(frozen=True)
class Entry:
    """One register entry, as a register source returns it."""

    kind: str  # "death" or "birth"
    reference: str  # the registrar's reference given to the informant
    district: str
    entry_number: str
    registration_date: str  # ISO date
    full_name: str  # the person who died, or the baby
    event_date: str  # ISO date of the death or birth

    def __repr__(self) -> str:
        return f"Entry({self.kind}, {self.district!r} {self.entry_number})"

    def to_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "reference": self.reference,
            "district": self.district,
            "entry_number": self.entry_number,
            "registration_date": self.registration_date,
            "full_name": self.full_name,
            "event_date": self.event_date,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        return cls(**{k: str(data[k]) for k in cls.__dataclass_fields__})


class RegisterSource:
    """Base class for register sources. Subclass, declare, implement ``find``."""

    name: ClassVar[str]
    title: ClassVar[str]
    timeout: ClassVar[float] = 5.0

    def __init__(self, redis: Redis | None = None) -> None:
        self.redis = redis

    def find(self, kind: str, query: Mapping[str, str]) -> Entry | None:
        """The entry named by ``query`` ({"reference"} or {"district", "entry_number",
        "registration_date"}) in the ``kind`` register, or None; raise
        ``RetryableError`` when the register cannot answer now."""
        raise NotImplementedError


def check_source(cls: type[RegisterSource]) -> None:
    if not isinstance(getattr(cls, "name", None), str) or not getattr(cls, "title", None):
        raise RegistryError(f"{cls.__qualname__}: a register source declares name and title")


def discover() -> type[RegisterSource] | None:
    """The register source: ``ROUTER_REGISTER`` if set, else the one installed through
    the entry points (the first by name); None if there is none."""
    spec = os.environ.get("ROUTER_REGISTER", "").strip()
    if spec:
        module, _, attr = spec.partition(":")
        found = getattr(importlib.import_module(module), attr)
    else:
        eps = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        if not eps:
            return None
        found = eps[0].load()
    if not (isinstance(found, type) and issubclass(found, RegisterSource)):
        raise RegistryError(f"{found!r} is not a RegisterSource")
    check_source(found)
    return found


def _district_key(name: str) -> str:
    return same_name_key(name)


def matches_query(entry: Entry, query: Mapping[str, str]) -> bool:
    """Whether ``entry`` is the one ``query`` names (what a source's ``find`` may use)."""
    if "reference" in query:
        return entry.reference == query["reference"]
    return (
        _district_key(entry.district) == _district_key(query.get("district", ""))
        and entry.entry_number == query.get("entry_number")
        and entry.registration_date == query.get("registration_date")
    )


def compare(registration: Registration, answers: Mapping[str, Any], entry: Entry) -> dict[str, str]:
    """Field errors where the report does not agree with the register entry (empty: it
    agrees). Names are compared without regard to case or spacing."""
    errors: dict[str, str] = {}
    if same_name_key(str(answers.get(registration.name_field, ""))) != same_name_key(
        entry.full_name
    ):
        errors[registration.name_field] = (
            N_("Enter the name of the person who died exactly as it is on the death certificate")
            if registration.kind == "death"
            else N_("Enter the baby’s name exactly as it is on the birth certificate")
        )
    if str(answers.get(registration.date_field, "")) != entry.event_date:
        errors[registration.date_field] = (
            N_("Enter the date of death as it is on the death certificate")
            if registration.kind == "death"
            else N_("Enter the baby’s date of birth as it is on the birth certificate")
        )
    return errors


def not_found(answers: Mapping[str, Any]) -> dict[str, str]:
    """The field error for a registration the register does not hold."""
    if answers.get("registration_how") == "reference":
        return {
            "registrar_reference": N_(
                "No registration was found with that reference: check it against the "
                "registrar’s letter"
            )
        }
    return {
        "entry_number": N_(
            "No registration was found with that district, entry number and date: check "
            "them against the certificate"
        )
    }


def iso(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
