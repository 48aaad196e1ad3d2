"""The counter: its staff and branches, signing in, reading a branch's queue, which branch
is nearest offering what a case needs (worked out here from the data, not by the code
under test), and a clerk's work on a case."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from bs4 import BeautifulSoup
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from router.assisted import branches
from router.catalogue import EVENTS
from router.service import LifeEventRouter
from tests.support.pages import post_form, text
from tests.support.samples import submit_to_core
from tests.support.sent import Sent

PASSWORD = "a long counter password"
HOME = "cardiff-queen-street"  # the clerks' branch: identity checks, photos, cash
OTHER = "cardiff-whitchurch"  # another Cardiff branch: identity checks and photos
# In CF11 the nearest branch (cardiff-canton) takes no photos; in CF14 the nearest
# (cardiff-whitchurch) pays no cash vouchers.
CF11 = "CF11 9AB"
CF14 = "CF14 2AB"
PHOTO = {"identity_check", "photo"}
CASH = {"identity_check", "cash_payments"}
SIGN_IN = "/counter/sign-in"

# staff_client("ann", HOME, role="clerk"): a browser signed in as a new member of staff
# (the fixture is in tests/conftest.py).
StaffClient = Callable[..., FlaskClient]


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


# --- cases at the counter ---------------------------------------------------------------------


def photocard_change(core: LifeEventRouter, postcode: str = CF11) -> Sent:
    """A change of name with a photocard licence: DVLA needs an identity check and a photo."""
    return submit_to_core(core, "change_of_name", postcode=postcode, town="Cardiff")


def record_identity(browser: FlaskClient, sent: Sent, last_four: str) -> Any:
    return post_form(
        browser,
        sent.page,
        {"document": "passport", "last_four": last_four},
        action=f"{sent.page}/identity",
    )


def complete_task(browser: FlaskClient, sent: Sent, task: str) -> Any:
    return post_form(browser, sent.page, {}, action=f"{sent.page}/tasks/{task}")


def citizen_here(core: LifeEventRouter, sent: Sent, born: str | None = None) -> dict[str, Any]:
    """What a clerk of another branch posts to open its case: the citizen is here, and
    the reporter's date of birth as the citizen gives it (``born``, ISO, to give another)."""
    case = core.case(sent.ref)
    given = date.fromisoformat(born or EVENTS[case.event_type].reporter.date_of_birth(case.answers))
    return {"present": "y", "date_of_birth": [str(given.day), str(given.month), str(given.year)]}
