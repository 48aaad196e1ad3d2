"""Fan-out: one RQ job per (case, department) on that department's own queue.

The job takes ids, reloads the case, sends the department only its declared fields,
and moves the delivery queued -> sending -> delivered | retrying | failed. Delivery is
at least once (RQ re-runs a job whose worker died), so every notification carries the
idempotency key ``<case>-<department>`` and adapters make repeats harmless.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry, get_current_job
from rq.job import Job
from rq.serializers import JSONSerializer

from router import breaker, recovery
from router.adapters.contract import Adapter, Notification, PermanentError, RetryableError
from router.adapters.registry import Registry
from router.cases import (
    CASE_KEY,
    DEAD_LETTER_KEY,
    FINAL_STATES,
    CaseStore,
    DeliveryState,
    delivery_field,
    delivery_id,
    split_delivery_id,
)
from router.exceptions import UnknownCase, UnknownDelivery
from router.queues import job_id, queue_for
from router.settings import RetryPolicy

log = logging.getLogger(__name__)

# Results are never read (the case hash is the record), so RQ keeps none.
RESULT_TTL = 0
FAILURE_TTL = 7 * 24 * 3600

_registry: Registry | None = None


def set_registry(registry: Registry | None) -> None:
    """Set the adapters this process delivers to (workers do this once at start)."""
    global _registry
    _registry = registry


def registry() -> Registry:
    global _registry
    if _registry is None:
        _registry = Registry.discover()
    return _registry


def retry_intervals(policy: RetryPolicy, rng: random.Random | None = None) -> list[int]:
    """Backoff for each retry: ``base * 2**n`` capped, times a jitter in [0.5, 1]."""
    rng = rng or random.Random()
    intervals = []
    for n in range(policy.max_retries):
        ceiling = min(policy.cap_seconds, policy.base_seconds * 2**n)
        intervals.append(max(1, round(ceiling * rng.uniform(0.5, 1.0))) if ceiling else 0)
    return intervals


class FanOut:
    """Puts deliveries on department queues."""

    def __init__(self, redis: Redis, adapters: Registry, policy: RetryPolicy | None = None):
        self.redis = redis
        self.adapters = adapters
        self.policy = policy or RetryPolicy.from_env()

    def enqueue(
        self,
        pipe: Pipeline,
        ref: str,
        departments: Iterable[str],
        round_: int = 0,
        delay: float = 0.0,
        at_front: bool = False,
    ) -> None:
        """Add one job per department to ``pipe`` (which the caller executes);
        with ``delay``, the job is scheduled that many seconds ahead."""
        for department in departments:
            adapter = self.adapters.get(department)
            queue = Queue(queue_for(department), connection=self.redis, serializer=JSONSerializer)
            options: dict[str, Any] = {
                "job_id": job_id(ref, department, round_),
                "result_ttl": RESULT_TTL,
                "failure_ttl": FAILURE_TTL,
                "retry": Retry(max=self.policy.max_retries, interval=retry_intervals(self.policy))
                if self.policy.max_retries
                else None,
                "pipeline": pipe,
            }
            if delay > 0:
                when = datetime.now(UTC) + timedelta(seconds=delay)
                queue.enqueue_at(
                    when,
                    deliver,
                    ref,
                    department,
                    job_timeout=max(1, int(adapter.timeout)),
                    **options,
                )
            else:
                queue.enqueue_call(
                    deliver,
                    args=(ref, department),
                    timeout=max(1, int(adapter.timeout)),
                    at_front=at_front,
                    **options,
                )

    def requeue(self, pipe: Pipeline, ref: str, department: str, round_: int) -> None:
        """Put one delivery back at the front of its queue (the sweeper's way back in:
        it has waited long enough already)."""
        self.enqueue(pipe, ref, [department], round_=round_, at_front=True)

    def replay(self, delivery: str) -> None:
        """Send a failed (dead-lettered) delivery again, with a fresh set of retries."""
        ref, department = split_delivery_id(delivery)
        store = CaseStore(self.redis)
        case_key = CASE_KEY.format(ref=ref)

        def attempt(pipe: Pipeline) -> None:
            try:
                case = store.load(ref)
            except UnknownCase:
                raise UnknownDelivery() from None
            current = case.deliveries.get(department)
            if current is None or current.state != DeliveryState.FAILED:
                raise UnknownDelivery("Only a failed delivery can be replayed")
            # A read, not HINCRBY: a write to a WATCHed key aborts our own EXEC.
            round_ = int(pipe.hget(case_key, delivery_field(department, "round")) or 0) + 1
            others_failed = any(
                d.state == DeliveryState.FAILED
                for name, d in case.deliveries.items()
                if name != department
            )
            pipe.multi()
            pipe.hset(case_key, delivery_field(department, "round"), round_)
            store.mark(
                ref, department, DeliveryState.QUEUED, "replayed by an operator", pipeline=pipe
            )
            pipe.hdel(DEAD_LETTER_KEY, delivery)
            if not others_failed:
                store.unflag(ref, pipeline=pipe)
            self.enqueue(pipe, ref, [department], round_=round_)

        # WATCH the case so two operators replaying at once enqueue it once.
        self.redis.transaction(attempt, case_key)


class _WillRetry(Exception):
    """Raised out of the job so that RQ schedules the next attempt."""


def deliver(ref: str, department: str) -> str:
    """The RQ job: send one case's notification to one department."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("deliver runs inside an RQ worker")
    redis: Redis = job.connection
    held = delivery_id(ref, department)
    # Hold a lease from the first moment: if this process dies anywhere from here on,
    # the sweeper sends the delivery again.
    recovery.take(redis, held)
    try:
        return _deliver(job, redis, ref, department)
    finally:
        recovery.released(held)


