"""The contract every department adapter keeps.

An adapter declares:
  * ``name``: short, stable, lower-case id (its queue is named after it);
  * ``title``: the department's name as a person reads it (a message id);
  * ``fields``: for each event type it handles, exactly the answer fields it needs.
    It is never given any other field: the router builds each notification from this
    declaration alone (data minimisation);
  * ``needs``: for each of those event types, what it must trust before it acts
    (``router.trust.Need``: the least identity confidence, P0 to P2, and whether the
    registration of a death or birth must be verified). A delivery whose need is not
    met waits, and is released once when the evidence arrives;
  * ``timeout``: seconds a single ``deliver`` call may take before it is abandoned;
  * ``route(event_type, answers)``: whether the task can be done online, must be done
    in person at a counter (assisted), or is not needed, with a reason. Pure: no I/O;
  * ``deliver(notification)``: tell the department. Return a ``Receipt``; raise
    ``RetryableError`` for a failure worth retrying (timeout, outage, 5xx) or
    ``PermanentError`` for one that never will succeed (rejected data).

Delivery is at least once: a delivery may be repeated (a worker died mid-call, an
operator replayed it). ``notification.delivery_id`` (``<case>-<department>``) is the
idempotency key: a repeat must return a receipt identical to the first, field by field
(``reference``, ``detail`` and ``extra``: no "already recorded", no time of the
repeat), and change nothing. The router records the receipt of the attempt it hears
from (a replay's replaces the first) and shows its ``detail`` on the case's status, so
what the citizen and the operators read must not depend on which attempt it was.

``check_declaration`` is the contract's own check of those declarations (the registry
and the conformance kit both call it); ``RegistryError`` is what it raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from redis import Redis

from router.catalogue import EVENTS
from router.i18n import N_
from router.trust import Need

Mode = Literal["digital", "assisted", "not_needed"]
# An adapter's name: it names its queue, its Redis keys and its entry point.
NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")


@dataclass(frozen=True)
class Route:
    """How one department's part of a life event gets done, and why."""

    mode: Mode
    reason: str
    tasks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Notification:
    """What a department is sent: only the fields it declared for this event."""

    delivery_id: str
    case_ref: str
    department: str
    event_type: str
    fields: Mapping[str, Any]
    submitted_at: str
    attempt: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))

    def __repr__(self) -> str:
        # Never let personal data reach a log line through a repr.
        return f"Notification({self.delivery_id}, {self.event_type}, fields={sorted(self.fields)})"


@dataclass(frozen=True)
class Receipt:
    """A department's acknowledgement: its own reference for what it did.

    A repeat of the same delivery returns an equal one, ``detail`` and ``extra``
    included (the conformance kit shows every field that differs)."""

    reference: str
    detail: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "detail": self.detail, "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Receipt:
        return cls(data["reference"], data.get("detail", ""), dict(data.get("extra") or {}))


class DeliveryError(Exception):
    """Base of the errors an adapter may raise; ``reason`` must hold no personal data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryableError(DeliveryError):
    """The department could not take it now; try again later.

    ``retry_after`` (seconds) is the department's own word on when to come back (an
    HTTP Retry-After header); the next attempt waits at least that long.
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """The department refused it and always will; a person must look at it."""


class Adapter:
    """Base class for department adapters. Subclass, declare, implement ``deliver``."""

    name: ClassVar[str]
    title: ClassVar[str]
    fields: ClassVar[Mapping[str, tuple[str, ...]]]
    needs: ClassVar[Mapping[str, Need]]
    timeout: ClassVar[float] = 30.0

    def __init__(self, redis: Redis | None = None) -> None:
        # Adapters that keep state (the mock departments) are given the connection;
        # adapters that call out to a department's own API may ignore it.
        self.redis = redis

    @classmethod
    def fields_for(cls, event_type: str) -> tuple[str, ...]:
        return tuple(cls.fields.get(event_type, ()))

    @classmethod
    def need_for(cls, event_type: str) -> Need:
        """What it must trust before it acts on ``event_type`` (its declaration)."""
        return cls.needs[event_type]

    @classmethod
    def route(cls, event_type: str, answers: Mapping[str, Any]) -> Route:
        """Decide online, in person, or not needed. The default: online."""
        return Route("digital", N_("This can be done online: nothing more is needed from you"))

    def deliver(self, notification: Notification) -> Receipt:
        raise NotImplementedError


class RegistryError(Exception):
    """An adapter could not be loaded or breaks the contract's declarations."""


def check_declaration(cls: type[Adapter]) -> None:
    """Refuse an adapter whose declarations are incomplete or name unknown fields."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME.match(name):
        raise RegistryError(f"{cls.__qualname__}: name must be lower-case letters, digits, _")
    if not getattr(cls, "title", None):
        raise RegistryError(f"{name}: declare a title")
    fields = getattr(cls, "fields", None)
    if not fields:
        raise RegistryError(f"{name}: declare the fields it needs for each event it handles")
    for event_type, wanted in fields.items():
        if event_type not in EVENTS:
            raise RegistryError(f"{name}: unknown event type {event_type!r}")
        unknown = set(wanted) - set(EVENTS[event_type].fields)
        if unknown:
            raise RegistryError(f"{name}: {event_type} has no fields {sorted(unknown)}")
    needs = getattr(cls, "needs", None)
    if not isinstance(needs, Mapping) or set(needs) != set(fields):
        raise RegistryError(
            f"{name}: declare what it needs before it acts (router.trust.Need) for exactly "
            f"the events it handles: {sorted(fields)}"
        )
    for event_type, need in needs.items():
        if not isinstance(need, Need):
            raise RegistryError(f"{name}: the need for {event_type} must be a router.trust.Need")
        if need.registration and EVENTS[event_type].registration is None:
            raise RegistryError(f"{name}: {event_type} has no registration to verify")
