"""The status page: who may see it (its secret link, or the reference with a date of
birth, with a limit on guesses) and the live fragment that polls until every
organisation is told."""

from __future__ import annotations

import time

from bs4 import BeautifulSoup, Tag
from flask import Flask, session
from flask.testing import FlaskClient
from redis import Redis

from channels.web import access
from router import reference
from router.assisted import branches
from router.delivery.worker import Supervisor
from router.service import LifeEventRouter
from tests.support.journeys import INFORMANT_BORN, find_case, submit_sample
from tests.support.pages import PageClient, error_of, path_of, soup, text
from tests.support.samples import sample, submit_to_core
from tests.support.sign_in import prove_online

# --- 1. who may see a status page --------------------------------------------------------------


NOT_FOUND = (
    "We could not find a report with that reference, date of birth and postcode. "
    "Check them and try again"
)


def test_a_reference_without_its_secret_reveals_nothing(
    client: FlaskClient, redis: Redis, partner: dict[str, str]
) -> None:
    body = client.post("/api/v1/submissions", json=sample("death"), headers=partner).get_json()
    ref = body["reference"]
    # The web answers a real and a made-up reference alike: "find your report".
    for made_up in (reference.display(reference.new_reference()), ref):
        for url in (f"/status/{made_up}", f"/status/{made_up}?s=wrong-secret"):
            response = client.get(url)
            assert response.status_code == 302
            assert response.location == f"/status?ref={made_up}"
            assert "Pendleton" not in client.get(response.location).get_data(as_text=True)
    for url, headers in (
        (f"/api/v1/cases/{ref}", partner),
        (f"/api/v1/cases/{ref}", {**partner, "X-Case-Secret": "wrong"}),
    ):
        response = client.get(url, headers=headers)
        assert response.status_code == 404
        assert "Pendleton" not in response.get_data(as_text=True)
    unknown = client.get("/api/v1/cases/ACDE-FGHJ-K", headers={**partner, "X-Case-Secret": "x"})
    assert unknown.status_code == 404
    assert (
        unknown.get_json()["message"]
        == client.get(
            f"/api/v1/cases/{ref}", headers={**partner, "X-Case-Secret": "wrong"}
        ).get_json()["message"]
    )


def test_a_status_link_without_its_secret_sends_you_to_find_your_report(
    app: Flask, client: FlaskClient
) -> None:
    sent = submit_sample(client, "death")
    stranger = PageClient(app.test_client())
    for url in (f"/status/{sent.display}", f"/status/{sent.display}?s=not-the-secret"):
        stranger.get(url, _expected_redirect=f"/status?ref={sent.display}")
    stranger.get(f"/status/{sent.display}/deliveries", _expected_status=404)
    find = stranger.get(f"/status?ref={sent.display}")
    assert find.select_one("input#reference")["value"] == sent.display
    assert "Pendleton" not in text(find)
    owner = stranger.get(
        sent.status_link, follow_redirects=True
    )  # the link from the confirmation opens it
    assert text(owner.find("h1")) == "Progress of your report"


def test_a_death_is_found_by_reference_and_the_date_of_birth_of_the_person_who_died(
    app: Flask, client: FlaskClient
) -> None:
    sent = submit_sample(client, "death")
    stranger = app.test_client()
    found = find_case(stranger, sent.display, INFORMANT_BORN)
    assert found.status_code == 302
    assert path_of(found.location) == f"/status/{sent.display}"
    page = soup(stranger.get(found.location))
    assert text(page.find("h1")) == "Progress of your report"
    assert sent.display in text(page.find("main"))


def test_wrong_dates_of_birth_get_a_message_then_too_many_attempts(
    app: Flask, client: FlaskClient
) -> None:
    sent = submit_sample(client, "death")
    guesser = app.test_client()
    for attempt in range(1, 6):
        wrong = find_case(guesser, sent.display, ["1", "1", str(1950 + attempt)])
        assert wrong.status_code == 400, f"wrong date of birth, try {attempt}"
        summary, href, by_field = error_of(soup(wrong))
        assert summary == by_field == NOT_FOUND
        assert href == "#reference"
    sixth = find_case(guesser, sent.display, ["1", "1", "1960"])
    assert sixth.status_code == 429
    assert int(sixth.headers["Retry-After"]) > 0
    assert text(soup(sixth).find("h1")) == "Too many attempts"
    right = find_case(guesser, sent.display, INFORMANT_BORN)
    assert right.status_code == 429  # even the right answer waits now


def test_a_made_up_reference_gets_the_same_answers_as_a_real_one(
    app: Flask, client: FlaskClient
) -> None:
    sent = submit_sample(client, "death")
    made_up = reference.display(reference.new_reference())
    assert made_up != sent.display
    answers: dict[str, list[tuple[int, str]]] = {}
    for ref in (sent.display, made_up):
        guesser = app.test_client()
        seen = answers.setdefault(ref, [])
        for attempt in range(6):
            response = find_case(guesser, ref, ["1", "1", str(1950 + attempt)])
            seen.append((response.status_code, text(soup(response).find("main"))))
    assert [code for code, _ in answers[sent.display]] == [code for code, _ in answers[made_up]]
    assert answers[sent.display][0][1] == answers[made_up][0][1]
    assert answers[sent.display][-1][1] == answers[made_up][-1][1]


def test_a_session_remembers_only_its_20_most_recent_cases(app: Flask) -> None:
    refs = [reference.new_reference() for _ in range(21)]
    with app.test_request_context():
        for ref in refs:
            access.grant(ref)
        access.grant(refs[-1])  # granted again: still one place, the oldest kept out
        assert not access.allowed(refs[0])
        assert all(access.allowed(ref) for ref in refs[1:])
        assert len(session[access.SEEN]) == 20


