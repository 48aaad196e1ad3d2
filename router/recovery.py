"""Crash recovery: leases on deliveries in flight, and a sweeper that sends orphans again.

RQ notices a killed worker only when the worker's heartbeat expires and someone runs
maintenance: minutes. We promise seconds. So each delivery in "sending" holds a lease
(``lease:<delivery>``, 3 s) that a thread in its worker process renews every second.
Every worker process also sweeps once a second: a delivery still "sending" whose lease
has run out lost its worker, and goes back to "queued" with a new job on its
department's queue. The sweep is a WATCH/MULTI transaction, so when several workers
sweep at once exactly one of them re-sends it; the department's idempotency key makes
any overlap with a worker that was only slow harmless.

Bound: a kill is noticed within LEASE_MS + one sweep interval (about 4 s); the job is
then taken by the department's worker, which its supervisor restarted in the meantime.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from redis import Redis, WatchError
from redis.client import Pipeline

from router.cases import (
    CASE_KEY,
    LEASE_KEY,
    LEASE_MS,
    SENDING_KEY,
    CaseStore,
    DeliveryState,
    split_delivery_id,
)
from router.exceptions import UnknownCase, UnknownDelivery

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0

# Adds a fresh job for (ref, department, round) to a pipeline in MULTI.
RequeueFn = Callable[[Pipeline, str, str, int], None]

_lock = threading.Lock()
_in_flight: set[str] = set()
_thread: threading.Thread | None = None


def holding(delivery: str) -> None:
    """This process is sending ``delivery``: keep its lease alive."""
    with _lock:
        _in_flight.add(delivery)


def released(delivery: str) -> None:
    with _lock:
        _in_flight.discard(delivery)


def renew(redis: Redis) -> None:
    with _lock:
        held = list(_in_flight)
    if not held:
        return
    with redis.pipeline(transaction=False) as pipe:
        for delivery in held:
            pipe.pexpire(LEASE_KEY.format(delivery=delivery), LEASE_MS)
        pipe.execute()


def sweep(redis: Redis, requeue: RequeueFn) -> list[str]:
    """Send again every delivery stuck in "sending" without a live lease."""
    raw: list[Any] = redis.zrange(SENDING_KEY, 0, -1)
    candidates = [d.decode() if isinstance(d, bytes) else str(d) for d in raw]
    if not candidates:
        return []
    with redis.pipeline(transaction=False) as pipe:
        for delivery in candidates:
            pipe.exists(LEASE_KEY.format(delivery=delivery))
        alive = pipe.execute()
    recovered = []
    for delivery, has_lease in zip(candidates, alive, strict=True):
        if not has_lease and _recover(redis, delivery, requeue):
            recovered.append(delivery)
    return recovered


def _recover(redis: Redis, delivery: str, requeue: RequeueFn) -> bool:
    try:
        ref, department = split_delivery_id(delivery)
    except UnknownDelivery:
        redis.zrem(SENDING_KEY, delivery)
        return False
    store = CaseStore(redis)
    case_key = CASE_KEY.format(ref=ref)
    lease_key = LEASE_KEY.format(delivery=delivery)
    with redis.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(case_key, lease_key)
            state = pipe.hget(case_key, f"d:{department}:state")
            if pipe.exists(lease_key):
                return False  # renewed after all
            if state is None:
                pipe.multi()
                pipe.zrem(SENDING_KEY, delivery)
                pipe.execute()
                return False
            if (state.decode() if isinstance(state, bytes) else state) != DeliveryState.SENDING:
                pipe.multi()
                pipe.zrem(SENDING_KEY, delivery)
                pipe.execute()
                return False
            round_ = int(pipe.hget(case_key, f"d:{department}:round") or 0) + 1
            pipe.multi()
            pipe.hset(case_key, f"d:{department}:round", round_)
            store.mark(
                ref,
                department,
                DeliveryState.QUEUED,
                "its worker stopped mid-delivery; sending again",
                pipeline=pipe,
            )
            requeue(pipe, ref, department, round_)
            pipe.execute()
        except WatchError:
            return False  # another sweeper or the worker itself moved it on
        except UnknownCase:
            return False
    log.warning("delivery %s: worker lost mid-delivery; sent again", delivery)
    return True


def start_background(
    redis: Redis, requeue: RequeueFn, also: Callable[[], None] | None = None
) -> None:
    """Renew this process's leases and sweep for orphans, once a second, until exit;
    ``also`` runs on the same beat (the worker's retry scheduler)."""
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return

        def loop() -> None:
            while True:
                try:
                    renew(redis)
                    sweep(redis, requeue)
                    if also is not None:
                        also()
                except Exception as error:  # noqa: BLE001 - Redis restarting, etc.
                    log.warning("lease renewal or sweep failed: %s", type(error).__name__)
                time.sleep(INTERVAL_SECONDS)

        _thread = threading.Thread(target=loop, name="router-recovery", daemon=True)
        _thread.start()
