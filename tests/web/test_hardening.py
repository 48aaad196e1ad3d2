"""Issue 13's findings about the front door as a whole, one test per row of the probe:
proxies (5), bodies too large (10) or too deep (11), and the headers every answer
carries (16). Each failed before its fix."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from redis import Redis

from channels.app import create_app
from router.redis_server import RedisServer
from tests.support.pages import soup, text

SUBMIT = "/api/v1/submissions"


def _app(redis_server: RedisServer, **config: Any) -> Flask:
    app = create_app(
        {"TESTING": True, "REDIS_URL": redis_server.url_as("web"), "SECRET_KEY": "t", **config}
    )

    @app.get("/_test/whoami")
    def whoami() -> Any:
        return jsonify(address=request.remote_addr, scheme=request.scheme, host=request.host)

    return app


# --- row 5: behind a load balancer ---------------------------------------------------------


def test_row_5_without_proxy_hops_forwarded_headers_are_ignored(
    redis: Redis, redis_server: RedisServer
) -> None:
    client = _app(redis_server).test_client()
    seen = client.get("/_test/whoami", headers={"X-Forwarded-For": "203.0.113.9"}).get_json()
    assert seen["address"] == "127.0.0.1", "a client cannot choose its own address"


def test_row_5_with_proxy_hops_each_client_is_told_apart(
    redis: Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER_PROXY_HOPS", "1")
    public = ["tell-us-once.example.gov.uk", "localhost"]
    client = _app(redis_server, TRUSTED_HOSTS=public).test_client()
    seen = client.get(
        "/_test/whoami",
        headers={
            "X-Forwarded-For": "198.51.100.1, 203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "tell-us-once.example.gov.uk",
        },
    ).get_json()
    # One proxy: the address it saw is the client's; anything before it is not trusted.
    assert seen == {
        "address": "203.0.113.9",
        "scheme": "https",
        "host": "tell-us-once.example.gov.uk",
    }


@pytest.mark.parametrize("hops", ["-1", "two", "99"])
def test_row_5_a_proxy_hop_count_that_is_not_one_stops_the_app_with_a_clear_message(
    redis: Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, hops: str
) -> None:
    monkeypatch.setenv("ROUTER_PROXY_HOPS", hops)
    with pytest.raises(ValueError, match="ROUTER_PROXY_HOPS"):
        _app(redis_server)


# --- row 10: bodies too large --------------------------------------------------------------


def test_row_10_a_body_too_large_is_refused_before_it_is_read(
    client: FlaskClient, partner: dict[str, str]
) -> None:
    body = b'{"event": "' + b"x" * (200 * 1024) + b'"}'
    answer = client.post(SUBMIT, data=body, content_type="application/json", headers=partner)
    assert answer.status_code == 413
    assert "64 KiB" in answer.get_json()["message"]

    page = client.post("/report/moving_house/full_name", data={"full_name": "x" * 100_000})
    assert page.status_code == 413
    assert "too large" in text(soup(page).select_one("h1")).lower()


# --- row 11: bodies too deep ---------------------------------------------------------------


@pytest.mark.parametrize("body", [b"[" * 20_000, b'{"a":' * 5_000])
def test_row_11_json_nested_too_deep_is_a_400_not_a_500(
    client: FlaskClient, partner: dict[str, str], body: bytes
) -> None:
    answer = client.post(SUBMIT, data=body, content_type="application/json", headers=partner)
    assert answer.status_code == 400
    assert "JSON object" in answer.get_json()["message"]


# --- row 16: headers ---------------------------------------------------------------------------


def test_row_16_every_answer_carries_a_permissions_policy(client: FlaskClient) -> None:
    for path in ("/", "/status", "/api/v1/openapi.json", "/nowhere"):
        policy = client.get(path).headers.get("Permissions-Policy", "")
        assert "camera=()" in policy and "geolocation=()" in policy, path


def test_row_16_over_https_cookies_are_secure_and_hsts_is_sent(
    redis: Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUO_HTTPS", "true")
    client = _app(redis_server).test_client()
    answer = client.get("/report/moving_house?lang=cy")
    cookies = answer.headers.getlist("Set-Cookie")
    assert cookies and all("Secure" in c for c in cookies), cookies
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_row_16_without_https_no_hsts(client: FlaskClient) -> None:
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_row_16_gunicorn_does_not_name_itself() -> None:
    import gunicorn.http.wsgi as gunicorn_wsgi

    from channels import serving

    serving.hide_server_name()
    assert "gunicorn" not in gunicorn_wsgi.SERVER.lower()


def test_row_10_the_refusal_is_in_the_api_document(
    client: FlaskClient, partner: dict[str, str]
) -> None:
    from tests.support.api import conforms

    body = b"{" + b" " * (70 * 1024) + b"}"
    answer = client.post(SUBMIT, data=body, content_type="application/json", headers=partner)
    assert answer.status_code == 413
    conforms(answer)


# --- row 18: a full store ---------------------------------------------------------------------


@pytest.fixture
def full_redis(redis: Redis) -> Any:
    """Redis at its memory limit, refusing writes (noeviction), as a full one does."""
    before = redis.config_get("maxmemory")["maxmemory"]
    redis.config_set("maxmemory", 1)
    try:
        yield redis
    finally:
        redis.config_set("maxmemory", before)


def test_row_18_the_embedded_redis_refuses_when_full_and_never_evicts(
    redis: Redis,
) -> None:
    assert redis.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert int(redis.config_get("maxmemory")["maxmemory"]) > 0


def test_row_18_a_full_store_is_try_again_later_not_a_500(
    client: FlaskClient, partner: dict[str, str], full_redis: Redis
) -> None:
    from tests.support.samples import sample

    answer = client.post(SUBMIT, json=sample("death"), headers=partner)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "30"
    assert "try again" in answer.get_json()["message"]


def test_row_18_a_full_store_gives_citizens_a_busy_page(
    client: FlaskClient, full_redis: Redis
) -> None:
    page = client.get("/report/moving_house?lang=cy")
    assert page.status_code == 503
    assert "brysur" in text(soup(page).select_one("h1"))  # "busy", in Welsh as asked
