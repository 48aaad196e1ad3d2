"""Webhook departments: a department that needs no code receives signed HTTP POSTs.

``router adapters add-webhook`` stores a department's URL, the fields it receives for
each event and a generated signing secret in Redis (``keys.WEBHOOKS``, the secret
sealed: router.sealing);
``Registry.discover(redis)`` turns each stored config into an adapter class with
``adapter_class``, so webhook departments are delivered to like any other.

Deliveries follow the Standard Webhooks scheme (https://www.standardwebhooks.com):

* body ``{"type": "life_event.<event>", "timestamp": <ISO 8601 UTC>, "data": {...}}``
  where ``data.fields`` holds only the fields the department declared;
* ``webhook-id``: the delivery id, the same on every retry (the idempotency key: the
  receiver de-duplicates on it), ``webhook-timestamp``: Unix seconds, and
  ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed
  with the base64-decoded ``whsec_`` secret.

A 2xx answer is a receipt; 408, 429, 5xx, timeouts and connection failures are
retried (honouring ``Retry-After``); any other answer is a permanent failure.
Departments check what they receive with ``verify``.
"""

from __future__ import annotations

import base64
import email.utils
import hmac
import http.client
import json
import logging
import math
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar, cast

from redis import Redis
from standardwebhooks import Webhook

from router import keys, sealing
from router.adapters import outbound
from router.adapters.contract import (
    NAME,
    Adapter,
    Notification,
    PermanentError,
    Receipt,
    RegistryError,
    RetryableError,
    check_declaration,
)
from router.trust import Confidence, Need

log = logging.getLogger(__name__)


_SECRET_PREFIX = "whsec_"
_SECRET_BYTES = 32
# A receiver's answer is read only this far: we need its status and a short reference.
_MAX_ANSWER_BYTES = 64 * 1024
_MAX_REFERENCE_LENGTH = 200
_RETRYABLE_STATUSES = frozenset({408, 429})
_USER_AGENT = "tell-us-once-router (webhook)"


class WebhookConfigError(ValueError):
    """A webhook department's configuration was refused; the message says how to fix it."""


class WebhookVerificationError(Exception):
    """A request did not come, unaltered and recently, from the router: answer 401."""


