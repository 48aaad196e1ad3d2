"""The citizen's journeys as a person sees them: pages parsed with BeautifulSoup.

Each test drives the Flask test client against the suite's own Redis, reads the HTML
a browser would get and asserts what is on it: headings, error summaries, back links,
the language, the reference, the status tags. Wording is compared with the catalogue's
message translated by the app itself, so the tests hold in English and in Welsh.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import flask_babel
import pytest
from bs4 import BeautifulSoup, Tag
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from channels.presenters import STATE_LABELS, WAITING_LABELS
from router import reference, routing
from router.cases import CaseStore, DeliveryState
from router.catalogue import EVENTS, EventType, Kind
from router.service import LifeEventRouter
from tests.support.journeys import choose, done_page, reach_check, send, submit_sample, walk
from tests.support.pages import PageClient, csrf_token, error_of, path_of, soup, text
from tests.support.redis_dump import one_case_ref
from tests.support.samples import sample, submit_to_core

LANGS = ("en", "cy")
OTHER_LANG = {"en": "cy", "cy": "en"}
EVENT_NAMES = sorted(EVENTS)

Translate = Callable[..., str]


# --- reading pages -----------------------------------------------------------------------


def translator(app: Flask, lang: str) -> Translate:
    """The app's own translation of a message id, in ``lang``."""

    def translate(message: str, **variables: Any) -> str:
        with app.test_request_context(f"/?lang={lang}"):
            return " ".join(flask_babel.gettext(message, **variables).split())

    return translate


def summary_rows(summary_list: Tag) -> list[tuple[str, str, list[str]]]:
    """(key, value, action hrefs) of each row of a GOV.UK summary list."""
    rows = []
    for row in summary_list.select(".govuk-summary-list__row"):
        actions = [str(a["href"]) for a in row.select(".govuk-summary-list__actions a")]
        key = text(row.select_one(".govuk-summary-list__key"))
        rows.append((key, text(row.select_one(".govuk-summary-list__value")), actions))
    return rows


def clean_answers(event_name: str, answers: dict[str, Any]) -> dict[str, Any]:
    """The catalogue's clean form of answers (what a case should hold)."""
    return EVENTS[event_name].validate(answers)


def asked_fields(event_name: str, answers: dict[str, Any]) -> list[str]:
    clean = clean_answers(event_name, answers)
    return [q.field for q in EVENTS[event_name].questions if q.applies(clean)]


def shown(app: Flask, lang: str, event: EventType, field: str, value: Any) -> str:
    """How the app words a clean answer for a person (dates in words, options by name)."""
    from channels.presenters import display_answer

    with app.test_request_context(f"/?lang={lang}"):
        return " ".join(display_answer(event, field, value).split())


def language_link(page: BeautifulSoup, lang: str) -> Tag | None:
    return page.select_one(f'a[hreflang="{OTHER_LANG[lang]}"]')


def assert_in_language(page: BeautifulSoup, lang: str, path: str) -> None:
    """The page is in ``lang`` and links to itself in the other language."""
    html = page.find("html")
    assert isinstance(html, Tag) and html.get("lang") == lang, path
    switch = language_link(page, lang)
    assert switch is not None, f"{path}: no link to the other language"
    joiner = "&" if "?" in path else "?"
    assert switch["href"] == f"{path}{joiner}lang={OTHER_LANG[lang]}", path


def start_in(client: FlaskClient, lang: str) -> BeautifulSoup:
    """Open the start page in ``lang``; the choice is kept for the session."""
    return PageClient(client).get(f"/?lang={lang}")


def by_event_and_language() -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        ("event_name", "lang"), [(e, lang) for e in EVENT_NAMES for lang in LANGS]
    )


# --- 1. every journey, in English and in Welsh --------------------------------------------


@by_event_and_language()
def test_each_question_page_has_the_translated_question_as_its_only_heading(
    app: Flask, client: FlaskClient, event_name: str, lang: str
) -> None:
    tr = translator(app, lang)
    start_in(client, lang)
    visits, _ = walk(client, event_name, sample(event_name)["answers"])
    event = EVENTS[event_name]
    problems = []  # every page's, so one run shows them all
    for visit in visits:
        assert visit.response.status_code == 200, visit.url
        assert_in_language(visit.page, lang, visit.url)
        headings = [text(h) for h in visit.page.find_all("h1")]
        if headings != [tr(event.question(visit.field).label)]:
            problems.append(f"{visit.url}: h1 {headings}")
    assert not problems, "\n".join(problems)


