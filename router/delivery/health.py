"""What an operator looks at: each department's queue, what it settled in the last hour,
and which workers are alive.

``router queues`` prints these figures, the web front door's ``/readyz`` asks whether
any worker is alive, and the operators' console (/ops) shows the same. Every figure is
read in one round trip per call, and none names a person: departments, counts, ages and
worker names only.

The last hour's figures come from the outcome record each delivery batch writes in the
transaction that settles it (``record_outcomes``): per department and minute, how many
were delivered and failed, and how many were told within each of TELL_BOUNDS seconds of
their report's submission. A histogram, as Prometheus keeps one, so the p50 and p95 of
the time to tell are read off it without keeping a figure per delivery. The same counts
are added to a record of the whole day (``daily_outcomes``), which the published
performance page (router.performance) reads for its 30 days.
"""

from __future__ import annotations

import bisect
import os
import socket
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from router import keys
from router.cases import split_delivery_id
from router.delivery import breaker
from router.exceptions import UnknownDelivery

# The time from submission to told, in seconds: the bounds of the histogram's buckets,
# the same as /metrics's tuo_time_to_tell_seconds.
from router.metrics import TELL_BOUNDS

# A worker beats about once a second; one silent for this long is not counted alive.
ALIVE_SECONDS = 10.0
BEAT_SECONDS = 1.0
HOUR_MINUTES = 60


