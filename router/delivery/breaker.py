"""A circuit breaker per department, shared by every worker through Redis.

After THRESHOLD retryable failures in a row the breaker opens: deliveries to that
department are paused (re-scheduled, without using up their retries) instead of
hammering it. When the pause ends one delivery goes through as a probe; success closes
the breaker, failure opens it again for twice as long (capped). Other departments are
untouched: each has its own breaker, queue and pending set.

Deliveries go out in concurrent batches (router.delivery.fanout), so the breaker is consulted
once per batch and told the batch's outcome once: a batch in which the department
answered at least once (delivered, or refused for good) proves it up and closes the
breaker; only batches with no answer at all add their failures to the count "in a
row". A half-open breaker lets one delivery of one batch through as the probe.
"""

from __future__ import annotations

import time

from redis import Redis

from router import keys

THRESHOLD = 5
BASE_PAUSE_SECONDS = 2.0
MAX_PAUSE_SECONDS = 60.0


def _num(value: bytes | str | None) -> float:
    return float(value) if value else 0.0


def before_batch(redis: Redis, department: str, probe_seconds: float) -> tuple[float, bool, bool]:
    """Return (seconds to wait, breaker was clean, this batch is the probe)."""
    failures, open_until = redis.hmget(keys.breaker(department), "failures", "open_until")
    if not failures and not open_until:
        return 0.0, True, False
    now = time.time()
    until = _num(open_until)
    if until > now:
        return until - now, False, False
    if until:
        probe = keys.breaker_probe(department)
        if not redis.set(probe, "1", nx=True, px=int(probe_seconds * 1000) + 1000):
            return 1.0, False, False
        return 0.0, False, True
    return 0.0, False, False


def record(redis: Redis, department: str, answered: int, failed: int, clean: bool) -> float:
    """Tell the breaker how a batch went; return the pause if this opened it."""
    if answered:
        if not clean:
            succeeded(redis, department)
        return 0.0
    if failed:
        return failed_many(redis, department, failed)
    return 0.0


def succeeded(redis: Redis, department: str) -> None:
    with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.breaker(department), keys.breaker_probe(department))
        pipe.execute()


def failed_many(redis: Redis, department: str, count: int) -> float:
    """Count ``count`` retryable failures; return the pause if they opened the breaker."""
    key = keys.breaker(department)
    failures = int(redis.hincrby(key, "failures", count))
    was_open = redis.hget(key, "open_until")
    if failures < THRESHOLD and not was_open:  # a failed probe reopens at once
        return 0.0
    opens = int(redis.hincrby(key, "opens", 1))
    pause = min(MAX_PAUSE_SECONDS, BASE_PAUSE_SECONDS * 2 ** (opens - 1))
    with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"open_until": time.time() + pause, "failures": 0})
        pipe.delete(keys.breaker_probe(department))
        pipe.execute()
    return pause


def state(redis: Redis, department: str) -> str:
    return state_of(redis.hget(keys.breaker(department), "open_until"))


def state_of(open_until: bytes | str | None, now: float | None = None) -> str:
    """closed, open (paused until ``open_until``) or half-open (one probe may go)."""
    if _num(open_until) > (time.time() if now is None else now):
        return "open"
    if open_until:
        return "half-open"
    return "closed"
