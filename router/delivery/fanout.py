"""Fan-out: deliveries wait in a pending set per department; a worker takes them in
batches and sends each batch concurrently.

At submission the case and one entry per digital delivery in its department's pending
set (``pending:<department>``, reference -> due time) are written in the same
MULTI/EXEC, so an accepted case always has its deliveries waiting. Then the
department is *woken*: if no drain is already queued or running for it (the
``wake:<department>`` key, set with NX and a time to live), a small RQ job
``drain(department)`` goes on the department's own queue (``dept-<name>``). That job
is only a trigger: the worker process that takes it starts (or nudges) a drain thread
for the department, which claims up to ``BATCH`` due deliveries at a time — one Lua
script moves them from the pending set to ``deliveries:sending`` with a lease — and
sends them concurrently (router.delivery.batch). A lost trigger (a worker killed between
taking it and running it) loses nothing: the deliveries are still pending, the wake
key runs out, and every worker's beat (router.delivery.recovery, twice a second) wakes any
department with due work and no drain.

Each delivery keeps its own idempotency key ``<case>-<department>``, its states
(queued -> sending -> delivered | retrying | failed, each in the case history), its
attempt count, its own jittered backoff (stretched to the department's Retry-After)
and its dead-letter path. A retry is the same delivery put back in the pending set
with a later due time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Queue
from rq.serializers import JSONSerializer

from router import keys, logs
from router.adapters.registry import Registry
from router.cases import FLAG_DEPARTMENT_REMOVED, CaseStore, DeliveryState, split_delivery_id
from router.delivery.jobs import drain
from router.delivery.queues import queue_for
from router.exceptions import UnknownCase, UnknownDelivery
from router.settings import RetryPolicy

log = logs.get_logger(__name__)

# Results are never read (the case hash is the record), so RQ keeps none.
RESULT_TTL = 0
FAILURE_TTL = 7 * 24 * 3600

# KEYS: every department's pending set, then every department's wake key.
# ARGV: now (epoch seconds), the wake key's time to live (ms).
# Sets the wake key of each department that has due work and no drain; returns their
# 1-based positions.
WAKE_SCRIPT = """
local n = #KEYS / 2
local woken = {}
for i = 1, n do
  local due = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', ARGV[1], 'LIMIT', 0, 1)
  if #due > 0 and redis.call('SET', KEYS[n + i], '1', 'NX', 'PX', ARGV[2]) then
    woken[#woken + 1] = i
  end
end
return woken
"""


class FanOut:
    """Puts deliveries in their departments' pending sets and wakes the departments."""

    def __init__(self, redis: Redis, adapters: Registry, policy: RetryPolicy | None = None):
        self.redis = redis
        self.adapters = adapters
        self.policy = policy or RetryPolicy.from_env()
        self._wake = redis.register_script(WAKE_SCRIPT)

    def enqueue(
        self,
        pipe: Pipeline,
        ref: str,
        departments: Iterable[str],
        delay: float = 0.0,
        wake: bool = False,
    ) -> list[tuple[int, str]]:
        """Add one pending delivery per department to ``pipe`` (which the caller
        executes, in the same transaction as whatever made them due); then call
        ``wake`` once it has been executed. With ``delay``, due that many seconds on.

        With ``wake``, the wake keys are set (NX) in the same transaction instead, and
        the answer says where in its replies to look: pass those replies and this
        answer to ``trigger_woken`` after it has been executed."""
        due = time.time() + max(0.0, delay)
        marks: list[tuple[int, str]] = []
        for department in departments:
            self.adapters.get(department)  # refuse a department nobody can deliver to
            pipe.zadd(keys.pending(department), {ref: due})
            if wake and delay <= 0:
                marks.append((len(pipe.command_stack), department))
                pipe.set(keys.wake(department), "1", nx=True, px=keys.WAKE_MS)
        return marks

    def trigger_woken(self, marks: list[tuple[int, str]], results: list[Any]) -> None:
        """Queue a drain job for each department whose wake key ``enqueue(wake=True)``
        set; failures are logged, not raised (the beat makes up for them)."""
        woken = [department for index, department in marks if results[index]]
        if woken:
            try:
                self.trigger(woken)
            except RedisError as error:
                log.warning("wake_failed", error=type(error).__name__, then="the beat wakes them")

    def wake(self, departments: Iterable[str] | None = None) -> list[str]:
        """Queue a drain job for each of ``departments`` (default: all) that has due
        deliveries and no drain queued or running; return those woken."""
        names = sorted(set(departments)) if departments is not None else self.adapters.names()
        if not names:
            return []
        script_keys = [keys.pending(d) for d in names]
        script_keys += [keys.wake(d) for d in names]
        woken = [
            names[int(i) - 1]
            for i in self._wake(keys=script_keys, args=[time.time(), keys.WAKE_MS])
        ]
        if woken:
            self.trigger(woken)
        return woken

    def trigger(self, departments: list[str]) -> None:
        """Queue one drain job on each department's queue."""
        with self.redis.pipeline(transaction=False) as pipe:
            for department in departments:
                queue = Queue(
                    queue_for(department), connection=self.redis, serializer=JSONSerializer
                )
                queue.enqueue_call(
                    drain,
                    args=(department,),
                    result_ttl=RESULT_TTL,
                    failure_ttl=FAILURE_TTL,
                    pipeline=pipe,
                )
            pipe.execute()

    def wake_quietly(self, departments: Iterable[str] | None = None) -> None:
        """``wake`` after a transaction already committed: a failure here loses
        nothing (the deliveries are pending, and every worker's beat wakes their
        departments within a second), so it is logged, not raised."""
        try:
            self.wake(departments)
        except RedisError as error:
            log.warning("wake_failed", error=type(error).__name__, then="the beat wakes them")

    def dead_letter_department(self, department: str, reason: str) -> list[str]:
        """Fail every delivery still waiting in ``department``'s pending set (its adapter
        is gone: a webhook removed), each with its dead letter and its case flagged, so
        an operator sees them and can replay them once it is back. Return their ids."""
        store = CaseStore(self.redis)
        failed = []
        for raw in self.redis.zrange(keys.pending(department), 0, -1):
            ref = raw.decode() if isinstance(raw, bytes) else str(raw)
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(keys.pending(department), ref)
                store.mark(ref, department, DeliveryState.FAILED, reason, pipeline=pipe)
                store.dead_letter(ref, department, reason, pipe)
                store.flag(ref, FLAG_DEPARTMENT_REMOVED % {"department": department}, pipe)
                pipe.execute()
            failed.append(f"{ref}-{department}")
        return failed

    def replay(self, delivery: str) -> None:
        """Send a failed (dead-lettered) delivery again, with a fresh set of retries."""
        ref, department = split_delivery_id(delivery)
        store = CaseStore(self.redis)
        case_key = keys.case(ref)

        def attempt(pipe: Pipeline) -> None:
            try:
                case = store.parse(ref, pipe.hgetall(case_key))
            except UnknownCase:
                raise UnknownDelivery() from None
            current = case.deliveries.get(department)
            if current is None or current.state != DeliveryState.FAILED:
                raise UnknownDelivery("Only a failed delivery can be replayed")
            others_failed = any(
                d.state == DeliveryState.FAILED
                for name, d in case.deliveries.items()
                if name != department
            )
            pipe.multi()
            store.mark(
                ref,
                department,
                DeliveryState.QUEUED,
                "replayed by an operator",
                pipeline=pipe,
                extra={"retries": 0},
            )
            pipe.hdel(keys.DEAD_LETTERS, delivery)
            if not others_failed:
                store.unflag(ref, pipeline=pipe)
            self.enqueue(pipe, ref, [department])

        # WATCH the case so two operators replaying at once queue it once.
        self.redis.transaction(attempt, case_key)
        self.wake_quietly([department])
