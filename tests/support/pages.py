"""Pages as a person reads them: parsed HTML, its text, headings and error messages, its
form tokens, and what a person types into a form for a sample answer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

from bs4 import BeautifulSoup, Tag
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from router.catalogue import Kind, Question


def soup(response: TestResponse) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def text(element: Tag | None) -> str:
    """An element's text as a person reads it: whitespace collapsed."""
    assert element is not None
    return " ".join(element.get_text(" ").split())


def csrf_token(page: BeautifulSoup) -> str:
    field = page.find("input", {"name": "csrf_token"})
    assert isinstance(field, Tag), "no CSRF token on the page"
    value = field.get("value")
    assert isinstance(value, str) and value
    return value


def path_of(url: str) -> str:
    """Path and query of a URL (the test client gives absolute or relative ones)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def form_value(question: Question, answer: Any) -> str | list[str]:
    """What a person types for a sample answer: dates as day, month, year boxes."""
    if question.kind is Kind.DATE:
        if isinstance(answer, dict):
            when = date.today() - timedelta(days=answer["days_ago"])
        else:
            when = date.fromisoformat(answer)
        return [str(when.day), str(when.month), str(when.year)]
    return str(answer)


def heading(page: BeautifulSoup) -> str:
    return text(page.find("h1"))


def redirected_to(response: TestResponse) -> str:
    """The path (no query) a redirect points to."""
    assert response.status_code == 302, response.status_code
    return urlsplit(response.location).path


def errors_of(page: BeautifulSoup) -> list[str]:
    """The messages in the page's GOV.UK error summary."""
    return [text(a) for a in page.select(".govuk-error-summary__list a")]


def error_of(page: BeautifulSoup) -> tuple[str, str, str]:
    """(summary link text, summary link href, field message) of a page with one error."""
    summary = page.select_one(".govuk-error-summary")
    assert summary is not None, "no error summary"
    links = summary.select(".govuk-error-summary__list a")
    assert len(links) == 1, f"expected one error, got {[text(a) for a in links]}"
    message = page.select_one(".govuk-error-message")
    assert message is not None, "no error message by the field"
    hidden = message.select_one(".govuk-visually-hidden")
    if hidden is not None:
        hidden.extract()  # the visually hidden "Error:" prefix
    return text(links[0]), str(links[0]["href"]), text(message)


def field_errors(page: BeautifulSoup) -> list[str]:
    """The messages shown by the fields, without the visually hidden "Error:"."""
    found = []
    for message in page.select(".govuk-error-message"):
        hidden = message.select_one(".govuk-visually-hidden")
        if hidden is not None:
            hidden.extract()
        found.append(text(message))
    return found


def post_form(
    client: FlaskClient, page: str, data: Mapping[str, Any], action: str | None = None
) -> TestResponse:
    """Open ``page`` for its CSRF token and post ``data`` to ``action`` (else the page)."""
    token = csrf_token(soup(client.get(page)))
    return client.post(action or page, data={"csrf_token": token, **data})