@dataclass(frozen=True)
class DepartmentFigures:
    department: str
    breaker: str  # closed, open or half-open (router.delivery.breaker)
    pending: int  # due now, waiting for a worker
    retrying: int  # waiting for a retry's backoff (or an open breaker's pause) to end
    sending: int  # claimed by a worker, not yet settled
    oldest_seconds: float  # how long the longest-waiting due delivery has been due
    failed: int  # dead letters: retries exhausted or refused for good
    delivered_last_hour: int = 0
    failed_last_hour: int = 0
    # Seconds from submission to told, over the last hour's deliveries; None if none.
    p50_seconds: float | None = None
    p95_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def department_figures(
    redis: Redis, departments: Sequence[str], now: float | None = None
) -> list[DepartmentFigures]:
    """The figures of each of ``departments``, in that order."""
    now = time.time() if now is None else now
    minute = int(now // 60)
    minutes = range(minute - HOUR_MINUTES + 1, minute + 1)
    per_department = 4 + len(minutes)
    with redis.pipeline(transaction=False) as pipe:
        for name in departments:
            pipe.zcount(keys.pending(name), "-inf", now)
            pipe.zcount(keys.pending(name), f"({now}", "+inf")
            pipe.zrange(keys.pending(name), 0, 0, withscores=True)
            pipe.hget(keys.breaker(name), "open_until")
            for m in minutes:
                pipe.hgetall(keys.outcomes(name, m))
        pipe.zrange(keys.SENDING, 0, -1)
        pipe.hkeys(keys.DEAD_LETTERS)
        answers = pipe.execute()
    sending = _by_department(answers[-2])
    failed = _by_department(answers[-1])
    figures = []
    for index, name in enumerate(departments):
        start = per_department * index
        due, later, first, open_until = answers[start : start + 4]
        hour = _summed(answers[start + 4 : start + per_department])
        buckets = [hour[f"t{i}"] for i in range(len(TELL_BOUNDS) + 1)]
        oldest = now - float(first[0][1]) if first and float(first[0][1]) <= now else 0.0
        figures.append(
            DepartmentFigures(
                department=name,
                breaker=breaker.state_of(open_until, now),
                pending=int(due),
                retrying=int(later),
                sending=sending[name],
                oldest_seconds=round(oldest, 1),
                failed=failed[name],
                delivered_last_hour=hour["delivered"],
                failed_last_hour=hour["failed"],
                p50_seconds=quantile(buckets, 0.5),
                p95_seconds=quantile(buckets, 0.95),
            )
        )
    return figures


def record_outcomes(
    pipe: Any, department: str, told_after: Sequence[float], failed: int, now: float
) -> None:
    """Add one batch's outcomes to this minute's record and to this day's, in the
    batch's own transaction (``pipe``): ``told_after`` holds each delivered delivery's
    seconds since its report was submitted, ``failed`` counts those given up on. A few
    commands per batch, none per delivery."""
    counts = bucket_counts(told_after, failed)
    if not counts:
        return
    _add(pipe, keys.outcomes(department, int(now // 60)), counts, keys.OUTCOMES_SECONDS)
    # The same counts for the whole day, for the published time to tell (30 days read
    # in 30 reads, not 43,200 minutes).
    day = datetime.fromtimestamp(now, UTC).date().isoformat()
    _add(pipe, keys.outcomes_day(department, day), counts, keys.STATS_SECONDS)


def _add(pipe: Any, key: str, counts: Counter[str], seconds: int) -> None:
    for name, count in sorted(counts.items()):
        pipe.hincrby(key, name, count)
    pipe.expire(key, seconds)


def bucket_counts(told_after: Sequence[float], failed: int = 0) -> Counter[str]:
    """A histogram's fields for deliveries told after ``told_after`` seconds each."""
    counts: Counter[str] = Counter()
    for seconds in told_after:
        counts[f"t{bisect.bisect_left(TELL_BOUNDS, seconds)}"] += 1
    if told_after:
        counts["delivered"] = len(told_after)
    if failed:
        counts["failed"] = failed
    return counts


def record_day(
    pipe: Any, department: str, day: str, told_after: Sequence[float], failed: int = 0
) -> None:
    """Add to one day's record only (``router demo seed`` fills past days with it)."""
    counts = bucket_counts(told_after, failed)
    if counts:
        _add(pipe, keys.outcomes_day(department, day), counts, keys.STATS_SECONDS)


@dataclass(frozen=True)
class DayOutcomes:
    """One department's deliveries settled in one day (or summed over several): how many
    were told and failed, and the histogram of their time to tell."""

    delivered: int
    failed: int
    buckets: tuple[int, ...]

    @property
    def p50_seconds(self) -> float | None:
        return quantile(self.buckets, 0.5)

    @property
    def p95_seconds(self) -> float | None:
        return quantile(self.buckets, 0.95)

    @classmethod
    def from_record(cls, record: Counter[str]) -> DayOutcomes:
        buckets = tuple(record[f"t{i}"] for i in range(len(TELL_BOUNDS) + 1))
        return cls(record["delivered"], record["failed"], buckets)

    @classmethod
    def summed(cls, days: Sequence[DayOutcomes]) -> DayOutcomes:
        width = len(TELL_BOUNDS) + 1
        return cls(
            sum(d.delivered for d in days),
            sum(d.failed for d in days),
            tuple(sum(d.buckets[i] for d in days) for i in range(width)),
        )


def daily_outcomes(
    redis: Redis, departments: Sequence[str], days: Sequence[str]
) -> dict[str, list[DayOutcomes]]:
    """Each department's outcomes on each of ``days`` (``YYYY-MM-DD``, UTC), in that
    order, in one round trip."""
    with redis.pipeline(transaction=False) as pipe:
        for name in departments:
            for day in days:
                pipe.hgetall(keys.outcomes_day(name, day))
        found = pipe.execute()
    width = len(days)
    return {
        name: [
            DayOutcomes.from_record(_summed([record]))
            for record in found[index * width : (index + 1) * width]
        ]
        for index, name in enumerate(departments)
    }


def quantile(buckets: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile of a histogram (counts per bucket of TELL_BOUNDS, and one past
    the last bound), by linear interpolation within the bucket it falls in, as
    Prometheus's histogram_quantile; the last bound for the open bucket. None if empty."""
    total = sum(buckets)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index == len(TELL_BOUNDS):
                return float(TELL_BOUNDS[-1])
            lower = TELL_BOUNDS[index - 1] if index else 0.0
            upper = TELL_BOUNDS[index]
            return round(lower + (upper - lower) * (rank - seen) / count, 3)
        seen += count
    return float(TELL_BOUNDS[-1])  # pragma: no cover - the loop always returns


def _summed(records: Sequence[dict[Any, Any]]) -> Counter[str]:
    summed: Counter[str] = Counter()
    for record in records:
        for name, count in record.items():
            summed[name.decode() if isinstance(name, bytes) else str(name)] += int(count)
    return summed


def _by_department(delivery_ids: list[Any]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for raw in delivery_ids:
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        try:
            counts[split_delivery_id(text)[1]] += 1
        except UnknownDelivery:
            continue  # not a delivery id: nothing to count
    return counts


def worker_name() -> str:
    """This process's name among the workers: its host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(redis: Redis, name: str, now: float | None = None) -> None:
    """Say that worker ``name`` is alive; forget workers silent for an hour."""
    now = time.time() if now is None else now
    with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(keys.WORKERS, {name: now})
        pipe.zremrangebyscore(keys.WORKERS, "-inf", now - keys.WORKER_GONE_SECONDS)
        pipe.execute()


def stopped(redis: Redis, name: str) -> None:
    """A worker that stops cleanly says so at once."""
    redis.zrem(keys.WORKERS, name)


def workers_alive(redis: Redis, now: float | None = None) -> dict[str, float]:
    """Each worker that beat within ALIVE_SECONDS: its name -> seconds since."""
    now = time.time() if now is None else now
    found: list[tuple[bytes, float]] = redis.zrangebyscore(  # type: ignore[assignment]
        keys.WORKERS, now - ALIVE_SECONDS, "+inf", withscores=True
    )
    return {name.decode(): round(max(0.0, now - float(at)), 1) for name, at in found}
