"""Telling the citizen how their report is going, by email and text message.

A reporter who gives an email address or a mobile number (both optional, the last
questions of every journey; no department is sent them) is told:

- ``confirmation``: the report is in, who we will tell, and any Post Office visit due;
- ``visit_due``: a week before the date by which a Post Office visit is due, if it is
  still to be made;
- ``not_told:<department>``: a department could not be told (a permanent failure);
- ``all_told``: every department chosen has been told;
- ``casework_<kind>:<n>``: the n-th message a caseworker chose to send them, one of a
  fixed few (router.assisted.backoffice CONTACT_KINDS).

Messages carry the reference, the organisations' names and dates: never a name, an
address or anything else the report holds (the issue's "no more personal data than the
notification needs"). They are written here, in the report's language (English or
Welsh, through the same catalogues as the pages), and sent through GOV.UK Notify's own
client when NOTIFY_API_KEY is set (settings.NotifySettings), else kept in an outbox an
operator reads with ``router outbox``.

Nothing about a message goes in a job payload or a log line. The schedule is
``keys.NOTICES``: reference -> when to look at the case next. A case is listed when it is
made with contact details; a delivery reaching a final state brings its look forward
(CaseStore.mark); the workers' beat looks at what is due (``Notices.send_due``), one
worker per case at a time (``keys.notice_lock``). What each look sent is noted in the
case (its ``notices`` field) before the next is decided, so a message goes once; a
worker killed between sending and noting sends that one message again, never more.
A case leaves the schedule once its last message is sent, or its data is erased.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from redis import Redis
from redis.client import Pipeline

from router import keys
from router.cases import FINAL_STATES, Case, DeliveryState, UnknownCase, parse
from router.i18n import N_, catalogue
from router.routing import ASSISTED_TASKS
from router.sealing import ring_for
from router.settings import NotifySettings
from router.validators import mask_contact

log = logging.getLogger(__name__)

TOLD = frozenset({DeliveryState.DELIVERED, DeliveryState.COMPLETED_AT_COUNTER})
# How often a worker looks for messages due (seconds).
INTERVAL_SECONDS = 1.0
# Cases looked at per look, and how long one worker holds a case's lock.
BATCH = 50
LOCK_MS = 60_000
# A case with nothing due is looked at again after this long anyway (a safety net: its
# deliveries' outcomes bring the look forward).
IDLE_SECONDS = 24 * 3600.0
# A message that fails this many times for a reason that may pass is given up.
MAX_ATTEMPTS = 5
RETRY_SECONDS = 300.0
# The reminder goes this long before the date a visit is due.
REMINDER_BEFORE = timedelta(days=7)

# Subject and body of each message (message ids: the pages' catalogues translate them).
MESSAGES: dict[str, tuple[str, str]] = {
    "confirmation": (
        N_("We have your report: %(reference)s"),
        N_(
            "Your reference number is %(reference)s.\n\nWe will tell: %(organisations)s. "
            "We will send you another message when they have all been told."
        ),
    ),
    "visit_due": (
        N_("Your Post Office visit is due by %(date)s"),
        N_(
            "To finish your report %(reference)s, visit a Post Office by %(date)s and give "
            "your reference number at the counter. What you need done there: %(tasks)s."
        ),
    ),
    "not_told": (
        N_("We could not tell %(organisation)s"),
        N_(
            "We could not tell %(organisation)s about your report %(reference)s online. "
            "Our team can send it again once the problem is fixed. If it is urgent, "
            "contact them yourself."
        ),
    ),
    "all_told": (
        N_("Everyone has been told: %(reference)s"),
        N_(
            "We have told everyone you chose about your report %(reference)s: "
            "%(organisations)s. You do not need to do anything else."
        ),
    ),
    # What a caseworker may send (router.assisted.backoffice): fixed words, nothing typed.
    "casework_looking": (
        N_("We are looking into your report: %(reference)s"),
        N_(
            "A caseworker is looking into your report %(reference)s. You do not need to do "
            "anything now. We will send you another message when there is news."
        ),
    ),
    "casework_visit": (
        N_("Please visit a Post Office: %(reference)s"),
        N_(
            "To finish your report %(reference)s, please visit a Post Office and give your "
            "reference number at the counter. Counter staff can help with what is left."
        ),
    ),
    "casework_resent": (
        N_("We have tried again: %(reference)s"),
        N_(
            "We have sent your report %(reference)s again to the organisations we could not "
            "tell before. We will send you another message when they have all been told."
        ),
    ),
}
VISIT = N_(
    "You need to visit a Post Office by %(date)s to finish this: %(tasks)s. Take your "
    "reference number."
)
# The confirmation of a report that tells nobody: a death reported already.
REPORTED_ALREADY = N_(
    "Your reference number is %(reference)s.\n\nThis death was reported to us already, "
    "so the organisations have been told. Each organisation is told once: there is nothing "
    "more you need to do."
)
HELP = N_("help to finish the report")
STATUS = N_(
    "See how your report is going at %(url)s with your reference number, your date of "
    "birth and the postcode you gave."
)

CHANNELS = {"email": "contact_email", "sms": "contact_mobile"}


@dataclass(frozen=True)
class Message:
    """One message to one recipient. ``to`` is personal: it is sent, shown masked in
    the outbox, and never logged."""

    ref: str
    name: str  # "confirmation", "not_told:dvla"...
    channel: str  # "email" or "sms"
    to: str
    subject: str
    body: str

    @property
    def reference(self) -> str:
        """What Notify is given to tell this message apart (no personal data)."""
        return f"{self.ref}-{self.name.replace(':', '-')}-{self.channel}"


class Refused(Exception):
    """The message cannot be sent as it is (a bad address, a bad key): do not try again."""


class Notifier(Protocol):
    def send(self, message: Message) -> str:
        """Send ``message``; return the sender's id for it. Raise ``Refused`` when it
        can never be sent; any other exception is tried again later."""
        ...


class NotifyNotifier:
    """GOV.UK Notify, through its own client (notifications-python-client)."""

    def __init__(self, settings: NotifySettings) -> None:
        from notifications_python_client.notifications import NotificationsAPIClient

        self.settings = settings
        self.client = NotificationsAPIClient(
            settings.api_key, base_url=settings.base_url, timeout=10
        )

    def send(self, message: Message) -> str:
        from notifications_python_client.errors import HTTPError

        try:
            if message.channel == "email":
                answer = self.client.send_email_notification(
                    email_address=message.to,
                    template_id=self.settings.email_template_id,
                    personalisation={"subject": message.subject, "body": message.body},
                    reference=message.reference,
                )
            else:
                answer = self.client.send_sms_notification(
                    phone_number=message.to,
                    template_id=self.settings.sms_template_id,
                    personalisation={"body": message.body},
                    reference=message.reference,
                )
        except HTTPError as error:
            # 400 (a bad address or template) and 403 (a bad key) never pass; 429 and
            # 5xx may. Notify's message says which field, never the address itself.
            if error.status_code in (400, 403):
                raise Refused(f"Notify answered {error.status_code}") from None
            raise
        return str(answer.get("id", ""))


class Outbox:
    """Where messages go when no Notify key is set: a list per case, for an operator
    (``router outbox``) and for the development service. It keeps what each message
    said and only enough of its recipient to recognise it (``mask_contact``): nothing to seal,
    nothing a key rotation must reach, nothing personal at rest."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def send(self, message: Message) -> str:
        entry = {
            "name": message.name,
            "channel": message.channel,
            "to": mask_contact(message.to),
            "subject": message.subject,
            "body": message.body,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.outbox(message.ref), json.dumps(entry))
            pipe.zadd(keys.OUTBOX_INDEX, {message.ref: time.time()})
            length = pipe.execute()[0]
        return f"outbox-{message.ref}-{length}"

    def read(self, ref: str | None = None, limit: int = 20) -> list[dict[str, str]]:
        """The messages of case ``ref`` (else of the latest ``limit`` cases), oldest first."""
        if ref is None:
            latest = self.redis.zrange(keys.OUTBOX_INDEX, -limit, -1)
            refs = [_text(r) for r in latest]  # type: ignore[arg-type]
        else:
            refs = [ref]
        found = []
        for one in refs:
            for raw in self.redis.lrange(keys.outbox(one), 0, -1):
                found.append({**json.loads(raw), "ref": one})
        return found


