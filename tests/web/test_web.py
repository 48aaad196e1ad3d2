"""The web front door: the start page, a GOV.UK page for an address that is not one, the
departments it follows while it runs, and forms signed alike by every process."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from router.redis_server import RedisServer
from tests.support.pages import PageClient, text
from tests.support.samples import sample


def test_start_page_lists_every_life_event(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    for title in (
        "Moving house",
        "Someone has died",
        "A baby has been born",
        "Starting a new job",
        "Retiring",
        "Changing your name",
    ):
        assert title in page


def test_unknown_page_is_a_gov_uk_style_404(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_the_web_front_door_follows_webhook_departments_added_while_it_runs(
    app: Flask,
    client: FlaskClient,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
    partner: dict[str, str],
) -> None:
    from router.adapters.webhook import add_webhook

    add_webhook(
        redis,
        "coroners",
        "http://127.0.0.1:9/hook",
        {"death": ("date_of_death",)},
        allow_http_loopback=True,
    )
    data = sample("death")
    data["consent"] = ["coroners"]
    monkeypatch.setattr("router.settings.FOLLOW_SECONDS", -1.0)
    response = client.post("/api/v1/submissions", json=data, headers=partner)
    assert response.status_code == 201, response.get_json()
    assert redis.llen("rq:queue:dept-coroners") == 1


def test_every_web_process_signs_forms_with_the_same_key(
    redis: Redis, redis_server: RedisServer
) -> None:
    """gunicorn runs several processes: a form shown by one must be accepted by another."""
    from channels.app import create_app

    first = create_app({"REDIS_URL": redis_server.url_as("web")})
    second = create_app({"REDIS_URL": redis_server.url_as("web")})
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    browser = first.test_client()
    page = browser.get("/report/moving_house", follow_redirects=True).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    cookie = browser.get_cookie("tuo_session")
    assert cookie is not None
    other = second.test_client()
    other.set_cookie("tuo_session", cookie.value)
    answer = other.post(
        "/report/moving_house/full_name",
        data={"csrf_token": token.group(1), "full_name": "Sam Jones"},
    )
    assert answer.status_code == 302
    assert answer.location == "/report/moving_house/date_of_birth"


def test_the_page_client_fails_when_a_page_is_not_what_the_test_expects(
    client_request: PageClient,
) -> None:
    """Guards the page client itself: a wrong status or redirect must fail the test."""
    assert text(client_request.get("/").find("h1")) == "Tell us about a life event"
    with pytest.raises(AssertionError, match="404, expected 200"):
        client_request.get("/no/such/page")
    first = "/report/moving_house/full_name"
    client_request.get("/report/moving_house", _expected_redirect=first)
    with pytest.raises(AssertionError, match="302, expected 200"):
        client_request.get("/report/moving_house")
    with pytest.raises(AssertionError, match=f"redirects to .*{first}, expected /status"):
        client_request.get("/report/moving_house", _expected_redirect="/status")
    client_request.post(
        first, {"full_name": "Sam Jones"}, _expected_redirect="/report/moving_house/date_of_birth"
    )
    with pytest.raises(AssertionError, match="400, expected 302"):
        client_request.post(first, {"full_name": ""})