@by_event_and_language()
def test_each_question_page_has_back_link_language_switch_and_csrf_token(
    app: Flask, client: FlaskClient, event_name: str, lang: str
) -> None:
    start_in(client, lang)
    visits, _ = walk(client, event_name, sample(event_name)["answers"])
    previous = "/"
    for visit in visits:
        back = visit.page.select_one("a.govuk-back-link")
        assert back is not None, visit.url
        assert back["href"] == previous, visit.url
        previous = visit.url
        assert_in_language(visit.page, lang, visit.url)
        assert csrf_token(visit.page)


@by_event_and_language()
def test_each_required_question_left_empty_says_what_to_enter(
    app: Flask, client: FlaskClient, event_name: str, lang: str
) -> None:
    tr = translator(app, lang)
    event = EVENTS[event_name]
    start_in(client, lang)
    visits, _ = walk(client, event_name, sample(event_name)["answers"], try_empty=True)
    checked = 0
    for visit in visits:
        question = event.question(visit.field)
        if not question.required:
            assert visit.empty is None
            continue
        assert visit.empty is not None
        assert visit.empty.status_code == 400, visit.url
        page = soup(visit.empty)
        title = text(page.find("title"))
        assert title.startswith(tr("Error:")), title
        assert text(page.select_one(".govuk-error-summary__title")) == tr("There is a problem")
        summary, href, message = error_of(page)
        expected = tr(question.required_error)
        assert summary == expected and message == expected, visit.url
        anchor = f"#{question.field}-day" if question.kind is Kind.DATE else f"#{question.field}"
        assert href == anchor
        assert page.select_one(anchor) is not None, f"{visit.url}: {anchor} is not on the page"
        checked += 1
    assert checked == sum(event.question(v.field).required for v in visits) > 0


@by_event_and_language()
def test_whole_journey_sends_one_case_with_the_answers_given(
    app: Flask,
    client: FlaskClient,
    client_request: PageClient,
    redis: Redis,
    event_name: str,
    lang: str,
) -> None:
    tr = translator(app, lang)
    event = EVENTS[event_name]
    data = sample(event_name)
    clean = clean_answers(event_name, data["answers"])
    adapters = list(app.extensions["router"].adapters)
    titles = {a.name: tr(a.title) for a in adapters}

    start = start_in(client, lang)
    assert_in_language(start, lang, "/")
    assert start.select_one(f'main a[href="/report/{event_name}/start"]') is not None
    visits, after = walk(client, event_name, data["answers"])
    assert [v.field for v in visits] == asked_fields(event_name, data["answers"])
    assert after == f"/report/{event_name}/tell"

    # Who should we tell: each interested organisation, none chosen for the citizen.
    tell = client_request.get(after)
    assert_in_language(tell, lang, after)
    interested = [a.name for a in routing.interested(event_name, adapters)]
    offered = [d for d in routing.plan(event_name, clean, interested, adapters).decisions if d.told]
    boxes = tell.select('input[type="checkbox"][name="departments"]')
    assert sorted(str(b["value"]) for b in boxes) == sorted(d.department for d in offered)
    assert not [b for b in boxes if b.has_attr("checked")]
    for decision in offered:
        box = tell.select_one(f'input[name="departments"][value="{decision.department}"]')
        assert box is not None
        hint = text(tell.select_one(f"#{box['aria-describedby']}"))
        for field in decision.fields:
            assert tr(event.label(field)) in hint, (decision.department, field)
    nothing = client_request.post(after, _expected_status=400)
    assert error_of(nothing)[2] == tr("Select at least one organisation to tell")
    chosen = choose(client, event_name, data["consent"])
    assert chosen.status_code == 302
    assert path_of(chosen.location) == f"/report/{event_name}/check"

    # Check your answers: a row and a Change link for every question answered.
    check = client_request.get(f"/report/{event_name}/check")
    assert_in_language(check, lang, f"/report/{event_name}/check")
    answers_list, told_list = check.select("main .govuk-summary-list")
    rows = summary_rows(answers_list)
    fields = [v.field for v in visits]
    assert [key for key, _, _ in rows] == [tr(event.check_key(f)) for f in fields]
    for (_, value, actions), field in zip(rows, fields, strict=True):
        assert actions == [f"/report/{event_name}/{field}?change=1"]
        assert value == shown(app, lang, event, field, clean.get(field, "")), field
        if event.question(field).kind in (Kind.NAME, Kind.TEXT):
            assert value == data["answers"][field], field  # as typed
    assert [key for key, _, _ in summary_rows(told_list)] == [
        titles[name] for name in sorted(data["consent"])
    ]

    sent = send(client, event_name)
    assert sent.status_code == 302 and path_of(sent.location) == f"/report/{event_name}/done"
    done = done_page(client, event_name)
    done_url = f"/report/{event_name}/done"
    assert_in_language(client_request.get(done_url), lang, done_url)

    # The status page: one row per delivery with its tag, and what was shared with whom.
    case = CaseStore(redis).load(one_case_ref(redis))
    assert case.display_ref == done.display
    page = client_request.get(done.status_link, follow_redirects=True)
    assert_in_language(page, lang, f"/status/{done.display}")  # the secret is gone
    deliveries = page.select_one("#deliveries")
    assert deliveries is not None
    items = deliveries.select(".govuk-task-list__item")
    assert len(items) == len(case.plan.deliveries) > 0
    for decision in case.plan.deliveries:
        # Nobody signed in: a department that needs to know who reports waits for it.
        missing = ",".join(decision.missing(case.evidence))
        if decision.mode == "assisted":
            words = STATE_LABELS[DeliveryState.ASSISTED]
        elif missing:
            words = WAITING_LABELS[missing]
        else:
            words = STATE_LABELS[DeliveryState.QUEUED]
        tag = deliveries.select_one(f"#status-{decision.department} .govuk-tag")
        assert text(tag) == tr(words), decision.department
    shared = page.select_one("#what-we-shared")
    assert shared is not None
    assert text(shared) == tr("What we shared")
    named = [text(h) for h in shared.find_next_siblings("h3")]
    assert named == [titles[d.department] for d in case.plan.deliveries]

    # Exactly one case, holding the answers given and the organisations chosen.
    assert case.event_type == event_name
    assert case.answers == clean
    assert case.consent == sorted(data["consent"])
    assert case.channel == "web"


