"""Crash recovery: leases on deliveries in flight, and a sweeper that sends orphans again.

A worker claims deliveries by moving them from their department's pending set to
``deliveries:sending``, a sorted set scored by when each one's lease runs out (one Lua
script: there is no moment at which a claimed delivery is in neither). A thread in
every worker process renews the leases of all it holds with one ``ZADD XX`` every
0.5 s, and sweeps: a delivery whose lease ran out lost its worker, and one script puts
it back in its pending set as "queued" (with its history entry) — atomically, so when
several workers sweep at once exactly one of them does it. The department's
idempotency key makes any overlap with a worker that was only slow harmless. The same
beat wakes every department with due deliveries and no drain (router.fanout), which
also recovers a drain job lost with its worker, and retries whose backoff has ended.

The process whose sweep put orphans back drains their departments itself, at once: the
dead worker may still hold a department's wake key (``router.fanout``), which would
otherwise keep every other process from waking it until the key ran out — and under
repeated kills that wait could come round twice (a CI run measured 10.6 s from a kill
to the delivery running again).

Bound: a kill is noticed within keys.LEASE_MS + one beat (about 3.5 s), and the sweeping
process sends the delivery again straight away.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from redis import Redis

from router import keys
from router.cases import now_iso, split_delivery_id
from router.exceptions import UnknownDelivery

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 0.5
RECOVERED_DETAIL = "its worker stopped mid-delivery; sending again"

# KEYS: deliveries:sending, the department's pending set, the case hash, its history.
# ARGV: delivery id, now (ms), ref, state field, updated_at field, detail field,
#       now (ISO), detail, history entry, the lease's length (ms).
# The orphan goes back due from when its lease was last renewed (about when its worker
# died), so it is sent again ahead of deliveries queued since, not behind them.
RECOVER_SCRIPT = """
local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not lease or tonumber(lease) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
local state = redis.call('HGET', KEYS[3], ARGV[4])
if state ~= 'queued' and state ~= 'sending' and state ~= 'retrying' then return 0 end
redis.call('HSET', KEYS[3], ARGV[4], 'queued', ARGV[5], ARGV[7], ARGV[6], ARGV[8])
redis.call('RPUSH', KEYS[4], ARGV[9])
redis.call('ZADD', KEYS[2], (tonumber(lease) - tonumber(ARGV[10])) / 1000, ARGV[3])
return 1
"""

_lock = threading.Lock()
_held: set[str] = set()
_thread: threading.Thread | None = None
_lease_ms = keys.LEASE_MS


def lease_ms() -> int:
    return _lease_ms


def holding(deliveries: Iterable[str]) -> None:
    """This process has claimed ``deliveries``: keep their leases alive."""
    with _lock:
        _held.update(deliveries)


def released(deliveries: Iterable[str]) -> None:
    with _lock:
        _held.difference_update(deliveries)


def held() -> list[str]:
    with _lock:
        return sorted(_held)


def renew(redis: Redis) -> None:
    """Extend every lease this process holds: one ZADD, only for those still there."""
    deliveries = held()
    if not deliveries:
        return
    expiry = int(time.time() * 1000) + _lease_ms
    redis.zadd(keys.SENDING, dict.fromkeys(deliveries, expiry), xx=True)


def sweep(redis: Redis) -> list[str]:
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
        entry = json.dumps(
            {"at": at, "department": department, "state": "queued", "detail": RECOVERED_DETAIL}
        )
        done = recover(
            keys=[
                keys.SENDING,
                keys.pending(department),
                keys.case(ref),
                keys.history(ref),
            ],
            args=[
                delivery,
                now_ms,
                ref,
                keys.delivery_field(department, "state"),
                keys.delivery_field(department, "updated_at"),
                keys.delivery_field(department, "detail"),
                at,
                RECOVERED_DETAIL,
                entry,
                _lease_ms,
            ],
        )
        if done:
            recovered.append(delivery)
            log.warning("delivery %s: worker lost mid-delivery; queued again", delivery)
    return recovered


def start_background(redis: Redis, beat: Callable[[], None]) -> None:
    """Run ``beat`` (renew, sweep, wake: see router.worker) twice a second until exit."""
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return

        def loop() -> None:
            while True:
                try:
                    beat()
                except Exception as error:  # noqa: BLE001 - Redis restarting, etc.
                    log.warning("lease renewal or sweep failed: %s", type(error).__name__)
                time.sleep(INTERVAL_SECONDS)

        _thread = threading.Thread(target=loop, name="router-recovery", daemon=True)
        _thread.start()


def beat(
    redis: Redis,
    wake: Callable[[], object],
    also: Callable[[], None] | None = None,
    recovered: Callable[[list[str]], None] | None = None,
) -> None:
    """One beat of a worker process: renew its leases, put back orphans (handing them
    to ``recovered``), wake the departments with due work and no drain."""
    renew(redis)
    if also is not None:
        also()
    orphans = sweep(redis)
    if orphans and recovered is not None:
        recovered(orphans)
    wake()
