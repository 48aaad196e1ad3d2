"""The citizen's journey answered through the Flask test client: each question in turn,
the organisations to tell, check your answers and send; and the confirmation read back.

``walk`` serves the journey online (/report) and at the counter (/counter/report).
``submit_sample`` sends a sample report the way a citizen does, page by page; to send
one straight through the core, see tests.support.samples.submit_to_core.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from bs4 import BeautifulSoup
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from router import reference
from router.catalogue import EVENTS, Kind, Question
from tests.support.pages import csrf_token, form_value, path_of, soup, text
from tests.support.samples import sample
from tests.support.sent import Sent

REF_SHAPE = re.compile(r"^[ACDEFGHJKMNPQRTWXY3469]{4}-[ACDEFGHJKMNPQRTWXY3469]{4}-[A-Z0-9]$")


def empty_form(question: Question) -> dict[str, Any]:
    """What a browser sends when nothing is entered: no radio value, empty boxes."""
    if question.kind in (Kind.YES_NO, Kind.CHOICE):
        return {}
    if question.kind is Kind.DATE:
        return {question.field: ["", "", ""]}
    return {question.field: ""}


@dataclass
class Visit:
    """One question page as first shown, and the answer to an empty form (if required)."""

    field: str
    url: str
    response: TestResponse
    page: BeautifulSoup
    empty: TestResponse | None


class Walk(NamedTuple):
    visits: list[Visit]
    end: str  # path and query of the first page that is not a question (or stop_at's)


def walk(
    client: FlaskClient,
    event_name: str,
    answers: Mapping[str, Any],
    *,
    prefix: str = "/report",
    try_empty: bool = False,
    stop_at: str | None = None,
) -> Walk:
    """Answer each question the journey at ``prefix`` (/report or /counter/report) asks,
    following its redirects; return the pages visited and the first page that is not a
    question (or ``stop_at``'s URL)."""
    event = EVENTS[event_name]
    start = f"{prefix}/{event_name}"
    response = client.get(start)
    visits: list[Visit] = []
    while True:
        assert response.status_code == 302, (
            response.status_code,
            visits[-1].url if visits else start,
        )
        url = path_of(response.location)
        field = urlsplit(url).path.rsplit("/", 1)[1]
        if field not in event.fields or field == stop_at:
            return Walk(visits, url)
        assert len(visits) < 20, "the journey does not end"
        question = event.question(field)
        shown = client.get(url)
        page = soup(shown)
        token = csrf_token(page)
        empty = None
        if try_empty and question.required:
            empty = client.post(url, data={"csrf_token": token, **empty_form(question)})
        visits.append(Visit(field, url, shown, page, empty))
        # An optional question the answers leave out (contact details) is left blank.
        answer = answers[field] if question.required or field in answers else ""
        response = client.post(url, data={"csrf_token": token, field: form_value(question, answer)})
        assert response.status_code == 302, f"{url}: {text(soup(response).find('main'))}"


def choose(client: FlaskClient, event_name: str, consent: list[str]) -> TestResponse:
    url = f"/report/{event_name}/tell"
    token = csrf_token(soup(client.get(url)))
    return client.post(url, data={"csrf_token": token, "departments": consent})


def send(client: FlaskClient, event_name: str) -> TestResponse:
    url = f"/report/{event_name}/check"
    token = csrf_token(soup(client.get(url)))
    return client.post(url, data={"csrf_token": token})


def reach_check(
    client: FlaskClient,
    event_name: str,
    answers: dict[str, Any] | None = None,
    consent: list[str] | None = None,
) -> None:
    data = sample(event_name)
    _, url = walk(client, event_name, answers or data["answers"])
    assert url == f"/report/{event_name}/tell"
    chosen = choose(client, event_name, consent or data["consent"])
    assert chosen.status_code == 302 and path_of(chosen.location) == f"/report/{event_name}/check"


def done_page(client: FlaskClient, event_name: str) -> Sent:
    """The confirmation page: the reference in its panel and the one status link."""
    page = soup(client.get(f"/report/{event_name}/done"))
    panel = page.select_one(".govuk-panel")
    assert panel is not None, "no confirmation panel"
    strong = panel.select_one("strong")
    ref = text(strong)
    assert REF_SHAPE.match(ref), ref
    links = [str(a["href"]) for a in page.select("main a[href*='/status/']")]
    assert len(links) == 1, links
    link = path_of(links[0])
    canonical = reference.normalise(ref)
    assert canonical is not None, ref
    sent = Sent(canonical, parse_qs(urlsplit(link).query)["s"][0])
    assert sent.status_link == link, link
    return sent


def submit_sample(client: FlaskClient, event_name: str) -> Sent:
    """Send the sample report online, page by page, as a citizen does."""
    reach_check(client, event_name)
    sent = send(client, event_name)
    assert sent.status_code == 302 and path_of(sent.location) == f"/report/{event_name}/done"
    return done_page(client, event_name)


# The death sample's informant (who reports it): their date of birth and the postcode.
INFORMANT_BORN = ["19", "7", "1944"]
DEATH_POSTCODE = "LS1 4AP"


def find_case(
    client: FlaskClient, ref: str, born: list[str], postcode: str = DEATH_POSTCODE
) -> TestResponse:
    """Find a report on the status page by its reference, the reporter's date of birth
    and the postcode given in it."""
    url = f"/status?ref={ref}"
    token = csrf_token(soup(client.get(url)))
    data = {"csrf_token": token, "reference": ref, "date_of_birth": born, "postcode": postcode}
    return client.post(url, data=data)