# --- 2. double submit -----------------------------------------------------------------------


def test_sending_twice_and_again_after_done_makes_one_case_with_one_reference(
    client: FlaskClient, redis: Redis
) -> None:
    reach_check(client, "birth")
    url = "/report/birth/check"
    token = csrf_token(soup(client.get(url)))
    first = client.post(url, data={"csrf_token": token})
    second = client.post(url, data={"csrf_token": token})
    assert first.status_code == second.status_code == 302
    assert path_of(first.location) == path_of(second.location) == "/report/birth/done"
    done = done_page(client, "birth")
    again = client.post(url, data={"csrf_token": token})
    assert again.status_code == 302 and path_of(again.location) == "/report/birth/done"
    assert done_page(client, "birth") == done
    assert reference.display(one_case_ref(redis)) == done.display


def test_a_double_click_racing_the_session_still_makes_one_case(
    app: Flask, client: FlaskClient, redis: Redis
) -> None:
    """Both clicks read the session before either saves it: the second POST finds no
    reference in its session, so only the journey's submission key can stop a twin."""
    reach_check(client, "death")
    url = "/report/death/check"
    token = csrf_token(soup(client.get(url)))
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    # Sessions are stored under a digest of their id (issue 13, row 9).
    key = app.config["SESSION_KEY_PREFIX"] + hashlib.sha256(cookie.value.encode()).hexdigest()
    before = redis.get(key)
    assert before is not None
    assert client.post(url, data={"csrf_token": token}).status_code == 302
    first = done_page(client, "death")
    redis.set(key, before, keepttl=True)  # the twin request's view of the session
    assert client.post(url, data={"csrf_token": token}).status_code == 302
    assert done_page(client, "death") == first
    assert reference.display(one_case_ref(redis)) == first.display


# --- 3. back button, back links and changing answers ------------------------------------------


def test_going_back_to_an_earlier_question_shows_the_answer_given(
    client_request: PageClient,
) -> None:
    reach_check(client_request.client, "moving_house")
    answers = sample("moving_house")["answers"]
    name = client_request.get("/report/moving_house/full_name")
    field = name.select_one("input#full_name")
    assert field is not None and field["value"] == answers["full_name"]
    born = client_request.get("/report/moving_house/date_of_birth")
    boxes = [born.select_one(f"#date_of_birth-{part}") for part in ("day", "month", "year")]
    assert [box["value"] if box else None for box in boxes] == ["12", "7", "1984"]
    licence = client_request.get("/report/moving_house/has_driving_licence")
    checked = licence.select('input[name="has_driving_licence"][checked]')
    assert [c["value"] for c in checked] == ["yes"]


