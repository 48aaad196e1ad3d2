"""A delivered delivery posts exactly one ledger entry, in the transaction that records
it: not on failure, once after a replay that succeeds, once when its outcome is
recorded twice (a worker whose lease ran out records after another sent it again)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from redis import Redis

from router import keys, ledger, tariff
from router.adapters.mocks import Faults, configure_faults
from router.adapters.registry import Registry
from router.cases import DeliveryState, delivery_id
from router.delivery import recovery
from router.delivery.batch import Dispatcher, Tally
from router.service import LifeEventRouter
from tests.support.identities import reporter_identity
from tests.support.samples import sample


def _month() -> str:
    return ledger.month_of(datetime.now(UTC))


def _entries(redis: Redis, entry_id: str) -> list[dict[str, object]]:
    """The ledger entries posted under ``entry_id`` in this month (HSETNX: 0 or 1)."""
    raw = redis.hget(keys.ledger(_month()), entry_id)
    return [json.loads(raw)] if raw is not None else []


def _submit(core: LifeEventRouter, event: str = "birth") -> str:
    data = sample(event)
    return core.submit(
        data["event"],
        data["answers"],
        data["consent"],
        identity=reporter_identity(data["event"], data["answers"]),
    ).ref


def test_a_delivered_delivery_posts_one_entry_its_department_owes_the_operator(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    ref = _submit(core)
    Dispatcher(redis, registry).drain_now("dwp")
    assert core.case(ref).deliveries["dwp"].state == DeliveryState.DELIVERED
    [entry] = _entries(redis, delivery_id(ref, "dwp"))
    prices = tariff.current()
    assert entry["payer"] == "department:dwp" and entry["payee"] == "operator"
    assert entry["pence"] == prices.delivery["dwp"] and entry["tariff"] == prices.version
    assert entry["case"] == ref and entry["kind"] == "delivery"


def test_a_dead_letter_replayed_until_it_succeeds_posts_exactly_one_entry(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    ref = _submit(core)
    dispatcher = Dispatcher(redis, registry)
    configure_faults(redis, "dwp", Faults(permanent_rate=1.0))
    dispatcher.drain_now("dwp")
    assert core.case(ref).deliveries["dwp"].state == DeliveryState.FAILED
    assert _entries(redis, delivery_id(ref, "dwp")) == []  # a failure costs nobody

    configure_faults(redis, "dwp", Faults(permanent_rate=1.0))
    core.fanout.replay(delivery_id(ref, "dwp"))
    dispatcher.drain_now("dwp")  # fails again: still nothing
    assert _entries(redis, delivery_id(ref, "dwp")) == []
    configure_faults(redis, "dwp", Faults())
    core.fanout.replay(delivery_id(ref, "dwp"))
    dispatcher.drain_now("dwp")
    assert core.case(ref).deliveries["dwp"].state == DeliveryState.DELIVERED
    assert len(_entries(redis, delivery_id(ref, "dwp"))) == 1
    posted = [e for e in core.ledger.entries(_month()) if e.kind == tariff.DELIVERY]
    assert [e.id for e in posted] == [delivery_id(ref, "dwp")]


def test_a_batch_recorded_twice_posts_each_entry_once(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    """Worker A sends a batch; its lease runs out before it records (a pause, a kill
    after the department answered), the sweeper puts the deliveries back, worker B
    sends them again and records them; then A records the same outcomes."""
    refs = sorted([_submit(core), _submit(core)])
    a = Dispatcher(redis, registry)
    claimed = a.claim("dwp")
    assert sorted(claimed) == refs
    todo = a._to_send("dwp", claimed, Tally())
    a._mark_sending("dwp", todo)
    adapter = registry.get("dwp")
    outcomes = a._send(adapter, "dwp", todo)
    expired = int(time.time() * 1000) - 1
    redis.zadd(keys.SENDING, {delivery_id(ref, "dwp"): expired for ref in refs})
    assert sorted(recovery.sweep(redis)) == sorted(delivery_id(r, "dwp") for r in refs)

    Dispatcher(redis, registry).drain_now("dwp")  # B sends them again and records them
    time.sleep(0.002)
    a_records = datetime.now(UTC)
    a._record("dwp", todo, outcomes, Tally())  # A records what it had sent

    for ref in refs:
        assert core.case(ref).deliveries["dwp"].state == DeliveryState.DELIVERED
        [entry] = _entries(redis, delivery_id(ref, "dwp"))
        # The first posting (B's) stands; A's is not written over it.
        assert datetime.fromisoformat(str(entry["at"])) < a_records
    dwp = core.statement(_month(), "department:dwp")
    assert [(line.kind, line.count) for line in dwp.lines] == [("delivery", 2)]


def test_posting_costs_one_redis_command_per_delivered_delivery(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    """Issue 18 counts commands per delivery: the ledger adds one HSETNX, no more."""
    refs = [_submit(core), _submit(core)]
    dispatcher = Dispatcher(redis, registry)
    todo = dispatcher._to_send("dwp", dispatcher.claim("dwp"), Tally())
    outcomes = dispatcher._send(registry.get("dwp"), "dwp", todo)
    sent: list[str] = []
    real = redis.pipeline

    def counting(*args: object, **kwargs: object) -> object:
        pipe = real(*args, **kwargs)  # type: ignore[arg-type]
        original = pipe.execute

        def execute(raise_on_error: bool = True) -> object:
            sent.extend(str(c[0][0]).upper() for c in pipe.command_stack)
            return original(raise_on_error)

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe

    redis.pipeline = counting  # type: ignore[method-assign]
    try:
        dispatcher._record("dwp", todo, outcomes, Tally())
    finally:
        redis.pipeline = real  # type: ignore[method-assign]
    assert sent.count("HSETNX") == len(refs)


def test_a_registration_the_register_answers_for_posts_one_entry_the_operator_pays(
    core: LifeEventRouter, redis: Redis
) -> None:
    data = sample("death")
    ref = core.submit(data["event"], data["answers"], data["consent"]).ref
    [entry] = _entries(redis, f"{ref}:registration_check")
    assert (entry["payer"], entry["payee"]) == ("operator", "register:gro")
    assert entry["pence"] == tariff.current().registration_check
    assert core.reconcile(_month()).balanced


def test_a_registration_confirmed_later_posts_its_entry_once(
    core: LifeEventRouter, redis: Redis
) -> None:
    data = sample("death")
    configure_faults(redis, "gro", Faults(outage=True))
    ref = core.submit(data["event"], data["answers"], data["consent"]).ref
    assert core.case(ref).verifying
    core.verify_registrations()  # asked again while it is down: nothing posted
    redis.zadd(keys.VERIFYING, {ref: 0})
    core.verify_registrations()
    assert _entries(redis, f"{ref}:registration_check") == []

    configure_faults(redis, "gro", Faults())
    redis.zadd(keys.VERIFYING, {ref: 0})
    assert core.verify_registrations() == 1
    assert core.case(ref).evidence.registration_verified
    assert len(_entries(redis, f"{ref}:registration_check")) == 1
