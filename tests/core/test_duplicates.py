"""One death, told once: a second report of it (the same registration, or the same NI
number and date of death) joins the first, whoever races; a death holds what was still
to be sent about that person; no key names a person."""

from __future__ import annotations

import re
import threading

import pytest
from redis import Redis

from router import keys
from router.cases import DeliveryState
from router.delivery.worker import Supervisor
from router.people import REPORTED_ALREADY
from router.service import LifeEventRouter
from router.trust import Proof
from tests.support.processes import wait_settled
from tests.support.redis_dump import mock_log, written_keys
from tests.support.samples import answers_for, sample, submit_to_core

CONSENT = sample("death")["consent"]


def _pending(redis: Redis, ref: str) -> set[str]:
    return {
        key.decode().removeprefix(keys.pending(""))
        for key in redis.scan_iter(keys.pending("*"))
        if redis.zscore(key, ref) is not None
    }


def test_a_second_report_of_a_death_joins_the_first_and_reveals_nothing(
    core: LifeEventRouter, redis: Redis
) -> None:
    first = core.submit("death", answers_for("death"), CONSENT)
    # Another relative reports it, naming the register entry instead of the reference.
    again = core.submit(
        "death",
        answers_for(
            "death",
            informant_full_name="Ruth Pendleton",
            informant_relationship="child",
            registration_how="entry",
            registration_district="Leeds",
            entry_number="214",
            registration_date={"days_ago": 7},
        ),
        CONSENT,
    )
    assert not first.reported_already and again.reported_already
    assert again.ref != first.ref and again.secret and again.secret != first.secret
    second = core.case(again.ref)
    assert second.deliveries == {}
    assert {d.mode for d in second.plan.decisions} == {"not_needed"}
    assert {d.reason for d in second.plan.decisions} == {REPORTED_ALREADY}
    assert _pending(redis, again.ref) == set()
    assert _pending(redis, first.ref) == set(CONSENT)
    # Kept for caseworkers, never given to the second reporter.
    assert redis.hget(keys.case(again.ref), "joined") == first.ref.encode()


def test_the_same_nino_and_date_of_death_is_the_same_death(core: LifeEventRouter) -> None:
    first = core.submit("death", answers_for("death"), CONSENT)
    # A registrar's system vouches for a registration under another reference.
    again = core.submit(
        "death",
        answers_for("death", registrar_reference="QQQQ2222QQQQ"),
        CONSENT,
        proofs=[Proof.vouched("registrar")],
    )
    assert again.reported_already and core.case(again.ref).deliveries == {}
    assert core.case(first.ref).deliveries


def test_many_reports_of_one_death_at_once_make_one_case_that_tells_anyone(
    core: LifeEventRouter, redis: Redis
) -> None:
    results = []
    lock = threading.Lock()

    def report() -> None:
        submitted = core.submit("death", answers_for("death"), CONSENT)
        with lock:
            results.append(submitted)

    threads = [threading.Thread(target=report) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    told = [r for r in results if not r.reported_already]
    assert len(results) == 6 and len(told) == 1
    for department in CONSENT:
        assert redis.zcard(keys.pending(department)) == 1


@pytest.mark.slow
def test_the_same_death_reported_twice_gives_one_delivery_per_department(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    first = core.submit("death", answers_for("death"), CONSENT)
    again = core.submit(
        "death", answers_for("death", informant_full_name="Ruth Pendleton"), CONSENT
    )
    wait_settled(redis, first.ref)
    wait_settled(redis, again.ref)
    for department in CONSENT:
        assert [e["delivery_id"] for e in mock_log(redis, department)] == [
            f"{first.ref}-{department}"
        ]


def test_a_death_holds_what_was_not_sent_yet_about_that_person_and_flags_it(
    core: LifeEventRouter, redis: Redis
) -> None:
    nino = "AB 12 34 56 A"  # the sample death's
    # A move reported for the same person, still waiting for their identity.
    move = submit_to_core(core, "moving_house", confidence=None, nino=nino)
    other = submit_to_core(core, "moving_house", confidence=None, nino="SX 99 88 77 C")
    assert {d.state for d in core.case(move.ref).deliveries.values()} == {DeliveryState.WAITING}

    core.submit("death", answers_for("death"), CONSENT)

    held = core.case(move.ref)
    assert {d.state for d in held.deliveries.values()} == {DeliveryState.HELD}
    assert "death was reported" in held.flagged
    assert _pending(redis, move.ref) == set()
    assert not core.case(other.ref).flagged
    assert {d.state for d in core.case(other.ref).deliveries.values()} == {DeliveryState.WAITING}


def test_no_key_names_a_person(core: LifeEventRouter, redis: Redis) -> None:
    submit_to_core(core, "moving_house")
    core.submit("death", answers_for("death"), CONSENT)
    # RQ's job ids are random UUIDs, and a person's key is a keyed digest:
    # "214" is in one of them now and then, by chance, not because it leaked.
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    names = re.sub(uuid, "<job id>", " ".join(written_keys(redis)))
    names = re.sub(r"\b[0-9a-f]{40,64}\b", "<digest>", names)
    assert "<digest>" in names  # the digests are what the mask hides
    for personal in ("AB123456A", "AB 12 34 56 A", "SX123456C", "DX7Q4K2M9PLA", "Pendleton", "214"):
        assert personal not in names


def test_a_repeat_of_one_submission_is_not_a_second_report(core: LifeEventRouter) -> None:
    first = core.submit("death", answers_for("death"), CONSENT, submission_key="k-1")
    again = core.submit("death", answers_for("death"), CONSENT, submission_key="k-1")
    assert (again.ref, again.created, again.reported_already) == (first.ref, False, False)
