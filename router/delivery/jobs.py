"""The one RQ job, ``drain(department)``: a wake-up for a department's deliveries.

A worker process (router.delivery.worker) runs its jobs inside ``dispatching(...)``,
so the job only hands the wake-up to that process's Dispatcher, which drains the
department on a thread of its own (router.delivery.batch). Run anywhere else (an
``rq worker`` started by hand), the job drains the department itself until nothing is
due, on the job's connection (or, called outside RQ, the service's Redis:
``REDIS_URL`` or ``REDIS_SENTINELS``). Like every RQ job it takes plain values and
loads what it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from redis import Redis
from rq import get_current_job

from router import redis_server
from router.adapters.registry import Registry
from router.delivery.batch import Dispatcher

_dispatcher: ContextVar[Dispatcher | None] = ContextVar("dispatcher", default=None)


@contextmanager
def dispatching(dispatcher: Dispatcher) -> Iterator[None]:
    """Within the block, drain jobs run in this thread wake ``dispatcher``."""
    token = _dispatcher.set(dispatcher)
    try:
        yield
    finally:
        _dispatcher.reset(token)


def drain(department: str) -> str:
    """Wake the drain of ``department``; outside a worker process, drain it here."""
    dispatcher = _dispatcher.get()
    if dispatcher is not None:
        dispatcher.wake(department)
        return "woken"
    job = get_current_job()
    if job is not None:
        redis: Redis = job.connection
    else:
        url = redis_server.url_from_env()
        if not url:
            raise RuntimeError(
                "drain() outside a worker needs the service's Redis: set REDIS_URL "
                "(or REDIS_SENTINELS)"
            )
        redis = redis_server.connect(url)
    sent = Dispatcher(redis, Registry.discover(redis)).drain_now(department)
    return f"drained {sent}"
