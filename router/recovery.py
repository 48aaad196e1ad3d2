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
    delivery_field,
    split_delivery_id,
)
from router.exceptions import UnknownCase, UnknownDelivery
from router.queues import parse_job_id

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 0.5

# Adds a fresh job for (ref, department, round) to a pipeline in MULTI.
RequeueFn = Callable[[Pipeline, str, str, int], None]

_lock = threading.Lock()
_in_flight: set[str] = set()
_thread: threading.Thread | None = None


def holding(delivery: str) -> None:
    """This process is sending ``delivery``: keep its lease alive."""
    with _lock:
        _in_flight.add(delivery)


def take(redis: Redis, delivery: str) -> None:
    """This process has the delivery's job in hand: lease it, and keep the lease alive."""
    holding(delivery)
    with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(SENDING_KEY, {delivery: time.time()})
        pipe.set(LEASE_KEY.format(delivery=delivery), "1", px=LEASE_MS)
        pipe.execute()


def drop(redis: Redis, delivery: str) -> None:
    """Nothing to send after all (already delivered, no such case)."""
    with redis.pipeline(transaction=False) as pipe:
        pipe.zrem(SENDING_KEY, delivery)
        pipe.delete(LEASE_KEY.format(delivery=delivery))
        pipe.execute()


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
            state = pipe.hget(case_key, delivery_field(department, "state"))
            if pipe.exists(lease_key):
                return False  # renewed after all
            if state is None:
                pipe.multi()
                pipe.zrem(SENDING_KEY, delivery)
                pipe.execute()
                return False
            current = state.decode() if isinstance(state, bytes) else state
            # "queued" too: its job was in hand (leased) but never got as far as sending.
            if current not in (DeliveryState.SENDING, DeliveryState.QUEUED):
                pipe.multi()
                pipe.zrem(SENDING_KEY, delivery)
                pipe.execute()
                return False
            round_ = int(pipe.hget(case_key, delivery_field(department, "round")) or 0) + 1
            pipe.multi()
            pipe.hset(case_key, delivery_field(department, "round"), round_)
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


class IntermediateRescue:
    """Put back jobs a dead worker took off its queue but never started.

    RQ moves a job from the queue to an "intermediate" list (BLMOVE), then, as the
    worker starts it, into its started registry. A worker killed in between leaves the
    job in the intermediate list, where RQ looks only every ten minutes. A job that
    stays there for longer than a lease belongs to no live worker: back to the front
    of its queue it goes.
    """

    def __init__(self, redis: Redis, queue_key: str, intermediate_key: str) -> None:
        self.redis = redis
        self.queue_key = queue_key
        self.intermediate_key = intermediate_key
        self.first_seen: dict[str, float] = {}
        # Atomic: put it back only if it is still in the intermediate list.
        self._move = redis.register_script(
            "if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then "
            "redis.call('LPUSH', KEYS[2], ARGV[1]) return 1 end return 0"
        )

    def __call__(self) -> list[str]:
        raw: list[Any] = self.redis.lrange(self.intermediate_key, 0, -1)
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in raw]
        now = time.monotonic()
        self.first_seen = {i: self.first_seen.get(i, now) for i in ids}
        stale = [i for i in ids if now - self.first_seen[i] > LEASE_MS / 1000]
        rescued = []
        for job_id in stale:
            if not self._move(keys=[self.intermediate_key, self.queue_key], args=[job_id]):
                continue  # a worker took it after all
            rescued.append(job_id)
            self.first_seen.pop(job_id, None)
            log.warning("job %s: its worker died before starting it; put back", job_id)
        return rescued


class StartedRescue:
    """Send again deliveries whose worker died after RQ started the job but before the
    job took its lease: RQ lists the job as started (``rq:wip:<queue>``) and would
    notice only when the job's timeout runs out and maintenance runs."""

    def __init__(self, redis: Redis, started_key: str, requeue: RequeueFn) -> None:
        self.redis = redis
        self.started_key = started_key
        self.requeue = requeue
        self.first_seen: dict[str, float] = {}

    def __call__(self) -> list[str]:
        raw: list[Any] = self.redis.zrange(self.started_key, 0, -1)
        members = [m.decode() if isinstance(m, bytes) else str(m) for m in raw]
        now = time.monotonic()
        self.first_seen = {m: self.first_seen.get(m, now) for m in members}
        recovered = []
        for member in members:
            if now - self.first_seen[member] <= LEASE_MS / 1000:
                continue
            parsed = parse_job_id(member.split(":", 1)[0])
            if parsed is None:
                continue
            ref, department, round_ = parsed
            delivery = f"{ref}-{department}"
            if self.redis.exists(LEASE_KEY.format(delivery=delivery)):
                continue  # its worker is alive and holds it
            current = int(
                self.redis.hget(CASE_KEY.format(ref=ref), delivery_field(department, "round")) or 0
            )
            if round_ == current and _recover(self.redis, delivery, self.requeue):
                recovered.append(delivery)
            # The job's worker is gone either way: its entry is a leftover.
            self.redis.zrem(self.started_key, member)
            self.first_seen.pop(member, None)
        return recovered
