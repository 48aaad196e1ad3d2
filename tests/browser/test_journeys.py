"""Whole journeys in a real Chromium, clicked and typed as a person would.

Every step finds what it uses by its role and its label (the question as the page's
heading, "Day"/"Month"/"Year", each organisation's checkbox, "Continue"), so these
tests also prove the labels work. Wording comes from the catalogue, translated with the
app's own Welsh catalogue, so the same steps hold in English and in Welsh.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import Dialog, Page, Request, expect
from redis import Redis

from channels.presenters import STATE_LABELS
from router import reference, routing
from router.adapters.mocks import Faults, configure_faults
from router.cases import DeliveryState
from router.catalogue import EVENTS, Kind, Question
from router.delivery.worker import Supervisor
from tests.browser.conftest import PageFactory
from tests.browser.helpers import VIEWPORT, assert_accessible, screenshot, titles, translate
from tests.support.samples import sample

_REF_CHAR = "[ACDEFGHJKMNPQRTWXY3469]"
REFERENCE = re.compile(rf"{_REF_CHAR}{{4}}-{_REF_CHAR}{{4}}-{_REF_CHAR}")
TOLD = STATE_LABELS[DeliveryState.DELIVERED]
WAITING = STATE_LABELS[DeliveryState.QUEUED]
SETTLE_SECONDS = 20

Answer = str | dict[str, str]


# --- sample answers as a person types them ------------------------------------------------


def typed(value: Any) -> Answer:
    """An answer from examples/events as typed in the form: dates as day, month, year."""
    if isinstance(value, dict) and "days_ago" in value:
        value = (date.today() - timedelta(days=value["days_ago"])).isoformat()
        return typed(value)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        day = date.fromisoformat(value)
        return {"day": str(day.day), "month": str(day.month), "year": str(day.year)}
    return str(value)


@dataclass(frozen=True)
class Report:
    event: str
    answers: dict[str, Answer]
    consent: list[str]

    @classmethod
    def sample(cls, event: str, **changes: Any) -> Report:
        data = sample(event)
        # An email address for updates, and no mobile number (issue 15, item 3).
        given = {"contact_email": "reporter@example.com", "contact_mobile": "", **data["answers"]}
        answers = {k: typed(v) for k, v in {**given, **changes}.items()}
        return cls(event, answers, list(data["consent"]))

    def asked(self) -> list[Question]:
        """The questions the journey asks for these answers, in order."""
        return [q for q in EVENTS[self.event].questions if q.applies(self.answers)]


# --- a citizen in the browser -------------------------------------------------------------


@dataclass
class Citizen:
    """Drives the journey with a page; `audit`, if given, is called on every page shown."""

    page: Page
    base: str
    lang: str = "en"
    audit: Callable[[Page, str], None] | None = None

    def _(self, msgid: str) -> str:
        return translate(self.lang, msgid)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def shown(self, label: str) -> None:
        expect(self.page.locator("html")).to_have_attribute("lang", self.lang)
        if self.audit is not None:
            self.audit(self.page, f"{label} ({self.lang})")

    def h1(self, msgid: str) -> None:
        heading = self.page.get_by_role("heading", level=1)
        expect(heading).to_have_count(1)
        expect(heading).to_have_text(self._(msgid))

    def press_continue(self) -> None:
        self.page.get_by_role("button", name=self._("Continue"), exact=True).click()

    # the pages, in order

    def start(self) -> None:
        query = "" if self.lang == "en" else f"?lang={self.lang}"
        response = self.page.goto(self.url(f"/{query}"))
        assert response is not None and response.status == 200
        self.h1("Tell us about a life event")
        self.shown("start page")

    def choose(self, event: str) -> None:
        link = self.page.get_by_role("link", name=self._(EVENTS[event].title), exact=True)
        expect(link).to_have_attribute("href", f"/report/{event}/start")
        link.click()
        # Before you start: what you will need, and the start button.
        self.h1(EVENTS[event].title)
        expect(self.page.locator("#what-you-will-need + ul li")).to_have_count(
            len(EVENTS[event].you_will_need)
        )
        self.shown(f"before you start {event}")
        self.page.get_by_role("button", name=self._("Start now")).click()

    def on_question(self, event: str, q: Question) -> None:
        expect(self.page).to_have_url(self.url(f"/report/{event}/{q.field}"))
        self.h1(q.label)
        error = re.escape(self._("Error:"))
        title = re.escape(self._(q.label))
        expect(self.page).to_have_title(re.compile(f"^(?:{error} )?{title} – "))

    def field(self, q: Question) -> Any:
        """The text box a question asks for, found by its label (the page's heading)."""
        return self.page.get_by_role("textbox", name=self._(q.label), exact=True)

    def date_parts(self, q: Question) -> dict[str, Any]:
        group = self.page.get_by_role("group", name=self._(q.label), exact=True)
        return {
            part: group.get_by_role("textbox", name=self._(part.capitalize()), exact=True)
            for part in ("day", "month", "year")
        }

    def option(self, q: Question, value: str) -> Any:
        text = dict(q.choices())[value]
        return self.page.get_by_role("radio", name=self._(text), exact=True)

    def fill(self, q: Question, value: Answer) -> None:
        if q.kind is Kind.DATE:
            assert isinstance(value, dict)
            for part, box in self.date_parts(q).items():
                box.fill(value[part])
        elif q.kind in (Kind.YES_NO, Kind.CHOICE):
            assert isinstance(value, str)
            self.option(q, value).check()
        else:
            assert isinstance(value, str)
            self.field(q).fill(value)

    def expect_answer(self, q: Question, value: Answer) -> None:
        """The page shows the answer given before."""
        if q.kind is Kind.DATE:
            assert isinstance(value, dict)
            for part, box in self.date_parts(q).items():
                expect(box).to_have_value(value[part])
        elif q.kind in (Kind.YES_NO, Kind.CHOICE):
            assert isinstance(value, str)
            expect(self.option(q, value)).to_be_checked()
        else:
            assert isinstance(value, str)
            expect(self.field(q)).to_have_value(value)

    def answer(self, event: str, q: Question, value: Answer) -> None:
        self.on_question(event, q)
        self.shown(f"question {q.field}")
        self.fill(q, value)
        self.press_continue()

    def answer_all(self, report: Report) -> None:
        for q in report.asked():
            self.answer(report.event, q, report.answers[q.field])

    def on_tell(self, report: Report) -> None:
        expect(self.page).to_have_url(self.url(f"/report/{report.event}/tell"))
        self.h1("Who should we tell?")
        boxes = self.page.get_by_role("checkbox")
        expect(boxes).not_to_have_count(0)
        for box in boxes.all():
            expect(box).not_to_be_checked()  # nothing chosen for the citizen
        self.shown("who should we tell")

    def choose_departments(self, report: Report) -> None:
        for name in report.consent:
            self.page.get_by_role("checkbox", name=self._(titles()[name]), exact=True).check()
        self.press_continue()

    def tell(self, report: Report) -> None:
        self.on_tell(report)
        self.choose_departments(report)

    def prove_identity_online(self, report: Report) -> None:
        """On check your answers, prove who you are first: sign in as the sample's
        reporter on the development identity provider's own form, and come back."""
        check = self.url(f"/report/{report.event}/check")
        self.page.get_by_role(
            "button", name=self._("Prove your identity online"), exact=True
        ).click()
        expect(self.page.get_by_role("heading", name="Authorize Client")).to_be_visible()
        self.page.get_by_placeholder("sub").fill(f"sample-{report.event}")
        self.page.get_by_role("button", name="Authorize", exact=True).click()
        expect(self.page).to_have_url(check)
        expect(self.page.locator(".govuk-notification-banner--success")).to_be_visible()

    def check_answers(self, report: Report, prove_identity: bool = False) -> None:
        expect(self.page).to_have_url(self.url(f"/report/{report.event}/check"))
        if prove_identity:
            self.prove_identity_online(report)
        self.h1("Check your answers before sending your report")
        event = EVENTS[report.event]
        lists = self.page.locator("main .govuk-summary-list")
        answers, told = lists.nth(0), lists.nth(1)
        expect(answers.locator(".govuk-summary-list__key")).to_have_text(
            [self._(event.check_key(q.field)) for q in report.asked()]
        )
        expect(told.locator(".govuk-summary-list__key")).to_have_text(
            [self._(titles()[name]) for name in sorted(report.consent)]
        )
        changes = self.page.get_by_role("link", name=re.compile("^" + self._("Change") + " "))
        expect(changes).to_have_count(len(report.asked()) + len(report.consent))
        self.shown("check your answers")
        self.page.get_by_role("button", name=self._("Accept and send"), exact=True).click()

    def confirmation(self, report: Report) -> str:
        expect(self.page).to_have_url(self.url(f"/report/{report.event}/done"))
        self.h1("Report sent")
        ref = self.page.locator(".govuk-panel__body strong").inner_text().strip()
        assert REFERENCE.fullmatch(ref), f"reference {ref!r} is not like ABCD-EFGH-J"
        assert reference.normalise(ref) is not None, f"{ref}: its check character is wrong"
        # Each organisation chosen is in one list: told now, told once the evidence it
        # needs is in (with what it waits for), or told after the Post Office visit.
        lists = self.page.locator("#told-now li, #told-when-proved li, #told-after-visit li")
        expect(lists).to_have_count(len(report.consent))
        named = {line.split(":")[0].strip() for line in lists.all_inner_texts()}
        assert named == {self._(titles()[name]) for name in report.consent}
        self.shown("confirmation")
        return ref

    def open_status(self, ref: str) -> None:
        self.page.get_by_role("link", name=self._("See the progress of your report")).click()
        self.on_status(ref)

    def on_status(self, ref: str) -> None:
        # The secret link is used once, then the address is clean (issue 13, row 20).
        status_url = re.escape(self.url(f"/status/{ref}")) + r"(\?lang=(en|cy))?"
        expect(self.page).to_have_url(re.compile(f"^{status_url}$"))
        self.h1("Progress of your report")
        expect(self.page.locator("main")).to_contain_text(ref)

    def expect_rows(self, report: Report) -> None:
        """One row, with one tag, per organisation told."""
        rows = self.page.locator("#deliveries .govuk-task-list__item")
        expect(rows).to_have_count(len(report.consent))
        names = rows.locator(".govuk-task-list__name-and-hint > span").all_inner_texts()
        assert sorted(n.strip() for n in names) == sorted(
            self._(titles()[name]) for name in report.consent
        )
        for name in report.consent:
            expect(self.page.locator(f"#status-{name} .govuk-tag")).to_have_count(1)

    def tags(self) -> Any:
        return self.page.locator("#deliveries .govuk-tag")

    def journey(self, report: Report, prove_identity: bool = False) -> str:
        """From the start page to the status page; returns the reference."""
        self.start()
        self.choose(report.event)
        self.answer_all(report)
        self.tell(report)
        self.check_answers(report, prove_identity)
        ref = self.confirmation(report)
        self.open_status(ref)
        self.expect_rows(report)
        self.shown("status")
        return ref


@pytest.fixture
def page(new_page: PageFactory) -> Page:
    """A page with JavaScript on, at the screenshots' size."""
    return new_page(viewport=VIEWPORT)


def wait_until_all_told(citizen: Citizen, reload: bool, timeout: float = SETTLE_SECONDS) -> None:
    told = citizen._(TOLD)
    deadline = time.monotonic() + timeout
    while True:
        labels = [t.strip() for t in citizen.tags().all_inner_texts()]
        if labels and all(label == told for label in labels):
            return
        assert time.monotonic() < deadline, f"not all told after {timeout}s: {labels}"
        citizen.page.wait_for_timeout(500)
        if reload:
            response = citizen.page.reload()
            assert response is not None and response.status == 200


# --- 1. whole journeys with JavaScript on -----------------------------------------------


@pytest.mark.parametrize("event", ["moving_house", "death"])
def test_whole_journey_with_javascript(live_server: str, page: Page, event: str) -> None:
    report = Report.sample(event)
    citizen = Citizen(page, live_server)
    # A move needs the reporter's identity (P2): they prove it before sending. A death
    # needs its registration, which the register confirms.
    citizen.journey(report, prove_identity=event == "moving_house")
    expect(citizen.tags()).to_have_text([WAITING] * len(report.consent))


def test_change_of_name_with_a_photocard_needs_a_post_office_visit(
    live_server: str, page: Page
) -> None:
    report = Report.sample("change_of_name", driving_licence="photocard")
    visit = "You will need to visit a Post Office to finish this"
    photo = routing.ASSISTED_TASKS["photo"][0]
    citizen = Citizen(page, live_server)
    citizen.start()
    citizen.choose(report.event)
    citizen.answer_all(report)
    dvla = page.get_by_role("checkbox", name=titles()["dvla"], exact=True)
    expect(dvla).to_have_accessible_description(
        re.compile(re.escape(f"{visit}: ") + ".*" + re.escape(photo))
    )
    for name in set(report.consent) - {"dvla"}:
        box = page.get_by_role("checkbox", name=titles()[name], exact=True)
        expect(box).not_to_have_accessible_description(re.compile("Post Office"))
    citizen.tell(report)
    citizen.check_answers(report, prove_identity=True)
    ref = citizen.confirmation(report)
    main = page.get_by_role("main")
    expect(main.get_by_role("heading", name=re.compile("Post Office"))).not_to_have_count(0)
    expect(main).to_contain_text(photo)

    citizen.open_status(ref)
    citizen.expect_rows(report)
    expect(page.locator("#status-dvla .govuk-tag")).to_have_text(
        STATE_LABELS[DeliveryState.ASSISTED]
    )
    for name in set(report.consent) - {"dvla"}:
        expect(page.locator(f"#status-{name} .govuk-tag")).to_have_text(WAITING)
    expect(page.locator("#deliveries")).to_contain_text(photo)


# --- 2. a whole journey with JavaScript off ---------------------------------------------


def test_whole_journey_without_javascript(
    live_server: str, workers: Supervisor, page_nojs: Page
) -> None:
    report = Report.sample("birth")
    citizen = Citizen(page_nojs, live_server)
    citizen.journey(report, prove_identity=True)  # HMRC (Child Benefit) needs the parent's
    wait_until_all_told(citizen, reload=True)
    expect(citizen.tags()).to_have_count(len(report.consent))
    expect(page_nojs.locator("#deliveries[hx-get]")).to_have_count(0)
    # Everything is final: the citizen deletes their details now (issue 14).
    page_nojs.get_by_role("link", name="Delete my details now").click()
    citizen.h1("Delete your details")
    assert_accessible(page_nojs, "delete your details")
    page_nojs.get_by_role("button", name="Delete my details").click()
    banner = page_nojs.get_by_role("region", name="Your details have been deleted")
    expect(banner).to_contain_text("We deleted your details on ")
    expect(page_nojs.get_by_role("link", name="Delete my details now")).to_have_count(0)
    assert_accessible(page_nojs, "status page after deleting")


# --- 3. the status page updates by itself ----------------------------------------------


def test_status_page_updates_by_itself(
    live_server: str, workers: Supervisor, redis: Redis, page: Page
) -> None:
    configure_faults(redis, "dwp", Faults(latency_ms=3000))  # so the first view is pending
    report = Report.sample("moving_house")
    citizen = Citizen(page, live_server)
    citizen.start()
    citizen.choose(report.event)
    citizen.answer_all(report)
    citizen.tell(report)
    citizen.check_answers(report, prove_identity=True)
    ref = citizen.confirmation(report)
    screenshot(page, "confirmation")

    navigations: list[str] = []
    polls: list[Request] = []
    citizen.open_status(ref)
    status_url = page.url
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.on(
        "request",
        lambda r: polls.append(r) if f"/status/{ref}/deliveries" in r.url else None,
    )
    deliveries = page.locator("#deliveries")
    expect(deliveries).to_have_attribute("hx-trigger", "every 2s")
    expect(deliveries).to_have_attribute("hx-get", f"/status/{ref}/deliveries")
    labels = [t.strip() for t in citizen.tags().all_inner_texts()]
    assert len(labels) == len(report.consent)
    assert any(label != TOLD for label in labels), f"nothing pending at first: {labels}"

    expect(citizen.tags()).to_have_text([TOLD] * len(report.consent), timeout=SETTLE_SECONDS * 1000)
    assert page.url == status_url
    assert navigations == [], f"the page was reloaded: {navigations}"
    assert polls and all(r.headers.get("hx-request") == "true" for r in polls)
    expect(page.locator("#deliveries")).to_have_count(1)
    expect(page.locator("#deliveries[hx-get]")).to_have_count(0)  # polling stopped
    citizen.expect_rows(report)
    assert_accessible(page, "status page, everyone told")
    screenshot(page, "status")
    asked = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) == asked, "htmx kept asking after everything was told"

    # The same page in Welsh, by the language link.
    page.get_by_role("link", name="Cymraeg").click()
    welsh = Citizen(page, live_server, lang="cy")
    welsh.h1("Progress of your report")
    expect(page.locator("html")).to_have_attribute("lang", "cy")
    expect(welsh.tags()).to_have_text([welsh._(TOLD)] * len(report.consent))
    assert_accessible(page, "status page in Welsh")
    screenshot(page, "status-cy")


