"""Sample data for a demonstration: ``router demo seed`` and ``router up --demo``.

``seed`` fills the last N whole days with plausible figures, drawn from a seeded random
generator so a day's figures are the same every time: reports by channel, journeys
started and reports sent online, satisfaction ratings and a few comments (router.stats,
router.feedback), each department's daily time to tell (router.delivery.health), and
ledger entries posted through the ledger's own functions (router.ledger), so the cost
per transaction and the monthly statements have something to show. It writes no case
and nothing about anyone: each entry names a made-up reference ``demo-<day>-<n>``,
which no case has. Every day it fills is listed in ``keys.STATS_DEMO``, so the
performance page says its figures are sample data, and a day seeded once is left alone
the next time (seeding is idempotent).

``accounts`` and ``sample_cases`` are what ``router up --demo`` adds: a demo account for
each staff role, with a new password each start, and a few reports from
examples/events sent through the real submission path, one of them asking for help, so
it waits in the caseworkers' queue.
"""

from __future__ import annotations

import json
import random
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from router import feedback, keys, ledger, routing, stats, tariff
from router.assisted.branches import load_branches
from router.assisted.staff import too_weak
from router.catalogue import EVENTS
from router.delivery import health
from router.dev_identity import EXAMPLES
from router.service import LifeEventRouter
from router.trust import Confidence, Identity

SEED = 16  # issue 16: any number gives the same figures for the same day every time

# How often each life event is reported, and through which channel (out of 100).
EVENT_WEIGHTS = {
    "moving_house": 34,
    "death": 18,
    "birth": 15,
    "new_job": 14,
    "change_of_name": 11,
    "retiring": 8,
}
CHANNEL_WEIGHTS = {"web": 68, "counter": 19, "api:demo-partner": 13}
# Very satisfied ... very dissatisfied.
RATING_WEIGHTS = (46, 33, 10, 6, 5)
# What a few people wrote (kept as the feedback page keeps comments: the day and rating).
COMMENTS = {
    "very_satisfied": (
        "Much easier than phoning everyone after my dad died.",
        "Quick, and I could see when each organisation had been told.",
    ),
    "satisfied": (
        "Clear questions. I was not sure which organisations to pick at first.",
        "Good, but I had to find my National Insurance letter.",
    ),
    "neither": ("It was fine. I still had to ring my bank myself.",),
    "dissatisfied": ("I had to go to a Post Office for the photo, which took a while.",),
    "very_dissatisfied": ("The page timed out and I had to start again.",),
}
BRANCHES = (
    "cardiff-queen-street",
    "leeds-city-square",
    "manchester-spring-gardens",
    "bristol-baldwin-street",
    "london-victoria-street",
)


@dataclass(frozen=True)
class Seeded:
    """What ``seed`` did: the days it filled and those it found filled already."""

    filled: list[str]
    kept: list[str]
    reports: int
    entries: int


def seed(
    core: LifeEventRouter, days: int = 30, now: datetime | None = None, seed: int = SEED
) -> Seeded:
    """Fill the ``days`` whole days before ``now`` (UTC) with sample figures; leave a
    day seeded before as it was."""
    now = now or datetime.now(UTC)
    names = stats.days_to(now.astimezone(UTC).date() - timedelta(days=1), days)
    done = {
        d.decode() if isinstance(d, bytes) else str(d) for d in core.redis.hkeys(keys.STATS_DEMO)
    }
    adapters = list(core.adapters)
    branches = _branches()
    filled, kept = [], []
    reports = entries = 0
    for name in names:
        if name in done:
            kept.append(name)
            continue
        rng = random.Random(f"{seed}:{name}")
        with core.redis.pipeline(transaction=True) as pipe:
            made, posted = _day(pipe, name, rng, adapters, branches)
            pipe.hset(keys.STATS_DEMO, name, now.isoformat(timespec="seconds"))
            pipe.execute()
        filled.append(name)
        reports += made
        entries += posted
    if filled:
        core.redis.delete(keys.STATS_MONEY)  # the days' money is read again, with these
    return Seeded(filled, kept, reports, entries)


