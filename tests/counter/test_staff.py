"""Counter staff: signing in and out, sessions that end, where signing in leads, and
staff accounts made with `router staff add`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from channels.counter import views as counter_views
from router import keys
from router.assisted import branches
from router.assisted.staff import StaffStore
from tests.support.counter import HOME, PASSWORD, SIGN_IN, StaffClient, sign_in
from tests.support.pages import (
    errors_of,
    field_errors,
    heading,
    path_of,
    post_form,
    redirected_to,
    soup,
    text,
)
from tests.support.processes import router_cli
from tests.support.redis_dump import keys_holding

WRONG_SIGN_IN = "Enter a correct user name and password"


@dataclass
class Clock:
    """How far ahead of real time the counter's guard thinks it is."""

    offset: float = 0.0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Move time on for the counter views only (sessions, Redis and cookies keep real time)."""
    moved = Clock()
    real = time.time
    monkeypatch.setattr(counter_views, "time", SimpleNamespace(time=lambda: real() + moved.offset))
    return moved


# --- 1. signing in and out -------------------------------------------------------------------


def test_a_wrong_password_and_an_unknown_user_name_get_the_same_answer(
    app: Flask, redis: Redis
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    wrong_password = sign_in(app.test_client(), "ann", "not the password")
    unknown_name = sign_in(app.test_client(), "nobody", PASSWORD)
    for response in (wrong_password, unknown_name):
        assert response.status_code == 400
        page = soup(response)
        assert heading(page) == "Sign in to the counter service"
        assert errors_of(page) == [WRONG_SIGN_IN]
        assert WRONG_SIGN_IN in field_errors(page)
    assert text(soup(wrong_password).find("main")) == text(soup(unknown_name).find("main"))


def test_after_five_failures_even_the_right_password_is_refused_for_a_while(
    app: Flask, redis: Redis
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    StaffStore(redis).add("bob", PASSWORD, HOME, "clerk")
    browser = app.test_client()
    for _ in range(5):
        assert sign_in(browser, "ann", "not the password").status_code == 400

    refused = sign_in(browser, "ANN ", PASSWORD)

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert redirected_to(browser.get("/counter")) == SIGN_IN
    # Only that user name is held back.
    assert redirected_to(sign_in(app.test_client(), "bob", PASSWORD)) == "/counter"


def test_signing_in_starts_a_new_session_so_a_planted_one_is_worthless(
    app: Flask, client: FlaskClient, redis: Redis
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    client.get("/report/moving_house")  # a session (a journey started), to plant
    client.get(SIGN_IN)
    planted = client.get_cookie("tuo_session")
    assert planted is not None

    assert redirected_to(sign_in(client, "ann", PASSWORD)) == "/counter"

    issued = client.get_cookie("tuo_session")
    assert issued is not None and issued.value != planted.value
    assert client.get("/counter").status_code == 200
    attacker = app.test_client()
    attacker.set_cookie("tuo_session", planted.value)
    assert redirected_to(attacker.get("/counter")) == SIGN_IN


def test_signing_out_ends_access(app: Flask, staff_client: StaffClient) -> None:
    ann = staff_client("ann", HOME)
    cookie = ann.get_cookie("tuo_session")
    assert cookie is not None
    assert ann.get("/counter").status_code == 200

    signed_out = post_form(ann, "/counter", {}, action="/counter/sign-out")

    assert redirected_to(signed_out) == SIGN_IN
    assert "You have signed out." in text(soup(ann.get(SIGN_IN)))
    assert redirected_to(ann.get("/counter")) == SIGN_IN
    copy = app.test_client()
    copy.set_cookie("tuo_session", cookie.value)
    assert redirected_to(copy.get("/counter")) == SIGN_IN


def test_a_session_left_idle_ends_and_says_why(staff_client: StaffClient, clock: Clock) -> None:
    ann = staff_client("ann", HOME)
    clock.offset = counter_views.IDLE_SECONDS - 60
    assert ann.get("/counter").status_code == 200  # in use: the idle time starts again

    clock.offset += counter_views.IDLE_SECONDS + 1
    expired = ann.get("/counter/find")

    assert redirected_to(expired) == SIGN_IN
    assert parse_qs(urlsplit(expired.location).query)["next"] == ["/counter/find"]
    page = text(soup(ann.get(SIGN_IN)))
    assert "You were signed out because you had not used the service for a while." in page
    clock.offset = 0
    assert redirected_to(ann.get("/counter")) == SIGN_IN


def test_a_counter_session_records_its_last_use_at_most_once_a_minute(
    staff_client: StaffClient, clock: Clock
) -> None:
    ann = staff_client("ann", HOME)

    def last_use() -> float:
        with ann.session_transaction() as held:
            return float(held["staff"]["seen"])

    signed_in = last_use()
    clock.offset = 30
    assert ann.get("/counter").status_code == 200
    assert last_use() == signed_in, "a request within the minute wrote the session"
    clock.offset = 60.5
    assert ann.get("/counter").status_code == 200
    assert last_use() >= signed_in + 60.5


def test_a_session_in_constant_use_still_ends_after_the_longest_time(
    staff_client: StaffClient, clock: Clock
) -> None:
    ann = staff_client("ann", HOME)
    step = counter_views.IDLE_SECONDS - 60
    while clock.offset + step <= counter_views.LONGEST_SECONDS:
        clock.offset += step
        assert ann.get("/counter").status_code == 200, clock.offset
    clock.offset = counter_views.LONGEST_SECONDS + 1
    assert redirected_to(ann.get("/counter")) == SIGN_IN


@pytest.mark.parametrize(
    ("next_page", "lands_on"),
    [
        ("/counter/find", "/counter/find"),
        ("https://evil.example/counter", "/counter"),
        ("//evil.example/counter", "/counter"),
        ("/status", "/counter"),
        ("javascript:alert(1)", "/counter"),
    ],
)
def test_after_sign_in_next_only_leads_inside_the_counter(
    app: Flask, redis: Redis, next_page: str, lands_on: str
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    browser = app.test_client()
    signed_in = sign_in(browser, "ann", PASSWORD, query=f"?next={quote(next_page, safe='')}")
    assert signed_in.status_code == 302
    location = urlsplit(signed_in.location)
    assert location.netloc in ("", "localhost")
    assert path_of(signed_in.location) == lands_on


def test_after_sign_in_next_keeps_its_query_even_on_the_areas_own_page(
    app: Flask, redis: Redis
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    browser = app.test_client()
    asked = quote("/counter?lang=cy", safe="")
    signed_in = sign_in(browser, "ann", PASSWORD, query=f"?next={asked}")
    assert signed_in.status_code == 302
    assert signed_in.location == "/counter?lang=cy"


def test_a_stranger_signing_in_lands_on_the_page_they_asked_for(
    client: FlaskClient, redis: Redis
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    asked = client.get("/counter/report")
    assert redirected_to(asked) == SIGN_IN
    landed = sign_in(client, "ann", PASSWORD, query=f"?{urlsplit(asked.location).query}")
    assert path_of(landed.location) == "/counter/report"
    assert heading(soup(client.get("/counter/report"))) == "Start a report on a citizen’s behalf"


# --- 2. staff accounts from the command line -----------------------------------------------------


BAD_STAFF = [
    pytest.param(
        ["ann", "--branch", HOME],
        "too short",
        "password: Password must be 12 characters or more",
        id="short-password",
    ),
    pytest.param(
        ["ann", "--branch", "atlantis"],
        PASSWORD,
        "branch: Enter the id of a branch in the branch list",
        id="unknown-branch",
    ),
    pytest.param(
        ["ann", "--branch", HOME, "--role", "boss"],
        PASSWORD,
        "Invalid value for '--role'",
        id="bad-role",
    ),
    pytest.param(
        ["Ann Jones!", "--branch", HOME],
        PASSWORD,
        "username: User name must be 3 to 40 characters",
        id="bad-user-name",
    ),
]


@pytest.mark.parametrize(("args", "password", "message"), BAD_STAFF)
def test_staff_add_refuses_bad_input_with_a_message_and_exit_code_2(
    cli_env: dict[str, str], redis: Redis, args: list[str], password: str, message: str
) -> None:
    env = {**cli_env, "ROUTER_STAFF_PASSWORD": password}
    result = router_cli("staff", "add", *args, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert list(redis.scan_iter(keys.staff("*"))) == []


def test_staff_passwords_are_stored_only_as_salted_scrypt_hashes(
    cli_env: dict[str, str], redis: Redis
) -> None:
    env = {**cli_env, "ROUTER_STAFF_PASSWORD": PASSWORD}
    for username in ("meg", "bob"):
        result = router_cli(
            "staff", "add", username, "--branch", HOME, "--role", "manager", env=env
        )
        assert result.returncode == 0, result.stderr
        assert PASSWORD not in result.stdout + result.stderr
    assert result.stdout.strip() == f"Manager bob can sign in at {branches.branch(HOME).name}."

    hashes = [redis.hget(keys.staff(u), "password_hash") for u in ("meg", "bob")]
    assert all(isinstance(h, bytes) and h.startswith(b"scrypt:") for h in hashes), hashes
    assert hashes[0] != hashes[1]  # salted
    assert keys_holding(redis, PASSWORD) == set()
    assert StaffStore(redis).authenticate("meg", PASSWORD) is not None
    assert StaffStore(redis).authenticate("meg", PASSWORD + "x") is None