# --- 4. errors ---------------------------------------------------------------------------


FOCUS_IN_ERROR_SUMMARY = (
    "() => !!document.activeElement && !!document.activeElement.closest('.govuk-error-summary')"
)


def test_error_summary_takes_focus_and_links_to_the_field(live_server: str, page: Page) -> None:
    event = EVENTS["moving_house"]
    full_name, born = event.question("full_name"), event.question("date_of_birth")
    citizen = Citizen(page, live_server)
    citizen.start()
    screenshot(page, "start")
    citizen.choose(event.name)
    citizen.on_question(event.name, full_name)

    # Nothing entered: the error summary appears and takes the focus.
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        citizen.press_continue()
    assert posted.value.status == 400
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_visible()
    expect(summary.get_by_role("heading")).to_have_text("There is a problem")
    expect(page).to_have_title(re.compile("^Error: " + re.escape(full_name.label)))
    page.wait_for_function(FOCUS_IN_ERROR_SUMMARY)
    box = citizen.field(full_name)
    expect(box).to_have_accessible_description(re.compile(re.escape(full_name.required_error)))
    expect(page.locator("#full_name-error")).to_contain_text(full_name.required_error)
    screenshot(page, "question-error")

    # Its link moves the focus to the field.
    summary.get_by_role("link", name=full_name.required_error, exact=True).click()
    expect(box).to_be_focused()

    # For a date, the link goes to the day box and what was typed stays.
    box.fill("Siân O'Brien-Évans")
    citizen.press_continue()
    citizen.on_question(event.name, born)
    parts = citizen.date_parts(born)
    for part, value in (("day", "31"), ("month", "2"), ("year", "1990")):
        parts[part].fill(value)
    citizen.press_continue()
    expect(summary).to_be_visible()
    page.wait_for_function(FOCUS_IN_ERROR_SUMMARY)
    summary.get_by_role("link", name=born.error("real"), exact=True).click()
    expect(parts["day"]).to_be_focused()
    expect(parts["day"]).to_have_value("31")
    expect(parts["month"]).to_have_value("2")


