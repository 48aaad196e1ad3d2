"""Sending deliveries in batches: each worker process runs one drain thread per busy
department, which claims up to ``BATCH`` due deliveries at a time and sends them
concurrently on the department's own thread pool.

A batch costs a handful of Redis round trips however large it is: one script claims
it (pending set -> ``deliveries:sending``, with a lease), one pipeline loads its cases,
one breaker check, through Sentinel one WAIT (no department is told of a case no
replica holds yet), one transaction marks them all "sending", and one transaction
records every outcome (delivered, retrying with its due time back in the pending set,
or failed with its dead letter and the case's flag; a delivered one's ledger entry,
router.ledger, one HSETNX). Each delivery keeps its own
idempotency key, attempts, retries, backoff and history; only the round trips are
shared. The adapters' calls are blocking I/O and run on threads, so a department that
answers in 20 ms delivers a whole batch in about 20 ms.

Isolation: each department has its own drain thread and thread pool in a process, so a
slow department holds only its own threads; the RQ worker's main loop only hands out
wake-ups and stays free for the other departments' queues.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from redis.client import Pipeline

from router import keys, ledger, logs, metrics, redis_server, tariff
from router.adapters.contract import (
    Adapter,
    PermanentError,
    Receipt,
    RegistryError,
    RetryableError,
)
from router.adapters.registry import Registry
from router.cases import (
    FLAG_NOT_TOLD,
    PENDING_STATES,
    Case,
    CaseStore,
    DeliveryState,
    Marked,
    delivery_id,
)
from router.delivery import breaker, health, recovery
from router.settings import Durability, RetryPolicy

log = logs.get_logger(__name__)

# Deliveries one drain thread claims and sends at once (and its thread pool's size).
BATCH = 32
# Seconds a claimed batch waits when no replica confirmed its cases in time.
NOT_REPLICATED_DELAY = 1.0
# The log event (router.logs) of each outcome, which is also its label in /metrics.
SAID = {"retried": "delivery_retried", "failed": "delivery_failed"}
# Delivered ones are logged once per batch, as one line listing each: a line per
# delivery cost about a tenth of a worker's CPU under a backlog (stdlib logging makes
# two records per line and renders each as JSON), and among 32 such lines a batch's
# retry or failure was hard to see.
TOLD = "deliveries_told"

# KEYS: the department's pending set, deliveries:sending, its wake key.
# ARGV: now (epoch s), batch size, lease expiry (epoch ms), "-<department>", wake ttl.
# Moves up to a batch of due deliveries to the sending set with a lease, atomically, so
# a worker killed at any moment after this leaves them where the sweeper looks. Half
# the batch is the longest due, half the most recently due: behind a backlog (a night's
# reports, a department back from an outage) a report made now is sent within a batch
# or two, not after the whole backlog, while the oldest still go first in each batch,
# so none waits for ever. With nothing due, clears the wake key: the next submission
# wakes the department again.
CLAIM_SCRIPT = """
local size = tonumber(ARGV[2])
local newest = math.floor(size / 2)
local refs = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, size - newest)
if #refs == 0 then
  redis.call('DEL', KEYS[3])
  return refs
