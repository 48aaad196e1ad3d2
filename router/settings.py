"""Settings read from the environment when a process starts, never at import time."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# How often a process that runs for long (a web front door, a worker supervisor) looks
# again for departments added while it runs (webhooks), in seconds.
FOLLOW_SECONDS = 2.0


WAIT_REPLICAS_ENV = "REDIS_WAIT_REPLICAS"
WAIT_TIMEOUT_ENV = "REDIS_WAIT_TIMEOUT_MS"


@dataclass(frozen=True)
class Durability:
    """How many replicas must hold a submission before its reference is shown
    (Redis's WAIT), and how long to wait for them. 0 replicas: a single machine, the
    primary's append-only file alone (``appendfsync always``)."""

    replicas: int = 0
    timeout_ms: int = 2000

    @classmethod
    def from_env(cls, replicas: int = 0) -> Durability:
        """``REDIS_WAIT_REPLICAS`` and ``REDIS_WAIT_TIMEOUT_MS``; ``replicas`` when the
        first is unset (the core says 1 for a Redis reached through Sentinel)."""
        return cls(
            replicas=max(0, _int(WAIT_REPLICAS_ENV, replicas)),
            timeout_ms=max(1, _int(WAIT_TIMEOUT_ENV, cls.timeout_ms)),
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, in whole seconds (RQ schedules by the second).

    Attempt n waits between half and all of ``base * 2**n`` (capped), a different
    draw for each delivery, so a department that comes back is not hit by a storm of
    retries all at once.
    """

    max_retries: int = 8
    base_seconds: int = 2
    cap_seconds: int = 600

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(
            max_retries=_int("ROUTER_RETRY_MAX", cls.max_retries),
            base_seconds=_int("ROUTER_RETRY_BASE_SECONDS", cls.base_seconds),
            cap_seconds=_int("ROUTER_RETRY_CAP_SECONDS", cls.cap_seconds),
        )

    def delay(
        self, retry: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds before retry number ``retry`` (0 for the first): ``base * 2**retry``
        capped, times a jitter in [0.5, 1] drawn for this delivery alone; never sooner
        than the department's Retry-After."""
        rng = rng or random.Random()
        ceiling = min(self.cap_seconds, self.base_seconds * 2**retry)
        wait = ceiling * rng.uniform(0.5, 1.0)
        if retry_after:
            wait = max(wait, float(retry_after))
        return wait

    def as_field(self) -> str:
        """How a case stores the policy its deliveries follow: "max,base,cap"."""
        return f"{self.max_retries},{self.base_seconds},{self.cap_seconds}"

    @classmethod
    def from_field(cls, value: str, default: RetryPolicy) -> RetryPolicy:
        """The policy a case stored with ``as_field``; ``default`` if none or unreadable."""
        try:
            max_retries, base, cap = (int(v) for v in value.split(","))
        except ValueError:
            return default
        return cls(max_retries=max_retries, base_seconds=base, cap_seconds=cap)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long a case keeps personal data, and its record without it (router.retention).

    28 days after a case settles (every delivery final, nothing left for a counter):
    Tell Us Once's reference lasts 28 days, so a citizen can still check, correct or ask
    about what was sent as long as the reference works, and GOV.UK Notify's longest
    choice is 90. The record without personal data (event type, channel, dates, each
    department's outcome and receipt, counter actions by kind) is kept 13 months, for a
    year's statistics and the ledger with a month's grace.
    """

    retain_days: int = 28
    record_days: int = 395

    @classmethod
    def from_env(cls) -> RetentionPolicy:
        policy = cls(
            retain_days=_int("ROUTER_RETAIN_DAYS", cls.retain_days),
            record_days=_int("ROUTER_RECORD_DAYS", cls.record_days),
        )
        if policy.retain_days < 1 or policy.record_days < policy.retain_days:
            raise ValueError(
                "ROUTER_RETAIN_DAYS must be at least 1, and ROUTER_RECORD_DAYS at least as long"
            )
        return policy

    @property
    def retain_seconds(self) -> float:
        return self.retain_days * 86400.0

    @property
    def record_seconds(self) -> float:
        return self.record_days * 86400.0


@dataclass(frozen=True)
class NotifySettings:
    """How the citizen's notifications are sent (router.delivery.notices): through GOV.UK
    Notify when ``NOTIFY_API_KEY`` is set, else into the outbox an operator reads with
    ``router outbox``.

    Notify sends what a template says. Ours are written here, in English and Welsh
    (router.delivery.notices), so the service needs one email template whose subject
    is ``((subject))`` and whose body is ``((body))``, and one text message template
    whose body is ``((body))``: their ids go in NOTIFY_EMAIL_TEMPLATE_ID and
    NOTIFY_SMS_TEMPLATE_ID. NOTIFY_BASE_URL points the client elsewhere (the tests' own
    checking server); TUO_PUBLIC_URL is the address messages link to.
    """

    api_key: str = ""
    base_url: str = "https://api.notifications.service.gov.uk"
    email_template_id: str = ""
    sms_template_id: str = ""
    public_url: str = ""

    @classmethod
    def from_env(cls) -> NotifySettings:
        settings = cls(
            api_key=os.environ.get("NOTIFY_API_KEY", "").strip(),
            base_url=os.environ.get("NOTIFY_BASE_URL", "").strip() or cls.base_url,
            email_template_id=os.environ.get("NOTIFY_EMAIL_TEMPLATE_ID", "").strip(),
            sms_template_id=os.environ.get("NOTIFY_SMS_TEMPLATE_ID", "").strip(),
            public_url=os.environ.get("TUO_PUBLIC_URL", "").strip().rstrip("/"),
        )
        if settings.api_key and not (settings.email_template_id and settings.sms_template_id):
            raise ValueError(
                "NOTIFY_API_KEY is set: set NOTIFY_EMAIL_TEMPLATE_ID and NOTIFY_SMS_TEMPLATE_ID "
                "to the ids of its email and text message templates too"
            )
        return settings
