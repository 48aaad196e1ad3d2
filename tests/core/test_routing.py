"""Table-driven tests of the routing plan and of the adapter registry (no Redis)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import pytest

from router.adapters.contract import Adapter, RegistryError
from router.adapters.mocks import DwpBenefits
from router.adapters.registry import ENTRY_POINT_GROUP, Registry
from router.catalogue import EVENTS
from router.exceptions import ValidationFailed
from router.routing import ASSISTED_TASKS, Decision, check_consent, interested, plan
from router.trust import Evidence, Need, Proof
from tests.support.answers import ADAPTERS, BY_NAME, TODAY, valid_answers

# Which departments each life event concerns.
CONCERNED = {
    "moving_house": {"council", "dvla", "dwp", "hmrc"},
    "death": {"council", "dvla", "dwp", "hmrc", "payments"},
    "birth": {"dwp", "hmrc"},
    "new_job": {"dwp", "hmrc"},
    "retiring": {"dwp", "hmrc", "payments"},
    "change_of_name": {"council", "dvla", "dwp", "hmrc", "payments"},
}


def clean_answers(event_type: str, **changes: Any) -> dict[str, Any]:
    """Validated answers, as ``plan`` is given them."""
    return EVENTS[event_type].validate(valid_answers(event_type, **changes), today=TODAY)


def plan_for(event_type: str, consent=None, **changes: Any):
    answers = clean_answers(event_type, **changes)
    if consent is None:
        consent = CONCERNED[event_type]
    return answers, plan(event_type, answers, consent, ADAPTERS)


def assert_well_formed(event_type: str, answers: dict[str, Any], decision: Decision) -> None:
    """What holds for every decision, whatever its mode."""
    assert decision.reason.strip(), decision
    assert decision.mode in ("digital", "assisted", "not_needed", "not_consented")
    assert set(decision.tasks) <= set(ASSISTED_TASKS)
    if decision.told:
        declared = set(BY_NAME[decision.department].fields_for(event_type))
        assert set(decision.fields) <= declared, "sent a field the adapter did not declare"
        assert set(decision.fields) <= set(answers), "sent a field nobody answered"
        assert decision.fields, "told a department nothing"
    else:
        assert decision.fields == ()
        assert decision.tasks == ()
    assert (decision.mode == "assisted") == bool(decision.tasks)


# --- Who is asked, and how -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "changes", "expected"),
    [
        (
            "moving_house",
            {},
            {"council": "digital", "dvla": "digital", "dwp": "digital", "hmrc": "digital"},
        ),
        (
            "moving_house",
            {"has_driving_licence": "no"},
            {"council": "digital", "dvla": "not_needed", "dwp": "digital", "hmrc": "digital"},
        ),
        (
            "death",
            {},
            {
                "council": "digital",
                "dvla": "digital",
                "dwp": "digital",
                "hmrc": "digital",
                "payments": "digital",
            },
        ),
        (
            "death",
            {"had_driving_licence": "no"},
            {
                "council": "digital",
                "dvla": "not_needed",
                "dwp": "digital",
                "hmrc": "digital",
                "payments": "digital",
            },
        ),
        ("birth", {}, {"dwp": "digital", "hmrc": "digital"}),
        ("birth", {"claim_child_benefit": "no"}, {"dwp": "digital", "hmrc": "not_needed"}),
        ("new_job", {}, {"dwp": "digital", "hmrc": "digital"}),
        ("new_job", {"claiming_benefits": "no"}, {"dwp": "not_needed", "hmrc": "digital"}),
        ("retiring", {}, {"dwp": "digital", "hmrc": "digital", "payments": "digital"}),
        (
            "retiring",
            {"has_bank_account": "no"},
            {"dwp": "digital", "hmrc": "digital", "payments": "assisted"},
        ),
        (
            "change_of_name",
            {"driving_licence": "photocard"},
            {
                "council": "digital",
                "dvla": "assisted",
                "dwp": "digital",
                "hmrc": "digital",
                "payments": "digital",
            },
        ),
        (
            "change_of_name",
            {"driving_licence": "paper"},
            {
                "council": "digital",
                "dvla": "assisted",
                "dwp": "digital",
                "hmrc": "digital",
                "payments": "digital",
            },
        ),
        (
            "change_of_name",
            {"driving_licence": "none"},
            {
                "council": "digital",
                "dvla": "not_needed",
                "dwp": "digital",
                "hmrc": "digital",
                "payments": "digital",
            },
        ),
    ],
)
def test_modes_with_full_consent(event_type, changes, expected):
    answers, result = plan_for(event_type, **changes)
    assert result.event_type == event_type
    assert {d.department: d.mode for d in result.decisions} == expected
    assert [d.department for d in result.decisions] == sorted(expected), "stable order"
    for decision in result.decisions:
        assert_well_formed(event_type, answers, decision)
    assert {d.department for d in result.deliveries} == {
        name for name, mode in expected.items() if mode in ("digital", "assisted")
    }


@pytest.mark.parametrize(
    ("event_type", "changes", "department", "tasks"),
    [
        ("change_of_name", {"driving_licence": "photocard"}, "dvla", ("identity_check", "photo")),
        ("change_of_name", {"driving_licence": "paper"}, "dvla", ("identity_check", "photo")),
        ("change_of_name", {"driving_licence": "none"}, "dvla", ()),
        ("retiring", {"has_bank_account": "no"}, "payments", ("cash_voucher", "identity_check")),
        ("retiring", {"has_bank_account": "yes"}, "payments", ()),
        ("moving_house", {}, "dvla", ()),
    ],
)
def test_counter_tasks(event_type, changes, department, tasks):
    _, result = plan_for(event_type, **changes)
    assert result.decision(department).tasks == tasks


def test_cash_voucher_sends_no_bank_details():
    answers, result = plan_for("retiring", has_bank_account="no")
    payments = result.decision("payments")
    assert payments.mode == "assisted"
    assert "cash_voucher" in payments.tasks
    assert not {"sort_code", "account_number"} & set(payments.fields)
    assert set(payments.fields) == {"nino", "full_name", "has_bank_account"}


def test_bank_details_go_to_payments_only():
    answers, result = plan_for("retiring")
    assert set(result.decision("payments").fields) == {
        "nino",
        "full_name",
        "has_bank_account",
        "sort_code",
        "account_number",
    }
    for name in ("dwp", "hmrc"):
        assert not {"sort_code", "account_number"} & set(result.decision(name).fields)


def test_licence_number_goes_to_dvla_only():
    answers, result = plan_for("moving_house")
    assert "driving_licence_number" in result.decision("dvla").fields
    for d in result.decisions:
        if d.department != "dvla":
            assert "driving_licence_number" not in d.fields


def test_not_needed_department_gets_no_fields():
    answers, result = plan_for("change_of_name", driving_licence="none")
    dvla = result.decision("dvla")
    assert dvla.mode == "not_needed"
    assert dvla.fields == () and not dvla.told
    assert "dvla" not in {d.department for d in result.deliveries}


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_fields_told_are_what_was_declared_and_answered(event_type):
    answers, result = plan_for(event_type)
    for decision in result.deliveries:
        declared = BY_NAME[decision.department].fields_for(event_type)
        assert decision.fields == tuple(f for f in declared if f in answers)


def test_optional_field_left_out_is_not_sent():
    answers, result = plan_for("new_job", employer_paye_reference="")
    assert "employer_paye_reference" not in result.decision("hmrc").fields
    _, result = plan_for("new_job")
    assert "employer_paye_reference" in result.decision("hmrc").fields


# --- Consent -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "department"),
    [(e, d) for e in sorted(CONCERNED) for d in sorted(CONCERNED[e])],
)
def test_department_not_in_consent_is_not_told(event_type, department):
    consent = CONCERNED[event_type] - {department}
    answers, result = plan_for(event_type, consent=consent)
    decision = result.decision(department)
    assert decision.mode == "not_consented"
    assert decision.fields == () and decision.tasks == ()
    assert decision.reason.strip()
    assert department not in {d.department for d in result.deliveries}
    # Everyone else is decided as with full consent.
    _, full = plan_for(event_type)
    for other in consent:
        assert result.decision(other) == full.decision(other)


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_every_department_decided_once(event_type):
    answers, result = plan_for(event_type, consent={"dwp"})
    names = [d.department for d in result.decisions]
    assert sorted(names) == sorted(CONCERNED[event_type])
    assert len(names) == len(set(names))
    for decision in result.decisions:
        assert_well_formed(event_type, answers, decision)


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_interested_departments(event_type):
    assert {a.name for a in interested(event_type, ADAPTERS)} == CONCERNED[event_type]


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_consent_to_concerned_departments_accepted(event_type):
    check_consent(event_type, sorted(CONCERNED[event_type]), ADAPTERS)
    for name in CONCERNED[event_type]:
        check_consent(event_type, [name], ADAPTERS)


@pytest.mark.parametrize(
    ("event_type", "consent", "message"),
    [
        ("birth", [], "Select at least one organisation to tell"),
        ("death", (), "Select at least one organisation to tell"),
        ("birth", ["dvla"], "Select only organisations from the list for this life event"),
        ("birth", ["dwp", "dvla"], "Select only organisations from the list for this life event"),
        ("new_job", ["council"], "Select only organisations from the list for this life event"),
        (
            "moving_house",
            ["payments"],
            "Select only organisations from the list for this life event",
        ),
        ("death", ["DWP"], "Select only organisations from the list for this life event"),
        ("death", ["nobody"], "Select only organisations from the list for this life event"),
    ],
)
def test_check_consent_refuses(event_type, consent, message):
    with pytest.raises(ValidationFailed) as info:
        check_consent(event_type, consent, ADAPTERS)
    assert info.value.errors == {"consent": message}


def test_plan_refuses_an_unknown_counter_task():
    class Odd(Adapter):
        name = "odd"
        title = "Odd"
        fields: ClassVar = {"birth": ("child_full_name",)}
        needs: ClassVar = {"birth": Need()}

        @classmethod
        def route(cls, event_type, answers):
            from router.adapters.contract import Route

            return Route("assisted", "Go somewhere", ("dance",))

    with pytest.raises(ValueError, match="unknown tasks"):
        plan("birth", clean_answers("birth"), ["odd"], [Odd])


def test_decision_round_trips_through_a_dict():
    _, result = plan_for("change_of_name", driving_licence="photocard")
    for decision in result.decisions:
        assert Decision.from_dict(decision.to_dict()) == decision


def test_a_decision_as_a_dict_has_every_field_as_asdict_gives_it():
    _, result = plan_for("change_of_name", driving_licence="photocard")
    for decision in result.decisions:
        # The need is written as its code ("P2", "P0+registration"), as declared.
        expected = {**dataclasses.asdict(decision), "need": decision.need.code}
        assert decision.to_dict() == expected


# --- Registry ---------------------------------------------------------------------------


def _adapter(name: str = "newdept", **attrs: Any) -> type[Adapter]:
    namespace: dict[str, Any] = {"name": name, "title": "New department", **attrs}
    namespace.setdefault("fields", {"birth": ("child_full_name",)})
    namespace.setdefault("needs", {event: Need() for event in namespace["fields"]})
    return type("NewDept", (Adapter,), namespace)


def test_registry_accepts_a_good_adapter():
    registry = Registry([_adapter()])
    assert registry.names() == ["newdept"]
    assert "newdept" in registry
    assert len(registry) == 1
    assert [a.name for a in interested("birth", registry)] == ["newdept"]
    assert interested("death", registry) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"birth": ("child_full_name", "favourite_colour")},
        {"birth": ("nino",)},  # a field of other events, not of birth
        {"moving_house": ("full_name",), "birth": ("deceased_nino",)},
    ],
)
def test_registry_refuses_a_field_the_event_does_not_have(fields):
    with pytest.raises(RegistryError, match="has no fields"):
        Registry([_adapter(fields=fields)])


def test_registry_refuses_an_unknown_event():
    with pytest.raises(RegistryError, match="unknown event type"):
        Registry([_adapter(fields={"wedding": ("full_name",)})])


@pytest.mark.parametrize(
    "name", ["", "D", "DWP", "1dept", "dept-name", "dept name", "a" * 32, "_dept", None, 7]
)
def test_registry_refuses_a_bad_name(name):
    with pytest.raises(RegistryError):
        Registry([_adapter(name=name)])


@pytest.mark.parametrize("attrs", [{"title": ""}, {"fields": {}}])
def test_registry_refuses_missing_declarations(attrs):
    with pytest.raises(RegistryError):
        Registry([_adapter(**attrs)])


def test_registry_refuses_two_adapters_with_one_name():
    registry = Registry([DwpBenefits])
    registry.register(DwpBenefits)  # the same class again is harmless
    with pytest.raises(RegistryError, match="two adapters"):
        registry.register(_adapter(name="dwp"))
    assert registry.get("dwp") is DwpBenefits


def test_registry_get_unknown_name():
    with pytest.raises(RegistryError):
        Registry(ADAPTERS).get("dvsa")


def test_every_mock_adapter_keeps_the_contract():
    registry = Registry(ADAPTERS)
    assert registry.names() == ["council", "dvla", "dwp", "hmrc", "payments"]
    for event_type, concerned in CONCERNED.items():
        assert {a.name for a in interested(event_type, registry)} == concerned


def test_discover_finds_the_installed_entry_points(monkeypatch):
    from importlib.metadata import entry_points

    monkeypatch.delenv("ROUTER_ADAPTERS", raising=False)
    assert {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)} >= set(BY_NAME)
    registry = Registry.discover()
    assert registry.names() == ["council", "dvla", "dwp", "hmrc", "payments"]
    for name, cls in BY_NAME.items():
        assert registry.get(name) is cls


def test_discover_with_router_adapters_set(monkeypatch):
    monkeypatch.setenv("ROUTER_ADAPTERS", "router.adapters.mocks:DwpBenefits")
    registry = Registry.discover()
    assert registry.names() == ["dwp"]
    assert registry.get("dwp") is DwpBenefits


def test_discover_with_several_router_adapters(monkeypatch):
    monkeypatch.setenv(
        "ROUTER_ADAPTERS", " router.adapters.mocks:HmrcTax , router.adapters.mocks:DwpBenefits,"
    )
    assert Registry.discover().names() == ["dwp", "hmrc"]


@pytest.mark.parametrize(
    "spec", ["router.adapters.mocks", "router.adapters.mocks:Faults", "router.routing:plan"]
)
def test_discover_refuses_a_bad_spec(monkeypatch, spec):
    monkeypatch.setenv("ROUTER_ADAPTERS", spec)
    with pytest.raises(RegistryError):
        Registry.discover()


# --- mutation survivors (issue 19) ----------------------------------------------------------


def test_a_decision_not_consented_says_the_citizen_chose_it():
    _, result = plan_for("birth", consent={"hmrc"})
    assert result.decision("dwp").reason == "You chose not to tell them"


@pytest.mark.parametrize("event_type", sorted(CONCERNED))
def test_a_told_decision_carries_what_its_department_needs(event_type):
    _, result = plan_for(event_type)
    for decision in result.deliveries:
        assert decision.need == BY_NAME[decision.department].need_for(event_type)


def test_a_decision_stored_without_fields_tasks_or_need_reads_back_with_none():
    stored = {"department": "dwp", "mode": "digital", "reason": "r"}
    assert Decision.from_dict(stored) == Decision("dwp", "digital", "r", (), (), Need())


def test_a_decision_says_what_its_delivery_still_waits_for():
    decision = Decision("dwp", "digital", "r", need=Need.from_code("P0+registration"))
    assert decision.missing(Evidence()) == ("registration",)
    assert decision.missing(Evidence((Proof.vouched("gro"),))) == ()


def test_a_plan_names_the_department_it_has_no_decision_for():
    _, result = plan_for("birth")
    with pytest.raises(KeyError) as raised:
        result.decision("dvla")
    assert raised.value.args == ("dvla",)
