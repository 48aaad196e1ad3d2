"""Storing a new case: one atomic write, a fresh reference on a collision, the
submission key's claim stored with its case."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from redis import Redis

from router import cases, keys, reference, routing, sealing
from router.adapters.contract import Receipt
from router.cases import DeliveryState, Marked, answer_context
from router.delivery.queues import queue_for
from router.service import LifeEventRouter
from tests.support.identities import reporter_identity
from tests.support.samples import sample, submit_to_core


def _drawn(monkeypatch: pytest.MonkeyPatch, *refs: str) -> list[str]:
    """Make reference.new_reference draw ``refs`` first, then fresh ones; return the
    list of references drawn."""
    queued = list(refs)
    drawn: list[str] = []
    fresh = reference.new_reference

    def draw() -> str:
        ref = queued.pop(0) if queued else fresh()
        drawn.append(ref)
        return ref

    monkeypatch.setattr(reference, "new_reference", draw)
    return drawn


def _pending(redis: Redis, department: str) -> set[str]:
    return {m.decode() for m in redis.zrange(keys.pending(department), 0, -1)}


@pytest.fixture
def stored(core: LifeEventRouter) -> Iterator[str]:
    data = sample("birth")
    yield core.submit(data["event"], data["answers"], data["consent"]).ref


def test_a_reference_collision_draws_another_and_leaves_the_first_case_alone(
    core: LifeEventRouter, redis: Redis, monkeypatch: pytest.MonkeyPatch, stored: str
) -> None:
    before = redis.hgetall(keys.case(stored))
    history = redis.lrange(keys.history(stored), 0, -1)
    departments = core.adapters.names()
    pending = {d: _pending(redis, d) for d in departments}
    drawn = _drawn(monkeypatch, stored)
    data = sample("death")

    result = core.submit(data["event"], data["answers"], data["consent"])

    assert drawn[0] == stored and result.ref == drawn[1] != stored
    assert redis.hgetall(keys.case(stored)) == before
    assert redis.lrange(keys.history(stored), 0, -1) == history
    case = core.case(result.ref)
    assert case.event_type == "death"
    queued = {
        d for d, delivery in case.deliveries.items() if delivery.state == DeliveryState.QUEUED
    }
    assert queued
    for department in departments:
        # The new case's deliveries wait under its own reference; the first's are as
        # they were.
        now = _pending(redis, department)
        assert now - {result.ref} == pending[department]
        assert (result.ref in now) == (department in queued)


def test_a_collision_with_a_submission_key_claims_the_key_for_the_new_reference(
    core: LifeEventRouter, redis: Redis, monkeypatch: pytest.MonkeyPatch, stored: str
) -> None:
    _drawn(monkeypatch, stored)
    data = sample("death")

    first = core.submit(data["event"], data["answers"], data["consent"], submission_key="k-1")
    again = core.submit(data["event"], data["answers"], data["consent"], submission_key="k-1")

    assert first.created and first.ref != stored
    assert redis.get(keys.submission("k-1")) == first.ref.encode()
    assert (again.ref, again.created, again.secret) == (first.ref, False, "")


def test_a_wake_key_already_set_keeps_the_other_departments_replies_in_place(
    core: LifeEventRouter, redis: Redis
) -> None:
    """A SET NX that finds its wake key answers nil; the replies after it must keep
    their places, or the departments after it are never woken."""
    data = sample("death")
    held = sorted(data["consent"])[0]
    redis.set(keys.wake(held), "1", px=60_000)

    core.submit(data["event"], data["answers"], data["consent"])

    for department in data["consent"]:
        jobs = redis.llen(f"rq:queue:{queue_for(department)}")
        assert jobs == (0 if department == held else 1), department


def test_replies_are_given_as_a_pipeline_would_give_them(
    core: LifeEventRouter, redis: Redis
) -> None:
    data = sample("birth")
    event, clean, chosen = core.validate(data["event"], data["answers"], data["consent"])
    redis.set(keys.wake("hmrc"), "1", px=60_000)

    def also(pipe: object, ref: str) -> None:
        core.fanout.enqueue(pipe, ref, ["dwp", "hmrc"], wake=True)  # type: ignore[arg-type]

    stored = core.store.create(
        event.name,
        clean,
        chosen,
        routing.plan(event.name, clean, chosen, core.adapters),
        "test",
        also=also,
    )
    # Per department ZADD (1 added) and SET NX: True when it set the wake key, None
    # when it was already set.
    assert stored.replies == [1, True, 1, None]


def test_a_claim_held_without_its_case_is_waited_for(
    core: LifeEventRouter, redis: Redis, stored: str
) -> None:
    """A twin that claimed the key but has not stored its case yet: wait, then answer
    with its reference."""
    twin = reference.new_reference()
    redis.set(keys.submission("k-2"), twin)  # a reference with no case, yet

    def store_it() -> None:
        time.sleep(0.3)
        redis.copy(keys.case(stored), keys.case(twin))

    writer = threading.Thread(target=store_it)
    writer.start()
    data = sample("birth")
    try:
        result = core.submit(data["event"], data["answers"], data["consent"], submission_key="k-2")
    finally:
        writer.join()
    assert (result.ref, result.created, result.secret) == (twin, False, "")


def test_a_claim_freed_by_a_failed_twin_is_taken_after_all(
    core: LifeEventRouter, redis: Redis
) -> None:
    # A twin that will fail and free the key.
    redis.set(
        keys.submission("k-3"), reference.new_reference()
    )  # a twin that will fail and free the key

    def fail_it() -> None:
        time.sleep(0.3)
        redis.delete(keys.submission("k-3"))

    twin = threading.Thread(target=fail_it)
    twin.start()
    data = sample("birth")
    try:
        result = core.submit(data["event"], data["answers"], data["consent"], submission_key="k-3")
    finally:
        twin.join()
    assert result.created
    assert redis.get(keys.submission("k-3")) == result.ref.encode()
    assert core.case(result.ref).event_type == "birth"
    assert _pending(redis, "dwp") == {result.ref}


def test_answers_in_any_script_are_stored_byte_for_byte(
    core: LifeEventRouter, redis: Redis
) -> None:
    """The writes reach Redis as one JSON argument: accents, curly quotes, characters
    beyond the Basic Multilingual Plane, quotes and backslashes come back unchanged."""
    data = sample("moving_house")
    data["answers"]["full_name"] = "Siân Ó Súilleabháin-Zoë"
    data["answers"]["address_line_1"] = '🏠 Tŷ "Newydd" \\ 14 Heol y Castell'
    event, clean, chosen = core.validate(data["event"], data["answers"], data["consent"])

    signed_in = reporter_identity(data["event"], data["answers"])
    ref = core.submit(data["event"], data["answers"], data["consent"], identity=signed_in).ref

    assert core.case(ref).answers == clean
    stored = redis.hget(keys.case(ref), keys.answer_field("address_line_1"))
    assert isinstance(stored, bytes) and sealing.is_sealed(stored)
    opened = core.store.ring.open(stored, answer_context(ref, "address_line_1"))
    assert opened.decode() == '"🏠 Tŷ \\"Newydd\\" \\\\ 14 Heol y Castell"'
    due = redis.zscore(keys.pending("dwp"), ref)
    assert due is not None and abs(due - time.time()) < 60


def test_a_case_flagged_on_its_own_is_flagged_and_unflagged_at_once(
    core: LifeEventRouter, stored: str
) -> None:
    # flag and unflag without a pipeline of the caller's: each writes straight away.
    core.store.flag(stored, "the citizen asked for help")
    assert core.store.flagged() == [stored]
    assert core.case(stored).flagged == "the citizen asked for help"
    core.store.unflag(stored)
    assert core.store.flagged() == []
    assert not core.case(stored).flagged


def test_a_drain_loads_only_its_own_delivery_and_the_same_answers(
    core: LifeEventRouter, redis: Redis
) -> None:
    """A department's drain reads a lean case (CaseStore.load_for_delivery): the same delivery,
    answers, event, time and retry policy as the whole case, and nobody else's
    delivery, so a batch cannot act on another department's state by mistake."""
    data = sample("death")
    ref = core.submit(data["event"], data["answers"], data["consent"]).ref
    store = core.store
    whole = store.load(ref)
    told = [d for d, delivery in whole.deliveries.items() if delivery.fields]
    assert len(told) >= 2, "the sample should tell two departments at least"
    store.mark(ref, told[0], DeliveryState.RETRYING, "busy", extra={"retries": 2, "attempts": 3})
    whole = store.load(ref)
    for department in told:
        (lean,) = store.load_for_delivery([ref], department)
        assert lean is not None
        assert list(lean.deliveries) == [department]
        assert lean.deliveries[department] == whole.deliveries[department]
        assert [d.department for d in lean.plan.decisions] == [department]
        assert (lean.event_type, lean.created_at, lean.retry, lean.lang) == (
            whole.event_type,
            whole.created_at,
            whole.retry,
            whole.lang,
        )
        assert store.notification(lean, department, 4) == store.notification(whole, department, 4)
    assert store.load_for_delivery(["BCDFGHJKL"], told[0]) == [None]