# --- configuration ------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookConfig:
    """One webhook department as stored in Redis."""

    name: str
    url: str
    fields: dict[str, tuple[str, ...]]
    secret: str = field(repr=False)  # never in a log line
    title: str = ""
    timeout: float = 10.0
    # What it needs before it acts, per event (router.trust.Need codes, "P2").
    needs: dict[str, str] = field(default_factory=dict)
    # A department on this machine (local tests, demos): http and loopback allowed.
    allow_http_loopback: bool = False

    def to_json(self, ring: sealing.KeyRing) -> str:
        """The config as stored: its secret sealed (router.sealing), the rest readable."""
        return json.dumps(
            {
                "name": self.name,
                "url": self.url,
                "fields": {event: list(names) for event, names in self.fields.items()},
                "secret": ring.seal_text(self.secret, secret_context(self.name)),
                "title": self.title,
                "timeout": self.timeout,
                "needs": self.needs,
                "allow_http_loopback": self.allow_http_loopback,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str | bytes, ring: sealing.KeyRing) -> WebhookConfig:
        data = json.loads(raw)
        return cls(
            name=data["name"],
            url=data["url"],
            fields={event: tuple(names) for event, names in data["fields"].items()},
            secret=ring.open_text(data["secret"], secret_context(data["name"])),
            title=data.get("title", ""),
            timeout=float(data.get("timeout", 10.0)),
            needs=dict(data.get("needs") or {}),
            allow_http_loopback=bool(data.get("allow_http_loopback", False)),
        )


def secret_context(name: str) -> str:
    """What a webhook department's sealed secret is bound to."""
    return f"{keys.WEBHOOKS}:{name}/secret"


def _new_secret() -> str:
    return _SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        raise WebhookConfigError(
            f"Webhook name {name!r} is not allowed: use 2 to 31 lower-case letters, digits "
            "or underscores, starting with a letter (for example coroners)"
        )


def _check_url(url: str, allow_http_loopback: bool = False) -> None:
    example = "for example https://dept.example.gov.uk/tell-us-once"
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except (TypeError, ValueError):
        raise WebhookConfigError(f"Webhook URL {url!r} is not a valid URL ({example})") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookConfigError(
            f"Webhook URL {url!r} must start with https:// or http:// ({example})"
        )
    if not parts.hostname:
        raise WebhookConfigError(f"Webhook URL {url!r} has no host name ({example})")
    problem = outbound.check_url(url, allow_http_loopback)
    if problem:
        raise WebhookConfigError(f"Webhook URL {url!r} {problem} ({example})")


def _check_fields(fields: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    from router.catalogue import EVENTS

    if not fields:
        raise WebhookConfigError(
            f"Name at least one life event the department handles: {', '.join(sorted(EVENTS))}"
        )
    checked: dict[str, tuple[str, ...]] = {}
    for event_type, wanted in fields.items():
        if event_type not in EVENTS:
            raise WebhookConfigError(
                f"Unknown life event {event_type!r}; choose from {', '.join(sorted(EVENTS))}"
            )
        if isinstance(wanted, str):  # one field given as a bare string
            wanted = (wanted,)
        names = tuple(dict.fromkeys(wanted))  # drop repeats, keep the order given
        known = EVENTS[event_type].fields
        if not names:
            raise WebhookConfigError(
                f"Say which fields the department needs for {event_type} (it is sent nothing "
                f"else); choose from {', '.join(known)}"
            )
        unknown = [n for n in names if n not in known]
        if unknown:
            raise WebhookConfigError(
                f"{event_type} has no field {', '.join(map(repr, unknown))}; "
                f"choose from {', '.join(known)}"
            )
        checked[event_type] = names
    return checked


def default_need(event_type: str) -> Need:
    """A webhook department that says nothing is given the careful default: a verified
    registration for a death or birth, medium identity confidence (P2) for the rest."""
    from router.catalogue import EVENTS

    if EVENTS[event_type].registration is not None:
        return Need(registration=True)
    return Need(Confidence.P2)


def _check_needs(needs: Mapping[str, str], fields: Mapping[str, Any]) -> dict[str, str]:
    unknown = sorted(set(needs) - set(fields))
    if unknown:
        raise WebhookConfigError(
            f"A need is given for {', '.join(unknown)}, which the department does not handle"
        )
    checked = {}
    for event_type in fields:
        code = needs.get(event_type)
        try:
            need = Need.from_code(code) if code else default_need(event_type)
        except ValueError as error:
            raise WebhookConfigError(f"{event_type}: {error}") from None
        checked[event_type] = need.code
    return checked


def add_webhook(
    redis: Redis,
    name: str,
    url: str,
    fields: Mapping[str, Any],
    title: str = "",
    timeout: float = 10.0,
    needs: Mapping[str, str] | None = None,
    allow_http_loopback: bool = False,
) -> WebhookConfig:
    """Check and store a new webhook department with a freshly generated secret.

    Raises ``WebhookConfigError`` for a bad name, URL, event, field or timeout, and for
    a name already stored. The returned config holds the secret to give the department.
    """
    _check_name(name)
    _check_url(url, allow_http_loopback)
    checked = _check_fields(fields)
    needs_checked = _check_needs(needs or {}, checked)
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise WebhookConfigError(f"Timeout {timeout!r} must be a number of seconds") from None
    if not math.isfinite(timeout) or timeout <= 0:
        raise WebhookConfigError(f"Timeout must be a positive number of seconds, not {timeout}")
    config = WebhookConfig(
        name=name,
        url=url,
        fields=checked,
        secret=_new_secret(),
        title=(title or "").strip(),
        timeout=timeout,
        needs=needs_checked,
        allow_http_loopback=allow_http_loopback,
    )
    try:
        check_declaration(adapter_class(config))
    except RegistryError as error:
        raise WebhookConfigError(str(error)) from None
    if not redis.hsetnx(keys.WEBHOOKS, name, config.to_json(sealing.ring_for(redis))):
        raise WebhookConfigError(
            f"A webhook department named {name!r} already exists; choose another name or "
            f"remove it first (router adapters remove-webhook {name})"
        )
    return config


def remove_webhook(redis: Redis, name: str) -> bool:
    """Forget a webhook department; False if there was none by that name."""
    return bool(redis.hdel(keys.WEBHOOKS, name))


def load_webhooks(redis: Redis) -> list[WebhookConfig]:
    """Every stored webhook department, by name. A config that cannot be read is
    logged and skipped, so one bad entry does not stop every worker. Their secrets are
    opened here: a process that loads them needs the master key (router.sealing)."""
    configs = []
    ring = sealing.ring_for(redis)
    for key, raw in redis.hgetall(keys.WEBHOOKS).items():
        try:
            configs.append(WebhookConfig.from_json(raw, ring))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            name = key.decode(errors="replace") if isinstance(key, bytes) else key
            log.error("webhook department %r: unreadable config (%s)", name, type(error).__name__)
    return sorted(configs, key=lambda c: c.name)


def adapter_class(config: WebhookConfig) -> type[WebhookAdapter]:
    """An adapter class for one webhook department, ready for ``Registry.register``."""
    attrs = {
        "name": config.name,
        "title": config.title or config.name,
        "fields": MappingProxyType(dict(config.fields)),
        "needs": MappingProxyType(
            {
                event: Need.from_code(config.needs[event])
                if event in config.needs
                else default_need(event)
                for event in config.fields
            }
        ),
        "timeout": config.timeout,
        "config": config,
        "__module__": __name__,
        "__doc__": f"Webhook department {config.name}: POSTs to its URL.",
    }
    return cast(type[WebhookAdapter], type(f"Webhook_{config.name}", (WebhookAdapter,), attrs))


# --- sending ------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Personal data goes to the configured URL or nowhere: a redirect is an answer."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 signature>`` of ``"{msg_id}.{timestamp}.{body}"``."""
    return Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode("utf-8")
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _reference(answer: bytes) -> str | None:
    """The receiver's own reference, if it answered JSON with one."""
    try:
        data = json.loads(answer)
    except (ValueError, UnicodeDecodeError):
        return None
    reference = data.get("reference") if isinstance(data, dict) else None
    if isinstance(reference, int) and not isinstance(reference, bool):
        reference = str(reference)
    if isinstance(reference, str) and 0 < len(reference.strip()) <= _MAX_REFERENCE_LENGTH:
        return reference.strip()
    return None


class WebhookAdapter(Adapter):
    """POSTs each notification, signed, to the department's URL (see module doc)."""

    config: ClassVar[WebhookConfig]

    def _payload(self, notification: Notification, now: datetime) -> bytes:
        declared = self.fields_for(notification.event_type)
        fields = {f: notification.fields[f] for f in declared if f in notification.fields}
        body = {
            "type": f"life_event.{notification.event_type}",
            "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "data": {
                "delivery_id": notification.delivery_id,
                "case_ref": notification.case_ref,
                "event_type": notification.event_type,
                "submitted_at": notification.submitted_at,
                "fields": fields,
            },
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()

    def deliver(self, notification: Notification) -> Receipt:
        now = datetime.now(UTC)
        timestamp = int(now.timestamp())
        msg_id = notification.delivery_id
        body = self._payload(notification, now)
        request = urllib.request.Request(
            self.config.url,
            data=body,
            method="POST",
            headers={
                "content-type": "application/json",
                "user-agent": _USER_AGENT,
                "webhook-id": msg_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": _sign(self.config.secret, msg_id, timestamp, body),
            },
        )
        # Reasons name status codes and error classes only: never the body or the data.
        try:
            # Built per call so proxy settings (HTTPS_PROXY, NO_PROXY) are read fresh.
            opener = outbound.opener(self.config.allow_http_loopback, _NoRedirects())
            with opener.open(request, timeout=self.timeout) as response:
                status = response.status
                answer = response.read(_MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as error:
            try:
                raise self._refused(error.code, error.headers.get("retry-after")) from None
            finally:
                error.close()
        except urllib.error.URLError as error:
            cause = error.reason
            if isinstance(cause, outbound.AddressRefused):
                raise PermanentError(
                    "webhook address refused: its host resolves to a private, loopback or "
                    "reserved address, or it is not https"
                ) from None
            if isinstance(cause, TimeoutError):
                raise RetryableError(self._timed_out()) from None
            name = type(cause).__name__ if isinstance(cause, BaseException) else "URLError"
            raise RetryableError(f"webhook connection failed: {name}") from None
        except TimeoutError:
            raise RetryableError(self._timed_out()) from None
        except (OSError, http.client.HTTPException) as error:
            raise RetryableError(f"webhook connection failed: {type(error).__name__}") from None
        if not 200 <= status < 300:  # 1xx or 3xx that urllib handed back as it is
            raise self._refused(status, None)
        return Receipt(reference=_reference(answer) or msg_id, detail="accepted by webhook")

    def _timed_out(self) -> str:
        return f"webhook timed out after {self.timeout:g}s"

    @staticmethod
    def _refused(status: int, retry_after: str | None) -> RetryableError | PermanentError:
        if status in _RETRYABLE_STATUSES or 500 <= status < 600:
            return RetryableError(f"webhook answered HTTP {status}", _retry_after(retry_after))
        if 300 <= status < 400:
            return PermanentError(
                f"webhook answered HTTP {status} (a redirect, not followed): "
                "set the webhook's URL to the final address"
            )
        return PermanentError(f"webhook refused it: HTTP {status}")


# --- receiving (for departments) ----------------------------------------------------


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = 300,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery and return its parsed JSON; raise ``WebhookVerificationError``.

    ``headers`` are the request's headers (any case), ``body`` its raw bytes as
    received. The signature is compared in constant time, any one of several
    space-separated ``v1,`` signatures may match, and a ``webhook-timestamp`` more than
    ``tolerance`` seconds from ``now`` (default: the clock) is refused, so a captured
    request cannot be replayed later. De-duplicate what passes on ``webhook-id``.
    """
    lowered = {str(k).lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise WebhookVerificationError(
            "missing webhook-id, webhook-timestamp or webhook-signature header"
        )
    stamp = stamp.strip()
    if not stamp.isdigit():
        raise WebhookVerificationError("webhook-timestamp is not whole Unix seconds")
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError("webhook-timestamp is too old (a replay?)")
    if timestamp > current + tolerance:
        raise WebhookVerificationError("webhook-timestamp is in the future")
    raw = body.encode() if isinstance(body, str) else bytes(body)
    try:
        expected = base64.b64decode(_sign(secret, msg_id, timestamp, raw).partition(",")[2])
    except Exception as error:
        # A body that is not UTF-8 cannot be the router's JSON; a secret that is not
        # base64 (or is empty) cannot check anything.
        raise WebhookVerificationError(
            f"cannot check the signature: {type(error).__name__}"
        ) from None
    matched = False
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except ValueError:  # binascii.Error: not base64
            continue
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise WebhookVerificationError(
            "no webhook-signature matches: a wrong secret, or the body or headers were altered"
        )
    try:
        payload = json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return payload