def check_answers(client_request: PageClient) -> list[tuple[str, str]]:
    """(question, answer) of each row of the moving house check-your-answers page."""
    page = client_request.get("/report/moving_house/check")
    return [(k, v) for k, v, _ in summary_rows(page.select("main .govuk-summary-list")[0])]


def test_a_change_from_check_answers_goes_back_to_check_answers(
    client_request: PageClient,
) -> None:
    reach_check(client_request.client, "moving_house")
    url = "/report/moving_house/town?change=1"
    page = client_request.get(url)
    back = page.select_one("a.govuk-back-link")
    assert back is not None and back["href"] == "/report/moving_house/check"
    client_request.post(url, {"town": "Newport"}, _expected_redirect="/report/moving_house/check")
    assert ("Town or city", "Newport") in check_answers(client_request)  # its short name


def test_changing_to_having_a_licence_asks_its_number_then_returns_to_check(
    client_request: PageClient,
) -> None:
    answers = {**sample("moving_house")["answers"], "has_driving_licence": "no"}
    reach_check(client_request.client, "moving_house", answers, consent=["council", "dwp", "hmrc"])
    check = client_request.get("/report/moving_house/check")
    assert "Driving licence number" not in text(check.find("main"))

    number_url = "/report/moving_house/driving_licence_number?change=1"
    client_request.post(
        "/report/moving_house/has_driving_licence?change=1",
        {"has_driving_licence": "yes"},
        _expected_redirect=number_url,
    )
    number = client_request.get(number_url)
    assert text(number.find("h1")) == "What is the driving licence number?"
    # A licence makes DVLA interested: the citizen is asked about it before checking.
    client_request.post(
        number_url,
        {"driving_licence_number": "OBRIE757124S99AB"},
        _expected_redirect="/report/moving_house/tell",
    )
    choose(client_request.client, "moving_house", ["council", "dwp", "hmrc"])
    assert ("Driving licence number", "OBRIE757124S99AB") in check_answers(client_request)


DVLA = "Driver and Vehicle Licensing Agency (driving licences)"
HMRC = "HM Revenue and Customs (tax and Child Benefit)"


def ticked(page: BeautifulSoup) -> dict[str, bool]:
    """Each organisation offered on the tell page, and whether its box is ticked."""
    return {
        text(box.find_next("label")): box.has_attr("checked")
        for box in page.select('input[name="departments"]')
    }


def told_rows(client_request: PageClient, event_name: str) -> list[str]:
    page = client_request.get(f"/report/{event_name}/check")
    return [k for k, _, _ in summary_rows(page.select("main .govuk-summary-list")[1])]


def test_a_change_that_makes_an_organisation_interested_asks_about_it_unticked(
    client_request: PageClient, redis: Redis
) -> None:
    answers = {**sample("moving_house")["answers"], "has_driving_licence": "no"}
    reach_check(client_request.client, "moving_house", answers, consent=["council", "dwp"])
    assert DVLA not in told_rows(client_request, "moving_house")
    client_request.post(
        "/report/moving_house/has_driving_licence?change=1",
        {"has_driving_licence": "yes"},
        _expected_redirect="/report/moving_house/driving_licence_number?change=1",
    )
    client_request.post(
        "/report/moving_house/driving_licence_number?change=1",
        {"driving_licence_number": "OBRIE757124S99AB"},
        _expected_redirect="/report/moving_house/tell",
    )
    # Going straight to check answers instead still lands on the question.
    client_request.get("/report/moving_house/check", _expected_status=302)
    tell = client_request.get("/report/moving_house/tell")
    banner = tell.select_one(".govuk-notification-banner")
    assert banner is not None and DVLA in text(banner)
    boxes = ticked(tell)
    assert boxes[DVLA] is False, "a newly interested organisation was chosen for the citizen"
    assert boxes["Your local council (council tax and electoral register)"] is True
    chosen = choose(client_request.client, "moving_house", ["council", "dwp", "dvla"])
    assert chosen.status_code == 302
    assert DVLA in told_rows(client_request, "moving_house")
    assert send(client_request.client, "moving_house").status_code == 302
    case = CaseStore(redis).load(one_case_ref(redis))
    assert "dvla" in case.deliveries


