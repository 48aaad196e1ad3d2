"""Issue 16, item 3: ``/metrics`` answers Prometheus, and nobody else: with
METRICS_TOKEN set, only a request with that bearer token; without one, only a client on
this machine. The probes answer whatever Host header they come with."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from channels.app import create_app
from router.adapters.registry import Registry
from router.delivery import breaker
from router.redis_server import RedisServer

ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


def _app(redis_server: RedisServer, **config: Any) -> Flask:
    return create_app(
        {"TESTING": True, "REDIS_URL": redis_server.url_as("web"), "SECRET_KEY": "t", **config}
    )


def test_metrics_answer_this_machine_with_every_departments_queue_and_breaker(
    app: Flask, redis: Redis, registry: Registry
) -> None:
    breaker.failed_many(redis, "dvla", breaker.THRESHOLD)  # dvla's breaker opens
    page = app.test_client().get("/metrics")
    assert page.status_code == 200
    assert page.content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-store" and "Set-Cookie" not in page.headers
    families = {f.name: f for f in text_string_to_metric_families(page.get_data(as_text=True))}
    assert {"tuo_submissions", "tuo_deliveries", "tuo_time_to_tell_seconds"} <= set(families)
    depth = {
        (s.labels["department"], s.labels["state"]) for s in families["tuo_queue_depth"].samples
    }
    assert depth == {
        (d, s) for d in registry.names() for s in ("pending", "retrying", "sending", "failed")
    }
    states = {
        s.labels["department"]: s.labels["state"]
        for s in families["tuo_breaker_state"].samples
        if s.value == 1
    }
    assert states == {d: "open" if d == "dvla" else "closed" for d in registry.names()}
    assert families["tuo_redis_up"].samples[0].value == 1


def test_without_a_token_metrics_refuse_a_client_elsewhere(
    app: Flask, redis: Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert app.test_client().get("/metrics", environ_base=ELSEWHERE).status_code == 403
    # Behind a load balancer on this machine, the client it forwards for is the client.
    monkeypatch.setenv("ROUTER_PROXY_HOPS", "1")
    proxied = _app(redis_server).test_client()
    forwarded = {"X-Forwarded-For": "198.51.100.7"}
    assert proxied.get("/metrics", headers=forwarded).status_code == 403
    assert proxied.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_with_a_token_metrics_answer_only_its_bearer(
    redis: Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_TOKEN", "s3cret-scrape-token")
    client = _app(redis_server).test_client()
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic czNjcmV0LXNjcmFwZS10b2tlbg=="},
        {"Authorization": "s3cret-scrape-token"},
    ):
        refused = client.get("/metrics", headers=headers)  # from this machine, even
        assert refused.status_code == 401, headers
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"tuo_" not in refused.data
    good = {"Authorization": "Bearer s3cret-scrape-token"}
    answered = client.get("/metrics", headers=good, environ_base=ELSEWHERE)
    assert answered.status_code == 200 and b"tuo_queue_depth" in answered.data


def test_the_probes_answer_any_host_and_the_pages_still_do_not(app: Flask, redis: Redis) -> None:
    client = app.test_client()
    by_address = {"Host": "10.0.3.7:8000"}
    assert client.get("/healthz", headers=by_address).status_code == 200
    assert client.get("/readyz", headers=by_address).status_code == 503  # no worker: not 400
    assert client.get("/metrics", headers=by_address).status_code == 200
    assert client.get("/", headers=by_address).status_code == 400
    assert client.get("/healthz/", headers=by_address).status_code == 400
