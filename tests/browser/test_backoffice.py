"""The back office in a real browser: an operator sees a department refusing everything
on /ops, the console updating by itself (htmx), and sends its failed deliveries again
with one button; a caseworker works the flagged case. Each page meets WCAG 2.2 AA by
axe-core, with JavaScript and without; the README's screenshots come from here."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from redis import Redis

from router.adapters.mocks import Faults, configure_faults
from router.assisted.staff import StaffStore
from router.cases import DeliveryState
from router.delivery.worker import Supervisor
from router.service import LifeEventRouter
from tests.browser.conftest import PageFactory
from tests.browser.helpers import VIEWPORT, assert_accessible, screenshot
from tests.support.processes import wait_settled
from tests.support.samples import submit_to_core

PASSWORD = "a long back office password"


def _sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/counter/sign-in")
    page.get_by_role("textbox", name="User name", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


@pytest.fixture
def outage(core: LifeEventRouter, redis: Redis, workers: Supervisor) -> list[str]:
    """Two retirements sent while HMRC refuses everything: two failed deliveries."""
    configure_faults(redis, "hmrc", Faults(permanent_rate=1.0))
    refs = [submit_to_core(core, "retiring", channel="test").ref for _ in range(2)]
    for ref in refs:
        assert wait_settled(redis, ref).deliveries["hmrc"].state == DeliveryState.FAILED
    return refs


def test_an_operator_sends_a_departments_failed_deliveries_again(
    live_server: str, new_page: PageFactory, redis: Redis, outage: list[str]
) -> None:
    StaffStore(redis).add("olu", PASSWORD, "", "operator")
    page = new_page(viewport=VIEWPORT)
    _sign_in(page, live_server, "olu")
    expect(page).to_have_url(f"{live_server}/ops")
    expect(page.get_by_role("heading", name="Operations console", level=1)).to_be_visible()
    hmrc = page.locator("#department-hmrc")
    expect(hmrc.locator("td").nth(6)).to_have_text("2")  # failed in the last hour
    assert_accessible(page, "the operations console")
    screenshot(page, "ops")

    configure_faults(redis, "hmrc", Faults())
    page.get_by_role(
        "button", name="Send again every failed delivery to HM Revenue and Customs"
    ).click()
    expect(page.get_by_text("2 failed deliveries are being sent again.")).to_be_visible()
    # The live part refreshes by itself once the workers have told HMRC.
    expect(page.get_by_text("No failed deliveries.")).to_be_visible(timeout=15_000)
    # Told in the last hour: on a later refresh of the live part than the one that
    # first showed no failed deliveries (CI once saw 0 for the 5 s default).
    expect(hmrc.locator("td").nth(5)).to_have_text("2", timeout=15_000)

    page.get_by_role("link", name="Statements", exact=True).click()
    expect(page.locator("#reconciled")).to_contain_text("This month reconciles")
    assert_accessible(page, "the monthly statements")


def test_the_console_works_without_javascript(
    live_server: str, new_page: PageFactory, redis: Redis, outage: list[str]
) -> None:
    StaffStore(redis).add("olu", PASSWORD, "", "operator")
    page = new_page(java_script_enabled=False, viewport=VIEWPORT)
    _sign_in(page, live_server, "olu")
    assert_accessible(page, "the operations console without JavaScript")
    configure_faults(redis, "hmrc", Faults())
    page.get_by_role("button", name="Send all 2 failed deliveries again").click()
    expect(page.get_by_text("2 failed deliveries are being sent again.")).to_be_visible()


def test_a_caseworker_works_a_flagged_report(
    live_server: str, new_page: PageFactory, redis: Redis, outage: list[str]
) -> None:
    StaffStore(redis).add("cas", PASSWORD, "", "caseworker")
    page = new_page(viewport=VIEWPORT)
    _sign_in(page, live_server, "cas")
    expect(page).to_have_url(f"{live_server}/casework")
    assert_accessible(page, "the flagged reports")
    page.get_by_role("table").get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="Organisations")).to_be_visible()
    assert_accessible(page, "a flagged report")
    screenshot(page, "casework-case")

    # Closing without a note is refused with a GOV.UK error that says what to do.
    page.get_by_role("button", name="Close the follow-up").click()
    expect(page.get_by_role("link", name="Enter a note saying what was done")).to_be_visible()
    assert_accessible(page, "a flagged report with an error")

    configure_faults(redis, "hmrc", Faults())
    page.get_by_role("button", name="Send again HM Revenue and Customs").click()
    expect(page.get_by_text("The delivery is being sent again.")).to_be_visible()
