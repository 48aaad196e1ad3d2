"""A mock General Register Office: seeded registrations of deaths and births, with the
same latency and faults as the mock departments (``router mock configure gro ...``).

Its entries live in Redis (``mock:gro:*``), so every router process sees the same
register, and ``router mock gro add`` adds one for a demo. ``seed`` writes the
registrations of the sample events in ``examples/events`` (their dates are relative to
the day it runs, as the samples' are), and ``router up`` seeds on every start.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from datetime import date, timedelta

from redis import Redis

from router.adapters.contract import RetryableError
from router.adapters.mocks import get_faults
from router.adapters.register import Entry, RegisterSource
from router.i18n import N_
from router.trust import same_name_key

NAME = "gro"
ENTRIES = "mock:gro:entries"  # "<kind>:<reference>" -> the entry (JSON)
BY_ENTRY = "mock:gro:by_entry"  # "<kind>:<district>:<entry number>:<date>" -> reference
SEQUENCE = "mock:gro:sequence"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed

# The sample events' registrations: (kind, reference, name, days ago it happened,
# district, entry number, days ago it was registered).
SAMPLES = (
    ("death", "DX7Q4K2M9PLA", "Arthur Pendleton", 9, "Leeds", "214", 7),
    ("birth", "BR5T8W3N6HQE", "Zoë Okafor", 14, "Edinburgh", "1187", 10),
)


class MockGro(RegisterSource):
    name = NAME
    title = N_("General Register Office (births and deaths)")
    timeout = 5.0

    def find(self, kind: str, query: Mapping[str, str]) -> Entry | None:
        redis = self.redis
        if redis is None:
            raise RetryableError("the mock register has no Redis connection")
        faults = get_faults(redis, NAME)
        if faults.outage:
            raise RetryableError("register unavailable")
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if faults.transient_rate and secrets.randbelow(10_000) < faults.transient_rate * 10_000:
            raise RetryableError("register unavailable")
        reference = query.get("reference")
        if not reference:
            found = redis.hget(BY_ENTRY, _entry_key(kind, query))
            if found is None:
                return None
            reference = found.decode() if isinstance(found, bytes) else str(found)
        raw = redis.hget(ENTRIES, f"{kind}:{reference}")
        return Entry.from_dict(json.loads(raw)) if raw is not None else None


def _entry_key(kind: str, query: Mapping[str, str]) -> str:
    district = same_name_key(query.get("district", ""))
    return f"{kind}:{district}:{query.get('entry_number', '')}:{query.get('registration_date', '')}"


def new_reference() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def add(
    redis: Redis,
    kind: str,
    full_name: str,
    event_date: date,
    district: str,
    registration_date: date | None = None,
    entry_number: str = "",
    reference: str = "",
) -> Entry:
    """Register a death or birth in the mock register; return its entry."""
    if kind not in ("death", "birth"):
        raise ValueError("a register entry is a death or a birth")
    registered = registration_date or event_date
    if registered < event_date:
        raise ValueError("an event is registered on or after the day it happened")
    entry = Entry(
        kind=kind,
        reference=reference or new_reference(),
        district=" ".join(district.split()),
        entry_number=entry_number or str(int(redis.incr(SEQUENCE)) + 500),
        registration_date=registered.isoformat(),
        full_name=" ".join(full_name.split()),
        event_date=event_date.isoformat(),
    )
    with redis.pipeline(transaction=True) as pipe:
        pipe.hset(ENTRIES, f"{kind}:{entry.reference}", json.dumps(entry.to_dict()))
        pipe.hset(BY_ENTRY, _entry_key(kind, entry.to_dict()), entry.reference)
        pipe.execute()
    return entry


def entries(redis: Redis) -> list[Entry]:
    """Every entry, by kind and reference."""
    found = [Entry.from_dict(json.loads(raw)) for raw in redis.hgetall(ENTRIES).values()]
    return sorted(found, key=lambda e: (e.kind, e.reference))


def seed(redis: Redis, today: date | None = None) -> list[Entry]:
    """(Re)write the sample events' registrations, dated from ``today``."""
    today = today or date.today()
    return [
        add(
            redis,
            kind,
            name,
            today - timedelta(days=happened),
            district,
            today - timedelta(days=registered),
            entry_number=number,
            reference=reference,
        )
        for kind, reference, name, happened, district, number, registered in SAMPLES
    ]
