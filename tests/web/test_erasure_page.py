"""Issue 14: once everything is final, the citizen can ask from the status page for their
details to be deleted now; after any erasure the page says plainly what was deleted and
when, and what is kept until when."""

from __future__ import annotations

import time

from redis import Redis

from router import keys
from router.cases import RETENTION_LOOK_SECONDS, DeliveryState
from router.retention import Retention
from router.service import LifeEventRouter
from router.settings import RetentionPolicy
from tests.support.pages import PageClient, text
from tests.support.samples import submit_to_core
from tests.support.sent import Sent


def _finished(core: LifeEventRouter) -> Sent:
    sent = submit_to_core(core, "moving_house")
    for name in core.case(sent.ref).deliveries:
        core.store.mark(sent.ref, name, DeliveryState.DELIVERED, sent=True)
    return sent


def _answers_held(redis: Redis, ref: str) -> int:
    return sum(k.startswith(b"a:") for k in redis.hkeys(keys.case(ref)))


def test_a_case_with_work_pending_offers_no_deletion_and_refuses_one(
    client_request: PageClient, core: LifeEventRouter, redis: Redis
) -> None:
    sent = submit_to_core(core, "moving_house")  # no workers: its deliveries are queued
    page = client_request.get(sent.status_link, follow_redirects=True)
    assert page.select_one("#delete-link") is None
    refused = client_request.get(f"/status/{sent.display}/delete", _expected_status=409)
    assert "still working on your report" in text(refused.select_one("main"))
    assert refused.select_one("#delete-details") is None
    assert _answers_held(redis, sent.ref)


def test_the_citizen_deletes_their_details_and_the_page_says_what_went_and_what_stays(
    client_request: PageClient, core: LifeEventRouter, redis: Redis
) -> None:
    sent = _finished(core)
    page = client_request.get(sent.status_link, follow_redirects=True)
    link = page.select_one("#delete-link")
    assert link is not None and link["href"] == f"/status/{sent.display}/delete"
    confirm = client_request.get(str(link["href"]))
    assert text(confirm.select_one("h1")) == "Delete your details"
    assert "You cannot undo this" in text(confirm.select_one(".govuk-warning-text"))
    client_request.post(
        f"/status/{sent.display}/delete", _expected_redirect=f"/status/{sent.display}"
    )
    assert _answers_held(redis, sent.ref) == 0
    assert [e["by"] for e in core.retention.erasures(sent.ref)] == ["citizen"]
    after = client_request.get(f"/status/{sent.display}")
    banner = after.select_one("#deleted")
    assert banner is not None and "govuk-notification-banner--success" in banner["class"]
    said = text(banner)
    assert "We deleted your details on " in said and "We keep a record" in said
    assert after.select_one("#delete-link") is None
    values = [text(v) for v in after.select("#what-we-shared ~ dl .govuk-summary-list__value")]
    assert values and set(values) == {"Deleted"}
    # Asking again does nothing more.
    client_request.get(
        f"/status/{sent.display}/delete", _expected_redirect=f"/status/{sent.display}"
    )
    assert len(core.retention.erasures(sent.ref)) == 1


def test_a_stranger_cannot_delete_a_report(
    client_request: PageClient, core: LifeEventRouter, redis: Redis
) -> None:
    sent = _finished(core)
    client_request.get(f"/status/{sent.display}/delete", _expected_status=404)
    response = client_request.client.post(f"/status/{sent.display}/delete", data={})
    assert response.status_code in (400, 404)
    assert _answers_held(redis, sent.ref)


def test_after_the_purge_the_page_says_when_the_details_were_deleted(
    client_request: PageClient, core: LifeEventRouter, redis: Redis
) -> None:
    sent = _finished(core)
    clock = time.time() + RETENTION_LOOK_SECONDS + 1
    retention = Retention(redis, core.store, RetentionPolicy(), lambda: clock)
    retention.purge()
    clock += 29 * 86400
    assert retention.purge().erased == 1
    page = client_request.get(sent.status_link, follow_redirects=True)
    banner = page.select_one("#deleted")
    assert banner is not None and "govuk-notification-banner--success" not in banner["class"]
    assert "We deleted your details on " in text(banner)


def test_the_page_is_in_welsh_too(
    client_request: PageClient, core: LifeEventRouter, redis: Redis
) -> None:
    sent = _finished(core)
    core.retention.erase(sent.ref, "citizen")
    page = client_request.get(sent.status_link + "&lang=cy", follow_redirects=True)
    banner = page.select_one("#deleted")
    assert banner is not None and "We deleted" not in text(banner)
