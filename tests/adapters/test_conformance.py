"""The conformance kit passes every built-in adapter and catches each broken rule."""

from __future__ import annotations

import re
import time
from typing import Any, ClassVar

import pytest
from redis import Redis

from router.adapters import conformance
from router.adapters.contract import Adapter, Notification, PermanentError, Receipt
from router.adapters.mocks import DwpBenefits
from router.adapters.registry import Registry
from router.catalogue import EVENTS
from router.trust import Need
from tests.support.processes import router_cli


def failed_rules(cls: type[Adapter], redis: Redis) -> set[str]:
    return {f.rule for f in conformance.check(cls, redis) if not f.passed}


@pytest.mark.parametrize("name", ["dwp", "dvla", "payments", "hmrc", "council"])
def test_every_built_in_mock_department_passes(name: str, redis: Redis, registry: Registry) -> None:
    findings = conformance.check(registry.get(name), redis)
    assert [f.line() for f in findings if not f.passed] == []
    assert {f.rule for f in findings} == {
        "declaration",
        "trust",
        "receipt",
        "timeout",
        "minimal",
        "idempotent",
        "errors",
        "cleanup",
    }


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_sample_answers_are_valid_for_every_event(event: str) -> None:
    answers = conformance.sample_answers(EVENTS[event])
    assert set(answers) <= set(EVENTS[event].fields)


class _Good(Adapter):
    name = "good"
    title = "A department that keeps the contract"
    fields: ClassVar[dict[str, tuple[str, ...]]] = {"birth": ("child_full_name",)}
    needs: ClassVar[dict[str, Need]] = {"birth": Need(registration=True)}
    timeout = 2.0

    def deliver(self, notification: Notification) -> Receipt:
        assert self.redis is not None
        key = f"good:{notification.delivery_id}"
        self.redis.set(key, notification.fields["child_full_name"], nx=True)
        return Receipt(reference=f"G-{notification.delivery_id}")


class AppliesTwice(_Good):
    name = "applies_twice"

    def deliver(self, notification: Notification) -> Receipt:
        assert self.redis is not None
        self.redis.incr(f"applied:{notification.delivery_id}")
        return Receipt(reference=f"G-{notification.delivery_id}")


class NewReceiptEachTime(_Good):
    name = "new_receipt"

    def deliver(self, notification: Notification) -> Receipt:
        return Receipt(reference=f"G-{time.monotonic_ns()}")


class SaysItWasARepeat(_Good):
    """The same reference both times, but the repeat's detail and extra tell it apart."""

    name = "says_repeat"

    def deliver(self, notification: Notification) -> Receipt:
        assert self.redis is not None
        first = self.redis.set(f"told:{notification.delivery_id}", 1, nx=True)
        return Receipt(
            reference=f"G-{notification.delivery_id}",
            detail="Recorded" if first else "Already recorded",
            extra={"kept": "yes"} if first else {"kept": "yes", "repeat": "1"},
        )


class ReadsUndeclared(_Good):
    name = "nosy"

    def deliver(self, notification: Notification) -> Receipt:
        notification.fields.get("parent_nino")  # not declared for birth
        return super().deliver(notification)


class TooSlow(_Good):
    name = "too_slow"
    timeout = 0.2

    def deliver(self, notification: Notification) -> Receipt:
        time.sleep(0.3)
        return super().deliver(notification)


class UnclassifiedErrors(_Good):
    name = "unclassified"

    def deliver(self, notification: Notification) -> Receipt:
        if not notification.fields["child_full_name"]:
            raise ValueError("blank name")  # should be PermanentError
        return super().deliver(notification)


class NeverAnswers(_Good):
    name = "raises"

    def deliver(self, notification: Notification) -> Receipt:
        raise KeyError("child_full_name")


class BadDeclaration(_Good):
    name = "bad_declaration"
    fields: ClassVar[dict[str, tuple[str, ...]]] = {"birth": ("shoe_size",)}


class SaysNothingOfTrust(_Good):
    """Declares no needs: a department must say what it acts on."""

    name = "says_nothing"
    needs: ClassVar[dict[str, Need]] = {}


