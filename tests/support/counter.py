"""The counter: signing staff in, reading a branch's queue, and which branch is nearest
offering what a case needs (worked out here from the data, not by the code under test)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from bs4 import BeautifulSoup
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from router.assisted import branches
from router.catalogue import EVENTS
from tests.support.pages import csrf_token, errors_of, form_value, path_of, post_form, soup, text


def queue_refs(page: BeautifulSoup) -> list[str]:
    """The references listed in a branch queue page's table."""
    return [text(a) for a in page.select("table.govuk-table tbody a")]


def sign_in(client: FlaskClient, username: str, password: str, query: str = "") -> TestResponse:
    return post_form(
        client, f"/counter/sign-in{query}", {"username": username, "password": password}
    )


# --- answering the journey ------------------------------------------------------------------


def walk(client: FlaskClient, prefix: str, event_name: str, answers: Mapping[str, Any]) -> str:
    """Answer each question the journey at ``prefix`` (/report or /counter/report) asks;
    return the address of the first page that is not a question."""
    event = EVENTS[event_name]
    response = client.get(f"{prefix}/{event_name}")
    for _ in range(30):
        assert response.status_code == 302, response.status_code
        url = path_of(response.location)
        field = urlsplit(url).path.rsplit("/", 1)[1]
        if field not in event.fields:
            return url
        token = csrf_token(soup(client.get(url)))
        value = form_value(event.question(field), answers[field])
        response = client.post(url, data={"csrf_token": token, field: value})
        assert response.status_code == 302, f"{url}: {errors_of(soup(response))}"
    raise AssertionError("the journey does not end")


# --- the branches, worked out from the data ----------------------------------------------------


def nearest_offering(postcode: str, services: set[str]) -> str:
    """The id of the nearest branch offering every one of ``services``, computed here
    from the branch list and the postcode centroids (not with ``branches.nearest``)."""
    origin = branches.locate(postcode)
    assert origin is not None, postcode
    able = [b for b in branches.load_branches().values() if services <= b.services]
    best = min(able, key=lambda b: (branches.haversine_km(origin, (b.lat, b.lon)), b.id))
    return best.id
