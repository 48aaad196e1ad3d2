"""The money on the page: an operator reads every party's monthly statement, each as a
page and a CSV download whose rows add up to its totals, and the month reconciles (every
party's net adds up to nothing); a branch manager reads their own branch's."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from flask.testing import FlaskClient
from redis import Redis

from router.cases import DeliveryState
from router.delivery.worker import Supervisor
from router.ledger import CSV_HEADER, TOTAL
from router.service import LifeEventRouter
from tests.support.counter import (
    HOME,
    StaffClient,
    complete_task,
    photocard_change,
    record_identity,
)
from tests.support.pages import errors_of, soup, text
from tests.support.processes import wait_settled
from tests.support.samples import submit_to_core

MONTH = datetime.now(UTC).strftime("%Y-%m")


def _csv(browser: FlaskClient, url: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    response = browser.get(url)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(rows[0]) == CSV_HEADER
    *lines, total = rows
    assert total["direction"] == TOTAL
    return lines, total


def _net(lines: list[dict[str, str]]) -> int:
    return sum(int(r["subtotal_pence"]) * (1 if r["direction"] == "owed" else -1) for r in lines)


def test_every_partys_statement_downloads_and_the_month_reconciles(
    core: LifeEventRouter, redis: Redis, workers: Supervisor, staff_client: StaffClient
) -> None:
    sent = [submit_to_core(core, "retiring", channel="test") for _ in range(2)]
    for s in sent:
        case = wait_settled(redis, s.ref)
        assert {d.state for d in case.deliveries.values()} == {DeliveryState.DELIVERED}
    ops = staff_client("olu", "", "operator")

    page = soup(ops.get(f"/ops/statements?month={MONTH}"))
    assert "This month reconciles" in text(page.select_one("#reconciled"))
    links = [a["href"] for a in page.select("#parties a")]
    assert f"/ops/statements/{MONTH}/operator" in links
    assert f"/ops/statements/{MONTH}/department:hmrc" in links

    nets = 0
    for link in links:
        statement = soup(ops.get(link))
        lines, total = _csv(ops, f"{link}.csv")
        assert _net(lines) == int(total["subtotal_pence"])  # the rows add up to the total
        shown = text(statement.select_one("#totals"))
        pounds = abs(int(total["subtotal_pence"]))
        assert f"£{pounds // 100:,}.{pounds % 100:02d}" in shown
        nets += int(total["subtotal_pence"])
    assert nets == 0  # what every party pays, another is paid

    hmrc = soup(ops.get(f"/ops/statements/{MONTH}/department:hmrc"))
    delivered = [r for r in _csv(ops, f"/ops/statements/{MONTH}/department:hmrc.csv")[0]]
    assert [r["count"] for r in delivered if r["kind"] == "delivery"] == ["2"]
    assert "contacts citizens did not have to make" in text(hmrc.select_one("#saved + p"))
    assert "Source:" in text(hmrc.select_one("#saved ~ p.govuk-body-s"))


def test_a_branch_manager_reads_their_branchs_statement(
    core: LifeEventRouter, staff_client: StaffClient
) -> None:
    sent = photocard_change(core)
    ann = staff_client("ann", HOME)
    record_identity(ann, sent, "123A")
    complete_task(ann, sent, "photo")
    meg = staff_client("meg", HOME, "manager")
    page = soup(meg.get("/counter/statement"))
    lines, total = _csv(meg, f"/counter/statement.csv?month={MONTH}")
    kinds = {r["kind"] for r in lines}
    assert {"identity_check", "photo"} <= kinds
    assert all(r["direction"] == "owed" for r in lines)  # a branch is paid for its work
    assert int(total["subtotal_pence"]) == _net(lines) > 0
    assert "Photo taken at a counter" in text(page.select_one("#lines"))
    assert ann.get("/counter/statement").status_code == 403  # a clerk: not theirs to read


def test_a_month_that_is_not_a_month_gets_a_clear_message(staff_client: StaffClient) -> None:
    ops = staff_client("olu", "", "operator")
    refused = ops.get("/ops/statements?month=December")
    assert refused.status_code == 400
    assert errors_of(soup(refused)) == ["Enter a month as a year and a month, like 2026-12"]
    assert ops.get("/ops/statements/2026-13/operator").status_code == 404
    assert ops.get(f"/ops/statements/{MONTH}/nobody").status_code == 404
    assert ops.get(f"/ops/statements/{MONTH}/nobody.csv").status_code == 404