def _branches() -> list[str]:
    known = load_branches()
    return [b for b in BRANCHES if b in known] or sorted(known)[:3]


def _told_after(rng: random.Random, counter: bool) -> float:
    """Seconds from a report to its department being told: mostly at once, some after a
    retry or two, some after a counter visit or the evidence they waited for."""
    roll = rng.random()
    if roll < (0.55 if counter else 0.82):
        return rng.lognormvariate(-0.9, 0.6)  # about 0.4 s
    if roll < (0.65 if counter else 0.93):
        return rng.uniform(20, 900)  # retried
    return rng.uniform(3600, 3 * 86400)  # waited for a visit or for evidence


def _day(
    pipe: Any, day: str, rng: random.Random, adapters: Sequence[Any], branches: Sequence[str]
) -> tuple[int, int]:
    """One day's sample figures, written in ``pipe``; return (reports, ledger entries)."""
    prices = tariff.current()
    weekday = date.fromisoformat(day).weekday()
    volume = rng.randint(55, 95) if weekday < 5 else rng.randint(20, 40)
    began = datetime.fromisoformat(f"{day}T00:00:00+00:00")
    last = began + timedelta(days=1, seconds=-1)
    events = list(EVENT_WEIGHTS)
    channels = list(CHANNEL_WEIGHTS)
    sent_online: dict[str, int] = defaultdict(int)
    told: dict[str, list[float]] = defaultdict(list)
    failed: dict[str, int] = defaultdict(int)
    entries: list[ledger.Entry] = []
    for number in range(volume):
        event = rng.choices(events, weights=list(EVENT_WEIGHTS.values()))[0]
        channel = rng.choices(channels, weights=list(CHANNEL_WEIGHTS.values()))[0]
        stats.count_report(pipe, channel, event, day=day)
        if channel == "web":
            sent_online[event] += 1
        ref = f"demo-{day}-{number:04d}"
        at = began + timedelta(seconds=rng.uniform(7 * 3600, 21 * 3600))
        interested = [a.name for a in routing.interested(event, adapters)]
        consent = [d for d in interested if rng.random() < 0.9] or interested[:1]
        counter = channel == "counter"
        for department in consent:
            if rng.random() < 0.015:
                failed[department] += 1
                continue
            seconds = _told_after(rng, counter)
            told[department].append(seconds)
            when = min(at + timedelta(seconds=seconds), last)
            entries.append(ledger.delivery_entry(ref, department, prices, when))
        if counter and rng.random() < 0.6:
            branch = rng.choice(branches)
            # Paid by the departments that needed it: one or two of those told.
            needing = consent[: rng.randint(1, 2)]
            entries += ledger.task_entries(ref, "identity_check", branch, needing, prices, at)
            if "dvla" in consent and rng.random() < 0.3:
                entries += ledger.task_entries(ref, "photo", branch, ["dvla"], prices, at)
        elif channel == "web" and rng.random() < 0.03:
            entries += ledger.task_entries(ref, tariff.HELP, rng.choice(branches), [], prices, at)
        if EVENTS[event].registration is not None:
            entries.append(ledger.registration_entry(ref, "gro", prices, at))
    for event, sent in sent_online.items():
        started = round(sent / rng.uniform(0.72, 0.9)) + rng.randint(0, 1)
        stats.count_journey(pipe, event, day=day, by=started)
    online = sum(sent_online.values())
    ratings = list(feedback.RATINGS)
    for _ in range(round(online * rng.uniform(0.2, 0.35))):
        rating = rng.choices(ratings, weights=RATING_WEIGHTS)[0]
        said = rng.choice(COMMENTS[rating]) if rng.random() < 0.04 else ""
        feedback.add(pipe, rating, said, day)
    for department in sorted(set(told) | set(failed)):
        health.record_day(pipe, department, day, told[department], failed[department])
    ledger.post(pipe, entries)
    return volume, len(entries)