# --- 5. the browser's back button --------------------------------------------------------


def test_back_button_shows_the_answer_given(live_server: str, page: Page) -> None:
    report = Report.sample("moving_house")
    event = EVENTS[report.event]
    full_name, born, nino = (event.question(f) for f in ("full_name", "date_of_birth", "nino"))
    citizen = Citizen(page, live_server)
    posts: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: posts.append((r.url, r.status)) if r.request.method == "POST" else None,
    )
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:  # "Confirm form resubmission" would be one
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)

    citizen.start()
    citizen.choose(report.event)
    citizen.answer(report.event, full_name, "Siân O'Brien")
    citizen.answer(report.event, born, report.answers["date_of_birth"])
    citizen.on_question(report.event, nino)

    for q, answer in ((born, report.answers["date_of_birth"]), (full_name, "Siân O'Brien")):
        response = page.go_back()
        assert response is not None and response.status == 200
        assert response.request.method == "GET"  # never a POST to send again
        citizen.on_question(report.event, q)
        citizen.expect_answer(q, answer)

    # Change the answer and send it again: the journey carries on where it was.
    citizen.answer(report.event, full_name, str(report.answers["full_name"]))
    citizen.on_question(report.event, nino)
    response = page.reload()
    assert response is not None and response.request.method == "GET"
    citizen.on_question(report.event, nino)
    response = page.go_back()
    assert response is not None and response.request.method == "GET"
    citizen.on_question(report.event, full_name)
    citizen.expect_answer(full_name, str(report.answers["full_name"]))

    assert len(posts) == 3
    assert all(status in (302, 303) for _, status in posts), posts
    assert dialogs == []