def test_a_change_that_asks_for_child_benefit_offers_hmrc(
    client_request: PageClient, redis: Redis
) -> None:
    answers = {**sample("birth")["answers"], "claim_child_benefit": "no"}
    reach_check(client_request.client, "birth", answers, consent=["dwp"])
    client_request.post(
        "/report/birth/claim_child_benefit?change=1",
        {"claim_child_benefit": "yes"},
        _expected_redirect="/report/birth/tell",
    )
    tell = client_request.get("/report/birth/tell")
    assert ticked(tell)[HMRC] is False
    # Leaving HMRC out is the citizen's choice, and it is not asked again.
    choose(client_request.client, "birth", ["dwp"])
    assert client_request.get("/report/birth/check", _expected_status=200)
    assert send(client_request.client, "birth").status_code == 302
    case = CaseStore(redis).load(one_case_ref(redis))
    assert case.plan.decision("hmrc").mode == "not_consented"


def test_a_change_that_makes_an_organisation_unneeded_says_why_it_is_not_told(
    client_request: PageClient, redis: Redis, app: Flask
) -> None:
    reach_check(client_request.client, "birth")  # claims Child Benefit, tells HMRC
    assert HMRC in told_rows(client_request, "birth")
    client_request.post(
        "/report/birth/claim_child_benefit?change=1",
        {"claim_child_benefit": "no"},
        _expected_redirect="/report/birth/check",
    )
    check = client_request.get("/report/birth/check")
    assert HMRC not in told_rows(client_request, "birth")
    notice = check.select_one("#no-longer-told")
    assert notice is not None
    assert HMRC in text(notice)
    assert "You said you do not want to claim Child Benefit" in text(notice)
    assert send(client_request.client, "birth").status_code == 302
    ref = one_case_ref(redis)
    decision = CaseStore(redis).load(ref).plan.decision("hmrc")
    assert (decision.mode, decision.reason) == (
        "not_needed",
        "You said you do not want to claim Child Benefit",
    )
    link = done_page(client_request.client, "birth").status_link
    status = text(soup(client_request.client.get(link, follow_redirects=True)))
    assert "You chose not to tell them" not in status
    assert "You said you do not want to claim Child Benefit" in status


def test_a_licence_dropped_then_given_again_asks_about_dvla_again(
    client_request: PageClient,
) -> None:
    reach_check(client_request.client, "moving_house")  # tells DVLA
    for answer in ("no", "yes"):
        client_request.post(
            "/report/moving_house/has_driving_licence?change=1", {"has_driving_licence": answer}
        )
    client_request.post(
        "/report/moving_house/driving_licence_number?change=1",
        {"driving_licence_number": "OBRIE757124S99AB"},
        _expected_redirect="/report/moving_house/tell",
    )
    assert ticked(client_request.get("/report/moving_house/tell"))[DVLA] is False


def change_to_no_licence(client_request: PageClient) -> BeautifulSoup:
    reach_check(client_request.client, "moving_house")  # the sample has a licence, and tells DVLA
    client_request.post(
        "/report/moving_house/has_driving_licence?change=1",
        {"has_driving_licence": "no"},
        _expected_redirect="/report/moving_house/check",
    )
    return client_request.get("/report/moving_house/check")


def test_changing_to_no_licence_drops_the_licence_number_from_check_answers(
    client_request: PageClient,
) -> None:
    check = change_to_no_licence(client_request)
    rows = summary_rows(check.select("main .govuk-summary-list")[0])
    assert ("Do you have a driving licence?", "No") in [(k, v) for k, v, _ in rows]
    assert "Driving licence number" not in [k for k, _, _ in rows]
    assert "OBRIE757124S99AB" not in text(check.find("main"))


def test_changing_to_no_licence_no_longer_promises_to_tell_dvla(
    client_request: PageClient, redis: Redis
) -> None:
    check = change_to_no_licence(client_request)
    told = [k for k, _, _ in summary_rows(check.select("main .govuk-summary-list")[1])]
    dvla = "Driver and Vehicle Licensing Agency (driving licences)"
    assert told and dvla not in told
    assert send(client_request.client, "moving_house").status_code == 302
    case = CaseStore(redis).load(one_case_ref(redis))
    assert "dvla" not in case.deliveries


