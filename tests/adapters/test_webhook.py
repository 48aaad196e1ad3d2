"""Webhook departments: signed deliveries to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from redis import Redis

from router import keys, routing, sealing
from router.adapters import conformance
from router.adapters.contract import Notification, PermanentError, RetryableError
from router.adapters.registry import Registry
from router.adapters.webhook import (
    WebhookAdapter,
    WebhookConfig,
    WebhookConfigError,
    WebhookVerificationError,
    adapter_class,
    add_webhook,
    load_webhooks,
    remove_webhook,
    verify,
)

DEATH_FIELDS = ("deceased_full_name", "deceased_date_of_birth", "date_of_death")
FIELDS = {"death": DEATH_FIELDS, "moving_house": ("full_name", "postcode", "move_date")}
DEATH_ANSWERS = {
    "deceased_full_name": "Zoë Okafor",
    "deceased_date_of_birth": "1950-02-03",
    "date_of_death": "2026-01-10",
}


# --- a department's receiver -----------------------------------------------------------


@dataclass
class Receiver:
    """What the test department's server saw and did; set ``status`` etc. to misbehave."""

    url: str
    secret: str = ""
    status: int | None = None  # answer this instead of checking the request
    retry_after: str | None = None
    delay: float = 0.0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    effects: list[dict[str, Any]] = field(default_factory=list)  # one per change applied
    references: dict[str, str] = field(default_factory=dict)  # webhook-id -> reference
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)

    def post(self, headers: Mapping[str, str], body: bytes) -> int:
        """POST crafted headers and body straight to the receiver; its status."""
        request = urllib.request.Request(self.url, data=body, headers=dict(headers), method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            error.close()
            return error.code


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = Receiver(url=f"http://127.0.0.1:{self.server_address[1]}/tell-us-once")

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if error is not None:
            self.receiver.errors.append(error)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        r = self.server.receiver
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = dict(self.headers.items())
        with r.lock:
            r.requests.append((headers, body))
        if r.delay:
            r.release.wait(r.delay)
        if r.status is not None:
            self._answer(r.status, {"error": "as configured"}, r.retry_after)
            return
        try:
            payload = verify(r.secret, headers, body)  # default tolerance: five minutes
        except WebhookVerificationError:
            self._answer(401, {"error": "signature or timestamp refused"})
            return
        msg_id = self.headers["webhook-id"]
        with r.lock:
            reference = r.references.get(msg_id)
            if reference is None:  # first time: apply the change once
                reference = f"MYDEPT-{len(r.references) + 1:04d}"
                r.references[msg_id] = reference
                r.effects.append(payload)
        self._answer(200, {"reference": reference})

    def _answer(self, status: int, data: dict[str, str], retry_after: str | None = None) -> None:
        with self.server.receiver.lock:
            self.server.receiver.answers.append(status)
        encoded = json.dumps(data).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(encoded)))
            if retry_after is not None:
                self.send_header("retry-after", retry_after)
            self.end_headers()
            self.wfile.write(encoded)
        except OSError:
            pass  # the router gave up waiting (the timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.receiver
    finally:
        server.receiver.release.set()  # wake a handler told to be slow
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert not thread.is_alive()
    assert server.receiver.errors == []


@pytest.fixture
def config(redis: Redis, receiver: Receiver) -> WebhookConfig:
    made = add_webhook(
        redis,
        "mydept",
        receiver.url,
        FIELDS,
        title="My department",
        timeout=2,
        allow_http_loopback=True,
    )
    receiver.secret = made.secret
    return made


@pytest.fixture
def adapter(config: WebhookConfig) -> WebhookAdapter:
    return adapter_class(config)()


def notification(delivery_id: str = "ACDEFGHJK-mydept", **overrides: Any) -> Notification:
    values: dict[str, Any] = {
        "delivery_id": delivery_id,
        "case_ref": delivery_id.split("-")[0],
        "department": "mydept",
        "event_type": "death",
        "fields": DEATH_ANSWERS,
        "submitted_at": "2026-01-11T09:30:00.000+00:00",
    }
    values.update(overrides)
    return Notification(**values)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The spec's signature, computed here independently of the module under test."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers_for(
    secret: str, body: bytes, timestamp: int, msg_id: str = "ACDEFGHJK-mydept"
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


