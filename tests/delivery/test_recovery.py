"""Crash recovery and outages: killed workers, orphaned deliveries, the circuit breaker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis

from router import keys
from router.adapters.mocks import Faults, configure_faults
from router.adapters.registry import Registry
from router.cases import CaseStore, DeliveryState, delivery_id
from router.delivery import breaker, health, recovery
from router.delivery.batch import Dispatcher
from router.delivery.queues import queue_for
from router.delivery.worker import Supervisor
from router.redis_server import RedisServer
from router.service import LifeEventRouter
from tests.support.identities import reporter_identity
from tests.support.processes import wait_settled
from tests.support.redis_dump import mock_log
from tests.support.samples import sample, submit_to_core

pytestmark = pytest.mark.slow


def _wait_for_state(
    store: CaseStore, ref: str, department: str, state: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while store.load(ref).deliveries[department].state != state:
        assert time.monotonic() < deadline, f"{department} never reached {state}"
        time.sleep(0.02)


def test_a_worker_killed_mid_delivery_is_replaced_and_the_delivery_runs_again_within_10s(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    configure_faults(redis, "dvla", Faults(latency_ms=1500))
    data = sample("moving_house")
    ref = core.submit(
        data["event"],
        data["answers"],
        data["consent"],
        identity=reporter_identity(data["event"], data["answers"]),
    ).ref
    _wait_for_state(core.store, ref, "dvla", "sending", timeout=20)

    # Every worker process serves every department: kill them all, so the one that
    # holds the delivery is surely among them.
    killed_at = datetime.now(UTC)
    for pid in workers.pids():
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while core.case(ref).deliveries["dvla"].state != DeliveryState.DELIVERED:
        workers.check()  # the supervisor's loop: restart what died
        assert time.monotonic() < deadline, core.store.history(ref)
        time.sleep(0.1)

    history = [h for h in core.store.history(ref) if h.department == "dvla"]
    states = [h.state for h in history]
    assert states[:2] == ["queued", "sending"]
    assert "queued" in states[2:], "the sweeper put it back in its pending set"
    assert recovery.RECOVERED_DETAIL in [h.detail for h in history]
    rerun = next(
        h for h in history[2:] if h.state == "sending" and datetime.fromisoformat(h.at) > killed_at
    )
    took = (datetime.fromisoformat(rerun.at) - killed_at).total_seconds()
    assert took <= 10, f"ran again {took:.1f}s after the kill"
    assert workers.restarts >= 1
    # The department's record changed once, whatever the crash interrupted.
    assert len([e for e in mock_log(redis, "dvla") if e["delivery_id"] == f"{ref}-dvla"]) == 1


def test_the_sweeper_recovers_an_orphan_and_leaves_a_live_lease_alone(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    data = sample("birth")
    orphan = core.submit(
        data["event"],
        data["answers"],
        data["consent"],
        identity=reporter_identity(data["event"], data["answers"]),
    ).ref
    alive = core.submit(
        data["event"],
        data["answers"],
        data["consent"],
        identity=reporter_identity(data["event"], data["answers"]),
    ).ref
    # A worker claims both (pending -> sending, with a lease) and starts sending them.
    dispatcher = Dispatcher(redis, registry)
    assert sorted(dispatcher.claim("dwp")) == sorted([orphan, alive])
    assert redis.zcard(keys.pending("dwp")) == 0
    for ref in (orphan, alive):
        core.store.mark(ref, "dwp", DeliveryState.SENDING, sent=True, extra={"attempts": 1})
    # The orphan's worker died: nobody renewed its lease, which has run out.
    redis.zadd(keys.SENDING, {delivery_id(orphan, "dwp"): int(time.time() * 1000) - 1})
    later = core.submit(
        data["event"],
        data["answers"],
        data["consent"],
        identity=reporter_identity(data["event"], data["answers"]),
    ).ref

    recovered = recovery.sweep(redis)

    assert recovered == [delivery_id(orphan, "dwp")]
    assert core.case(orphan).deliveries["dwp"].state == DeliveryState.QUEUED
    assert core.case(alive).deliveries["dwp"].state == DeliveryState.SENDING
    assert [m.decode() for m in redis.zrange(keys.pending("dwp"), 0, -1)] == [orphan, later]
    assert redis.zscore(keys.SENDING, delivery_id(orphan, "dwp")) is None
    assert redis.zscore(keys.SENDING, delivery_id(alive, "dwp")) is not None
    assert core.store.history(orphan)[-1].detail == recovery.RECOVERED_DETAIL
    # A second sweep finds nothing more to do.
    assert recovery.sweep(redis) == []
    # The orphan went back in line from about when its worker died: ahead of a case
    # submitted after that but before the sweep.
    assert Dispatcher(redis, registry, concurrency=1).claim("dwp") == [orphan]
    assert Dispatcher(redis, registry, concurrency=1).claim("dwp") == [later]


def test_a_lease_renewed_in_bulk_keeps_a_slow_delivery_from_the_sweeper(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    data = sample("birth")
    ref = core.submit(
        data["event"],
        data["answers"],
        data["consent"],
        identity=reporter_identity(data["event"], data["answers"]),
    ).ref
    held = delivery_id(ref, "dwp")
    dispatcher = Dispatcher(redis, registry)
    assert dispatcher.claim("dwp") == [ref]
    leases = dispatcher.leases
    with leases.hold([held]):
        redis.zadd(keys.SENDING, {held: int(time.time() * 1000) - 1})  # about to run out
        leases.renew()
        assert recovery.sweep(redis) == []
        assert float(redis.zscore(keys.SENDING, held) or 0) > time.time() * 1000
    assert leases.held() == []
    # Renewal never brings back a lease its delivery has already settled.
    redis.zrem(keys.SENDING, held)
    with leases.hold([held]):
        leases.renew()
    assert redis.zscore(keys.SENDING, held) is None


def test_the_sweeper_drops_a_finished_delivery_and_a_malformed_id_and_recovers_nothing(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    ref = submit_to_core(core, "birth", channel="test").ref
    dispatcher = Dispatcher(redis, registry)
    assert dispatcher.drain_now("dwp") == 1
    history = core.store.history(ref)
    # Its lease ran out after its outcome was stored (a worker that recorded, then died
    # before letting go), and an id no delivery has.
    expired = int(time.time() * 1000) - 1
    redis.zadd(keys.SENDING, {delivery_id(ref, "dwp"): expired, "not-a-delivery": expired})
    assert recovery.sweep(redis) == []
    assert not redis.exists(keys.SENDING)
    assert core.case(ref).deliveries["dwp"].state == DeliveryState.DELIVERED
    assert redis.zscore(keys.pending("dwp"), ref) is None
    assert core.store.history(ref) == history


def test_a_lease_runs_for_its_length_from_when_it_is_taken_or_renewed(redis: Redis) -> None:
    leases = recovery.Leases(redis, lease_ms=4000)
    before = int(time.time() * 1000)
    assert before + 4000 <= leases.expiry_ms() <= int(time.time() * 1000) + 4000
    with leases.hold(["A-dwp", "B-dwp"]), leases.hold(["C-dwp"]):
        assert leases.held() == ["A-dwp", "B-dwp", "C-dwp"]
    assert leases.held() == []
    with pytest.raises(RuntimeError), leases.hold(["A-dwp"]):
        raise RuntimeError("the batch failed")
    assert leases.held() == [], "a batch that failed still lets go of its leases"


def test_a_beat_step_that_fails_is_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[float] = []
    again = threading.Event()

    def step() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise ConnectionError("Redis is restarting")
        again.set()

    beat = recovery.Beat(step, interval=0.05)
    beat.start()
    try:
        assert again.wait(5), "the beat stopped after a failed step"
    finally:
        beat.stop()
    assert calls[1] - calls[0] >= 0.04, "the next step waited for the interval"
    said = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    assert {"event": "beat_failed", "error": "ConnectionError"}.items() <= said[0].items()


def test_a_beat_runs_on_a_daemon_thread_and_stops_started_or_not() -> None:
    recovery.Beat(lambda: None).stop()  # never started (its worker failed to start)
    before = set(threading.enumerate())
    beat = recovery.Beat(lambda: None, interval=0.01)
    beat.start()
    started = [t for t in threading.enumerate() if t not in before]
    beat.stop()
    # A worker that ends without stopping it is not kept alive by it.
    assert started and all(t.daemon for t in started)


def test_a_beat_stops_within_its_timeout_even_while_a_step_hangs() -> None:
    release, started = threading.Event(), threading.Event()

    def step() -> None:
        started.set()
        release.wait(10)

    beat = recovery.Beat(step, interval=0.01)
    beat.start()
    try:
        assert started.wait(5)
        began = time.monotonic()
        beat.stop(timeout=0.2)
        assert time.monotonic() - began < 2
    finally:
        release.set()


def test_a_department_in_outage_trips_its_breaker_then_everything_is_delivered(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    configure_faults(redis, "hmrc", Faults(outage=True))
    data = sample("new_job")
    refs = [
        core.submit(
            data["event"],
            data["answers"],
            data["consent"],
            identity=reporter_identity(data["event"], data["answers"]),
        ).ref
        for _ in range(12)
    ]

    deadline = time.monotonic() + 20
    while breaker.state(redis, "hmrc") != "open":
        assert time.monotonic() < deadline, "the breaker never opened"
        time.sleep(0.05)
    # The other department carries on untouched while hmrc is down.
    for ref in refs:
        _wait_for_state(core.store, ref, "dwp", "delivered", timeout=20)
    attempts_while_open = int(sum(int(v) for v in redis.hvals("mock:hmrc:attempts")))

    configure_faults(redis, "hmrc", Faults())
    for ref in refs:
        case = wait_settled(redis, ref, timeout=90)
        assert case.deliveries["hmrc"].state == DeliveryState.DELIVERED
    assert breaker.state(redis, "hmrc") == "closed"
    paused = [h for ref in refs for h in core.store.history(ref) if "paused" in h.detail]
    assert paused, "deliveries waited for the breaker instead of calling a dead department"
    # Without the breaker each of the 12 would keep calling; with it, few calls are made.
    assert attempts_while_open < 12 * 3
    assert len(mock_log(redis, "hmrc")) == 12


def test_a_lost_wake_up_loses_nothing(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    """A worker on several queues dequeues with BLPOP: killed between taking a drain job
    and running it, it loses that job. The deliveries wait in the pending set, the wake
    key runs out, and a worker's beat wakes the department again."""
    workers.stop()
    data = sample("new_job")
    ref = core.submit(
        data["event"],
        data["answers"],
        data["consent"],
        identity=reporter_identity(data["event"], data["answers"]),
    ).ref
    # Lose every wake-up, as a worker killed right after BLPOP would; leave the wake
    # keys as such a worker would (set, running out on their own).
    for department in ("dwp", "hmrc"):
        redis.delete(f"rq:queue:{queue_for(department)}")
        assert redis.exists(keys.wake(department))
        redis.pexpire(keys.wake(department), 500)

    workers.start()
    case = wait_settled(redis, ref, timeout=30)
    assert {d.state for d in case.deliveries.values()} == {DeliveryState.DELIVERED}
    assert len(mock_log(redis, "dwp")) == len(mock_log(redis, "hmrc")) == 1


