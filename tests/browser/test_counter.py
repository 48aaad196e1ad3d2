"""The Post Office counter in a real Chromium, worked as a clerk works it.

A change of name with a photocard licence is sent through the core, so DVLA waits for an
identity check and a photo at the nearest branch that takes photos. A clerk of that
branch signs in, finds the report in the branch queue (and by its reference, typed as a
citizen reads it out), checks it is the right person, records the identity check and the
photo, and real workers then tell DVLA; the citizen's status page says so and names the
branch. Every step finds what it uses by its role and its label, and axe-core checks every
counter page of the journey, error states included, in English and in Welsh.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Locator, Page, Response, expect
from redis import Redis

from channels.presenters import COUNTER_STATE_LABELS, STATE_LABELS, TASK_DONE_WORDS
from router import reference
from router.assisted import branches
from router.assisted.desk import DOCUMENTS
from router.assisted.staff import StaffStore
from router.cases import DeliveryState
from router.catalogue import EVENTS
from router.delivery.worker import Supervisor
from router.service import LifeEventRouter
from tests.browser.conftest import PageFactory
from tests.browser.helpers import VIEWPORT, assert_accessible, screenshot, titles, translate
from tests.support.samples import sample
from tests.support.sent import Sent

PASSWORD = "a long counter password"
WRONG_PASSWORD = "not the right password"
TOLD = STATE_LABELS[DeliveryState.DELIVERED]
DELIVERY_SECONDS = 15
EVENT = "change_of_name"
ON_BEHALF = "moving_house"
LAST_FOUR = "123A"
CHECK_MESSAGE = "That reference number has a mistake in it: check each character with the citizen"
LAST_FOUR_MESSAGE = "Enter the last 4 characters of the document number, like 123A"
WRONG_SIGN_IN = "Enter a correct user name and password"
NOT_CONFIRMED = "Confirm the citizen is at your counter, or go back to your queue"
PRESENT = "The citizen is here at my counter and I am serving them"
# A Cardiff branch: never the nearest to the Bristol sample's postcode.
OTHER_BRANCH = "cardiff-queen-street"


# --- the case and the staff ---------------------------------------------------------------


def send_photocard_change(core: LifeEventRouter) -> Sent:
    """The change_of_name sample (a photocard licence), sent as the online service does."""
    data = sample(EVENT)
    assert data["answers"]["driving_licence"] == "photocard"
    result = core.submit(EVENT, data["answers"], data["consent"])
    case = core.case(result.ref)
    assert case.branch, "the case waits at no branch"
    assert {"identity_check", "photo"} <= set(case.counter_tasks), case.counter_tasks
    assert branches.branch(case.branch).offers({"identity_check", "photo"})
    assert [w.ref for w in core.desk.branch_queue(case.branch)] == [result.ref]
    return Sent(result.ref, result.secret, case.branch)


def add_staff(redis: Redis, username: str, branch: str, role: str = "clerk") -> str:
    StaffStore(redis).add(username, PASSWORD, branch, role)
    return username


def typo_of(ref: str) -> str:
    """The displayed reference with one character of its body changed: the check
    character catches it."""
    for i in range(len(ref) - 1):
        for char in reference.ALPHABET:
            typo = ref[:i] + char + ref[i + 1 :]
            if char != ref[i] and reference.mistake(typo) == "check":
                return reference.display(typo)
    raise AssertionError(f"no single-character typo of {ref} fails the check character")


# --- a clerk in the browser ---------------------------------------------------------------


@dataclass
class Audits:
    """axe-core on each page shown; every page is checked before the test fails, so one
    run lists every page with a violation."""

    checked: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def check(self, page: Page, label: str) -> None:
        self.checked.append(label)
        try:
            assert_accessible(page, label)
        except AssertionError as failure:
            self.failures.append(str(failure))

    def assert_none_failed(self) -> None:
        assert not self.failures, (
            f"{len(self.failures)} of {len(self.checked)} pages fail WCAG 2.2 AA:\n\n"
            + "\n\n".join(self.failures)
        )


@dataclass
class Clerk:
    """Drives the counter with a page, in one language."""

    page: Page
    base: str
    lang: str = "en"

    def _(self, msgid: str, **values: str) -> str:
        text = translate(self.lang, msgid)
        return text % values if values else text

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def open(self, path: str) -> Response:
        """The first page of a session: in Welsh, ask for it with ?lang=cy (it sticks)."""
        query = "" if self.lang == "en" else f"?lang={self.lang}"
        response = self.page.goto(self.url(path + query))
        assert response is not None
        return response

    def expect_path(self, path: str) -> None:
        expect(self.page).to_have_url(re.compile("^" + re.escape(self.url(path)) + r"(\?.*)?$"))

    def h1(self, msgid: str, **values: str) -> None:
        heading = self.page.get_by_role("heading", level=1)
        expect(heading).to_have_count(1)
        expect(heading).to_have_text(self._(msgid, **values))

    def audit(self, label: str, audits: Audits) -> None:
        expect(self.page.locator("html")).to_have_attribute("lang", self.lang)
        audits.check(self.page, f"{label} ({self.lang})")

    def button(self, msgid: str) -> Locator:
        return self.page.get_by_role("button", name=self._(msgid), exact=True)

    def error_summary(self, message: str) -> None:
        summary = self.page.locator(".govuk-error-summary")
        expect(summary).to_be_visible()
        expect(summary.get_by_role("heading")).to_have_text(self._("There is a problem"))
        expect(summary.get_by_role("link", name=self._(message), exact=True)).to_be_visible()
        title = re.escape(self._("Error:"))
        expect(self.page).to_have_title(re.compile(f"^{title} "))

    # signing in

    def user_name(self) -> Locator:
        return self.page.get_by_role("textbox", name=self._("User name"), exact=True)

    def password(self) -> Locator:
        # A password box has no ARIA role (it is a textbox only while shown): by its label.
        return self.page.get_by_label(self._("Password"), exact=True)

    def on_sign_in(self, then: str) -> None:
        """The sign-in page, to come back to ``then`` (path and query) afterwards."""
        self.expect_path("/counter/sign-in")
        query = parse_qs(urlsplit(self.page.url).query)
        assert query.get("next") == [then], query
        self.h1("Sign in to the counter service")

    def sign_in(self, username: str, password: str = PASSWORD) -> Response:
        self.user_name().fill(username)
        self.password().fill(password)
        with self.page.expect_response(lambda r: r.request.method == "POST") as posted:
            self.button("Sign in").click()
        return posted.value

    # the queue and the case

    def queue_link(self, sent: Sent) -> Locator:
        return self.page.get_by_role("table").get_by_role("link", name=sent.display, exact=True)

    def on_case(self, sent: Sent) -> None:
        self.expect_path(f"/counter/cases/{sent.display}")
        self.h1("Report %(ref)s", ref=sent.display)

    def check_the_person(self) -> Locator:
        """The list under "Check it is the right person"."""
        heading = self.page.get_by_role(
            "heading", name=self._("Check it is the right person"), exact=True
        )
        return heading.locator("xpath=following-sibling::dl[1]")

    def record_identity(self, document: str, last_four: str) -> Response:
        self.page.get_by_role("radio", name=self._(DOCUMENTS[document]), exact=True).check()
        box = self.page.get_by_role(
            "textbox", name=self._("Last 4 characters of the document number"), exact=True
        )
        box.fill(last_four)
        with self.page.expect_response(lambda r: r.request.method == "POST") as posted:
            self.button("Record identity check").click()
        return posted.value

    def complete(self, task: str) -> None:
        with self.page.expect_response(lambda r: r.request.method == "POST") as posted:
            self.button(TASK_DONE_WORDS[task]).click()
        assert posted.value.status in (302, 303), f"{posted.value.url}: {posted.value.status}"
        self.flashed(TASK_DONE_WORDS[task])

    def flashed(self, msgid: str) -> None:
        """The green banner after an action says what was done."""
        banner = self.page.get_by_role("alert")
        message = f"no banner saying {self._(msgid)!r} on {self.page.url}"
        expect(banner, message).to_contain_text(self._(msgid))

    def delivery_tag(self, department: str) -> Locator:
        title = self.page.get_by_text(self._(titles()[department]), exact=True)
        return self.page.locator(".govuk-task-list__item").filter(has=title).locator(".govuk-tag")


@pytest.fixture
def page(new_page: PageFactory) -> Page:
    """A page with JavaScript on, at the screenshots' size."""
    return new_page(viewport=VIEWPORT)


