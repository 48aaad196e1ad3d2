"""The caseworkers' screens (/casework): the flagged cases, and a case worked to the end
(sent again, the citizen contacted through their own notifications, moved to another
branch, closed with a note), each action audited, nothing personal on the page, and the
citizen's status page saying what was done."""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from channels.presenters import flag_reason
from router import keys
from router.adapters.mocks import Faults, configure_faults
from router.assisted import audit, branches
from router.cases import (
    FLAG_DEPARTMENT_REMOVED,
    FLAG_REASONS,
    FLAG_REFUSED_BY_REGISTER,
    DeliveryState,
)
from router.delivery.notices import Outbox
from router.delivery.worker import Supervisor
from router.service import LifeEventRouter
from tests.support.counter import CF11, OTHER, StaffClient, photocard_change
from tests.support.pages import csrf_token, errors_of, redirected_to, soup, text
from tests.support.processes import wait_settled
from tests.support.samples import answers_for, submit_to_core

EMAIL = "casework.test@example.com"


def _post(browser: FlaskClient, page: str, action: str, **data: str) -> object:
    token = csrf_token(soup(browser.get(page)))
    return browser.post(f"{page}/{action}", data={"csrf_token": token, **data})


def _outbox_names(redis: Redis, ref: str, want: str, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        names = [m["name"] for m in Outbox(redis).read(ref)]
        if want in names or time.monotonic() > deadline:
            return names
        time.sleep(0.1)


def test_a_caseworker_works_a_flagged_case_to_the_end(
    core: LifeEventRouter,
    redis: Redis,
    workers: Supervisor,
    staff_client: StaffClient,
    client: FlaskClient,
) -> None:
    configure_faults(redis, "hmrc", Faults(permanent_rate=1.0))
    sent = submit_to_core(core, "retiring", channel="test", contact_email=EMAIL)
    assert wait_settled(redis, sent.ref).deliveries["hmrc"].state == DeliveryState.FAILED
    cas = staff_client("cas", "", "caseworker")

    queue = soup(cas.get("/casework"))
    (row,) = [r for r in queue.select("tbody tr") if sent.display in text(r)]
    assert "a department could not be told online" in text(row)
    page = f"/casework/cases/{sent.display}"
    assert row.select_one("a")["href"] == page

    opened = cas.get(page)
    body = opened.get_data(as_text=True)
    # Nothing of the report's answers, nor the citizen's address for messages.
    answers = answers_for("retiring", contact_email=EMAIL)
    shown = [n for n, v in answers.items() if isinstance(v, str) and len(v) > 3 and v in body]
    assert shown == [], shown
    assert "Yes, by the details they gave (not shown)" in body

    # Send HMRC again, once it is back.
    configure_faults(redis, "hmrc", Faults())
    assert redirected_to(_post(cas, page, "replay/hmrc")) == page
    assert wait_settled(redis, sent.ref).deliveries["hmrc"].state == DeliveryState.DELIVERED

    # Contact the citizen: a fixed message, by the workers, once.
    assert redirected_to(_post(cas, page, "contact", kind="resent")) == page
    assert "casework_resent:0" in _outbox_names(redis, sent.ref, "casework_resent:0")
    messages = [m for m in Outbox(redis).read(sent.ref) if m["name"].startswith("casework")]
    assert len(messages) == 1 and EMAIL not in str(messages)

    # The replay took the flag off (nothing failed is left); a caseworker can still
    # flag-close only a flagged case: flag it again for the close below.
    core.store.flag(sent.ref, "a department could not be told online")
    refused = _post(cas, page, "close", note="  ")
    assert refused.status_code == 400
    assert errors_of(soup(refused)) == ["Enter a note saying what was done"]
    assert redirected_to(_post(cas, page, "close", note="Rang HMRC; sent again")) == "/casework"
    assert sent.ref not in core.store.flagged()
    assert "Rang HMRC; sent again" in text(soup(cas.get(page)).select_one("#notes ~ div"))
    # The note is sealed in the case, not readable in Redis, and not in the audit.
    assert b"Rang HMRC" not in redis.hget(keys.case(sent.ref), "casework_notes")

    actions = [e.action for e in audit.for_case(redis, sent.ref)]
    assert actions == [
        "viewed_flagged_case",  # opened from the queue
        "viewed_flagged_case",  # each page load after an action is an opening too
        "replayed_delivery",
        "viewed_flagged_case",
        "contacted_citizen",
        "viewed_flagged_case",
        "viewed_flagged_case",
        "closed_follow_up",
        "viewed_flagged_case",
    ]
    assert all("Rang" not in e.detail for e in audit.for_operations(redis))

    status = soup(client.get(sent.status_link, follow_redirects=True))
    team = text(status.select_one("#our-team + ul"))
    assert "we tried again to tell HM Revenue and Customs" in team
    assert "a caseworker sent you a message" in team
    assert "a caseworker finished following up your report" in team


def test_a_caseworker_moves_a_report_to_a_branch_that_can_do_its_tasks(
    core: LifeEventRouter, redis: Redis, staff_client: StaffClient, client: FlaskClient
) -> None:
    sent = photocard_change(core, postcode=CF11)
    before = core.case(sent.ref).branch
    cas = staff_client("cas", "", "caseworker")
    page = f"/casework/cases/{sent.display}"
    choices = [o["value"] for o in soup(cas.get(page)).select("#branch option")]
    assert OTHER in choices and before in choices
    assert "cardiff-canton" not in choices  # it takes no photos

    refused = _post(cas, page, "branch", branch="cardiff-canton")
    assert refused.status_code == 400
    assert errors_of(soup(refused)) == ["Choose a branch from the list"]
    assert redirected_to(_post(cas, page, "branch", branch=OTHER)) == page
    assert core.case(sent.ref).branch == OTHER
    assert redis.zscore(keys.branch_queue(OTHER), sent.ref) is not None
    assert redis.zscore(keys.branch_queue(before), sent.ref) is None
    (moved,) = [e for e in audit.for_case(redis, sent.ref) if e.action == "reassigned_branch"]
    assert (moved.staff, moved.detail) == ("cas", OTHER)
    status = soup(client.get(sent.status_link, follow_redirects=True))
    assert f"a caseworker moved your report to {branches.branch(OTHER).name}" in text(
        status.select_one("#our-team + ul")
    )


def test_a_citizen_without_contact_details_cannot_be_sent_a_message(
    core: LifeEventRouter, redis: Redis, staff_client: StaffClient
) -> None:
    sent = submit_to_core(core, "retiring", channel="test", contact_email=None, contact_mobile=None)
    cas = staff_client("cas", "", "caseworker")
    page = f"/casework/cases/{sent.display}"
    assert soup(cas.get(page)).select_one("#contact ~ form") is None
    refused = _post(cas, page, "contact", kind="looking")
    assert refused.status_code == 400
    assert errors_of(soup(refused)) == ["The citizen gave no email address or mobile number"]
    assert core.case(sent.ref).casework_messages == []
    unknown = _post(cas, page, "contact", kind="anything")
    assert unknown.status_code == 400


def test_a_citizen_who_asked_for_help_is_flagged_until_a_counter_gives_it(
    core: LifeEventRouter, redis: Redis, staff_client: StaffClient
) -> None:
    sent = submit_to_core(core, "moving_house", channel="test", help_requested=True)
    case = core.case(sent.ref)
    assert case.branch and case.flagged == "the citizen asked for help"
    cas = staff_client("cas", "", "caseworker")
    assert sent.display in text(soup(cas.get("/casework")).select_one("tbody"))

    clerk = staff_client("ann", case.branch)
    page = f"/counter/cases/{sent.display}"
    token = csrf_token(soup(clerk.get(page)))
    assert redirected_to(clerk.post(f"{page}/tasks/help", data={"csrf_token": token})) == page
    assert core.case(sent.ref).flagged == ""
    assert sent.ref not in core.store.flagged()


def test_why_a_report_is_flagged_is_given_in_welsh_on_welsh_pages(
    core: LifeEventRouter, staff_client: StaffClient
) -> None:
    sent = submit_to_core(core, "moving_house", channel="test", help_requested=True)
    cas = staff_client("cas", "", "caseworker")
    queue = text(soup(cas.get("/casework?lang=cy")).select_one("tbody"))
    assert "gofynnodd y dinesydd am help" in queue
    assert "asked for help" not in queue
    page = soup(cas.get(f"/casework/cases/{sent.display}?lang=cy"))
    assert text(page.select_one("#flag")) == "gofynnodd y dinesydd am help"


def test_every_reason_for_a_flag_reads_in_welsh(app: Flask) -> None:
    stored = [
        *FLAG_REASONS,
        FLAG_REFUSED_BY_REGISTER % {"field": "entry_number"},
        FLAG_DEPARTMENT_REMOVED % {"department": "hmrc"},
    ]
    with app.test_request_context("/casework?lang=cy"):
        for reason in stored:
            welsh = flag_reason(reason)
            assert welsh and welsh != reason, reason
        assert "entry_number" in flag_reason(stored[-2])
        assert "Cyllid a Thollau EF" in flag_reason(stored[-1])
    with app.test_request_context("/casework?lang=en"):
        assert [flag_reason(r) for r in stored][:-1] == stored[:-1]
        assert flag_reason("an older reason of another shape") == "an older reason of another shape"