# --- delivery ------------------------------------------------------------------------


def test_a_delivery_arrives_signed_with_exactly_the_declared_fields(
    adapter: WebhookAdapter, receiver: Receiver
) -> None:
    before = int(time.time())
    receipt = adapter.deliver(notification())
    assert receipt.reference == "MYDEPT-0001"
    assert receipt.detail == "accepted by webhook"

    [(headers, body)] = receiver.requests
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["content-type"] == "application/json"
    assert lowered["webhook-id"] == "ACDEFGHJK-mydept"
    timestamp = int(lowered["webhook-timestamp"])
    assert before <= timestamp <= time.time()
    assert lowered["webhook-signature"] == sign(
        receiver.secret, "ACDEFGHJK-mydept", timestamp, body
    )

    payload = json.loads(body)
    assert payload["type"] == "life_event.death"
    assert payload["timestamp"].endswith("Z")
    assert payload["data"] == {
        "delivery_id": "ACDEFGHJK-mydept",
        "case_ref": "ACDEFGHJK",
        "event_type": "death",
        "submitted_at": "2026-01-11T09:30:00.000+00:00",
        "fields": DEATH_ANSWERS,
    }
    assert set(payload["data"]["fields"]) == set(DEATH_FIELDS)
    assert receiver.effects == [payload]


def test_an_undeclared_field_is_never_sent(adapter: WebhookAdapter, receiver: Receiver) -> None:
    adapter.deliver(notification(fields={**DEATH_ANSWERS, "deceased_nino": "AB123456C"}))
    [(_, body)] = receiver.requests
    assert set(json.loads(body)["data"]["fields"]) == set(DEATH_FIELDS)


def test_the_same_notification_twice_is_one_effect_and_the_same_receipt(
    adapter: WebhookAdapter, receiver: Receiver
) -> None:
    first = adapter.deliver(notification())
    again = adapter.deliver(notification(attempt=2))
    assert again == first
    assert len(receiver.requests) == 2
    ids = {dict((k.lower(), v) for k, v in h.items())["webhook-id"] for h, _ in receiver.requests}
    assert ids == {"ACDEFGHJK-mydept"}  # the idempotency key, the same on the retry
    assert len(receiver.effects) == 1

    other = adapter.deliver(notification("BCDEFGHJK-mydept"))
    assert other.reference == "MYDEPT-0002"
    assert len(receiver.effects) == 2


def test_without_a_reference_in_the_answer_the_receipt_is_the_webhook_id(
    adapter: WebhookAdapter, receiver: Receiver
) -> None:
    receiver.status = 202
    assert adapter.deliver(notification()).reference == "ACDEFGHJK-mydept"


def test_a_tampered_body_is_refused(adapter: WebhookAdapter, receiver: Receiver) -> None:
    adapter.deliver(notification())
    [(headers, body)] = receiver.requests
    tampered = body.replace(b"2026-01-10", b"2026-01-11")
    assert tampered != body
    assert receiver.post(headers, tampered) == 401
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify(receiver.secret, headers, tampered)
    assert receiver.post(headers, body) == 200  # the genuine one still passes: a repeat
    assert len(receiver.effects) == 1


def test_a_replay_six_minutes_later_is_refused(config: WebhookConfig, receiver: Receiver) -> None:
    body = json.dumps({"type": "life_event.death", "data": {}}).encode()
    old = int(time.time()) - 6 * 60
    headers = headers_for(config.secret, body, old)
    assert receiver.post(headers, body) == 401
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(config.secret, headers, body)
    assert receiver.effects == []
    fresh = headers_for(config.secret, body, int(time.time()), msg_id="fresh-one")
    assert receiver.post(fresh, body) == 200
    assert len(receiver.effects) == 1