def test_revoking_a_case_is_saved_with_the_session_even_when_nothing_else_changed(
    app: Flask, core: LifeEventRouter
) -> None:
    # The status page's sign-out also flashes a message, which would save the session
    # anyway; revoke must not depend on it: the session's list is changed in place.
    sent = submit_to_core(core, "death")
    browser = app.test_client()
    assert browser.get(sent.status_link, follow_redirects=True).status_code == 200
    cookie = browser.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    headers = {"Cookie": f"{cookie.key}={cookie.value}"}
    with app.test_request_context(f"/status/{sent.display}", headers=headers):
        assert access.allowed(sent.ref)
        access.revoke(sent.ref)
        app.session_interface.save_session(app, session, app.response_class())
    assert browser.get(f"/status/{sent.display}").status_code == 302


# --- 2. the live status fragment ----------------------------------------------------------------


def fragment(client_request: PageClient, ref: str) -> Tag:
    page = client_request.get(f"/status/{ref}/deliveries", headers={"HX-Request": "true"})
    assert page.find("html") is None and page.find("header") is None, "not a fragment"
    deliveries = page.select_one("#deliveries")
    assert deliveries is not None
    return deliveries


def test_while_deliveries_are_pending_the_fragment_asks_to_be_polled(
    client_request: PageClient,
) -> None:
    sent = submit_sample(client_request.client, "birth")
    deliveries = fragment(client_request, sent.display)
    assert deliveries["hx-get"] == f"/status/{sent.display}/deliveries"
    assert str(deliveries["hx-trigger"]).startswith("every ")
    page = client_request.get(sent.status_link, follow_redirects=True).select_one("#deliveries")
    assert page is not None and page["hx-get"] == f"/status/{sent.display}/deliveries"
    tags = [text(t) for t in deliveries.select(".govuk-tag")]
    # The register confirmed the birth, so DWP goes; HMRC (Child Benefit) waits for the
    # parent's identity too, and is in no queue, yet DWP's delivery keeps the page live.
    assert tags == ["Waiting to send", "Waiting for you to prove your identity"]


def test_polling_stops_once_every_organisation_is_told(
    client_request: PageClient, workers: Supervisor
) -> None:
    sent = submit_sample(client_request.client, "birth")
    # HMRC acts on a birth only once the parent has proved who they are: they sign in.
    prove_online(client_request.client, sent, "sample-birth")
    deadline = time.monotonic() + 20
    while True:
        deliveries = fragment(client_request, sent.display)
        tags = [text(t) for t in deliveries.select(".govuk-tag")]
        if tags and all(t == "Told" for t in tags):
            break
        assert time.monotonic() < deadline, f"not all told after 20 s: {tags}"
        time.sleep(0.2)
    assert len(tags) == 2  # DWP and HMRC for the sample birth
    assert not deliveries.has_attr("hx-get") and not deliveries.has_attr("hx-trigger")
    shared = deliveries.select_one("#what-we-shared")
    assert shared is not None
    headings = shared.find_next_siblings("h3")
    assert len(headings) == 2
    for heading in headings:
        said = heading.find_next_sibling("p")
        assert said is not None and text(said).startswith("Sent on "), text(heading)
    page = client_request.get(sent.status_link, follow_redirects=True).select_one("#deliveries")
    assert page is not None and not page.has_attr("hx-get")


# --- 3. how we know it is you, and what waits for it -------------------------------------------


def how_we_know(page: Tag | BeautifulSoup) -> list[str]:
    heading = page.select_one("#how-we-know")
    assert heading is not None, "no 'How we know it is you'"
    listed = heading.find_next_sibling("ul")
    assert isinstance(listed, Tag)
    return [text(li) for li in listed.select("li")]


def test_a_death_confirmed_by_the_register_says_so_and_waits_for_nobody(
    core: LifeEventRouter, client: FlaskClient
) -> None:
    sent = submit_to_core(core, "death", confidence=None)
    page = soup(client.get(sent.status_link, follow_redirects=True))
    said = how_we_know(page)
    assert len(said) == 2, said
    assert said[0].startswith("The death was confirmed against the register on ")
    assert said[1] == "Nobody has proved who sent this report yet"
    assert page.select_one("#prove-identity") is None  # a death needs its registration only
    tags = {text(t) for t in page.select("#deliveries .govuk-tag")}
    assert tags == {"Waiting to send"}


def test_a_move_nobody_proved_says_what_waits_and_the_two_ways_to_prove_it(
    core: LifeEventRouter, client: FlaskClient
) -> None:
    sent = submit_to_core(core, "moving_house", confidence=None)
    case = core.case(sent.ref)
    page = soup(client.get(sent.status_link, follow_redirects=True))
    for name in ("council", "dvla", "dwp", "hmrc"):
        tag = page.select_one(f"#status-{name} .govuk-tag")
        assert text(tag) == "Waiting for you to prove your identity", name
    section = page.select_one("#prove-identity")
    assert section is not None
    waiting = section.find_next_sibling("ul")
    assert isinstance(waiting, Tag) and len(waiting.select("li")) == 4
    assert page.select_one(f'form[action="/status/{sent.display}/prove-identity"]') is not None
    assert page.select_one('a[href="#post-office"]') is not None
    visit = page.select_one("#post-office ~ .govuk-inset-text")
    assert visit is not None and branches.branch(case.branch).name in text(visit)
    bring = text(page.find("main"))
    assert "Identity check: Bring your passport or another photo identity document" in bring
    assert how_we_know(page) == ["Nobody has proved who sent this report yet"]
