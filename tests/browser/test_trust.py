"""Proving who you are, in a real Chromium, with real workers: a move that DVLA acts on
only at medium confidence (P2) waits, until the citizen signs in online with the
development identity provider (through its own login form), or a clerk checks their
identity at the Post Office counter. Then DVLA is told, and the status page says how we
know it is them.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect
from redis import Redis

from channels.presenters import STATE_LABELS, WAITING_LABELS
from router.assisted.staff import StaffStore
from router.cases import DeliveryState
from router.delivery.worker import Supervisor
from router.dev_identity import LABEL
from router.service import LifeEventRouter
from tests.browser.conftest import PageFactory
from tests.browser.helpers import VIEWPORT, assert_accessible, screenshot
from tests.support.samples import submit_to_core
from tests.support.sent import Sent

PASSWORD = "a long counter password"
TOLD = STATE_LABELS[DeliveryState.DELIVERED]
WAITING = WAITING_LABELS["identity"]
DELIVERY_SECONDS = 15


def anonymous_move(core: LifeEventRouter) -> Sent:
    """The sample move, sent online without signing in: every department waits."""
    sent = submit_to_core(core, "moving_house", confidence=None)
    case = core.case(sent.ref)
    assert case.deliveries["dvla"].state == DeliveryState.WAITING
    return Sent(sent.ref, sent.secret, case.branch)


def until_told(page: Page, department: str) -> None:
    """Reload (the page also polls by itself while anything is queued) until told."""
    tag = page.locator(f"#status-{department} .govuk-tag")
    deadline = time.monotonic() + DELIVERY_SECONDS
    while tag.inner_text().strip() != TOLD:
        assert time.monotonic() < deadline, f"{department} not told: {tag.inner_text()!r}"
        page.wait_for_timeout(300)
        page.reload()


def how_we_know(page: Page) -> list[str]:
    items = page.locator("#how-we-know + ul li")
    return [" ".join(t.split()) for t in items.all_inner_texts()]


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_citizen_proves_their_identity_online_and_dvla_is_told(
    live_server: str,
    workers: Supervisor,
    core: LifeEventRouter,
    new_page: PageFactory,
    javascript: bool,
) -> None:
    sent = anonymous_move(core)
    page = new_page(java_script_enabled=javascript, viewport=VIEWPORT)
    shown = page.goto(f"{live_server}{sent.status_link}")
    assert shown is not None and shown.status == 200
    expect(page.locator("#status-dvla .govuk-tag")).to_have_text(WAITING)
    assert how_we_know(page) == ["Nobody has proved who sent this report yet"]
    expect(page.get_by_role("main")).to_contain_text(
        "This service uses a development identity provider, not GOV.UK One Login."
    )
    assert_accessible(page, "status page waiting for identity")
    if javascript:
        screenshot(page, "status-waiting-for-identity")

    page.get_by_role("button", name="Prove your identity online").click()
    # The development provider's own authorization form: sign in as the sample reporter.
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    page.get_by_placeholder("sub").fill("sample-moving_house")
    page.get_by_role("button", name="Authorize", exact=True).click()

    expect(page).to_have_url(f"{live_server}/status/{sent.display}#identity")
    expect(page.locator(".govuk-notification-banner")).to_contain_text("You proved your identity.")
    expect(page.get_by_role("button", name="Prove your identity online")).to_have_count(0)
    until_told(page, "dvla")
    said = how_we_know(page)
    assert len(said) == 1 and said[0].startswith("You proved your identity online (medium")
    assert LABEL in said[0]
    assert_accessible(page, "status page after signing in")


def test_a_clerk_checks_the_identity_at_the_counter_and_dvla_is_told(
    live_server: str,
    workers: Supervisor,
    core: LifeEventRouter,
    redis: Redis,
    new_page: PageFactory,
) -> None:
    sent = anonymous_move(core)
    assert sent.branch, "a report waiting for identity waits at a branch too"
    citizen = new_page()
    citizen.goto(f"{live_server}{sent.status_link}")
    expect(citizen.locator("#status-dvla .govuk-tag")).to_have_text(WAITING)
    post_office = citizen.locator("#post-office ~ .govuk-inset-text")
    expect(post_office).to_contain_text(sent.branch_name)

    StaffStore(redis).add("clerk.trust", PASSWORD, sent.branch, "clerk")
    clerk = new_page()
    clerk.goto(f"{live_server}/counter")
    clerk.get_by_role("textbox", name="User name", exact=True).fill("clerk.trust")
    clerk.get_by_label("Password", exact=True).fill(PASSWORD)
    clerk.get_by_role("button", name="Sign in", exact=True).click()
    clerk.get_by_role("table").get_by_role("link", name=sent.display, exact=True).click()
    clerk.get_by_role("radio", name="Passport", exact=True).check()
    clerk.get_by_role("textbox", name="Last 4 characters of the document number").fill("123A")
    clerk.get_by_role("button", name="Record identity check", exact=True).click()
    expect(clerk.get_by_role("alert")).to_contain_text("Identity check recorded.")

    citizen.reload()
    until_told(citizen, "dvla")
    said = how_we_know(citizen)
    assert len(said) == 1 and said[0].startswith(
        f"Your identity was checked at {sent.branch_name} (medium confidence) on "
    ), said
    expect(citizen.get_by_role("button", name="Prove your identity online")).to_have_count(0)
