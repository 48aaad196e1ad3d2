"""A counter task done posts its ledger entry in the desk's own transaction: the branch
is paid by whoever the tariff says, once, whatever retries or refusals happen."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from redis import Redis

from router import keys, ledger, tariff
from router.assisted.staff import Staff
from router.exceptions import ValidationFailed
from router.service import LifeEventRouter
from tests.support.counter import CF14, photocard_change
from tests.support.samples import submit_to_core


def _ledger(redis: Redis) -> dict[str, dict[str, Any]]:
    month = ledger.month_of(datetime.now(UTC))
    return {k.decode(): json.loads(v) for k, v in redis.hgetall(keys.ledger(month)).items()}


def test_an_identity_check_and_a_photo_post_one_entry_each_paid_to_the_branch(
    core: LifeEventRouter, redis: Redis
) -> None:
    sent = photocard_change(core)
    case = core.case(sent.ref)
    clerk = Staff("ann", case.branch, "clerk")
    prices = tariff.current()

    with pytest.raises(ValidationFailed):  # refused inside the transaction: nothing posted
        core.desk.complete(sent.ref, "photo", clerk)
    assert _ledger(redis) == {}

    core.desk.record_identity(sent.ref, "passport", "123A", clerk)
    core.desk.complete(sent.ref, "photo", clerk)
    entries = _ledger(redis)
    assert set(entries) == {f"{sent.ref}:identity_check:dvla", f"{sent.ref}:photo"}
    check, photo = entries[f"{sent.ref}:identity_check:dvla"], entries[f"{sent.ref}:photo"]
    assert (check["payer"], check["payee"]) == ("department:dvla", f"branch:{case.branch}")
    assert check["pence"] == prices.task("identity_check").pence
    assert (photo["payer"], photo["payee"]) == ("department:dvla", f"branch:{case.branch}")
    assert photo["pence"] == prices.task("photo").pence

    # Done already: a second press is refused and posts nothing more.
    with pytest.raises(ValidationFailed):
        core.desk.complete(sent.ref, "photo", clerk)
    assert _ledger(redis) == entries


def test_each_department_waiting_for_the_reporters_identity_pays_for_the_check(
    core: LifeEventRouter, redis: Redis
) -> None:
    sent = submit_to_core(core, "moving_house", confidence=None, postcode="CF10 1BH")
    case = core.case(sent.ref)
    waiting = case.waiting_for("identity")
    assert len(waiting) > 1
    core.desk.record_identity(sent.ref, "passport", "123A", Staff("ann", case.branch, "clerk"))
    assert set(_ledger(redis)) == {f"{sent.ref}:identity_check:{d}" for d in waiting}


def test_a_retried_desk_transaction_posts_its_task_once(
    core: LifeEventRouter, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another clerk's write to the case between the desk's read and its EXEC makes
    the transaction run again: the entry is posted by the run that commits, once."""
    sent = submit_to_core(core, "moving_house", help_requested=True, postcode="CF10 1BH")
    case = core.case(sent.ref)
    load, runs = core.desk.store.load, []

    def load_then_interfere(ref: str) -> Any:
        loaded = load(ref)
        runs.append(ref)
        if len(runs) == 1:
            redis.hset(keys.case(ref), "touched", "1")  # breaks the WATCH
        return loaded

    monkeypatch.setattr(core.desk.store, "load", load_then_interfere)
    core.desk.complete(sent.ref, "help", Staff("ann", case.branch, "clerk"))
    assert len(runs) == 2
    entries = _ledger(redis)
    assert list(entries) == [f"{sent.ref}:help"]
    assert (entries[f"{sent.ref}:help"]["payer"], entries[f"{sent.ref}:help"]["kind"]) == (
        "operator",
        "help",
    )


def test_a_cash_voucher_is_paid_by_each_department_that_needed_it(
    core: LifeEventRouter, redis: Redis
) -> None:
    sent = submit_to_core(
        core,
        "retiring",
        postcode=CF14,
        town="Cardiff",
        has_bank_account="no",
        sort_code=None,
        account_number=None,
    )
    case = core.case(sent.ref)
    needing = {n for n, d in case.deliveries.items() if "cash_voucher" in d.tasks}
    assert needing and needing != set(case.deliveries)
    clerk = Staff("ann", case.branch, "clerk")
    core.desk.record_identity(sent.ref, "passport", "123A", clerk)
    core.desk.complete(sent.ref, "cash_voucher", clerk)
    vouchers = {k: v for k, v in _ledger(redis).items() if v["kind"] == "cash_voucher"}
    assert set(vouchers) == {f"{sent.ref}:cash_voucher:{d}" for d in needing}
    assert {v["payer"] for v in vouchers.values()} == {f"department:{d}" for d in needing}


def test_help_given_once_is_not_waiting_any_more_and_is_posted_once(
    core: LifeEventRouter, redis: Redis
) -> None:
    sent = submit_to_core(core, "moving_house", help_requested=True, postcode="CF10 1BH")
    clerk = Staff("ann", core.case(sent.ref).branch, "clerk")
    core.desk.complete(sent.ref, "help", clerk)
    entries = _ledger(redis)
    with pytest.raises(ValidationFailed) as raised:
        core.desk.complete(sent.ref, "help", clerk)
    assert raised.value.errors == {"task": "That task is not waiting on this report"}
    assert _ledger(redis) == entries