class TrustsARegistrationThatIsNot(_Good):
    """A change of name has no registration to verify."""

    name = "no_such_registration"
    fields: ClassVar[dict[str, tuple[str, ...]]] = {"change_of_name": ("full_name",)}
    needs: ClassVar[dict[str, Need]] = {"change_of_name": Need(registration=True)}


class NeedsNotANeed(_Good):
    name = "needs_a_string"
    needs: ClassVar[dict[str, Any]] = {"birth": "P2"}


def test_a_good_adapter_passes(redis: Redis) -> None:
    assert failed_rules(_Good, redis) == set()


@pytest.mark.parametrize(
    ("broken", "rule"),
    [
        (AppliesTwice, "idempotent"),
        (NewReceiptEachTime, "idempotent"),
        (SaysItWasARepeat, "idempotent"),
        (ReadsUndeclared, "minimal"),
        (TooSlow, "timeout"),
        (UnclassifiedErrors, "errors"),
        (NeverAnswers, "receipt"),
        (BadDeclaration, "declaration"),
        (SaysNothingOfTrust, "declaration"),
        (TrustsARegistrationThatIsNot, "declaration"),
        (NeedsNotANeed, "declaration"),
    ],
)
def test_the_kit_catches_each_broken_rule(broken: type[Adapter], rule: str, redis: Redis) -> None:
    assert failed_rules(broken, redis) == {rule}


def test_an_idempotency_failure_shows_every_field_in_which_the_receipts_differ(
    redis: Redis,
) -> None:
    """Not only the reference (here the same both times): detail and extra too."""
    (failed,) = [f for f in conformance.check(SaysItWasARepeat, redis) if not f.passed]
    assert failed.rule == "idempotent"
    assert "reference" not in failed.detail  # it was the same both times
    assert "detail 'Recorded' then 'Already recorded'" in failed.detail
    assert "extra['repeat'] (none) then '1'" in failed.detail
    assert "extra['kept']" not in failed.detail  # the same both times
    assert "a repeat must return an identical receipt" in failed.detail


def test_an_idempotency_failure_names_a_new_reference_and_an_error_on_repeat(
    redis: Redis,
) -> None:
    (changed,) = [f for f in conformance.check(NewReceiptEachTime, redis) if not f.passed]
    assert re.search(r"reference 'G-\d+' then 'G-\d+'", changed.detail), changed.detail

    class FailsOnRepeat(_Good):
        name = "fails_on_repeat"

        def deliver(self, notification: Notification) -> Receipt:
            assert self.redis is not None
            if not self.redis.set(f"told:{notification.delivery_id}", 1, nx=True):
                raise PermanentError("duplicate delivery")
            return super().deliver(notification)

    (raised,) = [f for f in conformance.check(FailsOnRepeat, redis) if not f.passed]
    assert "the repeat raised PermanentError: duplicate delivery" in raised.detail


class KeepsItsOwnStore(_Good):
    """A department whose records live outside the router's Redis (here: a dict)."""

    name = "own_store"
    store: ClassVar[dict[str, str]] = {}

    def deliver(self, notification: Notification) -> Receipt:
        self.store.setdefault(notification.delivery_id, "applied")
        return Receipt(reference=f"G-{notification.delivery_id}")

    def conformance_effects(self, notification: Notification) -> int:
        return int(notification.delivery_id in self.store)


class CleansUp(KeepsItsOwnStore):
    name = "cleans_up"

    def conformance_cleanup(self, notification: Notification) -> None:
        self.store.pop(notification.delivery_id, None)


class CleansUpOnlyHalf(KeepsItsOwnStore):
    name = "cleans_half"

    def conformance_cleanup(self, notification: Notification) -> None:
        if notification.delivery_id.endswith("-blank"):
            self.store.pop(notification.delivery_id, None)


@pytest.fixture
def own_store() -> dict[str, str]:
    KeepsItsOwnStore.store.clear()
    return KeepsItsOwnStore.store