def test_the_beat_keeps_a_draining_department_s_wake_key_but_never_brings_one_back(
    redis: Redis, registry: Registry
) -> None:
    """The beat renews the wake keys of the departments this process drains. A drain
    that finds nothing due deletes its key just before its thread ends: a renewal sent
    in between must not set it again, or for its 1.5 s nobody is woken by a
    submission (SET NX fails), and nothing drains the department until it runs out
    (the tail of steady traffic in the benchmark, issue 18)."""
    dispatcher = Dispatcher(redis, registry)
    # A drain thread of "hmrc" still registered (the moment between its last claim,
    # which deleted the wake key, and its end); "dwp" draining with its key set.
    dispatcher._threads.update({"hmrc": threading.current_thread()})
    dispatcher._threads.update({"dwp": threading.current_thread()})
    redis.delete(keys.wake("hmrc"))
    redis.set(keys.wake("dwp"), "1", px=200)
    dispatcher.renew_wakes()
    assert not redis.exists(keys.wake("hmrc"))
    assert redis.pttl(keys.wake("dwp")) > 1000  # renewed to WAKE_MS


def test_the_sweeping_worker_sends_orphans_again_whoever_holds_the_wake_key(
    core: LifeEventRouter, redis: Redis, registry: Registry, workers: Supervisor
) -> None:
    """A killed worker leaves its leases and the department's wake key behind. The
    live process whose sweep puts the orphans back drains them itself, without waiting
    for the dead one's wake key to run out."""
    workers.stop()
    data = sample("new_job")
    ref = core.submit(
        data["event"],
        data["answers"],
        data["consent"],
        identity=reporter_identity(data["event"], data["answers"]),
    ).ref
    redis.delete(f"rq:queue:{queue_for('dwp')}")
    # The dead worker had claimed the delivery and started it ...
    assert Dispatcher(redis, registry).claim("dwp") == [ref]
    core.store.mark(ref, "dwp", DeliveryState.SENDING, sent=True, extra={"attempts": 1})
    redis.zadd(keys.SENDING, {delivery_id(ref, "dwp"): int(time.time() * 1000) - 1})
    # ... and held the department's wake key, here for far longer than the test waits.
    redis.set(keys.wake("dwp"), "1", px=120_000)

    started = time.monotonic()
    workers.start()
    _wait_for_state(core.store, ref, "dwp", "delivered", timeout=20)
    assert time.monotonic() - started < 20
    history = [h for h in core.store.history(ref) if h.department == "dwp"]
    assert recovery.RECOVERED_DETAIL in [h.detail for h in history]
    assert len([e for e in mock_log(redis, "dwp") if e["delivery_id"] == f"{ref}-dwp"]) == 1