# --- 1. the whole counter journey, with real workers ----------------------------------------


def test_a_clerk_checks_identity_takes_the_photo_and_dvla_is_told(
    live_server: str,
    workers: Supervisor,
    core: LifeEventRouter,
    redis: Redis,
    page: Page,
    new_page: PageFactory,
) -> None:
    sent = send_photocard_change(core)
    answers = sample(EVENT)["answers"]
    clerk = Clerk(page, live_server)
    username = add_staff(redis, "clerk.one", sent.branch)

    # Every counter page needs a signed-in member of staff.
    response = clerk.open("/counter")
    assert response.status == 200
    clerk.on_sign_in(then="/counter")

    # The password can be shown and hidden again.
    clerk.password().fill(PASSWORD)
    expect(clerk.password()).to_have_attribute("type", "password")
    show = page.get_by_role("button", name="Show password", exact=True)
    expect(show).to_be_visible()
    show.click()
    expect(clerk.password()).to_have_attribute("type", "text")
    page.get_by_role("button", name="Hide password", exact=True).click()
    expect(clerk.password()).to_have_attribute("type", "password")

    clerk.sign_in(username)
    clerk.expect_path("/counter")
    clerk.h1("Branch queue")
    expect(page.get_by_role("main")).to_contain_text(sent.branch_name)
    link = clerk.queue_link(sent)
    expect(link).to_be_visible()
    row = page.get_by_role("row").filter(
        has=page.get_by_role("link", name=sent.display, exact=True)
    )
    expect(row).to_contain_text(EVENTS[EVENT].title)
    screenshot(page, "counter-queue")
    link.click()

    # The right person: names and date of birth, never the NI or licence number.
    clerk.on_case(sent)
    person = clerk.check_the_person()
    expect(person).to_be_visible()
    event = EVENTS[EVENT]
    keys = [k.strip() for k in person.locator("dt").all_inner_texts()]
    for name in ("previous_full_name", "full_name", "date_of_birth"):
        assert event.label(name) in keys, keys
    for name in ("nino", "driving_licence_number"):
        assert event.label(name) not in keys, keys
    expect(person).to_contain_text(answers["previous_full_name"])
    expect(person).to_contain_text(answers["full_name"])
    expect(person).to_contain_text("8 April 1992")  # 1992-04-08
    html = re.sub(r"\s", "", page.content()).upper()
    for secret in (answers["nino"], answers["driving_licence_number"]):
        assert re.sub(r"\s", "", secret).upper() not in html, f"{secret} shown to the clerk"
    expect(clerk.delivery_tag("dvla")).to_have_text(COUNTER_STATE_LABELS[DeliveryState.ASSISTED])
    screenshot(page, "counter-case")

    # The identity check, then the photo.
    response = clerk.record_identity("passport", LAST_FOUR)
    assert response.status in (302, 303), response.status
    clerk.on_case(sent)
    clerk.flashed("Identity check recorded.")
    expect(page.get_by_role("main")).to_contain_text(
        f"Identity document seen: Passport ending {LAST_FOUR}."
    )
    clerk.complete("photo")
    clerk.on_case(sent)
    expect(page.get_by_role("main")).to_contain_text(
        "Nothing is waiting for the counter on this report."
    )

    # A worker tells DVLA: reload until the tag says so.
    deadline = time.monotonic() + DELIVERY_SECONDS
    tag = clerk.delivery_tag("dvla")
    while tag.inner_text().strip() != TOLD:
        assert time.monotonic() < deadline, (
            f"DVLA not told {DELIVERY_SECONDS}s after the photo: {tag.inner_text()!r}"
        )
        page.wait_for_timeout(500)
        page.reload()
    expect(tag).to_have_text(TOLD)

    # Nothing more waits at the counter: the report has left the branch queue.
    page.get_by_role("link", name="Branch queue", exact=True).click()
    clerk.h1("Branch queue")
    expect(clerk.queue_link(sent)).to_have_count(0)

    # The citizen, in a browser of their own, sees DVLA told and what the branch did.
    citizen = new_page(viewport=VIEWPORT)
    shown = citizen.goto(f"{live_server}/status/{sent.display}?s={sent.secret}")
    assert shown is not None and shown.status == 200
    expect(citizen.get_by_role("heading", level=1)).to_have_text("Progress of your report")
    expect(citizen.locator("#status-dvla .govuk-tag")).to_have_text(TOLD)
    post_office = citizen.get_by_role("heading", name="At the Post Office", exact=True)
    expect(post_office).to_be_visible()
    done_there = post_office.locator("xpath=following-sibling::ul[1]")
    expect(done_there).to_contain_text(sent.branch_name)
    expect(done_there).to_contain_text(TASK_DONE_WORDS["photo"])

    # The branch's manager reads the audit of all this.
    manager = Clerk(new_page(viewport=VIEWPORT), live_server)
    add_staff(redis, "manager.one", sent.branch, role="manager")
    manager.open("/counter/audit")
    manager.on_sign_in(then="/counter/audit")
    manager.sign_in("manager.one")
    manager.expect_path("/counter/audit")
    manager.h1("Branch audit")
    table = manager.page.get_by_role("table")
    expect(table).to_contain_text("Recorded an identity check")
    expect(table).to_contain_text("Completed a task")
    expect(table).to_contain_text(sent.display)
    screenshot(manager.page, "counter-audit")