def test_the_kit_removes_its_sample_deliveries_through_the_cleanup_hook(
    redis: Redis, own_store: dict[str, str]
) -> None:
    findings = conformance.check(CleansUp, redis)
    (cleanup,) = [f for f in findings if f.rule == "cleanup"]
    assert cleanup.passed and not cleanup.note
    assert cleanup.detail == "removed the 2 sample deliveries"
    assert own_store == {}


def test_kept_samples_are_listed_with_their_case(redis: Redis, own_store: dict[str, str]) -> None:
    findings = conformance.check(CleansUp, redis, keep_samples=True)
    (cleanup,) = [f for f in findings if f.rule == "cleanup"]
    assert cleanup.note and cleanup.line().startswith("NOTE cleanup:")
    assert sorted(own_store) == [
        "CONFRMANC-cleans_up-birth-a",
        "CONFRMANC-cleans_up-birth-blank",
    ]
    for delivery_id in own_store:
        assert delivery_id in cleanup.detail
    assert "case CONFRMANC" in cleanup.detail


def test_without_a_cleanup_hook_the_kit_says_which_samples_remain(
    redis: Redis, own_store: dict[str, str]
) -> None:
    findings = conformance.check(KeepsItsOwnStore, redis)
    (cleanup,) = [f for f in findings if f.rule == "cleanup"]
    assert cleanup.note and cleanup.passed
    assert "offers no conformance_cleanup(notification)" in cleanup.detail
    assert "CONFRMANC-own_store-birth-a" in cleanup.detail
    assert failed_rules(KeepsItsOwnStore, redis) == set()


def test_a_cleanup_that_leaves_a_sample_fails(redis: Redis, own_store: dict[str, str]) -> None:
    (failed,) = [f for f in conformance.check(CleansUpOnlyHalf, redis) if not f.passed]
    assert failed.rule == "cleanup"
    assert "CONFRMANC-cleans_half-birth-a is still applied 1 time(s)" in failed.detail
    assert "-blank" not in failed.detail


def test_adapters_list_shows_every_adapter_with_queue_and_fields(cli_env: dict[str, str]) -> None:
    result = router_cli("adapters", "list", env=cli_env)
    assert result.returncode == 0, result.stderr
    for name in ("dwp", "dvla", "payments", "hmrc", "council"):
        assert f"queue: dept-{name}" in result.stdout
    assert (
        "  birth: parent_nino, parent_full_name, child_full_name, child_date_of_birth"
        in result.stdout
    )


def test_adapters_check_passes_a_built_in_and_refuses_an_unknown_name(
    cli_env: dict[str, str],
) -> None:
    result = router_cli("adapters", "check", "dvla", env=cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 17 checks passed" in result.stdout
    assert "FAIL" not in result.stdout
    assert "NOTE cleanup: this adapter offers no conformance_cleanup" in result.stdout

    unknown = router_cli("adapters", "check", "ministry_of_magic", env=cli_env)
    assert unknown.returncode == 2
    assert "No adapter named ministry_of_magic" in unknown.stderr


def test_adapters_check_fails_a_broken_adapter_with_exit_status_1(cli_env: dict[str, str]) -> None:
    env = dict(cli_env, ROUTER_ADAPTERS="tests.adapters.test_conformance:AppliesTwice")
    result = router_cli("adapters", "check", "applies_twice", env=env)
    assert result.returncode == 1
    assert "FAIL idempotent [birth]" in result.stdout


def test_consent_rules_over_declarations(redis: Redis) -> None:
    """An adapter is never sent an event the citizen did not consent to, whatever it declares."""
    from router import routing
    from tests.support.samples import sample

    class WantsEverything(DwpBenefits):
        name = "greedy"

    data: dict[str, Any] = sample("birth")
    answers = EVENTS["birth"].validate(data["answers"])
    plan = routing.plan("birth", answers, ["dwp"], [DwpBenefits, WantsEverything])
    assert plan.decision("greedy").mode == "not_consented"
    assert plan.decision("greedy").fields == ()
    assert [d.department for d in plan.deliveries] == ["dwp"]
