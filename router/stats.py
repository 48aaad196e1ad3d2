"""The daily stats record: what the service counts each day for its published
performance (router.performance), and nothing that could name anyone.

One small hash per day (``keys.stats_day``, UTC days) of counts: reports by channel,
reports sent online and journeys started online by life event, satisfaction ratings.
Each is counted where it happens: a report in the submission's own atomic write (so a
report is counted once, and never without its case), a journey when the citizen starts
one, a rating with the rating. No reference, time, answer or person is kept with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from redis import Redis

from router import keys

# The channels a report comes through, as published: online, at a Post Office counter,
# through a partner's API client (``api:<name>``), and anything else (the command line).
WEB, COUNTER, API, OTHER = "web", "counter", "api", "other"
CHANNELS = (WEB, COUNTER, API, OTHER)
DIGITAL = (WEB, API)  # digital take-up: reports made without a person's help

REPORT, SENT, STARTED, RATING = "report", "sent", "started", "rating"


def day_of(at: datetime | None = None) -> str:
    """The UTC day (``YYYY-MM-DD``) a moment falls on; now if none is given."""
    return (at or datetime.now(UTC)).astimezone(UTC).date().isoformat()


def channel_group(channel: str) -> str:
    """The published channel of a case's channel (``api:partner`` is an API client)."""
    if channel in (WEB, COUNTER):
        return channel
    if channel.startswith(f"{API}:"):
        return API
    return OTHER


def _count(pipe: Any, day: str, name: str, by: int = 1) -> None:
    key = keys.stats_day(day)
    pipe.hincrby(key, name, by)
    pipe.expire(key, keys.STATS_SECONDS)


def count_report(pipe: Any, channel: str, event: str, day: str | None = None) -> None:
    """Count one report sent through ``channel`` in the caller's write (``pipe``: the
    submission's, router.cases.CaseStore.create); one sent online counts towards its
    event's completion too."""
    day = day or day_of()
    group = channel_group(channel)
    key = keys.stats_day(day)
    pipe.hincrby(key, f"{REPORT}:{group}", 1)
    if group == WEB:
        pipe.hincrby(key, f"{SENT}:{event}", 1)
    pipe.expire(key, keys.STATS_SECONDS)


def count_journey(pipe: Any, event: str, day: str | None = None, by: int = 1) -> None:
    """Count ``by`` journeys started online for ``event``."""
    _count(pipe, day or day_of(), f"{STARTED}:{event}", by)


def count_rating(pipe: Any, rating: str, day: str | None = None) -> None:
    """Count one satisfaction rating (router.feedback.RATINGS)."""
    _count(pipe, day or day_of(), f"{RATING}:{rating}")


@dataclass(frozen=True)
class DayCounts:
    """One day's record, read back: each kind of count by its name."""

    day: str
    reports: dict[str, int] = field(default_factory=dict)  # channel -> reports
    sent: dict[str, int] = field(default_factory=dict)  # event -> reports sent online
    started: dict[str, int] = field(default_factory=dict)  # event -> journeys started
    ratings: dict[str, int] = field(default_factory=dict)  # rating -> how many gave it


def _parse(day: str, raw: dict[Any, Any]) -> DayCounts:
    kinds: dict[str, dict[str, int]] = {REPORT: {}, SENT: {}, STARTED: {}, RATING: {}}
    for name, value in raw.items():
        text = name.decode() if isinstance(name, bytes) else str(name)
        kind, _, what = text.partition(":")
        if kind in kinds and what:
            kinds[kind][what] = int(value)
    return DayCounts(day, kinds[REPORT], kinds[SENT], kinds[STARTED], kinds[RATING])


def read(redis: Redis, days: Sequence[str]) -> list[DayCounts]:
    """The records of ``days``, in that order, in one round trip (empty for a day with
    none)."""
    with redis.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hgetall(keys.stats_day(day))
        found = pipe.execute()
    return [_parse(day, raw) for day, raw in zip(days, found, strict=True)]


def days_to(last: date, count: int) -> list[str]:
    """``count`` days ending with ``last``, oldest first."""
    first = last.toordinal() - count + 1
    return [date.fromordinal(first + i).isoformat() for i in range(count)]