# --- 2. finding a report by its reference ----------------------------------------------------


def test_find_a_report_as_the_citizen_reads_its_reference_out(
    live_server: str, core: LifeEventRouter, redis: Redis, page: Page
) -> None:
    sent = send_photocard_change(core)
    clerk = Clerk(page, live_server)
    username = add_staff(redis, "clerk.two", sent.branch)
    clerk.open("/counter/find")
    clerk.on_sign_in(then="/counter/find")
    clerk.sign_in(username)
    clerk.expect_path("/counter/find")
    clerk.h1("Find a report")
    box = page.get_by_role("textbox", name="Reference number", exact=True)

    # One character wrong: the check character catches it.
    typo = typo_of(sent.ref)
    box.fill(typo)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        clerk.button("Find report").click()
    assert posted.value.status == 400
    clerk.expect_path("/counter/find")
    clerk.error_summary(CHECK_MESSAGE)
    expect(box).to_have_accessible_description(re.compile(re.escape(CHECK_MESSAGE)))
    page.locator(".govuk-error-summary").get_by_role("link", name=CHECK_MESSAGE).click()
    expect(box).to_be_focused()

    # In lower case, with spaces: found.
    spoken = sent.display.lower().replace("-", " ")
    box.fill(spoken)
    clerk.button("Find report").click()
    clerk.on_case(sent)