def test_the_confirmation_says_who_is_told_now_and_who_waits_and_for_what(
    client: FlaskClient, app: Flask
) -> None:
    submit_sample(client, "death")
    told = text(soup(client.get("/report/death/done")).select_one("main"))
    assert "We are telling these organisations now:" in told
    assert "told once they can act on it" not in told

    other = app.test_client()
    submit_sample(other, "moving_house")
    waiting = text(soup(other.get("/report/moving_house/done")).select_one("main"))
    # Nobody signed in: every department of a move waits for the reporter's identity.
    assert "We are telling these organisations now:" not in waiting
    assert "These organisations are told once they can act on it:" in waiting
    assert "Waiting for you to prove your identity" in waiting


def test_a_death_reported_already_is_told_so_and_nothing_more(
    client: FlaskClient, app: Flask
) -> None:
    submit_sample(client, "death")
    other = app.test_client()
    submit_sample(other, "death")
    page = text(soup(other.get("/report/death/done")).select_one("main"))
    assert "This death was reported to us already" in page
    assert "We are telling these organisations now:" not in page


def test_the_confirmation_says_what_was_reported_plainly(client: FlaskClient) -> None:
    """Issue 15, item 4: not "We have your report about: Moving house."."""
    submit_sample(client, "moving_house")
    page = soup(client.get("/report/moving_house/done"))
    row = page.select_one("#reported .govuk-summary-list__row")
    assert row is not None
    assert text(row.select_one("dt")) == "What you reported"
    assert text(row.select_one("dd")) == "Moving house"
    assert "We have your report about" not in text(page.select_one("main"))


# --- help from counter staff (issue 15, item 2) ---------------------------------------------


def ask_for_help(client: FlaskClient, event_name: str) -> BeautifulSoup:
    """Send the sample with "I would like help" ticked; the confirmation's main part."""
    data = sample(event_name)
    walk(client, event_name, data["answers"])
    url = f"/report/{event_name}/tell"
    token = csrf_token(soup(client.get(url)))
    chosen = client.post(
        url, data={"csrf_token": token, "departments": data["consent"], "help": "y"}
    )
    assert path_of(chosen.location) == f"/report/{event_name}/check"
    assert send(client, event_name).status_code == 302
    main = soup(client.get(f"/report/{event_name}/done")).select_one("main")
    assert main is not None
    return main


def test_the_help_tick_says_the_report_is_still_sent_and_what_staff_can_do(
    client_request: PageClient,
) -> None:
    reach_check(client_request.client, "death")
    tell = text(client_request.get("/report/death/tell").select_one("main"))
    assert "It is still sent when you finish here" in tell


def test_help_asked_for_with_nothing_left_to_do_says_so_and_what_to_bring(
    client: FlaskClient,
) -> None:
    main = ask_for_help(client, "death")  # a death is told now: no task is left
    words = text(main)
    assert "We are telling these organisations now:" in words
    assert "counter staff will go through your report with you" not in words
    assert "Nothing is left for you to do" in words
    assert "Bring your reference number" in words


def test_help_asked_for_with_tasks_left_says_staff_help_with_those(client: FlaskClient) -> None:
    main = ask_for_help(client, "change_of_name")  # a new photo and an identity check
    words = text(main)
    assert "counter staff will go through your report with you" not in words
    assert "counter staff will help you with each thing listed under What to bring" in words


@pytest.mark.parametrize(
    ("event_name", "changes", "department"),
    [
        ("change_of_name", {}, "Driver and Vehicle Licensing Agency (driving licences)"),
        (
            "retiring",
            {"has_bank_account": "no", "sort_code": None, "account_number": None},
            "Government Payment Services (NS&I)",
        ),
    ],
)
def test_an_organisation_told_only_after_a_visit_is_not_among_those_told_now(
    client: FlaskClient, event_name: str, changes: dict[str, Any], department: str
) -> None:
    answers = {k: v for k, v in {**sample(event_name)["answers"], **changes}.items() if v}
    reach_check(client, event_name, answers)
    assert send(client, event_name).status_code == 302
    done = soup(client.get(f"/report/{event_name}/done"))
    now = [text(li) for li in done.select("#told-now li, #told-when-proved li")]
    after = [text(li) for li in done.select("#told-after-visit li")]
    assert department in after and not [n for n in now if n.startswith(department)]


# --- contact details (issue 15, item 3) ------------------------------------------------------