# --- router up --demo --------------------------------------------------------------------------

# A demo account for each role: the counter's at one branch, the back office's at none.
DEMO_BRANCH = "cardiff-queen-street"
ACCOUNTS = (
    ("demo-clerk", "clerk", DEMO_BRANCH),
    ("demo-manager", "manager", DEMO_BRANCH),
    ("demo-operator", "operator", ""),
    ("demo-caseworker", "caseworker", ""),
)


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    branch: str
    password: str  # shown once, when made; only its hash is kept


def new_password(username: str, branch: str = "") -> str:
    """A random password the staff store accepts (20 characters from ``secrets``)."""
    while True:
        password = secrets.token_urlsafe(15)
        if not too_weak(password, username, branch):
            return password


def accounts(core: LifeEventRouter) -> list[Account]:
    """Make (or make again) the demo staff accounts, each with a new password: what was
    there is replaced, so each start's passwords are the only ones that work."""
    made = []
    for username, role, branch in ACCOUNTS:
        password = new_password(username, branch)
        core.staff.add(username, password, branch, role, replace=True)
        made.append(Account(username, role, branch, password))
    return made


@dataclass(frozen=True)
class SampleCase:
    ref: str
    event: str
    how: str  # "web", "counter" or "help": sent online asking for help (casework)
    created: bool  # False: sent at an earlier start (its submission key seen before)


# (event, how): online; at the demo branch by the demo clerk; online, asking for help.
SAMPLE_CASES = (("moving_house", "web"), ("change_of_name", "counter"), ("new_job", "help"))


# The issuer named in the proof of a demo report's sign-in: no real provider vouched.
DEMO_ISSUER = "urn:tell-us-once:demo-sign-in"


def signed_in(event: str, answers: dict[str, Any]) -> Identity:
    """The identity the development identity provider gives the sample reporter of
    ``event`` (``sample-<event>``, at medium confidence), as if they had signed in."""
    reporter = EVENTS[event].reporter
    return Identity(
        issuer=DEMO_ISSUER,
        subject=f"sample-{event}",
        confidence=Confidence.P2,
        full_name=reporter.names(answers)[0],
        birthdate=reporter.date_of_birth(answers) or "",
    )


def sample_cases(core: LifeEventRouter, folder: Path = EXAMPLES) -> list[SampleCase]:
    """Send the sample reports through the real submission path (once: a submission key
    each, so a restart within a week finds the same ones); none if the examples are
    not there (an installed wheel has none). The online ones come from their sample
    reporters signed in, so their organisations are told at once."""
    sent = []
    for event, how in SAMPLE_CASES:
        path = folder / f"{event}.json"
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        counter = how == "counter"
        result = core.submit(
            event,
            data["answers"],
            data["consent"],
            channel="counter" if counter else "web",
            submission_key=f"demo-sample-{event}",
            help_requested=how == "help",
            branch=DEMO_BRANCH if counter else None,
            submitted_by="demo-clerk" if counter else "",
            identity=None if counter else signed_in(event, data["answers"]),
        )
        sent.append(SampleCase(result.ref, event, how, result.created))
    return sent


def reports(
    core: LifeEventRouter, count: int, events: Sequence[str] = (), folder: Path = EXAMPLES
) -> list[tuple[str, str]]:
    """Send ``count`` sample reports online, each from its sample reporter signed in
    (the events in turn: ``events``, or every one with an example), so there is traffic
    to watch (an outage made with ``router mock configure``, say); (ref, event) each."""
    samples = {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(folder.glob("*.json"))
        if p.stem in EVENTS
    }
    chosen = [e for e in (events or samples) if e in samples]
    if not chosen:
        raise ValueError("no sample report for those events")
    sent = []
    for n in range(count):
        event = chosen[n % len(chosen)]
        data = samples[event]
        result = core.submit(
            event,
            data["answers"],
            data["consent"],
            channel="web",
            identity=signed_in(event, data["answers"]),
        )
        sent.append((result.ref, event))
    return sent
