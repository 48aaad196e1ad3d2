"""Fan-out against a real Redis and real `router worker` processes."""

from __future__ import annotations

import json
import threading
import time

import pytest
from redis import Redis

from router import keys
from router.adapters.contract import Notification, Receipt
from router.adapters.mocks import DwpBenefits, Faults, configure_faults
from router.adapters.registry import Registry
from router.cases import FLAG_NOT_TOLD, DeliveryState, delivery_id
from router.delivery.batch import Dispatcher, Tally
from router.delivery.fanout import FanOut
from router.delivery.queues import queue_for
from router.delivery.worker import Supervisor
from router.redis_server import RedisServer
from router.service import LifeEventRouter
from router.settings import RetryPolicy
from tests.support.identities import reporter_identity
from tests.support.processes import wait_settled
from tests.support.redis_dump import mock_log
from tests.support.samples import sample, samples, submit_to_core


@pytest.mark.parametrize("name", samples())
def test_each_sample_event_is_delivered_by_real_workers(
    core: LifeEventRouter, redis: Redis, workers: Supervisor, name: str
) -> None:
    ref = submit_to_core(core, name, channel="test").ref
    case = wait_settled(redis, ref)

    assert case.deliveries, "every sample tells at least one department"
    for department, delivery in case.deliveries.items():
        if delivery.mode == "assisted":
            assert delivery.state == DeliveryState.ASSISTED
            continue
        assert delivery.state == DeliveryState.DELIVERED, (department, delivery.detail)
        assert delivery.receipt is not None
        # The department's own records changed, once, for this delivery.
        entries = [
            e for e in mock_log(redis, department) if e["delivery_id"] == f"{ref}-{department}"
        ]
        assert len(entries) == 1
        assert entries[0]["receipt"] == delivery.receipt.reference