def _deliver(job: Job, redis: Redis, ref: str, department: str) -> str:
    store = CaseStore(redis)
    held = delivery_id(ref, department)
    try:
        case = store.load(ref)
    except UnknownCase:
        log.error("delivery %s: no such case", held)
        recovery.drop(redis, held)
        return "no-case"
    delivery = case.deliveries.get(department)
    if delivery is None:
        log.error("delivery %s: not in the case's plan", held)
        recovery.drop(redis, held)
        return "not-planned"
    if delivery.state in FINAL_STATES or delivery.state == DeliveryState.ASSISTED:
        # A repeat of a finished delivery (a re-run after a crash, a stale replay).
        recovery.drop(redis, held)
        return f"already-{delivery.state}"

    adapter = registry().create(department, redis)
    pause, clean = breaker.before_call(redis, department, adapter.timeout)
    if pause > 0:
        _pause(redis, store, ref, department, pause)
        return "paused"
    notification = store.notification(case, department, attempt=delivery.attempts + 1)
    store.mark(ref, department, DeliveryState.SENDING, count_attempt=True, sent=True)
    return _send(job, store, adapter, notification, clean)


def _send(
    job: Job, store: CaseStore, adapter: Adapter, notification: Notification, breaker_clean: bool
) -> str:
    ref, department, redis = notification.case_ref, notification.department, store.redis
    try:
        receipt = adapter.deliver(notification)
    except PermanentError as error:
        if not breaker_clean:
            breaker.succeeded(redis, department)  # it answered: it is up
        _fail(store, ref, department, f"refused: {error.reason}")
        return "failed"
    except Exception as error:  # retryable, a timeout, or a bug in the adapter
        reason = error.reason if isinstance(error, RetryableError) else type(error).__name__
        if not isinstance(error, RetryableError):
            log.exception(
                "delivery %s: adapter raised %s", notification.delivery_id, type(error).__name__
            )
        paused_for = breaker.failed(redis, department)
        if paused_for:
            log.warning("department %s: breaker open for %.0fs", department, paused_for)
        if job.retries_left:
            if isinstance(error, RetryableError) and error.retry_after:
                _wait_at_least(job, error.retry_after)
            wait = job.get_retry_interval()
            store.mark(
                ref, department, DeliveryState.RETRYING, f"{reason}; next attempt in about {wait}s"
            )
            raise _WillRetry(reason) from None
        _fail(store, ref, department, f"gave up after {notification.attempt} attempts: {reason}")
        return "failed"
    if not breaker_clean:
        breaker.succeeded(redis, department)
    store.mark(ref, department, DeliveryState.DELIVERED, receipt.detail, receipt=receipt)
    log.info("delivery %s delivered", notification.delivery_id)
    return "delivered"


def _pause(redis: Redis, store: CaseStore, ref: str, department: str, pause: float) -> None:
    """The department's breaker is open: come back after the pause, retries untouched."""
    wait = pause + random.uniform(0.0, min(5.0, pause))  # spread the return, no storm
    case_key = CASE_KEY.format(ref=ref)
    round_ = int(redis.hincrby(case_key, delivery_field(department, "round"), 1))
    with redis.pipeline(transaction=True) as pipe:
        pipe.multi()
        store.mark(
            ref,
            department,
            DeliveryState.RETRYING,
            f"department paused after repeated failures; next attempt in about {math.ceil(wait)}s",
            pipeline=pipe,
        )
        FanOut(redis, registry()).enqueue(pipe, ref, [department], round_=round_, delay=wait)
        pipe.execute()


def _wait_at_least(job: Job, seconds: float) -> None:
    """Stretch the next retry interval to what the department asked (Retry-After)."""
    # RQ's scheduler keeps whole seconds and rounds down: one more makes "no sooner".
    need = min(int(math.ceil(seconds)) + 1, RetryPolicy.cap_seconds)
    intervals = list(job.retry_intervals or [0])
    index = max(len(intervals) - (job.retries_left or 0), 0)
    index = min(index, len(intervals) - 1)
    if intervals[index] < need:
        intervals[index] = need
        job.retry_intervals = intervals


def _fail(store: CaseStore, ref: str, department: str, reason: str) -> None:
    """Record a delivery as failed, dead-letter it and flag its case for a person."""
    with store.redis.pipeline(transaction=True) as pipe:
        store.mark(ref, department, DeliveryState.FAILED, reason, pipeline=pipe)
        store.dead_letter(ref, department, reason, pipeline=pipe)
        store.flag(ref, "a department could not be told online", pipeline=pipe)
        pipe.execute()
    log.warning("delivery %s-%s failed and was dead-lettered", ref, department)