def test_a_request_signed_with_another_secret_is_refused(
    config: WebhookConfig, receiver: Receiver
) -> None:
    body = b'{"type": "life_event.death"}'
    forged = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert receiver.post(headers_for(forged, body, int(time.time())), body) == 401
    assert receiver.effects == []


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_a_server_error_or_request_timeout_is_retried(
    adapter: WebhookAdapter, receiver: Receiver, status: int
) -> None:
    receiver.status = status
    with pytest.raises(RetryableError) as caught:
        adapter.deliver(notification())
    assert caught.value.reason == f"webhook answered HTTP {status}"
    assert caught.value.retry_after is None


def test_429_with_retry_after_seconds_is_retried_no_sooner(
    adapter: WebhookAdapter, receiver: Receiver
) -> None:
    receiver.status, receiver.retry_after = 429, "7"
    with pytest.raises(RetryableError) as caught:
        adapter.deliver(notification())
    assert caught.value.retry_after == 7
    assert "429" in caught.value.reason


def test_retry_after_as_an_http_date(adapter: WebhookAdapter, receiver: Receiver) -> None:
    receiver.status, receiver.retry_after = 503, formatdate(time.time() + 60, usegmt=True)
    with pytest.raises(RetryableError) as caught:
        adapter.deliver(notification())
    assert caught.value.retry_after is not None
    assert 55 <= caught.value.retry_after <= 61


@pytest.mark.parametrize("status", [400, 404, 401, 422])
def test_a_client_error_is_permanent(
    adapter: WebhookAdapter, receiver: Receiver, status: int
) -> None:
    receiver.status = status
    with pytest.raises(PermanentError) as caught:
        adapter.deliver(notification())
    assert caught.value.reason == f"webhook refused it: HTTP {status}"


def test_a_redirect_is_not_followed(adapter: WebhookAdapter, receiver: Receiver) -> None:
    receiver.status = 307
    with pytest.raises(PermanentError, match="307"):
        adapter.deliver(notification())
    assert len(receiver.requests) == 1


def test_a_receiver_slower_than_the_timeout_is_retried(redis: Redis, receiver: Receiver) -> None:
    slow = add_webhook(
        redis, "slowdept", receiver.url, FIELDS, timeout=0.3, allow_http_loopback=True
    )
    receiver.secret, receiver.delay = slow.secret, 10
    started = time.monotonic()
    with pytest.raises(RetryableError) as caught:
        adapter_class(slow)().deliver(notification("ACDEFGHJK-slowdept"))
    assert time.monotonic() - started < 3
    assert caught.value.reason == "webhook timed out after 0.3s"


def test_a_refused_connection_is_retried(redis: Redis) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = add_webhook(
        redis, "gone", f"http://127.0.0.1:{port}/hook", FIELDS, timeout=2, allow_http_loopback=True
    )
    with pytest.raises(RetryableError) as caught:
        adapter_class(closed)().deliver(notification("ACDEFGHJK-gone"))
    assert caught.value.reason == "webhook connection failed: ConnectionRefusedError"


def test_no_reason_carries_personal_data_or_the_answer(
    adapter: WebhookAdapter, receiver: Receiver
) -> None:
    for status in (500, 400):
        receiver.status = status
        with pytest.raises((RetryableError, PermanentError)) as caught:
            adapter.deliver(notification())
        reason = caught.value.reason
        assert not any(value in reason for value in DEATH_ANSWERS.values())
        assert "as configured" not in reason and "127.0.0.1" not in reason


def test_a_webhook_department_passes_the_conformance_kit(
    adapter: WebhookAdapter, receiver: Receiver, redis: Redis
) -> None:
    findings = conformance.check(type(adapter), redis)
    assert [f.line() for f in findings if not f.passed] == []


# --- the receiver's helper -----------------------------------------------------------


def test_verify_takes_headers_in_any_case_and_any_of_several_signatures() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b'{"type": "life_event.birth"}'
    now = 1_800_000_000
    good = sign(secret, "msg-1", now, body)
    wrong = sign("whsec_" + base64.b64encode(b"w" * 32).decode(), "msg-1", now, body)
    headers = {
        "Webhook-Id": "msg-1",
        "WEBHOOK-TIMESTAMP": str(now),
        "webhook-signature": f"v2,abc {wrong} v1,not-base64! {good}",
    }
    assert verify(secret, headers, body, now=now + 10) == {"type": "life_event.birth"}
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(secret, headers, body, now=now + 301)
    with pytest.raises(WebhookVerificationError, match="future"):
        verify(secret, headers, body, now=now - 301)
    assert verify(secret, headers, body, tolerance=600, now=now + 500)
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify(secret, {**headers, "webhook-signature": wrong}, body, now=now)
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify(secret, {**headers, "Webhook-Id": "msg-2"}, body, now=now)  # id is signed too