def test_every_journey_asks_for_optional_contact_details_last_with_govuk_inputs(
    client_request: PageClient,
) -> None:
    for event in EVENTS.values():
        assert [q.field for q in event.questions][-2:] == ["contact_email", "contact_mobile"]
    data = sample("moving_house")
    client = client_request.client
    walk(client, "moving_house", data["answers"], stop_at="contact_email")
    page = client_request.get("/report/moving_house/contact_email")
    assert text(page.find("h1")) == "What is your email address? (optional)"
    box = page.select_one("input#contact_email")
    assert box is not None
    assert (box["type"], box["autocomplete"], box["spellcheck"]) == ("email", "email", "false")
    wrong = client_request.post(
        "/report/moving_house/contact_email",
        {"contact_email": "sian@example"},
        _expected_status=400,
    )
    assert (
        error_of(wrong)[2] == "Enter an email address in the correct format, like name@example.com"
    )
    client_request.post(
        "/report/moving_house/contact_email",
        {"contact_email": "Sian@Example.com"},
        _expected_redirect="/report/moving_house/contact_mobile",
    )
    mobile = client_request.get("/report/moving_house/contact_mobile")
    number = mobile.select_one("input#contact_mobile")
    assert number is not None and (number["type"], number["autocomplete"]) == ("tel", "tel")
    client_request.post(
        "/report/moving_house/contact_mobile",
        {"contact_mobile": ""},
        _expected_redirect="/report/moving_house/tell",
    )
    choose(client, "moving_house", data["consent"])
    rows = dict(check_answers(client_request))
    assert rows["Email address for updates"] == "Sian@example.com"
    assert rows["Mobile number for updates"] == "Not given"


def test_contact_details_are_never_sent_to_a_department(redis: Redis, client: FlaskClient) -> None:
    answers = {**sample("death")["answers"], "contact_email": "informant@example.com"}
    reach_check(client, "death", answers)
    assert send(client, "death").status_code == 302
    case = CaseStore(redis).load(one_case_ref(redis))
    assert case.answers["contact_email"] == "informant@example.com"
    for decision in case.plan.decisions:
        assert not {"contact_email", "contact_mobile"} & set(decision.fields), decision


# --- 4. Welsh answers a yes or no question with its verb (issue 15, item 9) ----------------

# Each question's "Yes" and "No" in Welsh, as the Welsh-speaking reviewer gave them:
# "Iawn" means "OK", and Welsh answers with the verb the question asks with.
WELSH_YES_NO = {
    ("moving_house", "has_driving_licence"): ("Oes", "Nac oes"),
    ("death", "had_driving_licence"): ("Oedd", "Nac oedd"),
    ("birth", "claim_child_benefit"): ("Ydw", "Nac ydw"),
    ("new_job", "claiming_benefits"): ("Ydw", "Nac ydw"),
    ("retiring", "has_bank_account"): ("Oes", "Nac oes"),
}


def radios(page: BeautifulSoup, field: str) -> list[tuple[str, str]]:
    """(value, label) of each radio of ``field``, in the order offered."""
    return [
        (str(box["value"]), text(page.select_one(f'label[for="{box["id"]}"]')))
        for box in page.select(f'input[type="radio"][name="{field}"]')
    ]


@pytest.mark.parametrize(("event_name", "field"), sorted(WELSH_YES_NO))
def test_a_yes_or_no_question_offers_its_own_words_and_errors_name_them(
    app: Flask, client: FlaskClient, event_name: str, field: str
) -> None:
    yes, no = WELSH_YES_NO[(event_name, field)]
    question = EVENTS[event_name].question(field)
    tr = translator(app, "cy")
    start_in(client, "cy")
    _, url = walk(client, event_name, sample(event_name)["answers"], stop_at=field)
    page = PageClient(client).get(url)
    assert radios(page, field) == [("yes", yes), ("no", no)]

    token = csrf_token(page)
    empty = error_of(soup(client.post(url, data={"csrf_token": token})))
    assert empty[2] == tr(question.required_error) and f"‘{yes}’" in empty[2]
    neither = error_of(soup(client.post(url, data={"csrf_token": token, field: "maybe"})))
    assert neither[2] == tr(question.error("choice"))
    assert f"‘{yes}’" in neither[2] and f"‘{no}’" in neither[2]

    start_in(client, "en")
    assert radios(PageClient(client).get(url), field) == [("yes", "Yes"), ("no", "No")]


def summary(page: BeautifulSoup) -> list[tuple[str, str]]:
    """(key, value) of every row of every summary list in the page's main content."""
    return [
        (text(row.select_one(".govuk-summary-list__key")), text(row.select_one("dd")))
        for row in page.select("main .govuk-summary-list__row")
    ]