def test_a_drain_reads_a_case_stored_before_answers_were_sealed(
    core: LifeEventRouter, redis: Redis
) -> None:
    """A case from before sealing keeps its answers in one plain JSON field: the lean
    load reads them as the whole load does."""
    import json

    data = sample("moving_house")
    ref = core.submit(data["event"], data["answers"], data["consent"]).ref
    whole = core.store.load(ref)
    plain = {name: whole.answers[name] for name in whole.answers}
    stored = [k for k in redis.hkeys(keys.case(ref)) if k.startswith(keys.ANSWER_PREFIX.encode())]
    redis.hdel(keys.case(ref), *stored)
    redis.hset(keys.case(ref), "answers", json.dumps(plain))
    whole = core.store.load(ref)
    for department, delivery in whole.deliveries.items():
        if not delivery.fields:
            continue
        (lean,) = core.store.load_for_delivery([ref], department)
        assert lean is not None
        told = core.store.notification(lean, department)
        assert told == core.store.notification(whole, department)
        assert told.fields and set(told.fields) <= set(plain)


@pytest.mark.parametrize(
    ("state", "marked", "sent"),
    [
        pytest.param(
            DeliveryState.SENDING,
            lambda n: Marked("", extra={"attempts": n + 1}),
            True,
            id="sending",
        ),
        pytest.param(
            DeliveryState.DELIVERED,
            lambda n: Marked("", f"told {n}", Receipt(f"R{n}", f"told {n}")),
            False,
            id="delivered",
        ),
        pytest.param(
            DeliveryState.RETRYING,
            lambda n: Marked("", f"busy {n}", extra={"retries": n}),
            False,
            id="retrying",
        ),
    ],
)
def test_marking_a_batch_writes_what_marking_each_delivery_writes(
    core: LifeEventRouter,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
    state: DeliveryState,
    marked: Callable[[int], Marked],
    sent: bool,
) -> None:
    """CaseStore.mark_many (the drain's one script call per batch) against CaseStore.mark
    of each delivery: the same delivery fields, the same history entry, and the reporter's
    message schedule touched for a final state only, and only for a case listed there."""
    monkeypatch.setattr(cases, "now_iso", lambda: "2026-12-07T10:00:00.000+00:00")
    # Six reports of moving house (six deaths of one person would be joined as one).
    one_by_one = [submit_to_core(core, "moving_house").ref for _ in range(3)]
    batched = [submit_to_core(core, "moving_house").ref for _ in range(3)]
    department = next(d for d, x in core.case(one_by_one[0]).deliveries.items() if x.fields)
    for ref in one_by_one + batched:
        assert core.case(ref).deliveries[department].state == DeliveryState.QUEUED
    listed = {one_by_one[0]: 1.0, batched[0]: 1.0}  # only these have a message schedule
    redis.zadd(keys.NOTICES, listed)
    for n, ref in enumerate(one_by_one):
        m = marked(n)
        core.store.mark(
            ref, department, state, m.detail, receipt=m.receipt, sent=sent, extra=m.extra
        )
    core.store.mark_many(
        department,
        state,
        [dataclasses.replace(marked(n), ref=ref) for n, ref in enumerate(batched)],
        sent=sent,
    )

    def written(ref: str) -> tuple[dict[bytes, bytes], bytes, float | None]:
        prefix = keys.delivery_field(department, "").encode()
        fields = {k: v for k, v in redis.hgetall(keys.case(ref)).items() if k.startswith(prefix)}
        return fields, redis.lindex(keys.history(ref), -1), redis.zscore(keys.NOTICES, ref)

    for alone, together in zip(one_by_one, batched, strict=True):
        (fields, entry, score), (fields_b, entry_b, score_b) = written(alone), written(together)
        assert fields == fields_b and entry == entry_b
        assert json.loads(entry)["state"] == str(state)
        if alone in listed:
            assert (score == 1.0) == (score_b == 1.0) == (state not in cases.FINAL_STATES)
        else:
            assert score is None and score_b is None
    for ref in one_by_one + batched:
        assert core.store.load(ref).deliveries[department].state == state


