"""Crash recovery and outages: killed workers, orphaned deliveries, the circuit breaker."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime

import pytest
from redis import Redis

from router import breaker, recovery
from router.adapters.mocks import Faults, configure_faults
from router.cases import LEASE_KEY, SENDING_KEY, CaseStore, DeliveryState, delivery_id
from router.service import LifeEventRouter
from tests.helpers import Workers, mock_log, sample, wait_settled

pytestmark = pytest.mark.slow


def _wait_for_state(
    store: CaseStore, ref: str, department: str, state: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while store.load(ref).deliveries[department].state != state:
        assert time.monotonic() < deadline, f"{department} never reached {state}"
        time.sleep(0.02)


def test_a_worker_killed_mid_delivery_is_replaced_and_the_delivery_runs_again_within_10s(
    core: LifeEventRouter, redis: Redis, workers: Workers
) -> None:
    configure_faults(redis, "dvla", Faults(latency_ms=1500))
    data = sample("moving_house")
    ref = core.submit(data["event"], data["answers"], data["consent"]).ref
    _wait_for_state(core.store, ref, "dvla", "sending", timeout=20)

    killed_at = datetime.now(UTC)
    os.kill(workers.children["dvla"].pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while core.case(ref).deliveries["dvla"].state != DeliveryState.DELIVERED:
        workers.check()  # the supervisor's loop: restart what died
        assert time.monotonic() < deadline, core.store.history(ref)
        time.sleep(0.1)

    history = [h for h in core.store.history(ref) if h.department == "dvla"]
    states = [h.state for h in history]
    assert states[:2] == ["queued", "sending"]
    assert "queued" in states[2:], "the sweeper put it back on the queue"
    rerun = next(
        h for h in history[2:] if h.state == "sending" and datetime.fromisoformat(h.at) > killed_at
    )
    took = (datetime.fromisoformat(rerun.at) - killed_at).total_seconds()
    assert took <= 10, f"ran again {took:.1f}s after the kill"
    assert workers.restarts >= 1
    # The department's record changed once, whatever the crash interrupted.
    assert len([e for e in mock_log(redis, "dvla") if e["delivery_id"] == f"{ref}-dvla"]) == 1


def test_the_sweeper_recovers_an_orphan_and_leaves_a_live_lease_alone(
    core: LifeEventRouter, redis: Redis
) -> None:
    data = sample("birth")
    orphan = core.submit(data["event"], data["answers"], data["consent"]).ref
    alive = core.submit(data["event"], data["answers"], data["consent"]).ref
    for ref in (orphan, alive):
        core.store.mark(ref, "dwp", DeliveryState.SENDING, count_attempt=True, sent=True)
    redis.delete(LEASE_KEY.format(delivery=delivery_id(orphan, "dwp")))  # its worker died
    queued_before = redis.llen("rq:queue:dept-dwp")

    recovered = recovery.sweep(redis, core.fanout.requeue)

    assert recovered == [delivery_id(orphan, "dwp")]
    assert core.case(orphan).deliveries["dwp"].state == DeliveryState.QUEUED
    assert core.case(alive).deliveries["dwp"].state == DeliveryState.SENDING
    assert redis.llen("rq:queue:dept-dwp") == queued_before + 1
    assert redis.zscore(SENDING_KEY, delivery_id(orphan, "dwp")) is None
    # A second sweep finds nothing more to do.
    assert recovery.sweep(redis, core.fanout.requeue) == []


def test_a_department_in_outage_trips_its_breaker_then_everything_is_delivered(
    core: LifeEventRouter, redis: Redis, workers: Workers
) -> None:
    configure_faults(redis, "hmrc", Faults(outage=True))
    data = sample("new_job")
    refs = [core.submit(data["event"], data["answers"], data["consent"]).ref for _ in range(12)]

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


def test_a_job_taken_off_its_queue_by_a_worker_that_died_is_put_back(redis: Redis) -> None:
    """RQ moves a job to an intermediate list before starting it; a worker killed in
    between leaves it there. The rescue puts it back once it has sat a lease long."""
    queue_key, intermediate = "rq:queue:dept-dwp", "rq:queue:dept-dwp:intermediate"
    redis.rpush(intermediate, "deliver-ACDEFGHJK-dwp")
    rescue = recovery.IntermediateRescue(redis, queue_key, intermediate)
    assert rescue() == []  # first seen now: it may just be on its way to a live worker
    rescue.first_seen = {k: v - 10 for k, v in rescue.first_seen.items()}
    assert rescue() == ["deliver-ACDEFGHJK-dwp"]
    assert redis.lrange(queue_key, 0, -1) == [b"deliver-ACDEFGHJK-dwp"]
    assert redis.llen(intermediate) == 0
