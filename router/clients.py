"""The JSON API's clients: partner services that send life events on people's behalf.

Each partner channel (an app, a charity's assisted-digital service, a registrar's own
system) has a name, the life events it may send, how much it is trusted, a rate, and a
key. The key is drawn here at random (256 bits), shown once, and stored only as its
SHA-256 digest: a digest of a random key that long cannot be turned back into it, so a
slow password hash would add nothing. A request presents the key as a bearer token;
its digest finds the client, and the stored digest is compared in constant time.

Trust: a client trusted for registrations (a registrar's system, which has just made
the registration) vouches for the registration of the deaths and births it sends, so
the register is not asked (``router.trust.Proof.vouched``). A client trusted for
nothing is an ordinary channel: its reports are checked like anyone's.

Revoking a client removes its key at once; the client's record stays, so the cases it
sent still name it and ``router api-clients list`` shows when it was revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from router import catalogue, keys
from router.adapters.contract import NAME
from router.exceptions import ValidationFailed
from router.trust import Covers, Proof

# What a client may be trusted to vouch for. Identity is not on the list: a partner's
# word is no identity check (a person proves who they are themselves, or at a counter).
VOUCHES: tuple[Covers, ...] = ("registration",)
PERIODS = {"second": 1, "minute": 60, "hour": 3600}
DEFAULT_RATE = "120/minute"
_RATE = re.compile(r"^\s*(\d{1,9})\s*/\s*(second|minute|hour)\s*$")
# A key: a prefix a secret scanner can recognise, then 256 random bits.
KEY_PREFIX = "tuo_"


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` requests in each ``period`` seconds."""

    limit: int
    period: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"120/minute"`` -> Rate(120, 60); raise ``ValueError`` saying how to write it."""
        match = _RATE.match(str(text))
        if not match or int(match.group(1)) < 1:
            raise ValueError(
                f"{text!r} is not a rate: write a number of requests per second, minute "
                "or hour, like 120/minute"
            )
        return cls(int(match.group(1)), PERIODS[match.group(2)])

    def __str__(self) -> str:
        unit = next(u for u, seconds in PERIODS.items() if seconds == self.period)
        return f"{self.limit}/{unit}"


@dataclass(frozen=True)
class ApiClient:
    """One partner channel. Its key is never kept: only ``key_digest``, its SHA-256."""

    name: str
    events: tuple[str, ...]
    vouches: tuple[Covers, ...]
    rate: Rate
    created_at: str
    revoked_at: str = ""
    key_digest: str = field(default="", repr=False)

    @property
    def channel(self) -> str:
        """The channel its cases are stored with: ``api:<name>`` (a name has no colon)."""
        return f"api:{self.name}"

    def sent(self, channel: str) -> bool:
        """Whether a case stored with ``channel`` came from this client."""
        return channel == self.channel

    def refuses(self, event: object) -> bool:
        """Whether ``event`` is a life event this client may not send. An unknown or
        missing event is not refused here: checking the report says what is wrong."""
        return isinstance(event, str) and event in catalogue.EVENTS and event not in self.events

    def proofs_for(self, event: object) -> list[Proof]:
        """The evidence this client vouches for on a report of ``event``."""
        known = catalogue.EVENTS.get(event) if isinstance(event, str) else None
        if known is None or known.registration is None or "registration" not in self.vouches:
            return []
        return [Proof.vouched(self.name, "registration")]

    def submission_key(self, key: str) -> str:
        """An idempotency key as the case store claims it: one client's keys are its own."""
        return f"{self.channel}:{key}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "events": list(self.events),
                "vouches": list(self.vouches),
                "rate": str(self.rate),
                "created_at": self.created_at,
                "revoked_at": self.revoked_at,
                "key_digest": self.key_digest,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> ApiClient:
        data = json.loads(raw)
        return cls(
            name=data["name"],
            events=tuple(data["events"]),
            vouches=tuple(data.get("vouches", ())),
            rate=Rate.parse(data["rate"]),
            created_at=data["created_at"],
            revoked_at=data.get("revoked_at", ""),
            key_digest=data.get("key_digest", ""),
        )