def test_verify_matches_the_standard_webhooks_test_vector() -> None:
    # The example from the Standard Webhooks reference libraries' tests.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    assert verify(secret, headers, b'{"test": 2432232314}', now=1614265330) == {"test": 2432232314}


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-id": ""},
        {"webhook-signature": ""},
        {"webhook-timestamp": "soon"},
        {"webhook-timestamp": "1800000000.5"},
    ],
)
def test_verify_refuses_missing_or_malformed_headers(change: dict[str, str]) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b"{}"
    headers = {**headers_for(secret, body, 1_800_000_000), **change}
    with pytest.raises(WebhookVerificationError):
        verify(secret, headers, body, now=1_800_000_000)


def test_verify_refuses_a_body_that_is_not_a_json_object() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    for body in (b"not json", b"[1, 2]", b"\xff\xfe"):
        headers = headers_for(secret, body, 1_800_000_000)
        with pytest.raises(WebhookVerificationError):
            verify(secret, headers, body, now=1_800_000_000)


# --- configuration -------------------------------------------------------------------


def test_add_webhook_stores_a_config_with_a_fresh_secret(redis: Redis) -> None:
    one = add_webhook(
        redis, "coroners", "https://coroners.example.gov.uk/tuo", {"death": DEATH_FIELDS}
    )
    two = add_webhook(
        redis, "registrars", "https://r.example:8443/hook", FIELDS, title="Registrars"
    )
    for config in (one, two):
        assert config.secret.startswith("whsec_")
        assert len(base64.b64decode(config.secret.removeprefix("whsec_"))) == 32
        assert config.secret not in repr(config)
    assert one.secret != two.secret
    assert one.title == "" and one.timeout == 10.0
    assert load_webhooks(redis) == [one, two]
    ring = sealing.ring_for(redis)
    assert WebhookConfig.from_json(one.to_json(ring), ring) == one
    assert redis.hexists(keys.WEBHOOKS, "coroners")


def test_adapter_class_registers_like_any_adapter(redis: Redis) -> None:
    add_webhook(redis, "coroners", "https://c.example/x", {"death": DEATH_FIELDS})
    titled = add_webhook(redis, "registrars", "https://r.example/x", FIELDS, title="Registrars")
    registry = Registry([adapter_class(c) for c in load_webhooks(redis)])
    assert registry.names() == ["coroners", "registrars"]
    coroners = registry.get("coroners")
    assert issubclass(coroners, WebhookAdapter)
    assert coroners.title == "coroners"
    assert registry.get("registrars").title == "Registrars"
    assert coroners.fields_for("death") == DEATH_FIELDS
    assert coroners.timeout == 10.0
    assert [c.name for c in routing.interested("moving_house", registry)] == ["registrars"]
    assert titled.fields == FIELDS


def test_remove_webhook(redis: Redis) -> None:
    add_webhook(redis, "coroners", "https://c.example/x", {"death": DEATH_FIELDS})
    assert remove_webhook(redis, "coroners") is True
    assert remove_webhook(redis, "coroners") is False
    assert load_webhooks(redis) == []


@pytest.mark.parametrize(
    ("name", "url", "fields", "message"),
    [
        ("My Dept", "https://x.example/", FIELDS, "lower-case letters"),
        ("x", "https://x.example/", FIELDS, "2 to 31"),
        ("9lives", "https://x.example/", FIELDS, "starting with a letter"),
        ("mydept", "ftp://x.example/", FIELDS, "must start with https:// or http://"),
        ("mydept", "x.example/hook", FIELDS, "must start with https:// or http://"),
        ("mydept", "https:///hook", FIELDS, "no host name"),
        ("mydept", "https://x.example:port/", FIELDS, "not a valid URL"),
        ("mydept", "https://x.example/", {"wedding": ("full_name",)}, "Unknown life event"),
        ("mydept", "https://x.example/", {"death": ("nino",)}, "death has no field 'nino'"),
        ("mydept", "https://x.example/", {"death": ()}, "Say which fields"),
        ("mydept", "https://x.example/", {}, "at least one life event"),
    ],
)
def test_add_webhook_refuses_bad_configs(
    redis: Redis, name: str, url: str, fields: dict[str, tuple[str, ...]], message: str
) -> None:
    with pytest.raises(WebhookConfigError, match=message):
        add_webhook(redis, name, url, fields)
    assert load_webhooks(redis) == []