@pytest.mark.parametrize(("lang", "no", "yes"), [("cy", "Nac oes", "Oes"), ("en", "No", "Yes")])
def test_check_answers_gives_yes_and_no_in_the_words_of_the_question(
    app: Flask, client_request: PageClient, lang: str, no: str, yes: str
) -> None:
    tr = translator(app, lang)
    start_in(client_request.client, lang)
    answers = {**sample("moving_house")["answers"], "has_driving_licence": "no"}
    reach_check(client_request.client, "moving_house", answers, consent=["council", "dwp"])
    client_request.post(
        "/report/moving_house/tell",
        {"departments": ["council", "dwp"], "help": "y"},
        _expected_redirect="/report/moving_house/check",
    )
    rows = summary(client_request.get("/report/moving_house/check"))
    assert (tr("Do you have a driving licence?"), no) in rows
    assert (tr("Help at a Post Office"), yes) in rows  # "Oes": help is what they have


@pytest.mark.parametrize(
    ("event_name", "field", "value", "lang", "words"),
    [
        ("retiring", "has_bank_account", "yes", "cy", "Oes"),
        ("retiring", "has_bank_account", "no", "cy", "Nac oes"),  # told after a visit
        ("new_job", "claiming_benefits", "yes", "cy", "Ydw"),
        ("retiring", "has_bank_account", "no", "en", "No"),
    ],
)
def test_what_we_shared_gives_yes_and_no_in_the_words_of_the_question(
    app: Flask,
    client_request: PageClient,
    core: LifeEventRouter,
    event_name: str,
    field: str,
    value: str,
    lang: str,
    words: str,
) -> None:
    sent = submit_to_core(core, event_name, **{field: value})
    page = client_request.get(f"{sent.status_link}&lang={lang}", follow_redirects=True)
    label = translator(app, lang)(EVENTS[event_name].label(field))
    assert (label, words) in summary(page)


# --- wording and layout (issue 15, item 4) ---------------------------------------------------


@pytest.mark.parametrize("event_name", EVENT_NAMES)
def test_each_event_has_a_before_you_start_page_saying_what_you_will_need(
    client_request: PageClient, event_name: str
) -> None:
    start = client_request.get("/")
    links = [str(a["href"]) for a in start.select("main a.govuk-link")]
    assert f"/report/{event_name}/start" in links
    page = client_request.get(f"/report/{event_name}/start")
    event = EVENTS[event_name]
    assert text(page.find("h1")) == event.title
    needed = [text(li) for li in page.select("#what-you-will-need + ul li")]
    assert needed and needed == list(event.you_will_need)
    button = page.select_one("a.govuk-button--start")
    assert button is not None and button["href"] == f"/report/{event_name}"
    first = client_request.get(f"/report/{event_name}", _expected_status=302)
    assert first is not None


@pytest.mark.parametrize("event_name", EVENT_NAMES)
def test_every_address_page_says_whose_address_it_is(
    client_request: PageClient, event_name: str
) -> None:
    data = sample(event_name)
    walk(client_request.client, event_name, data["answers"], stop_at="town")
    headings = []
    for field in ("address_line_1", "town", "postcode"):
        if field in EVENTS[event_name].fields and EVENTS[event_name].question(field).applies({}):
            headings.append(text(client_request.get(f"/report/{event_name}/{field}").find("h1")))
    assert headings
    for heading in headings:
        assert heading not in ("Town or city", "Postcode"), heading
        assert "address" in heading or heading == "What is your postcode?", heading


def test_check_answers_asks_choices_as_questions_and_names_the_rest(
    client_request: PageClient,
) -> None:
    reach_check(client_request.client, "moving_house")
    keys = [k for k, _ in check_answers(client_request)]
    assert "Do you have a driving licence?" in keys
    assert "Has a driving licence" not in keys
    assert "Full name" in keys and "What is your full name?" not in keys


def test_the_confirmation_says_where_the_messages_go_shown_only_in_part(
    client: FlaskClient,
) -> None:
    answers = {**sample("death")["answers"], "contact_email": "informant@example.com"}
    answers["contact_mobile"] = "07700 900 982"
    reach_check(client, "death", answers)
    assert send(client, "death").status_code == 302
    page = soup(client.get("/report/death/done"))
    said = text(page.select_one("#messages"))
    assert "i***@example.com" in said and "*******0982" in said
    assert "informant@example.com" not in text(page)
    other = soup(client.application.test_client().get("/"))
    assert other.select_one("#messages") is None
