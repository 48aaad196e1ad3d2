"""The counter is where people who cannot prove their identity online get it checked: a
report waiting for the reporter's identity waits at a branch, the clerk sees how we know
who reported it and what each department acts on, and the check releases what waited."""

from __future__ import annotations

from flask.testing import FlaskClient
from redis import Redis

from router import keys
from router.cases import DeliveryState
from router.service import LifeEventRouter
from router.trust import Confidence
from tests.support.counter import StaffClient, citizen_here, record_identity
from tests.support.pages import post_form, soup, text
from tests.support.samples import submit_to_core


def _page(browser: FlaskClient, path: str) -> str:
    response = browser.get(path)
    assert response.status_code == 200
    return text(soup(response).select_one("main"))


def test_a_clerks_identity_check_releases_what_waited_for_the_reporters_identity(
    core: LifeEventRouter, redis: Redis, staff_client: StaffClient
) -> None:
    sent = submit_to_core(core, "moving_house", confidence=None, postcode="CF10 1BH")
    case = core.case(sent.ref)
    assert case.branch and case.counter_tasks == ["identity_check"]
    clerk = staff_client("ann", case.branch)

    before = _page(clerk, sent.page)
    assert "How we know who reported it" in before
    assert "None (P0): nobody has proved who reported it" in before
    assert "Acts on: P2. Waiting for the reporter’s identity" in before
    assert "Acts on: P1. Waiting for the reporter’s identity" in before  # the council
    assert "Waiting for proof" in before

    assert record_identity(clerk, sent, "123A").status_code in (200, 302, 303)
    case = core.case(sent.ref)
    assert case.evidence.confidence is Confidence.P2
    assert {d.state for d in case.deliveries.values()} == {DeliveryState.QUEUED}
    for department in case.deliveries:
        assert redis.zscore(keys.pending(department), sent.ref) is not None
    assert redis.zscore(keys.branch_queue(case.branch), sent.ref) is None

    after = _page(clerk, sent.page)
    assert "Medium (P2)" in after
    assert "Identity checked at" in after and "Passport" in after
    assert "123A" in after and "Waiting for proof" not in after


def test_a_death_shows_its_registration_as_confirmed(
    core: LifeEventRouter, staff_client: StaffClient
) -> None:
    sent = submit_to_core(core, "death", confidence=None)
    assert not core.case(sent.ref).at_counter, "a confirmed death waits for no counter"
    clerk = staff_client("ann")
    # The citizen came to the counter anyway: the clerk serves them there.
    post_form(clerk, f"{sent.page}/serve", citizen_here(core, sent))
    page = _page(clerk, sent.page)
    assert "Registration Confirmed" in " ".join(page.split())
    assert "Registration confirmed by the register" in page
    assert "Acts on: P0+registration" in page
