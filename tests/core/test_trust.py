"""Trust: a delivery is released if and only if its department's declared need is met by
the case's evidence; evidence arriving later releases what waited for it exactly once;
identities that are not the reporter's earn nothing; the reporter and their relation
are recorded."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis

from router import keys
from router.adapters import mock_gro
from router.adapters.mock_gro import MockGro
from router.adapters.mocks import DwpBenefits, Faults, configure_faults
from router.cases import DeliveryState
from router.exceptions import ValidationFailed
from router.service import LifeEventRouter
from router.trust import Confidence, Evidence, Identity, Need, Proof, same_name_key
from tests.support.counter import HOME, PASSWORD
from tests.support.identities import reporter_identity
from tests.support.samples import answers_for, sample, samples

# --- the pure model -------------------------------------------------------------------


def test_confidence_reads_one_login_vectors_of_trust() -> None:
    assert Confidence.parse("P2") is Confidence.P2
    assert Confidence.parse("P2.Cl.Cm") is Confidence.P2
    assert Confidence.parse("Cl.Cm") is Confidence.P0
    assert Confidence.parse(None) is Confidence.P0
    assert Confidence.P0 < Confidence.P1 < Confidence.P2


@pytest.mark.parametrize("code", ["P0", "P1", "P2", "P0+registration", "P2+registration"])
def test_a_need_round_trips_through_its_code(code: str) -> None:
    assert Need.from_code(code).code == code


@pytest.mark.parametrize("code", ["", "P3", "p2", "P2+identity", "registration"])
def test_a_need_that_is_not_one_says_how_to_write_it(code: str) -> None:
    with pytest.raises(ValueError, match="write P0, P1 or P2"):
        Need.from_code(code)


def test_evidence_takes_the_highest_identity_and_any_registration() -> None:
    evidence = Evidence()
    assert evidence.confidence is Confidence.P0 and not evidence.registration_verified
    evidence = evidence.with_proof(Proof.signed_in("https://idp", Confidence.P1))
    evidence = evidence.with_proof(Proof.counter_check(HOME, "passport"))
    evidence = evidence.with_proof(Proof.signed_in("https://idp", Confidence.P0))
    assert evidence.confidence is Confidence.P2
    assert not evidence.registration_verified
    assert evidence.with_proof(Proof.vouched("registrar")).registration_verified
    assert Evidence.from_list(evidence.to_list()) == evidence


def test_an_identity_matches_only_its_own_name_and_date_of_birth() -> None:
    me = Identity("https://idp", "sub-1", Confidence.P2, "Siân  O'Brien-Évans", "1984-07-12")
    assert me.matches(["siân o'brien-évans"], "1984-07-12")
    assert me.matches(["Someone Else", "Siân O'Brien-Évans"], "1984-07-12")
    assert not me.matches(["Siân O'Brien-Évans"], "1984-07-13")
    assert not me.matches(["Sian O'Brien-Evans"], "1984-07-12")  # another name
    assert not me.matches([], "1984-07-12")
    # Composed and decomposed accents are the same name.
    assert same_name_key("Sia\u0302n") == same_name_key("Siân")
    assert "Siân" not in repr(me) and "1984" not in repr(me)


# --- every delivery is released iff its need is met ------------------------------------------

PROOFS = {
    "P0 sign-in": Proof.signed_in("https://idp", Confidence.P0),
    "P1 sign-in": Proof.signed_in("https://idp", Confidence.P1),
    "P2 sign-in": Proof.signed_in("https://idp", Confidence.P2),
    "counter check": Proof.counter_check(HOME, "passport"),
    "vouched registration": Proof.vouched("registrar"),
}


def _pending(redis: Redis, ref: str) -> set[str]:
    found = set()
    for key in redis.scan_iter(keys.pending("*")):
        if redis.zscore(key, ref) is not None:
            found.add(key.decode().removeprefix(keys.pending("")))
    return found


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    event_name=st.sampled_from(samples()),
    chosen=st.sets(st.sampled_from(sorted(PROOFS))),
    unregistered=st.booleans(),
)
def test_a_delivery_is_queued_if_and_only_if_its_departments_need_is_met(
    core: LifeEventRouter, redis: Redis, event_name: str, chosen: set[str], unregistered: bool
) -> None:
    data = sample(event_name)
    answers = data["answers"]
    if unregistered and event_name in ("death", "birth"):
        # A registration the register does not hold is refused, unless it was vouched for.
        answers = {
            **answers,
            "registration_how": "reference",
            "registrar_reference": "ZZZZ9999ZZZZ",
        }
    proofs = [PROOFS[p] for p in sorted(chosen)]
    evidence = Evidence(tuple(proofs))
    try:
        ref = core.submit(event_name, answers, data["consent"], proofs=proofs).ref
    except ValidationFailed as failed:
        assert unregistered and not evidence.registration_verified
        assert set(failed.errors) == {"registrar_reference"}
        return
    case = core.case(ref)
    if case.evidence.registration_verified and not evidence.registration_verified:
        evidence = evidence.with_proof(Proof.registered("gro", "reference"))
    assert case.evidence.confidence == evidence.confidence
    for name, delivery in case.deliveries.items():
        if delivery.mode != "digital":
            assert delivery.state == DeliveryState.ASSISTED
            continue
        met = case.plan.decision(name).need.met_by(evidence)
        assert (delivery.state == DeliveryState.QUEUED) == met, (name, delivery.state)
        assert (name in _pending(redis, ref)) == met
        if not met:
            assert delivery.detail == ",".join(case.plan.decision(name).need.unmet(evidence))
    waiting_for_identity = bool(case.waiting_for("identity"))
    assert ("identity_check" in case.counter_tasks) == (
        waiting_for_identity
        or any(
            "identity_check" in d.tasks for d in case.deliveries.values() if d.mode == "assisted"
        )
    )
    if waiting_for_identity:
        assert case.branch, "a case waiting for identity waits at a Post Office branch"
    redis.flushdb()
    mock_gro.seed(redis)


def test_a_proof_arriving_later_releases_exactly_once_whoever_races(
    core: LifeEventRouter, redis: Redis
) -> None:
    data = sample("moving_house")
    ref = core.submit(data["event"], data["answers"], data["consent"]).ref
    case = core.case(ref)
    assert {n: d.state for n, d in case.deliveries.items()} == dict.fromkeys(
        ["council", "dvla", "dwp", "hmrc"], DeliveryState.WAITING
    )
    assert _pending(redis, ref) == set()
    assert case.branch and case.counter_tasks == ["identity_check"]

    # A P1 sign-in releases only the council (it needs P1; the rest need P2).
    low = reporter_identity("moving_house", data["answers"], Confidence.P1)
    assert core.prove_identity(ref, low)
    assert _pending(redis, ref) == {"council"}
    assert core.case(ref).at_counter

    # Two P2 proofs at once (signed in online while a clerk checks their passport).
    high = reporter_identity("moving_house", data["answers"], Confidence.P2)
    threads = [threading.Thread(target=core.prove_identity, args=(ref, high)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queued = [
        e for e in core.store.history(ref) if e.state == "queued" and e.department in ("dvla",)
    ]
    assert len(queued) == 1, "released once"
    assert _pending(redis, ref) == {"council", "dvla", "dwp", "hmrc"}
    case = core.case(ref)
    assert case.evidence.confidence is Confidence.P2
    assert not case.at_counter
    assert redis.zscore(keys.branch_queue(case.branch), ref) is None, "left the branch queue"


def test_an_identity_that_is_not_the_reporters_earns_nothing(
    core: LifeEventRouter, redis: Redis
) -> None:
    data = sample("moving_house")
    stranger = Identity("https://idp", "x", Confidence.P2, "Emily Carter", "1992-04-08")
    submitted = core.submit(data["event"], data["answers"], data["consent"], identity=stranger)
    assert submitted.identity_matched is False
    assert core.case(submitted.ref).evidence.confidence is Confidence.P0
    assert not core.prove_identity(submitted.ref, stranger)
    assert _pending(redis, submitted.ref) == set()

    mine = reporter_identity("moving_house", data["answers"])
    again = core.submit(data["event"], data["answers"], data["consent"], identity=mine)
    assert again.identity_matched is True
    assert _pending(redis, again.ref) == {"council", "dvla", "dwp", "hmrc"}


def test_a_counter_identity_check_is_medium_confidence_and_releases_what_waited(
    core: LifeEventRouter, redis: Redis
) -> None:
    data = sample("new_job")
    ref = core.submit(data["event"], data["answers"], data["consent"]).ref
    case = core.case(ref)
    assert case.counter_tasks == ["identity_check"] and case.branch
    clerk = core.staff.add("ann", PASSWORD, case.branch, "clerk")
    core.desk.record_identity(ref, "passport", "123A", clerk)
    case = core.case(ref)
    assert case.evidence.confidence is Confidence.P2
    [proof] = case.evidence.proofs
    assert (proof.kind, proof.source, proof.detail) == ("counter", case.branch, "passport")
    assert _pending(redis, ref) == {"dwp", "hmrc"}
    assert not case.at_counter
    assert redis.zscore(keys.branch_queue(case.branch), ref) is None


def test_the_reporter_and_their_relation_are_recorded_and_dwp_is_told_who_reported(
    core: LifeEventRouter,
) -> None:
    death = sample("death")
    ref = core.submit(death["event"], death["answers"], death["consent"]).ref
    case = core.case(ref)
    assert case.reporter == "spouse_or_partner"
    assert case.evidence.registration_verified
    note = core.store.notification(case, "dwp")
    assert note.fields["informant_relationship"] == "spouse_or_partner"
    assert "informant_relationship" in DwpBenefits.fields_for("death")
    birth = sample("birth")
    assert core.case(core.submit("birth", birth["answers"], birth["consent"]).ref).reporter == (
        "parent"
    )
    move = sample("moving_house")
    assert core.case(core.submit("moving_house", move["answers"], ["council"]).ref).reporter == (
        "self"
    )


# --- the register -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"registrar_reference": "DX7Q4K2M9PLB"}, "registrar_reference"),
        ({"deceased_full_name": "Arthur Pendlebury"}, "deceased_full_name"),
        ({"date_of_death": {"days_ago": 8}}, "date_of_death"),
        (
            {
                "registration_how": "entry",
                "registration_district": "Leeds",
                "entry_number": "215",
                "registration_date": {"days_ago": 7},
            },
            "entry_number",
        ),
    ],
)
def test_a_death_the_register_does_not_confirm_is_a_field_error_and_nothing_is_stored(
    core: LifeEventRouter, redis: Redis, changes: dict[str, Any], field: str
) -> None:
    data = sample("death")
    before = redis.dbsize()
    with pytest.raises(ValidationFailed) as info:
        core.submit("death", answers_for("death", **changes), data["consent"])
    assert set(info.value.errors) == {field}
    message = info.value.errors[field]
    assert "certificate" in message or "registrar" in message
    assert redis.dbsize() == before


def test_a_death_given_by_its_register_entry_is_confirmed(core: LifeEventRouter) -> None:
    data = sample("death")
    answers = answers_for(
        "death",
        registration_how="entry",
        registration_district=" leeds ",
        entry_number="0214",
        registration_date={"days_ago": 7},
    )
    ref = core.submit("death", answers, data["consent"]).ref
    [proof] = core.case(ref).evidence.proofs
    assert (proof.kind, proof.source, proof.detail) == ("register", "gro", "entry")


def test_a_register_too_slow_to_answer_is_not_waited_for(
    core: LifeEventRouter, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MockGro, "timeout", 0.3)
    configure_faults(redis, "gro", Faults(latency_ms=2000))
    data = sample("death")
    started = time.monotonic()
    ref = core.submit("death", data["answers"], data["consent"]).ref
    assert time.monotonic() - started < 1.5, "the citizen waits no longer than its timeout"
    case = core.case(ref)
    assert case.verifying and not case.evidence.registration_verified
    assert {d.detail for d in case.deliveries.values()} == {"registration"}