def test_the_supervisor_keeps_serving_when_a_new_adapter_cannot_be_imported(
    redis: Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """pip midway through installing an adapter, or a broken one: ``router up`` and
    ``router worker`` keep the departments they serve, say why once, and look again;
    they look as the web front door does, forgetting the import system's caches."""
    from router import settings

    monkeypatch.setattr(settings, "FOLLOW_SECONDS", 0.0)
    looks: list[str] = []

    def broken(cls: type[Registry], redis: Redis | None = None) -> Registry:
        looks.append("look_again")
        raise ImportError("No module named 'half_installed_adapter'")

    monkeypatch.setattr(Registry, "look_again", classmethod(broken))
    pool = Supervisor("redis://127.0.0.1:1/0", [])  # serves nothing: no processes
    rounds = iter(range(4))
    try:
        pool.run(lambda: next(rounds, None) is None, follow=redis)
    finally:
        pool.stop()
    assert pool.pids() == []
    assert len(looks) >= 2  # it looked again after the failure
    warnings = [
        r.msg
        for r in caplog.records
        if isinstance(r.msg, dict) and r.msg["event"] == "departments_not_followed"
    ]
    assert len(warnings) == 1, warnings  # said once, not every round
    assert warnings[0]["error"] == "ImportError: No module named 'half_installed_adapter'"
    assert warnings[0]["keeping"] == []


# A stand-in worker: counts the SIGTERMs it is sent into a file, and takes a moment to
# finish its batches after the first, as a real one does (the second longer).
_COUNTS_SIGTERMS = """
import signal, sys, time
got = []
def handle(signum, frame):
    got.append(signum)
    open(sys.argv[1], "w").write(str(len(got)))
signal.signal(signal.SIGTERM, handle)
print("ready", flush=True)
while not got:
    time.sleep(0.01)
time.sleep(float(sys.argv[2]))
"""


def test_stopping_the_workers_asks_each_once(tmp_path: Path) -> None:
    """One SIGTERM is RQ's warm shutdown (finish the batches in hand); a second one more
    than a second later is its cold shutdown, which raises SystemExit wherever the worker
    is. The supervisor asked twice (once for all, then again while waiting for each), so
    a worker still finishing got the cold one, and could hang until it was killed 15 s
    later (seen as 15 s teardowns across the suite)."""
    supervisor = Supervisor("redis://127.0.0.1:1", ["dwp"])
    for i in range(2):
        child = subprocess.Popen(
            [sys.executable, "-c", _COUNTS_SIGTERMS, str(tmp_path / f"{i}"), f"{0.3 + i}"],
            stdout=subprocess.PIPE,
        )
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        supervisor.children[f"worker-{i}"] = child
    children = list(supervisor.children.values())
    supervisor.stop()
    for child in children:
        assert child.stdout is not None
        child.stdout.close()
    assert [(tmp_path / f"{i}").read_text() for i in range(2)] == ["1", "1"]


def test_a_beat_stopped_has_finished_its_step() -> None:
    """The worker says it stopped (health.stopped) after stopping its beat; a step still
    under way then would mark it alive again (seen as a flaky test_health)."""
    events: list[str] = []
    started = threading.Event()

    def step() -> None:
        events.append("start")
        started.set()
        time.sleep(0.3)
        events.append("end")

    beat = recovery.Beat(step, interval=0.01)
    beat.start()
    assert started.wait(5)
    beat.stop()
    assert events[-1] == "end"
    after = len(events)
    time.sleep(0.1)
    assert len(events) == after  # and no step after it


def test_workers_asked_to_stop_stop_at_once(
    core: LifeEventRouter, redis: Redis, registry: Registry, redis_server: RedisServer
) -> None:
    """Each real worker process, asked once to stop after it has delivered a report, is
    gone within a few seconds, every time. RQ's pub/sub listener held some for up to
    60 s, when it read its channel's unsubscribe before it was told to stop: a race, so
    the listener's absence is checked as well."""
    for _ in range(3):
        pool = Supervisor(redis_server.url_as("worker"), registry.names())
        pool.start()
        deadline = time.monotonic() + 15
        while len(health.workers_alive(redis)) < len(pool.pids()):
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        wait_settled(redis, submit_to_core(core, "retiring", channel="test").ref)
        # No worker listens on RQ's pub/sub channel: its listener was what held them.
        assert [c for c in redis.client_list() if int(c.get("sub", 0))] == []
        started = time.monotonic()
        pool.stop()
        assert time.monotonic() - started < 5
