"""Issue 13, row 12: a webhook URL must not make the router send personal data to itself,
a metadata service or a private network, nor in clear: https only, and addresses
refused when the webhook is added and again at every connection (no DNS rebinding); and
its signing secret is sealed at rest (router.sealing)."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import pytest
from redis import Redis

from router import keys, sealing
from router.adapters import outbound
from router.adapters.contract import Notification, PermanentError
from router.adapters.webhook import (
    WebhookConfig,
    WebhookConfigError,
    adapter_class,
    add_webhook,
    load_webhooks,
)

FIELDS = {"death": ("date_of_death",)}


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1:6379/",
        "https://10.0.0.1/hook",
        "https://0x7f000001/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://192.168.1.10/hook",
        "https://224.0.0.1/hook",
        "https://0.0.0.0/hook",
        "https://localhost/hook",
    ],
)
def test_row_12_a_private_loopback_or_link_local_address_is_refused(redis: Redis, url: str) -> None:
    with pytest.raises(WebhookConfigError, match="public address"):
        add_webhook(redis, "coroners", url, FIELDS)


@pytest.mark.parametrize("url", ["http://coroners.example/hook", "http://93.184.216.34/hook"])
def test_row_12_http_is_refused(redis: Redis, url: str) -> None:
    with pytest.raises(WebhookConfigError, match="https://"):
        add_webhook(redis, "coroners", url, FIELDS)


def test_row_12_http_on_this_machine_only_with_allow_http_loopback(redis: Redis) -> None:
    made = add_webhook(redis, "local", "http://127.0.0.1:9/hook", FIELDS, allow_http_loopback=True)
    assert made.allow_http_loopback
    with pytest.raises(WebhookConfigError):
        add_webhook(redis, "private", "http://10.0.0.1/hook", FIELDS, allow_http_loopback=True)


def test_row_12_a_name_that_resolves_to_loopback_later_is_refused_at_connect_time(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: public when added, 127.0.0.1 when the delivery is made."""
    real = socket.getaddrinfo
    answers = {"coroners.example": "93.184.216.34"}

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    config = add_webhook(redis, "coroners", "https://coroners.example/hook", FIELDS)
    answers["coroners.example"] = "127.0.0.1"
    connected: list[Any] = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connected.append(a))
    note = Notification(
        delivery_id="ACDEFGHJK-coroners",
        case_ref="ACDEFGHJK",
        department="coroners",
        event_type="death",
        fields={"date_of_death": "2026-11-20"},
        submitted_at="2026-11-20T00:00:00.000+00:00",
    )
    with pytest.raises(PermanentError, match="address refused"):
        adapter_class(config)().deliver(note)
    assert connected == [], "no connection was even tried"


def test_row_12_the_guard_connects_to_the_address_it_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups: list[str] = []
    connected: list[Any] = []

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    monkeypatch.setattr(
        socket, "create_connection", lambda address, *a, **k: connected.append(address)
    )
    outbound._guarded_connect(False)(("coroners.example", 443))
    assert lookups == ["coroners.example"] and connected == [("93.184.216.34", 443)]


def test_row_12_a_webhook_secret_is_sealed_at_rest(redis: Redis) -> None:
    made = add_webhook(redis, "coroners", "https://coroners.example/hook", FIELDS)
    stored = redis.hget(keys.WEBHOOKS, "coroners")
    assert stored is not None
    held = json.loads(stored)["secret"]
    assert held.startswith(sealing.TEXT_PREFIX) and made.secret not in stored.decode()
    # Every process with the master key opens it; a copy of Redis alone does not.
    assert [c.secret for c in load_webhooks(redis)] == [made.secret]
    stranger = sealing.KeyRing(redis, master=os.urandom(32))
    with pytest.raises(sealing.KeyProblem):
        WebhookConfig.from_json(stored, stranger)


def test_row_12_a_sealed_secret_does_not_open_for_another_department(redis: Redis) -> None:
    add_webhook(redis, "coroners", "https://coroners.example/hook", FIELDS)
    stored = json.loads(redis.hget(keys.WEBHOOKS, "coroners") or b"{}")
    stored["name"] = "copycat"  # its sealed secret copied into another department's config
    with pytest.raises(sealing.KeyProblem):
        WebhookConfig.from_json(json.dumps(stored), sealing.ring_for(redis))