def test_add_webhook_says_what_to_choose_from(redis: Redis) -> None:
    with pytest.raises(WebhookConfigError) as unknown_event:
        add_webhook(redis, "mydept", "https://x.example/", {"wedding": ("full_name",)})
    assert "moving_house" in str(unknown_event.value)
    with pytest.raises(WebhookConfigError) as unknown_field:
        add_webhook(redis, "mydept", "https://x.example/", {"death": ("date_of_death", "nino")})
    assert "deceased_nino" in str(unknown_field.value)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_add_webhook_refuses_a_bad_timeout(redis: Redis, timeout: float) -> None:
    with pytest.raises(WebhookConfigError, match="positive number of seconds"):
        add_webhook(redis, "mydept", "https://x.example/", FIELDS, timeout=timeout)


def test_add_webhook_refuses_a_name_already_stored(redis: Redis) -> None:
    first = add_webhook(redis, "coroners", "https://c.example/x", {"death": DEATH_FIELDS})
    with pytest.raises(WebhookConfigError, match="already exists") as caught:
        add_webhook(redis, "coroners", "https://other.example/y", FIELDS)
    assert "remove-webhook coroners" in str(caught.value)
    assert load_webhooks(redis) == [first]  # the first config and its secret are kept


def test_an_unreadable_stored_config_is_skipped(redis: Redis) -> None:
    kept = add_webhook(redis, "coroners", "https://c.example/x", {"death": DEATH_FIELDS})
    redis.hset(keys.WEBHOOKS, "broken", "{not json")
    assert load_webhooks(redis) == [kept]


def test_a_webhook_department_added_with_one_command_receives_signed_deliveries(
    redis: Redis, receiver: Receiver, cli_env: dict[str, str]
) -> None:
    """`router adapters add-webhook`, then a real supervisor that follows new departments
    (as `router up` does) starts its worker, and a real delivery arrives signed."""
    from router.delivery.worker import Supervisor
    from router.service import LifeEventRouter
    from tests.support.identities import reporter_identity
    from tests.support.processes import router_cli, wait_settled
    from tests.support.samples import sample

    added = router_cli(
        "adapters",
        "add-webhook",
        "coroners",
        "--url",
        receiver.url,
        "--allow-http-loopback",
        "--events",
        "death",
        "--fields",
        "death=deceased_full_name,date_of_death",
        "--title",
        "Coroners' service",
        env=cli_env,
    )
    assert added.returncode == 0, added.stderr
    secret = added.stdout.split("shown once): ")[1].split()[0]
    receiver.secret = secret
    assert "coroners" in router_cli("adapters", "list", env=cli_env).stdout

    registry = Registry.discover(redis)
    supervisor = Supervisor(cli_env["REDIS_URL"], [])
    assert supervisor.ensure(registry.names()) == registry.names()
    try:
        data = sample("death")
        core = LifeEventRouter(redis, registry)
        ref = core.submit(
            data["event"],
            data["answers"],
            ["coroners", "dwp"],
            identity=reporter_identity(data["event"], data["answers"]),
        ).ref
        case = wait_settled(redis, ref)
    finally:
        supervisor.stop()

    assert case.deliveries["coroners"].state.value == "delivered"
    assert case.deliveries["coroners"].receipt is not None
    assert len(receiver.effects) == 1
    delivered = receiver.effects[0]
    assert delivered["data"]["delivery_id"] == f"{ref}-coroners"
    assert set(delivered["data"]["fields"]) == {"deceased_full_name", "date_of_death"}
    assert receiver.answers == [200]