# --- 6. accessibility of every page, in English and in Welsh ------------------------------


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_every_page_is_accessible(live_server: str, page: Page, lang: str) -> None:
    report = Report.sample("moving_house", has_driving_licence="yes")
    assert "driving_licence_number" in [q.field for q in report.asked()]
    checked: list[str] = []

    def audit(p: Page, label: str) -> None:
        assert_accessible(p, label)
        checked.append(label)

    citizen = Citizen(page, live_server, lang=lang, audit=audit)
    citizen.start()
    citizen.choose(report.event)

    # Each question page, the first one also with an error.
    first, *others = report.asked()
    citizen.on_question(report.event, first)
    citizen.shown(f"question {first.field}")
    citizen.press_continue()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    page.wait_for_function(FOCUS_IN_ERROR_SUMMARY)
    citizen.shown(f"question {first.field}, with an error")
    citizen.fill(first, report.answers[first.field])
    citizen.press_continue()
    for q in others:
        citizen.answer(report.event, q, report.answers[q.field])

    # Who to tell, also with an error; check answers, confirmation, status.
    citizen.on_tell(report)
    citizen.press_continue()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    citizen.shown("who should we tell, with an error")
    citizen.choose_departments(report)
    citizen.check_answers(report)
    ref = citizen.confirmation(report)
    citizen.open_status(ref)
    citizen.shown("status")

    page.goto(live_server + "/status")
    citizen.h1("Check the progress of your report")
    citizen.shown("find your report")
    citizen.press_continue()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    citizen.shown("find your report, with errors")

    response = page.goto(live_server + "/no-such-page")
    assert response is not None and response.status == 404
    citizen.h1("Page not found")
    citizen.shown("page not found")

    # And the start page, before you start, the question with an error, who to tell
    # twice, check, confirmation, status, find twice and the 404.
    assert len(checked) == len(report.asked()) + 11, checked