def test_a_batch_whose_deliveries_write_different_attributes_is_refused(
    core: LifeEventRouter,
) -> None:
    refs = [submit_to_core(core, "moving_house").ref for _ in range(2)]
    with pytest.raises(ValueError, match="the same attributes"):
        core.store.mark_many(
            "dwp",
            DeliveryState.RETRYING,
            [Marked(refs[0], extra={"retries": 1}), Marked(refs[1])],
        )
    core.store.mark_many("dwp", DeliveryState.RETRYING, [])  # nothing to write


def test_several_cases_load_in_order_with_none_for_a_reference_with_no_case(
    core: LifeEventRouter,
) -> None:
    """CaseStore.load_many (the caseworkers' queue): each case as load gives it, in the
    order asked, and None where there is no case."""
    first, second = (submit_to_core(core, "moving_house").ref for _ in range(2))
    core.store.flag(second, "the citizen asked for help")

    loaded = core.store.load_many([second, "BCDFGHJKL", first])

    assert [c.ref if c else None for c in loaded] == [second, None, first]
    assert loaded[0] is not None and loaded[2] is not None
    assert loaded[0].flagged == "the citizen asked for help" and not loaded[2].flagged
    for case in (loaded[0], loaded[2]):
        whole = core.store.load(case.ref)
        assert (case.deliveries, case.created_at, case.plan) == (
            whole.deliveries,
            whole.created_at,
            whole.plan,
        )
        assert case.answers["nino"] == whole.answers["nino"]
    assert core.store.load_many([]) == []
