"""A delivery repeated with the same idempotency key changes a department's records once."""

from __future__ import annotations

import time

from redis import Redis

from router import keys
from router.adapters.registry import Registry
from router.cases import DeliveryState
from router.delivery.fanout import FanOut
from router.delivery.worker import Supervisor
from router.service import LifeEventRouter
from tests.support.identities import reporter_identity
from tests.support.processes import wait_settled
from tests.support.redis_dump import mock_log
from tests.support.samples import sample


def test_the_same_notification_twice_returns_the_first_receipt_and_changes_nothing(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    data = sample("moving_house")
    ref = core.submit(data["event"], data["answers"], data["consent"]).ref
    case = core.case(ref)
    adapter = registry.create("dvla", redis)
    notification = core.store.notification(case, "dvla")

    first = adapter.deliver(notification)
    record_key = f"mock:dvla:licence:{case.answers['driving_licence_number']}"
    after_first = redis.hgetall(record_key)
    second = adapter.deliver(notification)

    assert second == first
    assert redis.hgetall(record_key) == after_first
    assert after_first[b"changes"] == b"1"
    assert len(mock_log(redis, "dvla")) == 1


def test_a_crash_after_the_department_applied_it_does_not_apply_it_twice(
    core: LifeEventRouter, redis: Redis, registry: Registry, workers: Supervisor
) -> None:
    """The department took the change, then the router died before recording it:
    the job runs again and gets the department's first receipt back."""
    data = sample("death")
    workers.stop()  # hold the jobs in their queues
    ref = core.submit(data["event"], data["answers"], data["consent"]).ref
    case = core.case(ref)
    applied = registry.create("dwp", redis).deliver(core.store.notification(case, "dwp"))
    assert core.case(ref).deliveries["dwp"].state == DeliveryState.QUEUED

    workers.start()
    case = wait_settled(redis, ref)
    assert case.deliveries["dwp"].state == DeliveryState.DELIVERED
    assert case.deliveries["dwp"].receipt == applied
    assert len(mock_log(redis, "dwp")) == 1
    claimant = redis.hgetall(f"mock:dwp:claimant:{case.answers['deceased_nino']}")
    assert claimant[b"changes"] == b"1"


def test_a_delivery_run_again_after_delivery_changes_nothing(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    data = sample("new_job")
    signed_in = reporter_identity(data["event"], data["answers"])
    ref = core.submit(data["event"], data["answers"], data["consent"], identity=signed_in).ref
    wait_settled(redis, ref)
    # Put the same delivery back in its pending set and wake it, as a re-send after a
    # lost acknowledgement would.
    with redis.pipeline(transaction=True) as pipe:
        pipe.multi()
        core.fanout.enqueue(pipe, ref, ["hmrc"])
        pipe.execute()
    core.fanout.wake(["hmrc"])
    before = core.case(ref).deliveries["hmrc"]
    deadline = time.monotonic() + 10
    while (
        redis.zcard(keys.pending("hmrc")) or redis.zcard(keys.SENDING)
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis.zcard(keys.pending("hmrc")) == 0
    assert redis.zcard(keys.SENDING) == 0
    after = core.case(ref).deliveries["hmrc"]
    assert after.attempts == before.attempts
    assert after.receipt == before.receipt
    assert after.state == DeliveryState.DELIVERED
    assert len(mock_log(redis, "hmrc")) == 1


def test_the_same_submission_key_makes_one_case(core: LifeEventRouter, redis: Redis) -> None:
    data = sample("birth")
    first = core.submit(data["event"], data["answers"], data["consent"], submission_key="abc-123")
    again = core.submit(data["event"], data["answers"], data["consent"], submission_key="abc-123")
    assert first.created and not again.created
    assert again.ref == first.ref
    assert again.secret == ""
    assert len([k for k in redis.keys(keys.case("*")) if k.count(b":") == 1]) == 1
    assert [m.decode() for m in redis.zrange(keys.pending("dwp"), 0, -1)] == [first.ref]


def test_fanout_enqueue_keeps_one_pending_entry_per_delivery(
    core: LifeEventRouter, redis: Redis
) -> None:
    """A delivery's place in its department's pending set is keyed by its case: putting
    it there again (a replay, a re-send) never makes two."""
    data = sample("death")
    ref = core.submit(data["event"], data["answers"], data["consent"]).ref
    for department in data["consent"]:
        assert [m.decode() for m in redis.zrange(keys.pending(department), 0, -1)] == [ref]
    with redis.pipeline(transaction=True) as pipe:
        pipe.multi()
        core.fanout.enqueue(pipe, ref, data["consent"])
        pipe.execute()
    for department in data["consent"]:
        assert redis.zcard(keys.pending(department)) == 1
    assert isinstance(core.fanout, FanOut)
