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
    """The page parsed; every id on an HTML page is unique (the Nu HTML checker calls a
    repeated id an error, and a label or error link would find the wrong element)."""
    page = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    if response.mimetype == "text/html":
        ids = [str(tag["id"]) for tag in page.find_all(id=True)]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        assert not repeated, f"{response.request.path}: ids used more than once: {repeated}"
    return page


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


class PageClient:
    """A browser that reads pages as a person does, like Notify admin's ``client_request``:
    ``get`` and ``post`` assert the status they expect (and, for a redirect, where it
    leads) and return the page parsed. ``client`` is the Flask test client underneath,
    for the helpers that take one and for cookies, headers and JSON."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(
        self,
        url: str,
        _expected_status: int | None = None,
        _expected_redirect: str | None = None,
        **kwargs: Any,
    ) -> BeautifulSoup:
        """GET ``url``: 200 expected, or 302 to ``_expected_redirect`` when one is given."""
        response = self.client.get(url, **kwargs)
        return _read(url, response, _expected_status, _expected_redirect, 200)

    def post(
        self,
        url: str,
        data: Mapping[str, Any] | None = None,
        _expected_status: int | None = None,
        _expected_redirect: str | None = None,
        _form: str | None = None,
        **kwargs: Any,
    ) -> BeautifulSoup:
        """Open the form page (``_form``, else ``url``) for its CSRF token, as a person opens
        a form before sending it, and post ``data`` with it to ``url``: 302 expected."""
        token = csrf_token(self.get(_form or url))
        response = self.client.post(url, data={"csrf_token": token, **(data or {})}, **kwargs)
        return _read(url, response, _expected_status, _expected_redirect, 302)


def _read(
    url: str,
    response: TestResponse,
    expected_status: int | None,
    expected_redirect: str | None,
    default_status: int,
) -> BeautifulSoup:
    if expected_status is None:
        expected_status = 302 if expected_redirect is not None else default_status
    assert response.status_code == expected_status, (
        f"{url}: {response.status_code}, expected {expected_status}"
    )
    if expected_redirect is not None:
        assert path_of(response.location) == expected_redirect, (
            f"{url} redirects to {response.location}, expected {expected_redirect}"
        )
    return soup(response)
