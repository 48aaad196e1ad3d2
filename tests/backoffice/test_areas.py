"""Every staff route against every role: one sign-in, one deny-by-default guard, and each
role in its own area only (clerks and managers at the counter, operators at /ops,
caseworkers at /casework). A refused request changes nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from redis import Redis

from channels.counter.views import AREAS
from router.assisted.staff import ROLES
from router.service import LifeEventRouter
from tests.support.counter import HOME, PASSWORD, SIGN_IN, StaffClient, photocard_change
from tests.support.pages import csrf_token, soup
from tests.support.redis_dump import snapshot as everything


def snapshot(redis: Redis) -> dict[bytes, bytes | None]:
    """Everything in Redis but web sessions, and the wake keys of the case submitted
    (they run out by themselves after a second and a half: keys.WAKE_MS)."""
    return {k: v for k, v in everything(redis).items() if not k.startswith(b"wake:")}


ARGUMENTS = {
    "event_name": "change_of_name",
    "field": "full_name",
    "task": "photo",
    "department": "dvla",
}
# Each area's blueprints must be named here, so a new area cannot be left out.
KNOWN_AREAS = {"counter", "counter_journey", "ops", "casework"}


def staff_routes(app: Flask, ref: str) -> list[tuple[str, str, str]]:
    """(blueprint, method, url) of every route in a staff area but signing in and out."""
    found = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            area = rule.endpoint.partition(".")[0]
            if area not in AREAS or rule.endpoint in ("counter.sign_in", "counter.sign_out"):
                continue
            values: dict[str, Any] = {a: ARGUMENTS.get(a, ref) for a in rule.arguments}
            url = url_for(rule.endpoint, **values)
            for method in sorted((rule.methods or set()) & {"GET", "POST"}):
                found.append((area, method, url))
    assert {area for area, _, _ in found} == KNOWN_AREAS == set(AREAS)
    return found


def test_every_area_is_closed_to_every_role_but_its_own(
    app: Flask, core: LifeEventRouter, redis: Redis, staff_client: StaffClient
) -> None:
    sent = photocard_change(core)
    browsers: dict[str, FlaskClient] = {
        role: staff_client(f"{role}-1", HOME if role in ("clerk", "manager") else "", role)
        for role in ROLES
    }
    tokens = {role: csrf_token(soup(b.get(SIGN_IN))) for role, b in browsers.items()}
    problems = []
    for area, method, url in staff_routes(app, sent.display):
        for role, browser in browsers.items():
            if role in AREAS[area]:
                continue
            before = snapshot(redis)
            data = (
                {"csrf_token": tokens[role], "all": "1", "note": "x"} if method == "POST" else None
            )
            response = browser.open(url, method=method, data=data)
            if response.status_code != 403:
                problems.append(f"{role}: {method} {url}: {response.status_code}")
            after = snapshot(redis)
            if after != before:
                changed = sorted(
                    k for k in before.keys() | after.keys() if before.get(k) != after.get(k)
                )
                problems.append(f"{role}: {method} {url} changed Redis: {changed}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_its_own_area(role: str, staff_client: StaffClient) -> None:
    browser = staff_client(f"{role}-2", HOME if role in ("clerk", "manager") else "", role)
    home = {"operator": "/ops", "caseworker": "/casework"}.get(role, "/counter")
    assert browser.get(home).status_code == 200
    # An address that does not exist: a 404 in one's own area, a 403 in another's.
    assert browser.get(f"{home}/no-such-page").status_code == 404
    for other in {"/counter", "/ops", "/casework"} - {home}:
        assert browser.get(f"{other}/no-such-page").status_code == 403


@pytest.mark.parametrize("path", ["/ops", "/ops/live", "/casework", "/casework/no-such-page"])
def test_strangers_are_sent_to_sign_in_from_the_back_office(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert urlsplit(response.location).path == SIGN_IN


def test_sign_in_goes_on_to_the_page_asked_for_only_inside_ones_own_area(
    app: Flask, redis: Redis, staff_client: StaffClient
) -> None:
    from router.assisted.staff import StaffStore
    from tests.support.counter import sign_in
    from tests.support.pages import redirected_to

    StaffStore(redis).add("olu", PASSWORD, "", "operator")
    inside = sign_in(app.test_client(), "olu", PASSWORD, "?next=/ops/audit")
    assert redirected_to(inside) == "/ops/audit"
    elsewhere = sign_in(app.test_client(), "olu", PASSWORD, "?next=/counter/find")
    assert redirected_to(elsewhere) == "/ops"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_signs_out(role: str, staff_client: StaffClient) -> None:
    browser = staff_client(f"{role}-3", HOME if role in ("clerk", "manager") else "", role)
    home = {"operator": "/ops", "caseworker": "/casework"}.get(role, "/counter")
    token = csrf_token(soup(browser.get(home)))
    signed_out = browser.post("/counter/sign-out", data={"csrf_token": token})
    assert urlsplit(signed_out.location).path == SIGN_IN
    assert urlsplit(browser.get(home).location).path == SIGN_IN
