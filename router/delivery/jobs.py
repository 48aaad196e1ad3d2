"""The one RQ job, ``drain(department)``: a wake-up for a department's deliveries.

A worker process (router.delivery.worker) runs its jobs inside ``dispatching(...)``,
so the job only hands the wake-up to that process's Dispatcher, which drains the
department on a thread of its own (router.delivery.batch). Run anywhere else (an
``rq worker`` started by hand), the job drains the department itself until nothing is
due. Like every RQ job it takes plain values and loads what it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from redis import Redis
from rq import get_current_job

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
    redis: Redis = job.connection if job is not None else Redis()
    sent = Dispatcher(redis, Registry.discover(redis)).drain_now(department)
    return f"drained {sent}"
