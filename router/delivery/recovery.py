"""Crash recovery: leases on deliveries in flight, and a sweeper that sends orphans again.

A worker claims deliveries by moving them from their department's pending set to
``deliveries:sending``, a sorted set scored by when each one's lease runs out (one Lua
script: there is no moment at which a claimed delivery is in neither). A thread in
every worker process renews the leases of all it holds with one ``ZADD XX`` every
0.5 s, and sweeps: a delivery whose lease ran out lost its worker, and one script puts
it back in its pending set as "queued" (with its history entry) — atomically, so when
several workers sweep at once exactly one of them does it. The department's
idempotency key makes any overlap with a worker that was only slow harmless. The same
beat wakes every department with due deliveries and no drain (router.delivery.fanout), which
also recovers a drain job lost with its worker, and retries whose backoff has ended.

The process whose sweep put orphans back drains their departments itself, at once: the
dead worker may still hold a department's wake key (``router.delivery.fanout``), which would
otherwise keep every other process from waking it until the key ran out — and under
repeated kills that wait could come round twice (a CI run measured 10.6 s from a kill
to the delivery running again).

Bound: a kill is noticed within a lease (keys.LEASE_MS) and one beat (about 3.5 s), and the sweeping
process sends the delivery again straight away.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from redis import Redis

from router import keys, logs
from router.cases import PENDING_STATES, DeliveryState, history_entry, now_iso, split_delivery_id
from router.exceptions import UnknownDelivery

log = logs.get_logger(__name__)

INTERVAL_SECONDS = 0.5
RECOVERED_DETAIL = "its worker stopped mid-delivery; sending again"

# KEYS: deliveries:sending, the department's pending set, the case hash, its history.
# ARGV: delivery id, now (ms), ref, state field, updated_at field, detail field,
#       now (ISO), detail, history entry, the lease's length (ms), the state it goes
#       back to ("queued"), then every state a worker may still move on (PENDING_STATES:
#       a delivery already delivered, failed or at a counter is left alone).
# The orphan goes back due from when its lease was last renewed (about when its worker
# died), so it is sent again ahead of deliveries queued since, not behind them.
RECOVER_SCRIPT = """
local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not lease or tonumber(lease) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
local state = redis.call('HGET', KEYS[3], ARGV[4])
local pending = false
for i = 12, #ARGV do
  if state == ARGV[i] then pending = true end
end
if not pending then return 0 end
redis.call('HSET', KEYS[3], ARGV[4], ARGV[11], ARGV[5], ARGV[7], ARGV[6], ARGV[8])
redis.call('RPUSH', KEYS[4], ARGV[9])
redis.call('ZADD', KEYS[2], (tonumber(lease) - tonumber(ARGV[10])) / 1000, ARGV[3])
return 1
"""


class Leases:
    """The leases this process holds on deliveries in flight, renewed all at once.

    One per worker process, owned by its Dispatcher: a batch is held from the moment
    it is claimed until every outcome is recorded (``with leases.hold(ids):``).
    """

    def __init__(self, redis: Redis, lease_ms: int = keys.LEASE_MS) -> None:
        self.redis = redis
        self.lease_ms = lease_ms
        self._lock = threading.Lock()
        self._held: set[str] = set()

    @contextmanager
    def hold(self, deliveries: Iterable[str]) -> Iterator[None]:
        """Keep ``deliveries``' leases alive while the block runs."""
        deliveries = list(deliveries)
        with self._lock:
            self._held.update(deliveries)
        try:
            yield
        finally:
            with self._lock:
                self._held.difference_update(deliveries)

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    def expiry_ms(self) -> int:
        """When a lease taken or renewed now runs out (epoch ms)."""
        return int(time.time() * 1000) + self.lease_ms

    def renew(self) -> None:
        """Extend every lease this process holds: one ZADD, only for those still there."""
        deliveries = self.held()
        if deliveries:
            self.redis.zadd(keys.SENDING, dict.fromkeys(deliveries, self.expiry_ms()), xx=True)


def sweep(redis: Redis, lease_ms: int = keys.LEASE_MS) -> list[str]:
    """Put back every claimed delivery whose lease ran out; return their ids."""
    now_ms = int(time.time() * 1000)
    raw: list[Any] = redis.zrangebyscore(keys.SENDING, "-inf", now_ms)
    if not raw:
        return []
    recover = redis.register_script(RECOVER_SCRIPT)
    recovered = []
    for item in raw:
        delivery = item.decode() if isinstance(item, bytes) else str(item)
        try:
            ref, department = split_delivery_id(delivery)
        except UnknownDelivery:
            redis.zrem(keys.SENDING, delivery)
            continue
        at = now_iso()
        done = recover(
            keys=[keys.SENDING, keys.pending(department), keys.case(ref), keys.history(ref)],
            args=[
                delivery,
                now_ms,
                ref,
                keys.delivery_field(department, "state"),
                keys.delivery_field(department, "updated_at"),
                keys.delivery_field(department, "detail"),
                at,
                RECOVERED_DETAIL,
                history_entry(department, DeliveryState.QUEUED, RECOVERED_DETAIL, at),
                lease_ms,
                DeliveryState.QUEUED,
                *sorted(PENDING_STATES),
            ],
        )
        if done:
            recovered.append(delivery)
            log.warning("delivery_recovered", ref=ref, department=department, outcome="queued")
    return recovered


class Beat:
    """A daemon thread that calls ``step`` every INTERVAL_SECONDS until stopped; a step
    that fails (Redis restarting...) is logged and the next one tries again."""

    def __init__(self, step: Callable[[], None], interval: float = INTERVAL_SECONDS) -> None:
        self.step = step
        self.interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="router-beat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop, and wait (up to ``timeout``) for a step under way to end: a beat that
        went on after its worker said it stopped would mark it alive again."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                self.step()
            except Exception as error:  # noqa: BLE001 - Redis restarting, etc.
                log.warning("beat_failed", error=type(error).__name__)
            self._stopped.wait(self.interval)