@dataclass(frozen=True)
class Admission:
    """What a presented key is worth: its client (None: no such key, or revoked) and,
    when the client is over its rate, the seconds until it may try again."""

    client: ApiClient | None
    retry_after: int = 0


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def submission_digest(event: object, answers: object, consent: object) -> str:
    """A digest of what was submitted, to tell a repeat from a different submission
    that reuses its idempotency key (the same JSON, whatever its key order). It is kept
    beside the key's claim, whose case holds the answers themselves: it tells someone
    who can read Redis nothing the case does not."""
    text = json.dumps(
        [event, answers, consent], sort_keys=True, separators=(",", ":"), default=repr
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class ApiClients:
    """API clients in Redis: every client by name (``keys.API_CLIENTS``), and the same
    record under its key's digest for the clients that are not revoked
    (``keys.API_CLIENT_KEYS``), so a request finds its client in one look-up."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def add(
        self,
        name: str,
        events: Iterable[str],
        vouches: Iterable[str] = (),
        rate: str = DEFAULT_RATE,
    ) -> tuple[ApiClient, str]:
        """Add client ``name`` (or give a revoked one a new key); return it and its key,
        which is shown once and never stored. Raise ``ValidationFailed`` per option."""
        errors: dict[str, str] = {}
        if not isinstance(name, str) or not NAME.match(name):
            errors["name"] = (
                "Give a name of 2 to 31 lower-case letters, digits and underscores, "
                "starting with a letter"
            )
        chosen = sorted({e.strip() for e in events if e.strip()})
        unknown = [e for e in chosen if e not in catalogue.EVENTS]
        if not chosen or unknown:
            errors["events"] = (
                f"Name the life events it may send, from {', '.join(sorted(catalogue.EVENTS))}"
                + (f" (not {', '.join(unknown)})" if unknown else "")
            )
        trusted = sorted({v.strip() for v in vouches if v.strip()})
        if any(v not in VOUCHES for v in trusted):
            errors["vouches"] = f"A client can vouch only for: {', '.join(VOUCHES)}"
        try:
            parsed = Rate.parse(rate)
        except ValueError as error:
            errors["rate"] = str(error)
        if not errors:
            existing = self.get(name)
            if existing is not None and not existing.revoked_at:
                errors["name"] = (
                    f"{name} already has a key: revoke it first to give the client a new one"
                )
        if errors:
            raise ValidationFailed(errors)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        client = ApiClient(
            name=name,
            events=tuple(chosen),
            vouches=tuple(v for v in VOUCHES if v in trusted),
            rate=parsed,
            created_at=_now(),
            key_digest=digest(key),
        )
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.API_CLIENTS, name, client.to_json())
        pipe.hset(keys.API_CLIENT_KEYS, client.key_digest, client.to_json())
        pipe.execute()
        return client, key

    def revoke(self, name: str) -> ApiClient | None:
        """Revoke client ``name``'s key at once; None if there is no such client. A
        client revoked before stays as it was."""
        client = self.get(name)
        if client is None:
            return None
        if client.revoked_at:
            return client
        revoked = replace(client, revoked_at=_now())
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(keys.API_CLIENT_KEYS, client.key_digest)
        pipe.hset(keys.API_CLIENTS, name, revoked.to_json())
        pipe.execute()
        return revoked

    def get(self, name: str) -> ApiClient | None:
        raw = self.redis.hget(keys.API_CLIENTS, name)
        return ApiClient.from_json(raw) if raw is not None else None

    def all(self) -> list[ApiClient]:
        raw: Mapping[Any, Any] = self.redis.hgetall(keys.API_CLIENTS)
        return sorted((ApiClient.from_json(v) for v in raw.values()), key=lambda c: c.name)

    def admit(self, key: str, now: float | None = None) -> Admission:
        """The client whose key ``key`` is, counting this request against its rate: two
        round trips, one to find the client by its key's digest, one to count."""
        if not key or len(key) > 200:
            return Admission(None)
        presented = digest(key)
        raw = self.redis.hget(keys.API_CLIENT_KEYS, presented)
        client = ApiClient.from_json(raw) if raw is not None else None
        if (
            client is None
            or client.revoked_at
            or not hmac.compare_digest(client.key_digest, presented)
        ):
            return Admission(None)
        moment = time.time() if now is None else now
        window = int(moment // client.rate.period)
        rate_key = keys.api_rate(client.name, window)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(rate_key)
        pipe.expire(rate_key, client.rate.period + 1)
        count = int(pipe.execute()[0])
        if count > client.rate.limit:
            left = (window + 1) * client.rate.period - moment
            return Admission(client, retry_after=max(1, math.ceil(left)))
        return Admission(client)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
