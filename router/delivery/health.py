"""What an operator looks at: each department's queue, and which workers are alive.

``router queues`` prints these figures, the web front door's ``/readyz`` asks whether
any worker is alive, and the operators' console will show the same (issue 16). Every
figure is read from what delivery already keeps (router.keys), in one round trip per
call, and none names a person: departments, counts, ages and worker names only.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis

from router import keys
from router.cases import split_delivery_id
from router.delivery import breaker
from router.exceptions import UnknownDelivery

# A worker beats about once a second; one silent for this long is not counted alive.
ALIVE_SECONDS = 10.0
BEAT_SECONDS = 1.0


@dataclass(frozen=True)
class DepartmentFigures:
    department: str
    breaker: str  # closed, open or half-open (router.delivery.breaker)
    pending: int  # due now, waiting for a worker
    retrying: int  # waiting for a retry's backoff (or an open breaker's pause) to end
    sending: int  # claimed by a worker, not yet settled
    oldest_seconds: float  # how long the longest-waiting due delivery has been due
    failed: int  # dead letters: retries exhausted or refused for good

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def department_figures(
    redis: Redis, departments: Sequence[str], now: float | None = None
) -> list[DepartmentFigures]:
    """The figures of each of ``departments``, in that order."""
    now = time.time() if now is None else now
    with redis.pipeline(transaction=False) as pipe:
        for name in departments:
            pipe.zcount(keys.pending(name), "-inf", now)
            pipe.zcount(keys.pending(name), f"({now}", "+inf")
            pipe.zrange(keys.pending(name), 0, 0, withscores=True)
            pipe.hget(keys.breaker(name), "open_until")
        pipe.zrange(keys.SENDING, 0, -1)
        pipe.hkeys(keys.DEAD_LETTERS)
        answers = pipe.execute()
    sending = _by_department(answers[-2])
    failed = _by_department(answers[-1])
    figures = []
    for index, name in enumerate(departments):
        due, later, first, open_until = answers[4 * index : 4 * index + 4]
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
            )
        )
    return figures


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
