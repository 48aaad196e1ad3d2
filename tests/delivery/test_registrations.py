"""The register down: deaths are accepted, their deliveries wait for the register, the
workers ask again, and once it answers each department is told exactly once. A register
that then disagrees sends nothing and flags the case for a person."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
from redis import Redis

from router import keys
from router.adapters import mock_gro
from router.adapters.mocks import Faults, configure_faults
from router.cases import DeliveryState
from router.delivery.worker import Supervisor
from router.service import LifeEventRouter
from tests.support.redis_dump import mock_log
from tests.support.samples import answers_for, sample

pytestmark = pytest.mark.slow

DEPARTMENTS = ("council", "dvla", "dwp", "hmrc", "payments")


def _deaths(redis: Redis, count: int) -> list[dict[str, object]]:
    """``count`` deaths, each registered in the mock register under its own reference."""
    today = date.today()
    reports = []
    for i in range(count):
        name = f"Arthur Pendleton-{chr(ord('A') + i)}"
        entry = mock_gro.add(
            redis, "death", name, today - timedelta(days=3), "Leeds", today - timedelta(days=1)
        )
        reports.append(
            answers_for(
                "death",
                deceased_full_name=name,
                deceased_nino=f"AB 12 34 5{i} A",
                registrar_reference=entry.reference,
                date_of_death={"days_ago": 3},
            )
        )
    return reports


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_while_the_register_is_down_deaths_wait_and_are_told_once_when_it_returns(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    consent = sample("death")["consent"]
    reports = _deaths(redis, 4)
    configure_faults(redis, "gro", Faults(outage=True))
    refs = [core.submit("death", answers, consent).ref for answers in reports]

    for ref in refs:
        case = core.case(ref)
        assert case.verifying and not case.evidence.registration_verified
        assert {d.state for d in case.deliveries.values()} == {DeliveryState.WAITING}
        assert {d.detail for d in case.deliveries.values()} == {"registration"}
    assert set(redis.zrange(keys.VERIFYING, 0, -1)) == {r.encode() for r in refs}
    time.sleep(2.5)  # the workers ask again (and are told no) while it is down
    assert all(
        d.state == DeliveryState.WAITING for r in refs for d in core.case(r).deliveries.values()
    )
    assert all(mock_log(redis, name) == [] for name in DEPARTMENTS)

    configure_faults(redis, "gro", Faults())
    _wait(
        lambda: all(
            d.state == DeliveryState.DELIVERED
            for r in refs
            for d in core.case(r).deliveries.values()
        ),
        30,
        "every department told once the register answered",
    )
    # The invariant: each department told about each death exactly once.
    for name in DEPARTMENTS:
        told = [entry["delivery_id"] for entry in mock_log(redis, name)]
        assert sorted(told) == sorted(f"{r}-{name}" for r in refs), name
    for ref in refs:
        case = core.case(ref)
        assert case.evidence.registration_verified and not case.verifying
        assert not case.flagged
    assert redis.zcard(keys.VERIFYING) == 0


def test_a_register_that_answers_late_and_disagrees_sends_nothing_and_flags_the_case(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    configure_faults(redis, "gro", Faults(outage=True))
    answers = answers_for("death", deceased_full_name="Arthur Pendlebury")
    ref = core.submit("death", answers, sample("death")["consent"]).ref
    configure_faults(redis, "gro", Faults())
    _wait(lambda: bool(core.case(ref).flagged), 20, "the case flagged for a person")
    case = core.case(ref)
    assert "register did not confirm" in case.flagged
    assert "Pendlebury" not in case.flagged, "the reason names the answer, not its value"
    assert {d.state for d in case.deliveries.values()} == {DeliveryState.WAITING}
    assert all(mock_log(redis, name) == [] for name in DEPARTMENTS)
    assert redis.zcard(keys.VERIFYING) == 0
