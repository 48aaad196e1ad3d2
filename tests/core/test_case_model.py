"""What a Case says about itself, with no Redis: which counter tasks still wait,
whether it waits at a counter at all, its stored help flag, its delivery ids; and a
routing plan's decision for one department, by its exact name."""

from __future__ import annotations

import pytest

from router import reference
from router.cases import (
    Case,
    Delivery,
    DeliveryState,
    delivery_id,
    parse,
    split_delivery_id,
)
from router.exceptions import UnknownDelivery
from router.routing import Decision, RoutingPlan

DVLA_TASKS = ("identity_check", "photo")


def case(*, help_requested: bool = False, tasks_done: dict | None = None, state=None) -> Case:
    decision = Decision("dvla", "assisted", "a photo is needed", ("full_name",), DVLA_TASKS)
    made = Case(
        ref=reference.new_reference(),
        event_type="change_of_name",
        answers={"full_name": "Emily D'Souza"},
        consent=["dvla"],
        plan=RoutingPlan("change_of_name", (decision,)),
        channel="web",
        created_at="2026-12-01T10:00:00.000+00:00",
        secret_hash="",
        help_requested=help_requested,
        tasks_done=tasks_done or {},
    )
    made.deliveries["dvla"] = Delivery(
        "dvla",
        state or DeliveryState.ASSISTED,
        "assisted",
        decision.reason,
        decision.fields,
        DVLA_TASKS,
    )
    return made


def test_counter_tasks_leave_out_those_already_done() -> None:
    assert case().counter_tasks == ["identity_check", "photo"]
    assert case(tasks_done={"identity_check": {"by": "clerk"}}).counter_tasks == ["photo"]


def test_a_case_leaves_the_counter_when_help_was_given_and_nothing_else_waits() -> None:
    done = case(
        help_requested=True, tasks_done={"help": {"by": "clerk"}}, state=DeliveryState.QUEUED
    )
    assert not done.at_counter
    assert case(help_requested=True, state=DeliveryState.QUEUED).at_counter
    assert case(state=DeliveryState.ASSISTED).at_counter
    assert not case(state=DeliveryState.DELIVERED).at_counter


@pytest.mark.parametrize(("stored", "asked"), [("yes", True), ("no", False), (None, False)])
def test_the_stored_help_flag_reads_back_as_it_was_given(stored: str | None, asked: bool) -> None:
    made = case()
    raw = {
        "event_type": made.event_type,
        "consent": '["dvla"]',
        "plan": '[{"department":"dvla","mode":"assisted","reason":"r","tasks":["photo"]}]',
        "channel": "web",
        "created_at": made.created_at,
        "secret_hash": "",
        "d:dvla:state": "assisted",
    }
    if stored is not None:
        raw["help"] = stored
    assert parse(made.ref, raw).help_requested is asked


def test_a_delivery_id_splits_back_only_with_a_valid_reference() -> None:
    ref = reference.new_reference()
    assert split_delivery_id(delivery_id(ref, "dwp")) == (ref, "dwp")
    wrong = next(c for c in reference.ALPHABET if c != ref[-1])
    for malformed in (
        f"{ref[:-1]}{wrong}-dwp",
        f"{ref.lower()}-dwp",
        "NOTAREF-dwp",
        f"{ref}-",
        ref,
    ):
        with pytest.raises(UnknownDelivery):
            split_delivery_id(malformed)


def test_a_plan_gives_the_decision_of_exactly_the_department_named() -> None:
    plan = RoutingPlan(
        "birth",
        (
            Decision("dwp_scotland", "digital", "a"),
            Decision("dwp", "not_consented", "b"),
        ),
    )
    assert plan.decision("dwp").reason == "b"
    assert plan.decision("dwp_scotland").reason == "a"
    with pytest.raises(KeyError):
        plan.decision("dw")