def test_dvla_mock_really_updates_the_address_on_the_licence(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    ref = submit_to_core(core, "moving_house", channel="test").ref
    wait_settled(redis, ref)
    answers = core.case(ref).answers
    licence = redis.hgetall(f"mock:dvla:licence:{answers['driving_licence_number']}")
    assert licence[b"address"].decode() == f"{answers['address_line_1']}, {answers['town']}"
    assert licence[b"postcode"].decode() == answers["postcode"]
    assert licence[b"changes"] == b"1"


def test_no_department_ever_receives_an_undeclared_field(
    core: LifeEventRouter, redis: Redis, workers: Supervisor, registry: Registry
) -> None:
    refs = [submit_to_core(core, name, channel="test").ref for name in samples()]
    for ref in refs:
        wait_settled(redis, ref)
    seen = 0
    for adapter in registry:
        for entry in mock_log(redis, adapter.name):
            declared = set(adapter.fields_for(entry["event_type"]))
            assert set(entry["fields"]) <= declared, (adapter.name, entry["event_type"])
            seen += 1
    assert seen >= 10


def test_a_department_not_chosen_is_told_nothing(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    data = sample("moving_house")
    ref = core.submit(data["event"], data["answers"], ["dwp"]).ref
    case = wait_settled(redis, ref)
    assert list(case.deliveries) == ["dwp"]
    assert case.plan.decision("dvla").mode == "not_consented"
    for department in ("dvla", "hmrc", "council"):
        assert mock_log(redis, department) == []


def test_transient_failures_retry_until_delivered(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    configure_faults(redis, "dwp", Faults(fail_first=2))
    ref = submit_to_core(core, "new_job", channel="test").ref
    case = wait_settled(redis, ref, timeout=60)

    dwp = case.deliveries["dwp"]
    assert dwp.state == DeliveryState.DELIVERED
    assert dwp.attempts == 3
    states = [h.state for h in core.store.history(ref) if h.department == "dwp"]
    assert states.count("retrying") == 2
    assert states[-1] == "delivered"
    assert len(mock_log(redis, "dwp")) == 1
    # The other department was not held up by dwp's trouble.
    assert case.deliveries["hmrc"].state == DeliveryState.DELIVERED


def test_permanent_rejection_fails_dead_letters_flags_and_replays(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    configure_faults(redis, "hmrc", Faults(permanent_rate=1.0))
    ref = submit_to_core(core, "retiring", channel="test").ref
    case = wait_settled(redis, ref)

    hmrc = case.deliveries["hmrc"]
    assert hmrc.state == DeliveryState.FAILED
    assert hmrc.attempts == 1, "a permanent refusal is not retried"
    assert "refused" in hmrc.detail
    assert case.flagged
    assert ref in core.store.flagged()
    dead = core.store.dead_letters()
    assert list(dead) == [f"{ref}-hmrc"]
    assert dead[f"{ref}-hmrc"]["reason"] == hmrc.detail
    assert mock_log(redis, "hmrc") == []

    configure_faults(redis, "hmrc", Faults())
    core.fanout.replay(f"{ref}-hmrc")
    case = wait_settled(redis, ref)
    assert case.deliveries["hmrc"].state == DeliveryState.DELIVERED
    assert core.store.dead_letters() == {}
    assert not case.flagged
    assert len(mock_log(redis, "hmrc")) == 1


def test_exhausted_retries_end_failed_on_the_dead_letter_list(
    redis: Redis, registry: Registry, workers: Supervisor
) -> None:
    core = LifeEventRouter(
        redis, registry, RetryPolicy(max_retries=2, base_seconds=1, cap_seconds=1)
    )
    configure_faults(redis, "council", Faults(outage=True))
    ref = submit_to_core(core, "death", channel="test").ref
    case = wait_settled(redis, ref, timeout=60)

    council = case.deliveries["council"]
    assert council.state == DeliveryState.FAILED
    assert council.attempts == 3
    assert "gave up after 3 attempts" in council.detail
    assert f"{ref}-council" in core.store.dead_letters()
    assert case.flagged
    others = {n: d.state for n, d in case.deliveries.items() if n != "council"}
    assert set(others.values()) == {DeliveryState.DELIVERED}


def test_replay_refuses_a_delivery_that_did_not_fail(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    from router.exceptions import UnknownDelivery

    ref = submit_to_core(core, "birth", channel="test").ref
    wait_settled(redis, ref)
    with pytest.raises(UnknownDelivery):
        core.fanout.replay(f"{ref}-dwp")
    with pytest.raises(UnknownDelivery):
        core.fanout.replay("not-a-delivery")


def test_every_queue_anything_enqueues_on_has_a_worker(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    for name in samples():
        submit_to_core(core, name, channel="test")
    used = {key.decode().removeprefix("rq:queue:") for key in redis.smembers("rq:queues")}
    assert used
    assert used <= {queue_for(name) for name in registry.names()}
    pending = {key.decode().removeprefix(keys.pending("")) for key in redis.keys(keys.pending("*"))}
    assert pending
    assert pending <= set(registry.names())


def test_each_submission_wakes_a_department_once_however_many_deliveries_wait(
    core: LifeEventRouter, redis: Redis
) -> None:
    """Deliveries wait in the department's pending set; its queue carries only one
    wake-up (a drain job) until a worker takes it, not one job per delivery."""
    refs = [submit_to_core(core, "new_job", channel="test").ref for _ in range(5)]
    consented = sample("new_job")["consent"]
    for department in consented:
        members = {m.decode() for m in redis.zrange(keys.pending(department), 0, -1)}
        assert members == set(refs)
        assert redis.llen(f"rq:queue:{queue_for(department)}") == 1


def test_case_and_deliveries_are_written_together_or_not_at_all(
    core: LifeEventRouter, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(
        self: FanOut, pipe: object, ref: str, departments: object, **options: object
    ) -> None:
        raise ConnectionError("Redis went away mid-submission")

    monkeypatch.setattr(FanOut, "enqueue", broken)
    data = sample("birth")
    with pytest.raises(ConnectionError):
        core.submit(data["event"], data["answers"], data["consent"])
    assert redis.keys(keys.case("*")) == []
    assert redis.keys(keys.pending("*")) == []
    assert redis.keys("rq:job:*") == []


def test_case_is_stored_with_its_plan_and_history_before_the_reference_is_returned(
    core: LifeEventRouter, redis: Redis
) -> None:
    result = sample("change_of_name")
    signed_in = reporter_identity(result["event"], result["answers"])
    submission = core.submit(
        result["event"], result["answers"], result["consent"], identity=signed_in
    )
    case = core.case(submission.ref)
    assert case.deliveries["dvla"].state == DeliveryState.ASSISTED
    assert case.deliveries["dvla"].tasks == ("identity_check", "photo")
    assert case.deliveries["dwp"].state == DeliveryState.QUEUED
    assert json.loads(redis.hget(keys.case(submission.ref), "consent") or "[]") == sorted(
        result["consent"]
    )
    history = core.store.history(submission.ref)
    assert history[0].state == "received"
    assert {h.department for h in history[1:]} == set(case.deliveries)


def test_a_departments_retry_after_is_honoured(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    # The policy alone would retry after about a second; the department asks for 3.
    configure_faults(redis, "hmrc", Faults(fail_first=1, retry_after=3))
    ref = submit_to_core(core, "new_job", channel="test").ref
    case = wait_settled(redis, ref, timeout=30)
    assert case.deliveries["hmrc"].state == DeliveryState.DELIVERED
    history = [h for h in core.store.history(ref) if h.department == "hmrc"]
    retrying = next(h for h in history if h.state == "retrying")
    delivered = next(h for h in history if h.state == "delivered")
    from datetime import datetime

    waited = (
        datetime.fromisoformat(delivered.at) - datetime.fromisoformat(retrying.at)
    ).total_seconds()
    assert waited >= 2.95
    assert "next attempt in about 3s" in retrying.detail


def test_the_drain_job_run_outside_a_worker_uses_the_service_s_redis(
    core: LifeEventRouter,
    redis: Redis,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An RQ job run by hand (``rq worker``, or called directly) drains on the Redis
    REDIS_URL names, not on whatever answers on localhost:6379."""
    from router.delivery.jobs import drain

    ref = submit_to_core(core, "retiring").ref
    departments = sorted(core.case(ref).deliveries)
    monkeypatch.delenv("REDIS_SENTINELS", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        drain(departments[0])
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    for name in departments:
        assert drain(name) == "drained 1"
    assert {d.state for d in core.case(ref).deliveries.values()} == {DeliveryState.DELIVERED}


def test_a_batch_takes_the_longest_due_and_the_most_recently_due(
    redis: Redis, registry: Registry
) -> None:
    """Behind a backlog, a report made now goes in the next batch, not after the whole
    backlog; the oldest still go first, so none waits for ever. Nothing not yet due."""
    dispatcher = Dispatcher(redis, registry, concurrency=4)
    now = time.time()
    pending = keys.pending("hmrc")
    redis.zadd(pending, {f"OLD{i}": now - 1000 + i for i in range(100)})
    redis.zadd(pending, {"NEW": now - 0.01, "LATER": now + 60})
    assert dispatcher.claim("hmrc") == ["OLD0", "OLD1", "NEW", "OLD99"]
    assert redis.zscore(keys.SENDING, "NEW-hmrc") is not None
    assert redis.zscore(pending, "NEW") is None and redis.zscore(pending, "LATER") is not None
    # Fewer due than a batch: every one of them, once.
    redis.delete(pending)
    redis.zadd(pending, {"A": now - 3, "B": now - 2, "C": now - 1})
    assert dispatcher.claim("hmrc") == ["A", "B", "C"]
    assert dispatcher.claim("hmrc") == []


# --- one batch, step by step in this process (issue 19: the workers' code, where mutmut
# --- sees it run)


def _one_batch(dispatcher: Dispatcher, department: str) -> Tally:
    refs = dispatcher.claim(department)
    assert refs, f"nothing due for {department}"
    return dispatcher.process(department, refs)


def test_a_delivery_that_fails_for_now_is_put_back_for_its_retry_and_counted_by_the_breaker(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    configure_faults(redis, "dwp", Faults(outage=True))
    ref = submit_to_core(core, "birth", channel="test").ref
    before = time.time()
    assert _one_batch(Dispatcher(redis, registry), "dwp") == Tally(retrying=1)
    dwp = core.case(ref).deliveries["dwp"]
    assert (dwp.state, dwp.attempts, dwp.retries) == (DeliveryState.RETRYING, 1, 1)
    # The core's policy: 1 s for the first retry, jittered down to half.
    assert dwp.detail == "service unavailable; next attempt in about 1s"
    due = redis.zscore(keys.pending("dwp"), ref)
    assert due is not None and before + 0.5 <= due <= time.time() + 1
    assert redis.zscore(keys.SENDING, delivery_id(ref, "dwp")) is None
    assert redis.hget(keys.breaker("dwp"), "failures") == b"1"
    assert core.store.dead_letters() == {} and not core.case(ref).flagged


def test_a_delivery_out_of_retries_fails_is_dead_lettered_and_flags_its_case(
    redis: Redis, registry: Registry
) -> None:
    core = LifeEventRouter(
        redis, registry, RetryPolicy(max_retries=1, base_seconds=1, cap_seconds=1)
    )
    configure_faults(redis, "dwp", Faults(outage=True))
    ref = submit_to_core(core, "birth", channel="test").ref
    dispatcher = Dispatcher(redis, registry)
    assert _one_batch(dispatcher, "dwp") == Tally(retrying=1)
    redis.zadd(keys.pending("dwp"), {ref: 0})  # its retry due now
    assert _one_batch(dispatcher, "dwp") == Tally(failed=1)
    dwp = core.case(ref).deliveries["dwp"]
    assert (dwp.state, dwp.attempts, dwp.retries) == (DeliveryState.FAILED, 2, 1)
    assert dwp.detail == "gave up after 2 attempts: service unavailable"
    assert core.store.dead_letters()[delivery_id(ref, "dwp")]["reason"] == dwp.detail
    assert core.case(ref).flagged == FLAG_NOT_TOLD and ref in core.store.flagged()
    assert redis.zscore(keys.pending("dwp"), ref) is None
    assert redis.zscore(keys.SENDING, delivery_id(ref, "dwp")) is None
    assert redis.hget(keys.breaker("dwp"), "failures") == b"2"


def test_a_refusal_fails_at_once_and_as_an_answer_closes_the_breaker(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    configure_faults(redis, "dwp", Faults(permanent_rate=1.0))
    redis.hset(keys.breaker("dwp"), "failures", 3)  # failures in a row before it
    ref = submit_to_core(core, "birth", channel="test").ref
    assert _one_batch(Dispatcher(redis, registry), "dwp") == Tally(failed=1)
    dwp = core.case(ref).deliveries["dwp"]
    assert (dwp.state, dwp.attempts, dwp.retries) == (DeliveryState.FAILED, 1, 0)
    assert dwp.detail == "refused: record rejected by the department"
    assert list(core.store.dead_letters()) == [delivery_id(ref, "dwp")]
    assert core.case(ref).flagged == FLAG_NOT_TOLD
    assert redis.zscore(keys.pending("dwp"), ref) is None
    assert redis.zscore(keys.SENDING, delivery_id(ref, "dwp")) is None
    assert not redis.exists(keys.breaker("dwp"))


def test_an_open_breaker_pauses_the_batch_without_calling_the_department_or_using_retries(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    ref = submit_to_core(core, "birth", channel="test").ref
    redis.hset(keys.breaker("dwp"), mapping={"failures": 0, "open_until": time.time() + 30})
    assert _one_batch(Dispatcher(redis, registry), "dwp") == Tally(paused=1)
    dwp = core.case(ref).deliveries["dwp"]
    assert (dwp.state, dwp.attempts, dwp.retries) == (DeliveryState.RETRYING, 0, 0)
    assert dwp.detail.startswith("department paused after repeated failures; next attempt in")
    due = redis.zscore(keys.pending("dwp"), ref)
    # After the pause's 30 s or less left, plus up to 5 s spread.
    assert due is not None and time.time() + 29 <= due <= time.time() + 35.5
    assert redis.zscore(keys.SENDING, delivery_id(ref, "dwp")) is None
    assert mock_log(redis, "dwp") == []


def test_a_half_open_breaker_sends_one_delivery_as_the_probe_and_holds_the_rest_a_second(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    first = submit_to_core(core, "birth", channel="test").ref
    second = submit_to_core(core, "birth", channel="test").ref
    redis.hset(keys.breaker("dwp"), mapping={"failures": 0, "open_until": time.time() - 1})
    dispatcher = Dispatcher(redis, registry)
    refs = dispatcher.claim("dwp")
    assert sorted(refs) == sorted([first, second])
    assert dispatcher.process("dwp", refs) == Tally(delivered=1, paused=1)
    probe, held = refs
    assert core.case(probe).deliveries["dwp"].state == DeliveryState.DELIVERED
    waiting = core.case(held).deliveries["dwp"]
    assert (waiting.state, waiting.attempts) == (DeliveryState.RETRYING, 0)
    due = redis.zscore(keys.pending("dwp"), held)
    assert due is not None and time.time() + 0.5 <= due <= time.time() + 2.5
    assert not redis.exists(keys.breaker("dwp"), keys.breaker_probe("dwp"))  # closed
    assert [e["delivery_id"] for e in mock_log(redis, "dwp")] == [delivery_id(probe, "dwp")]


def test_a_delivery_no_adapter_here_can_send_waits_30_seconds_untouched(
    redis: Redis, registry: Registry
) -> None:
    redis.zadd(keys.pending("nobody"), {"ACDEFGHJK": 0})
    before = time.time()
    assert _one_batch(Dispatcher(redis, registry), "nobody") == Tally(skipped=1)
    due = redis.zscore(keys.pending("nobody"), "ACDEFGHJK")
    assert due is not None and before + 30 <= due <= time.time() + 30
    assert redis.zscore(keys.SENDING, "ACDEFGHJK-nobody") is None


def test_a_claimed_delivery_already_finished_or_of_no_case_is_let_go_and_not_sent_again(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    ref = submit_to_core(core, "birth", channel="test").ref
    dispatcher = Dispatcher(redis, registry)
    assert _one_batch(dispatcher, "dwp") == Tally(delivered=1)
    # Claimed again (a worker that lost its lease and recorded late), with a gone case.
    redis.zadd(keys.pending("dwp"), {ref: 0, "ACDEFGHJK": 0})
    assert _one_batch(dispatcher, "dwp") == Tally(skipped=2)
    assert not redis.exists(keys.SENDING)
    assert core.case(ref).deliveries["dwp"].attempts == 1
    assert len(mock_log(redis, "dwp")) == 1


class _SlowDwp(DwpBenefits):
    timeout = 0.2


class _BrokenDwp(DwpBenefits):
    def deliver(self, notification: Notification) -> Receipt:
        raise ValueError("a bug in the adapter")


def test_no_answer_within_the_adapters_timeout_and_an_adapter_bug_are_retried(
    core: LifeEventRouter, redis: Redis
) -> None:
    configure_faults(redis, "dwp", Faults(latency_ms=1000))
    slow = submit_to_core(core, "birth", channel="test").ref
    dispatcher = Dispatcher(redis, Registry([_SlowDwp]))
    started = time.monotonic()
    assert _one_batch(dispatcher, "dwp") == Tally(retrying=1)
    assert time.monotonic() - started < 0.9, "the batch waited for the late answer"
    dwp = core.case(slow).deliveries["dwp"]
    assert dwp.state == DeliveryState.RETRYING
    assert dwp.detail.startswith("no answer within 0.2s; next attempt in about")
    dispatcher.stop()

    broken = submit_to_core(core, "birth", channel="test").ref
    redis.zrem(keys.pending("dwp"), slow)
    assert _one_batch(Dispatcher(redis, Registry([_BrokenDwp])), "dwp") == Tally(retrying=1)
    dwp = core.case(broken).deliveries["dwp"]
    assert dwp.state == DeliveryState.RETRYING and dwp.detail.startswith("ValueError; next")


def test_a_wake_up_drains_its_department_on_one_thread_until_nothing_is_due(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    configure_faults(redis, "dwp", Faults(latency_ms=300))
    first = submit_to_core(core, "birth", channel="test").ref
    dispatcher = Dispatcher(redis, registry)
    dispatcher.wake("dwp")
    dispatcher.wake("dwp")  # one drain thread per department, however many wake-ups
    assert dispatcher.active() == ["dwp"]
    assert [t.name for t in threading.enumerate()].count("drain-dwp") == 1
    second = submit_to_core(core, "birth", channel="test").ref  # while the first is sent
    dispatcher.wake("dwp")
    deadline = time.monotonic() + 10
    while dispatcher.active():
        assert time.monotonic() < deadline, "the drain thread never ended"
        time.sleep(0.02)
    for ref in (first, second):
        assert core.case(ref).deliveries["dwp"].state == DeliveryState.DELIVERED
    assert not redis.exists(keys.wake("dwp"))  # nothing due: the next submission wakes it
    assert "drain-dwp" not in [t.name for t in threading.enumerate()]

    dispatcher.stop()
    redis.set(keys.wake("dwp"), "1")
    dispatcher.wake("dwp")  # stopping: the wake-up is handed back for another worker
    assert dispatcher.active() == [] and not redis.exists(keys.wake("dwp"))