def notifier_for(redis: Redis, settings: NotifySettings | None = None) -> Notifier:
    """Notify when a key is set, else the outbox."""
    settings = settings or NotifySettings.from_env()
    return NotifyNotifier(settings) if settings.api_key else Outbox(redis)


def subscribe(pipe: Pipeline, ref: str, at: float | None = None) -> None:
    """List a new case for notices (in the transaction that makes it)."""
    pipe.zadd(keys.NOTICES, {ref: time.time() if at is None else at})


# Schedule a case's next look (ARGV[3], or off the schedule when empty), unless its time
# changed since the look read it (ARGV[2]): an outcome marked meanwhile brought it
# forward (CaseStore.mark), and that look must still happen. Not listed: erased meanwhile.
# KEYS: the schedule. ARGV: the reference, the score seen, the new score or "".
RESCHEDULE = """
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not current or tonumber(current) ~= tonumber(ARGV[2]) then
    return 0
end
if ARGV[3] == '' then
    redis.call('ZREM', KEYS[1], ARGV[1])
else
    redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
"""


class Notices:
    """Decide what each listed case's reporter is due to be told, and tell them."""

    def __init__(
        self,
        redis: Redis,
        titles: Callable[[str], str],
        notifier: Notifier | None = None,
        *,
        settings: NotifySettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.ring = ring_for(redis)
        self.titles = titles  # a department's name (message id) by adapter name
        self.settings = settings or NotifySettings.from_env()
        self.notifier = notifier or notifier_for(redis, self.settings)
        self.clock = clock
        self._reschedule = redis.register_script(RESCHEDULE)

    def beat(self) -> None:
        """One look for what is due (a worker's notice thread calls it every second)."""
        self.send_due()

    def send_due(self, limit: int = BATCH) -> int:
        """Look at the cases whose time has come; return how many messages were sent."""
        now = self.clock()
        due: list[tuple[bytes, float]] = self.redis.zrangebyscore(  # type: ignore[assignment]
            keys.NOTICES, "-inf", now, start=0, num=limit, withscores=True
        )
        sent = 0
        for raw, seen in due:
            ref = _text(raw)
            lock = keys.notice_lock(ref)
            if not self.redis.set(lock, "1", nx=True, px=LOCK_MS):
                continue  # another worker is looking at it
            try:
                sent += self.look(ref, now, seen)
            finally:
                self.redis.delete(lock)
        return sent

    def look(self, ref: str, now: float, seen: float) -> int:
        """Send what case ``ref`` is due, note it, and schedule its next look, unless
        its time moved since it was ``seen`` on the schedule (then that time stands)."""
        raw = self.redis.hgetall(keys.case(ref))
        try:
            case = parse(ref, raw, self.ring)
        except UnknownCase:
            self.redis.zrem(keys.NOTICES, ref)
            return 0
        contacts = {
            channel: str(case.answers[field])
            for channel, field in CHANNELS.items()
            if not case.erased and case.answers.get(field)
        }
        if not contacts:
            self.redis.zrem(keys.NOTICES, ref)
            return 0
        noted: dict[str, Any] = json.loads(case.notices or "{}")
        lang = case.lang
        sent = 0
        retry_at: float | None = None
        for name, department in self.due(case, noted, now):
            for channel, to in contacts.items():
                key = f"{name}|{channel}"
                if noted.get(key) in ("sent", "refused"):
                    continue
                message = self.write(case, name, channel, to, department, lang)
                try:
                    self.notifier.send(message)
                except Refused as refused:
                    noted[key] = "refused"
                    log.warning("notice %s for %s refused: %s", key, ref, refused)
                except Exception as error:  # noqa: BLE001 - any failure is tried again
                    attempts = int(noted.get(key, 0) or 0) + 1
                    noted[key] = attempts if attempts < MAX_ATTEMPTS else "refused"
                    retry_at = now + RETRY_SECONDS
                    log.warning(
                        "notice %s for %s not sent (attempt %d): %s",
                        key,
                        ref,
                        attempts,
                        type(error).__name__,
                    )
                else:
                    noted[key] = "sent"
                    sent += 1
                    log.info("notice %s for %s sent", key, ref)
                self.redis.hset(keys.case(ref), "notices", json.dumps(noted, sort_keys=True))
        upcoming = self.next_look(case, noted, now)
        when = (
            min(t for t in (upcoming, retry_at) if t is not None)
            if (upcoming or retry_at)
            else None
        )
        # A case erased meanwhile is not listed again; one whose deliveries moved on
        # meanwhile keeps the earlier time they gave it.
        self._reschedule(
            keys=[keys.NOTICES], args=[ref, repr(seen), "" if when is None else repr(when)]
        )
        return sent

    # --- what is due ------------------------------------------------------------------

    def due(self, case: Case, noted: Mapping[str, Any], now: float) -> Iterable[tuple[str, str]]:
        """(message name, the department it is about or "") for each message due now."""
        yield "confirmation", ""
        for name, d in case.deliveries.items():
            if d.state == DeliveryState.FAILED:
                yield f"not_told:{name}", name
        if case.at_counter and now >= self._reminder_at(case):
            yield "visit_due", ""
        if (
            case.deliveries
            and case.finished
            and all(d.state in TOLD for d in case.deliveries.values())
        ):
            yield "all_told", ""
        for index, kind in enumerate(case.casework_messages):
            yield f"casework_{kind}:{index}", ""

    def next_look(self, case: Case, noted: Mapping[str, Any], now: float) -> float | None:
        """When to look again: the reminder's time, a day on while deliveries are still
        going (their outcomes bring it forward), or never once all is said."""
        if case.finished and all(d.state in FINAL_STATES for d in case.deliveries.values()):
            return None
        if case.at_counter and not any(k.startswith("visit_due|") for k in noted):
            reminder = self._reminder_at(case)
            if reminder > now:
                return min(reminder, now + IDLE_SECONDS)
        return now + IDLE_SECONDS

    @staticmethod
    def _reminder_at(case: Case) -> float:
        due = datetime.combine(case.counter_valid_until, datetime.min.time(), UTC)
        return (due - REMINDER_BEFORE).timestamp()

    # --- what it says -------------------------------------------------------------------

    def write(
        self, case: Case, name: str, channel: str, to: str, department: str, lang: str
    ) -> Message:
        """The message in the report's language."""
        tr = catalogue(lang).gettext
        kind = name.split(":", 1)[0]
        subject_id, body_id = MESSAGES[kind]
        values = {
            "reference": case.display_ref,
            "date": _date(case.counter_valid_until, lang),
            "tasks": ", ".join(tr(ASSISTED_TASKS[t][0]) for t in case.counter_tasks) or tr(HELP),
            "organisation": tr(self.titles(department)) if department else "",
            "organisations": ", ".join(tr(self.titles(n)) for n in case.deliveries),
        }
        if kind == "confirmation" and not case.deliveries:
            body_id = REPORTED_ALREADY
        body = tr(body_id) % values
        if kind == "confirmation" and case.at_counter:
            body += "\n\n" + tr(VISIT) % values
        if self.settings.public_url and kind != "all_told":
            body += "\n\n" + tr(STATUS) % {"url": f"{self.settings.public_url}/status"}
        return Message(case.ref, name, channel, to, tr(subject_id) % values, body)


def _date(day: Any, lang: str) -> str:
    from babel.dates import format_date

    return format_date(day, "d MMMM y", locale="cy" if lang == "cy" else "en_GB")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
