"""The counter: signing staff in, reading a branch's queue, and which branch is nearest
offering what a case needs (worked out here from the data, not by the code under test)."""

from __future__ import annotations

from bs4 import BeautifulSoup
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from router.assisted import branches
from tests.support.pages import post_form, text


def queue_refs(page: BeautifulSoup) -> list[str]:
    """The references listed in a branch queue page's table."""
    return [text(a) for a in page.select("table.govuk-table tbody a")]


def sign_in(client: FlaskClient, username: str, password: str, query: str = "") -> TestResponse:
    return post_form(
        client, f"/counter/sign-in{query}", {"username": username, "password": password}
    )


# --- the branches, worked out from the data ----------------------------------------------------


def nearest_offering(postcode: str, services: set[str]) -> str:
    """The id of the nearest branch offering every one of ``services``, computed here
    from the branch list and the postcode centroids (not with ``branches.nearest``)."""
    origin = branches.locate(postcode)
    assert origin is not None, postcode
    able = [b for b in branches.load_branches().values() if services <= b.services]
    best = min(able, key=lambda b: (branches.haversine_km(origin, (b.lat, b.lon)), b.id))
    return best.id
