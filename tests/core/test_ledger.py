"""The tariff (checked at load) and the ledger's statements: totals that reconcile, CSV
that parses back, the saved line with its source."""

from __future__ import annotations

import csv
import io
import tomllib
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import pytest
from redis import Redis

from router import keys, ledger, tariff
from router.assisted.desk import BUTTON_TASKS, DOCUMENTS
from router.routing import ASSISTED_TASKS
from router.service import LifeEventRouter

AT = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
MONTH = "2026-12"


def _shipped() -> dict[str, Any]:
    return tomllib.loads(files("router").joinpath("data", "tariff.toml").read_text())


# --- the tariff -------------------------------------------------------------------------------


def test_the_tariff_prices_every_installed_department_and_every_counter_task_kind() -> None:
    prices = tariff.current()
    assert set(prices.delivery) == tariff.known_departments()
    every_task = {*BUTTON_TASKS, *ASSISTED_TASKS, "identity_check"}
    assert set(prices.tasks) == every_task
    assert every_task == tariff.TASK_KINDS
    assert set(ledger.KIND_WORDS) == {tariff.DELIVERY, tariff.REGISTRATION_CHECK, *every_task}
    assert DOCUMENTS  # an identity check is priced once, whatever document was seen
    assert all(isinstance(p, int) and p > 0 for p in prices.delivery.values())
    assert prices.version and prices.effective_from.isoformat() == "2026-12-01"


def test_the_tariff_says_who_pays_whom() -> None:
    prices = tariff.current()
    assert prices.task("photo").payer == "dvla"
    assert prices.task("identity_check").payer == tariff.NEEDING
    assert prices.task("help").payer == tariff.OPERATOR


def test_the_saved_line_names_its_source() -> None:
    saved = tariff.current().saved
    assert saved.pence_per_contact > 0
    if not saved.assumption:
        assert saved.source_url.startswith("https://")
        assert saved.source_title and saved.source_date


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda d: d["delivery"]["pence"].update(passports=20), "passports", id="department"
        ),
        pytest.param(lambda d: d["task"].update(tea={"pence": 1}), "tea", id="task-kind"),
        pytest.param(lambda d: d["task"].pop("photo"), "photo", id="task-missing"),
        pytest.param(lambda d: d["task"]["help"].update(pence=2.5), "pence", id="not-pence"),
        pytest.param(lambda d: d["task"]["photo"].update(payer="dvlaa"), "payer", id="payer"),
        pytest.param(lambda d: d.pop("version"), "version", id="no-version"),
        pytest.param(lambda d: d["saved"].pop("source_url"), "source_url", id="no-source"),
    ],
)
def test_a_wrong_tariff_is_a_clear_error(change: Any, message: str) -> None:
    data = _shipped()
    change(data)
    with pytest.raises(tariff.TariffError, match=message):
        tariff.parse(data)


def test_a_saved_figure_may_be_a_stated_assumption_without_a_source() -> None:
    data = _shipped()
    data["saved"] = {"pence_per_contact": 100, "assumption": True, "what": "our guess"}
    assert tariff.parse(data).saved.assumption


# --- statements ------------------------------------------------------------------------------


def _post(redis: Redis, entries: list[ledger.Entry]) -> None:
    with redis.pipeline(transaction=True) as pipe:
        ledger.post(pipe, entries)
        pipe.execute()


def _a_month(redis: Redis) -> None:
    """Three cases: deliveries to dwp, dvla and the council, an identity check two
    departments needed, a photo, help; and one delivery posted twice."""
    entries = [
        ledger.delivery_entry("ACDEFGHJK", "dwp", at=AT),
        ledger.delivery_entry("ACDEFGHJK", "dvla", at=AT),
        ledger.delivery_entry("BCDEFGHJK", "dwp", at=AT),
        ledger.delivery_entry("BCDEFGHJK", "council", at=AT),
        *ledger.task_entries(
            "BCDEFGHJK", "identity_check", "cardiff-canton", ["dwp", "council"], at=AT
        ),
        *ledger.task_entries("ACDEFGHJK", "photo", "cardiff-queen-street", ["dvla"], at=AT),
        *ledger.task_entries("CCDEFGHJK", "help", "cardiff-canton", [], at=AT),
    ]
    _post(redis, entries)
    _post(redis, [ledger.delivery_entry("ACDEFGHJK", "dwp", at=AT)])  # a replay