# --- 3. every counter page is accessible, in English and in Welsh ----------------------------


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_every_counter_page_is_accessible(
    live_server: str,
    core: LifeEventRouter,
    redis: Redis,
    page: Page,
    new_page: PageFactory,
    lang: str,
) -> None:
    sent = send_photocard_change(core)
    clerk = Clerk(page, live_server, lang=lang)
    audits = Audits()
    username = add_staff(redis, "clerk.home", sent.branch)
    assert sent.branch != OTHER_BRANCH
    add_staff(redis, "clerk.away", OTHER_BRANCH)
    add_staff(redis, "manager.home", sent.branch, role="manager")

    # Sign in: first with a wrong password.
    clerk.open("/counter")
    first = "/counter" if lang == "en" else f"/counter?lang={lang}"
    clerk.on_sign_in(then=first)
    clerk.audit("sign in", audits)
    assert clerk.sign_in(username, WRONG_PASSWORD).status == 400
    clerk.error_summary(WRONG_SIGN_IN)
    clerk.audit("sign in, with an error", audits)
    assert clerk.sign_in(username).status in (302, 303)

    clerk.expect_path("/counter")
    clerk.h1("Branch queue")
    expect(clerk.queue_link(sent)).to_be_visible()
    clerk.audit("branch queue", audits)

    # Find a report, with an error first.
    page.get_by_role("link", name=clerk._("Find a report"), exact=True).click()
    clerk.h1("Find a report")
    clerk.audit("find a report", audits)
    box = page.get_by_role("textbox", name=clerk._("Reference number"), exact=True)
    box.fill(typo_of(sent.ref))
    clerk.button("Find report").click()
    clerk.error_summary(CHECK_MESSAGE)
    clerk.audit("find a report, with an error", audits)
    box.fill(sent.display)
    clerk.button("Find report").click()

    # The case: before, with an error, after.
    clerk.on_case(sent)
    expect(clerk.check_the_person()).to_be_visible()
    clerk.audit("case", audits)
    assert clerk.record_identity("passport", "12").status == 400
    clerk.error_summary(LAST_FOUR_MESSAGE)
    clerk.audit("case, with an error", audits)
    clerk.record_identity("passport", LAST_FOUR)
    clerk.flashed("Identity check recorded.")
    clerk.complete("photo")
    clerk.audit("case, tasks done", audits)

    # Start a report on a citizen's behalf, and its first question.
    page.get_by_role("link", name=clerk._("Start a report"), exact=True).click()
    clerk.expect_path("/counter/report")
    clerk.h1("Start a report on a citizen’s behalf")
    clerk.audit("start a report", audits)
    page.get_by_role("link", name=clerk._(EVENTS[ON_BEHALF].title), exact=True).click()
    first_question = EVENTS[ON_BEHALF].questions[0]
    clerk.expect_path(f"/counter/report/{ON_BEHALF}/{first_question.field}")
    clerk.h1(first_question.label)
    clerk.audit("first question of a report on a citizen's behalf", audits)

    # A clerk of another branch: confirm the citizen is at the counter, with an error first.
    away = Clerk(new_page(viewport=VIEWPORT), live_server, lang=lang)
    case_path = f"/counter/cases/{sent.display}"
    away.open(case_path)
    away.on_sign_in(then=case_path if lang == "en" else f"{case_path}?lang={lang}")
    away.sign_in("clerk.away")
    away.expect_path(f"{case_path}/serve")
    away.h1("This report is for another branch")
    away.audit("report for another branch", audits)
    away.button("Open the report").click()
    away.error_summary(NOT_CONFIRMED)
    away.audit("report for another branch, with an error", audits)
    away.page.get_by_role("checkbox", name=away._(PRESENT), exact=True).check()
    # The citizen gives the reporter's date of birth (issue 13, row 19).
    case = core.case(sent.ref)
    born = date.fromisoformat(EVENTS[case.event_type].reporter.date_of_birth(case.answers))
    given = away.page.get_by_role("group", name=away._("The citizen’s date of birth"))
    for part, value in (("Day", born.day), ("Month", born.month), ("Year", born.year)):
        given.get_by_label(away._(part), exact=True).fill(str(value))
    away.button("Open the report").click()
    away.on_case(sent)

    # The branch audit, for a manager.
    manager = Clerk(new_page(viewport=VIEWPORT), live_server, lang=lang)
    manager.open("/counter/audit")
    manager.on_sign_in(then="/counter/audit" if lang == "en" else f"/counter/audit?lang={lang}")
    manager.sign_in("manager.home")
    manager.expect_path("/counter/audit")
    manager.h1("Branch audit")
    expect(manager.page.get_by_role("table")).to_contain_text(sent.display)
    manager.audit("branch audit", audits)

    assert len(audits.checked) == 13, audits.checked
    audits.assert_none_failed()