end
if #refs == size - newest and newest > 0 then
  local taken = {}
  for _, ref in ipairs(refs) do taken[ref] = true end
  local recent = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'LIMIT', 0, newest)
  for _, ref in ipairs(recent) do
    if not taken[ref] then refs[#refs + 1] = ref end
  end
end
redis.call('ZREM', KEYS[1], unpack(refs))
local leases = {}
for _, ref in ipairs(refs) do
  leases[#leases + 1] = ARGV[3]
  leases[#leases + 1] = ref .. ARGV[4]
end
redis.call('ZADD', KEYS[2], unpack(leases))
redis.call('SET', KEYS[3], '1', 'PX', ARGV[5])
return refs
"""


@dataclass(frozen=True)
class Outcome:
    """How one call went: a receipt, or the reason it failed (for good, or worth retrying
    no sooner than ``retry_after`` seconds)."""

    receipt: Receipt | None = None
    reason: str = ""
    permanent: bool = False
    retry_after: float | None = None


@dataclass
class Tally:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    paused: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.delivered + self.retrying + self.failed + self.paused + self.skipped


class Dispatcher:
    """One per worker process: drain threads and thread pools, one per department."""

    def __init__(
        self,
        redis: Redis,
        adapters: Registry,
        concurrency: int = BATCH,
        policy: RetryPolicy | None = None,
        leases: recovery.Leases | None = None,
        durability: Durability | None = None,
    ) -> None:
        self.redis = redis
        # The replicas a case must be on before a department is told of it: the same
        # as a submission waits for (REDIS_WAIT_REPLICAS; one through Sentinel).
        self.durability = durability or redis_server.durability(redis)
        self.leases = leases or recovery.Leases(redis)
        self.adapters = adapters
        self.concurrency = concurrency
        self.policy = policy or RetryPolicy.from_env()
        self.store = CaseStore(redis)
        tariff.current()  # a wrong tariff file stops the worker at start
        self._claim = redis.register_script(CLAIM_SCRIPT)
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._more: set[str] = set()
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._stopping = threading.Event()
        self._rng = random.Random()

    # --- wake-ups and threads ---------------------------------------------------------

    def wake(self, department: str) -> None:
        """A drain job for ``department`` arrived: start its drain thread, or tell the
        running one to look again before it stops."""
        with self._lock:
            if not self._stopping.is_set():
                if department in self._threads:
                    self._more.add(department)
                    return
                thread = threading.Thread(
                    target=self._run, args=(department,), name=f"drain-{department}", daemon=True
                )
                self._threads[department] = thread
                thread.start()
                return
        # Shutting down: hand the wake-up back, so another worker's beat takes it.
        self.redis.delete(keys.wake(department))

    def active(self) -> list[str]:
        with self._lock:
            return sorted(self._threads)

    def renew_wakes(self) -> None:
        """Keep the wake keys of departments this process is draining (the beat).

        Only a key still there is renewed (PEXPIRE): a drain that found nothing due
        deleted its key just before its thread ends, and a renewal sent in between
        would set it again, with no drain behind it, for WAKE_MS. Every submission in
        that time would find the department "awake" and wake nobody; its deliveries
        would wait for the key to run out (up to 1.5 s: the tail of steady traffic)."""
        departments = self.active()
        if not departments:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for department in departments:
                pipe.pexpire(keys.wake(department), keys.WAKE_MS)
            pipe.execute()

    def _run(self, department: str) -> None:
        try:
            while not self._stopping.is_set():
                refs = self.claim(department)
                if refs:
                    self.process(department, refs)
                    continue
                # Nothing due (and the claim cleared the wake key). Stop, unless a
                # wake-up came meanwhile: checked and deregistered under one lock, so a
                # wake-up arriving after this sees no thread and starts a new one.
                with self._lock:
                    if department in self._more:
                        self._more.discard(department)
                        continue
                    del self._threads[department]
                    return
        except Exception as error:  # noqa: BLE001 - Redis restarting, etc.: the beat wakes it again
            log.warning("drain_stopped", department=department, error=type(error).__name__)
        finally:
            with self._lock:
                if self._threads.get(department) is threading.current_thread():
                    del self._threads[department]
                    self._more.discard(department)

    def stop(self, timeout: float = 10.0) -> None:
        """Claim nothing more; let the batches in hand finish (up to ``timeout``)."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    def drain_now(self, department: str) -> int:
        """Drain ``department`` in this thread until nothing is due; return how many
        deliveries were handled."""
        handled = 0
        while refs := self.claim(department):
            self.process(department, refs)
            handled += len(refs)
        return handled

    # --- one batch ------------------------------------------------------------------------

    def claim(self, department: str) -> list[str]:
        now = time.time()
        raw = self._claim(
            keys=[
                keys.pending(department),
                keys.SENDING,
                keys.wake(department),
            ],
            args=[
                now,
                self.concurrency,
                self.leases.expiry_ms(),
                f"-{department}",
                keys.WAKE_MS,
            ],
        )
        return [r.decode() if isinstance(r, bytes) else str(r) for r in raw]

    def process(self, department: str, refs: list[str]) -> Tally:
        """Send one claimed batch and record every outcome."""
        started = time.monotonic()
        with self.leases.hold(delivery_id(ref, department) for ref in refs):
            tally = self._process(department, refs)
        level = logging.DEBUG if tally.delivered == len(refs) else logging.INFO
        log.log(
            level,
            "batch_settled",
            department=department,
            size=len(refs),
            delivered=tally.delivered,
            retrying=tally.retrying,
            failed=tally.failed,
            paused=tally.paused,
            skipped=tally.skipped,
            seconds=round(time.monotonic() - started, 3),
        )
        return tally

    def _process(self, department: str, refs: list[str]) -> Tally:
        """The steps of a batch: load, ask the breaker, mark sending, send, record."""
        tally = Tally()
        try:
            adapter = self.adapters.get(department)
        except RegistryError:
            log.error("no_adapter_here", department=department, waiting=len(refs))
            self._put_back(department, refs, 30.0)
            tally.skipped = len(refs)
            return tally
        todo = self._to_send(department, refs, tally)
        if not todo:
            return tally
        pause, clean, probing = breaker.before_batch(self.redis, department, adapter.timeout)
        if pause > 0:
            self._pause(department, todo, pause)
            tally.paused += len(todo)
            return tally
        if probing and len(todo) > 1:
            # Half open: one delivery goes as the probe; the rest wait to hear how it went.
            self._pause(department, todo[1:], 1.0)
            tally.paused += len(todo) - 1
            todo = todo[:1]
        if not redis_server.replicated(self.redis, self.durability):
            # A case the primary took but no replica holds yet may be lost with the
            # primary (its citizen was asked to try again): no department is told of
            # it until a replica has it, or a failover could tell them of a case that
            # is gone, and then of the one sent again. Back in a second, untouched.
            log.warning("batch_not_replicated", department=department, waiting=len(todo))
            self._put_back(department, [case.ref for case in todo], NOT_REPLICATED_DELAY)
            tally.paused += len(todo)
            return tally
        self._mark_sending(department, todo)
        outcomes = self._send(adapter, department, todo)
        answered, failed = self._record(department, todo, outcomes, tally)
        opened = breaker.record(self.redis, department, answered, failed, clean)
        if opened:
            log.warning("breaker_opened", department=department, seconds=round(opened, 1))
        return tally

    def _to_send(self, department: str, refs: list[str], tally: Tally) -> list[Case]:
        """The claimed cases whose delivery is still to be sent; let go of the rest (a
        re-run after a crash of a delivery already finished, or a case gone)."""
        todo: list[Case] = []
        finished: list[str] = []
        for ref, case in zip(refs, self.store.load_for_delivery(refs, department), strict=True):
            held = delivery_id(ref, department)
            delivery = case.deliveries.get(department) if case is not None else None
            if case is None or delivery is None:
                log.error("delivery_not_in_a_case", ref=ref, department=department)
                finished.append(held)
            elif delivery.state not in PENDING_STATES:
                # Finished, at a counter, waiting for evidence or held: not for a worker.
                finished.append(held)
            else:
                todo.append(case)
        if finished:
            self.redis.zrem(keys.SENDING, *finished)
            tally.skipped = len(finished)
        return todo

    def _mark_sending(self, department: str, todo: list[Case]) -> None:
        """Each delivery of the batch is sending, one attempt more: one script call."""
        self.store.mark_many(
            department,
            DeliveryState.SENDING,
            [
                Marked(case.ref, extra={"attempts": case.deliveries[department].attempts + 1})
                for case in todo
            ],
            sent=True,
        )

    def _send(self, adapter: type[Adapter], department: str, todo: list[Case]) -> list[Outcome]:
        """Call the department for every case at once; wait at most its timeout."""
        pool = self._pool(department)
        futures: list[Future[Receipt]] = []
        for case in todo:
            attempt = case.deliveries[department].attempts + 1
            notification = self.store.notification(case, department, attempt=attempt)
            futures.append(pool.submit(adapter(self.redis).deliver, notification))
        done, _ = wait(futures, timeout=adapter.timeout)
        outcomes = []
        for case, future in zip(todo, futures, strict=True):
            if future not in done:
                future.cancel()
                outcomes.append(Outcome(reason=f"no answer within {adapter.timeout:g}s"))
                continue
            error = future.exception()
            if error is None:
                outcomes.append(Outcome(receipt=future.result()))
            elif isinstance(error, PermanentError):
                outcomes.append(Outcome(reason=error.reason, permanent=True))
            elif isinstance(error, RetryableError):
                outcomes.append(Outcome(reason=error.reason, retry_after=error.retry_after))
            else:  # a bug in the adapter, or a timeout of its own
                log.error(
                    "adapter_raised",
                    ref=case.ref,
                    department=department,
                    error=type(error).__name__,
                    exc_info=error,
                )
                outcomes.append(Outcome(reason=type(error).__name__))
        return outcomes

    def _record(
        self, department: str, todo: list[Case], outcomes: list[Outcome], tally: Tally
    ) -> tuple[int, int]:
        """Record every outcome in one transaction; return (answered, failed) for the
        breaker: a refusal is an answer (the department is up), a retryable failure not."""
        answered = failed = 0
        now = time.time()
        told_after: list[float] = []
        given_up = retried = 0
        prices = tariff.current()
        at = datetime.fromtimestamp(now, UTC)
        said: list[tuple[int, str, dict[str, object]]] = []  # logged once stored
        told: list[dict[str, object]] = []
        delivered: list[Marked] = []
        entries: list[ledger.Entry] = []

        def say(level: int, outcome: str, ref: str, **fields: object) -> None:
            said.append((level, SAID[outcome], {"ref": ref, "outcome": outcome, **fields}))

        with self.redis.pipeline(transaction=True) as pipe:
            for case, outcome in zip(todo, outcomes, strict=True):
                ref = case.ref
                delivery = case.deliveries[department]
                attempt = delivery.attempts + 1
                if outcome.receipt is not None:
                    answered += 1
                    tally.delivered += 1
                    told_after.append(now - _submitted(case))
                    told.append(
                        {"ref": ref, "attempt": attempt, "seconds": round(told_after[-1], 3)}
                    )
                    delivered.append(Marked(ref, outcome.receipt.detail, outcome.receipt))
                    # Its department owes the operator for it: posted in this same
                    # transaction, once (HSETNX by delivery id) however often recorded.
                    entries.append(ledger.delivery_entry(ref, department, prices, at))
                elif outcome.permanent:
                    answered += 1
                    tally.failed += 1
                    given_up += 1
                    self._fail(pipe, ref, department, f"refused: {outcome.reason}")
                    say(logging.WARNING, "failed", ref, attempt=attempt, refused=True)
                else:
                    failed += 1
                    policy = RetryPolicy.from_field(case.retry, self.policy)
                    if delivery.retries < policy.max_retries:
                        wait_s = policy.delay(delivery.retries, outcome.retry_after, self._rng)
                        tally.retrying += 1
                        retried += 1
                        self.store.mark(
                            ref,
                            department,
                            DeliveryState.RETRYING,
                            f"{outcome.reason}; next attempt in about {math.ceil(wait_s)}s",
                            pipeline=pipe,
                            extra={"retries": delivery.retries + 1},
                        )
                        pipe.zadd(keys.pending(department), {ref: now + wait_s})
                        later = round(wait_s, 1)
                        say(logging.INFO, "retried", ref, attempt=attempt, retry_in_seconds=later)
                    else:
                        tally.failed += 1
                        given_up += 1
                        reason = f"gave up after {attempt} attempts: {outcome.reason}"
                        self._fail(pipe, ref, department, reason)
                        say(logging.WARNING, "failed", ref, attempt=attempt, refused=False)
            self.store.mark_many(department, DeliveryState.DELIVERED, delivered, pipeline=pipe)
            ledger.post(pipe, entries)
            pipe.zrem(keys.SENDING, *(delivery_id(case.ref, department) for case in todo))
            health.record_outcomes(pipe, department, told_after, given_up, now)
            pipe.execute()
        # Counted and logged once the transaction is stored: a batch that failed to
        # record is claimed again and counted then. Never the adapter's own words.
        metrics.settled(department, told_after, retried, given_up)
        if told:
            log.info(TOLD, department=department, outcome="delivered", told=told)
        for level, event, fields in said:
            log.log(level, event, department=department, **fields)
        return answered, failed

    def _pool(self, department: str) -> ThreadPoolExecutor:
        with self._lock:
            pool = self._pools.get(department)
            if pool is None:
                pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"send-{department}")
                self._pools[department] = pool
            return pool

    def _pause(self, department: str, cases: list[Case], pause: float) -> None:
        """The department's breaker is open: each comes back after the pause (spread,
        no storm), its retries untouched."""
        now = time.time()
        with self.redis.pipeline(transaction=True) as pipe:
            for case in cases:
                wait_s = pause + self._rng.uniform(0.0, min(5.0, pause))
                self.store.mark(
                    case.ref,
                    department,
                    DeliveryState.RETRYING,
                    "department paused after repeated failures; "
                    f"next attempt in about {math.ceil(wait_s)}s",
                    pipeline=pipe,
                )
                pipe.zadd(keys.pending(department), {case.ref: now + wait_s})
                pipe.zrem(keys.SENDING, delivery_id(case.ref, department))
            pipe.execute()

    def _put_back(self, department: str, refs: list[str], delay: float) -> None:
        due = time.time() + delay
        with self.redis.pipeline(transaction=True) as pipe:
            for ref in refs:
                pipe.zadd(keys.pending(department), {ref: due})
                pipe.zrem(keys.SENDING, delivery_id(ref, department))
            pipe.execute()

    def _fail(self, pipe: Pipeline, ref: str, department: str, reason: str) -> None:
        """Record a delivery as failed, dead-letter it and flag its case for a person."""
        self.store.mark(ref, department, DeliveryState.FAILED, reason, pipeline=pipe)
        self.store.dead_letter(ref, department, reason, pipeline=pipe)
        self.store.flag(ref, FLAG_NOT_TOLD, pipeline=pipe)


def _submitted(case: Case) -> float:
    """When the case's report was submitted, in Unix time."""
    return datetime.fromisoformat(case.created_at).timestamp()