def test_a_departments_statement_groups_its_entries_with_counts_unit_prices_and_totals(
    core: LifeEventRouter, redis: Redis
) -> None:
    _a_month(redis)
    prices = tariff.current()
    dwp = core.statement(MONTH, core.ledger_party(department="dwp"))
    assert [(line.direction, line.kind, line.counterparty, line.count) for line in dwp.lines] == [
        ("owes", "delivery", "operator", 2),
        ("owes", "identity_check", "branch:cardiff-canton", 1),
    ]
    assert dwp.owes_pence == 2 * prices.delivery["dwp"] + prices.task("identity_check").pence
    assert dwp.owed_pence == 0 and dwp.net_pence == -dwp.owes_pence
    assert dwp.contacts_avoided == 2

    canton = core.statement(MONTH, core.ledger_party(branch="cardiff-canton"))
    assert canton.owes_pence == 0
    assert canton.owed_pence == 2 * prices.task("identity_check").pence + prices.task("help").pence

    operator = core.statement(MONTH, core.ledger_party(operator=True))
    assert operator.contacts_avoided == 4  # each department told is one contact avoided
    assert operator.saved_pence == 4 * prices.saved.pence_per_contact
    assert operator.tariff_versions == [prices.version]


def test_every_statement_of_a_month_reconciles_with_the_ledger(
    core: LifeEventRouter, redis: Redis
) -> None:
    _a_month(redis)
    stored = redis.hgetall(keys.ledger(MONTH))
    assert len(stored) == 8  # the replay posted nothing
    ledger_pence = sum(ledger.Entry.from_json(k.decode(), v).pence for k, v in stored.items())

    result = core.reconcile(MONTH)
    assert result.balanced
    assert sum(s.net_pence for s in result.statements) == 0
    assert result.ledger_pence == ledger_pence
    # Every entry is in exactly two statements: its payer's and its payee's.
    assert sum(s.entries for s in result.statements) == 2 * len(stored)
    assert sum(s.owes_pence for s in result.statements) == ledger_pence
    assert sum(s.owed_pence for s in result.statements) == ledger_pence
    assert {s.party for s in result.statements} == {
        "operator",
        "department:dwp",
        "department:dvla",
        "department:council",
        "branch:cardiff-canton",
        "branch:cardiff-queen-street",
    }
    for s in result.statements:
        assert s.owes_pence == sum(x.subtotal_pence for x in s.lines if x.direction == "owes")


def test_a_statement_as_csv_parses_back_and_its_totals_row_matches(
    core: LifeEventRouter, redis: Redis
) -> None:
    _a_month(redis)
    party = core.ledger_party(department="dwp")
    statement = core.statement(MONTH, party)
    rows = list(csv.DictReader(io.StringIO(core.statement_csv(MONTH, party))))
    body, totals = rows[:-1], rows[-1]
    assert tuple(rows[0]) == ledger.CSV_HEADER
    assert totals["direction"] == "total"
    assert len(body) == len(statement.lines)
    for row in body:
        assert int(row["subtotal_pence"]) == int(row["count"]) * int(row["unit_pence"])
    signed = sum(int(r["subtotal_pence"]) * (1 if r["direction"] == "owed" else -1) for r in body)
    assert int(totals["subtotal_pence"]) == signed == statement.net_pence
    assert int(totals["count"]) == sum(int(r["count"]) for r in body) == statement.entries


def test_an_entry_holds_no_personal_data() -> None:
    entry = ledger.task_entries("ACDEFGHJK", "photo", "cardiff-canton", ["dvla"], at=AT)[0]
    assert set(ledger.Entry.from_json(entry.id, entry.to_json()).__dict__) == {
        "id",
        "payer",
        "payee",
        "kind",
        "case",
        "pence",
        "tariff",
        "at",
        "department",
        "branch",
    }


def test_months_lists_the_months_with_entries_and_parties_are_checked(
    core: LifeEventRouter, redis: Redis
) -> None:
    assert core.ledger_months() == []
    now = datetime.now(UTC)
    _post(redis, [ledger.delivery_entry("ACDEFGHJK", "dwp", at=now)])
    assert core.ledger_months() == [ledger.month_of(now)]
    with pytest.raises(ledger.LedgerError):
        core.ledger_party(department="passports")
    with pytest.raises(ledger.LedgerError):
        core.ledger_party(branch="nowhere")
    with pytest.raises(ledger.LedgerError):
        core.statement("2026-13", "operator")
    empty = core.statement("2025-01", "operator")
    assert empty.lines == [] and empty.net_pence == 0


@pytest.mark.parametrize(
    ("at", "month"),
    [
        (datetime(2026, 11, 30, 23, 59, 59, 999000, tzinfo=UTC), "2026-11"),
        (datetime(2026, 12, 1, 0, 0, tzinfo=UTC), "2026-12"),
        # Stamped elsewhere: posted under the month it was in UTC.
        (datetime.fromisoformat("2026-11-30T23:30:00-02:00"), "2026-12"),
        (datetime.fromisoformat("2026-12-01T00:30:00+01:00"), "2026-11"),
    ],
)
def test_an_entry_is_posted_under_its_month_in_utc(at: datetime, month: str) -> None:
    entry = ledger.delivery_entry("BCDFGHJKL", "dwp", tariff.current(), at)
    assert entry.month == month
    assert ledger.Entry.from_json(entry.id, entry.to_json()) == entry
