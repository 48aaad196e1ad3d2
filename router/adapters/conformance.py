"""The conformance kit: run any adapter through the contract's rules.

``router adapters check NAME`` runs these against a throwaway Redis of its own, so a
department can check its adapter before it ever sees a real case:

1. declaration: a valid name, a title, fields that exist for each event it handles, and
   for each of those events what it needs before it acts (router.trust.Need: P0 to P2,
   and a verified registration only where the event has one);
2. receipt: for each event, a sample notification is delivered and a ``Receipt`` comes
   back within the declared timeout;
3. idempotent: the same notification again returns an identical receipt (every field,
   ``detail`` and ``extra`` included; a failure lists each field that differs, with both
   values) and changes nothing (every Redis key the adapter touches is compared, and an
   adapter may offer ``conformance_effects(notification) -> int`` to count effects it
   keeps elsewhere);
4. minimal: the adapter reads no field it did not declare (the notification's fields
   are watched, and asking for any other field is caught);
5. errors classified: given a notification with every declared field blank, it either
   delivers or raises ``RetryableError`` / ``PermanentError`` — never anything else;
6. cleanup: the sample deliveries (all of case ``SAMPLE_CASE``) are removed again from
   the adapter's own store when it offers ``conformance_cleanup(notification)``, which
   the kit calls for each and then checks with ``conformance_effects`` where offered.
   Without the hook (or with ``keep_samples``) the kit lists the sample delivery ids
   it leaves behind, so they can be found and deleted by hand.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from redis import Redis

from router.adapters.contract import (
    Adapter,
    DeliveryError,
    Notification,
    Receipt,
    RegistryError,
    check_declaration,
)
from router.catalogue import EVENTS, EventType, Kind, Question

# Every sample notification belongs to this case; its delivery ids begin with it.
SAMPLE_CASE = "CONFRMANC"

# A sample answer of each kind; dates are chosen per question to sit inside its limits.
_SAMPLE_VALUES: dict[Kind, Any] = {
    Kind.NAME: "Alex Example-O'Neill",
    Kind.TEXT: "1 Example Street",
    Kind.POSTCODE: "SW1A 1AA",
    Kind.NINO: "AB123456C",
    Kind.DRIVING_LICENCE: "MORGA753116SM9IJ",
    Kind.SORT_CODE: "309498",
    Kind.ACCOUNT_NUMBER: "00733445",
    Kind.PAYE_REFERENCE: "123/AB456",
    Kind.REGISTRAR_REFERENCE: "DX7Q4K2M9PLA",
    Kind.ENTRY_NUMBER: "123",
    Kind.EMAIL: "alex@example.com",
    Kind.MOBILE: "07700900982",
}


def sample_answers(event: EventType, today: date | None = None) -> dict[str, Any]:
    """Valid answers to every question of ``event`` (conditional ones included)."""
    today = today or date.today()
    answers: dict[str, Any] = {}
    for q in event.questions:
        answers[q.field] = _sample(q, today)
    # Conditional questions: choose the option that asks them.
    for q in event.questions:
        if q.show_if is not None:
            other, values = q.show_if
            answers[other] = values[0]
    return event.validate(answers, today=today)


def _sample(q: Question, today: date) -> Any:
    if q.kind is Kind.YES_NO:
        return "yes"
    if q.kind is Kind.CHOICE:
        return q.options[0][0]
    if q.kind is Kind.DATE:
        if "birth" in q.field and q.field != "child_date_of_birth":
            return "1970-06-15"
        return (today - timedelta(days=1)).isoformat()
    return _SAMPLE_VALUES[q.kind]


class _WatchedFields(Mapping[str, Any]):
    """A notification's fields that remember every key asked for."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class Finding:
    rule: str
    event: str
    passed: bool
    detail: str
    note: bool = False  # advice, not a rule: it never fails the check

    def line(self) -> str:
        mark = "NOTE" if self.note else "PASS" if self.passed else "FAIL"
        where = f" [{self.event}]" if self.event else ""
        return f"{mark} {self.rule}{where}: {self.detail}"


def _notification(
    cls: type[Adapter], event: str, fields: Mapping[str, Any], tag: str
) -> Notification:
    return Notification(
        delivery_id=f"{SAMPLE_CASE}-{cls.name}-{event}-{tag}",
        case_ref=SAMPLE_CASE,
        department=cls.name,
        event_type=event,
        fields=fields,
        submitted_at="2026-01-01T00:00:00.000+00:00",
    )


def _watch(notification: Notification) -> _WatchedFields:
    watched = _WatchedFields(notification.fields)
    object.__setattr__(notification, "fields", watched)
    return watched


def _call(adapter: Adapter, notification: Notification, limit: float) -> tuple[Any, float]:
    """Deliver in a thread; return (receipt or exception, seconds). Gives up at ``limit``."""
    return _timed(adapter.deliver, notification, limit)


def _timed(
    method: Callable[[Notification], Any], notification: Notification, limit: float
) -> tuple[Any, float]:
    """Call ``method`` in a thread; return (its answer or exception, seconds)."""
    outcome: list[Any] = [TimeoutError(f"no answer within {limit:.1f}s")]

    def run() -> None:
        try:
            outcome[0] = method(notification)
        except BaseException as error:  # noqa: BLE001 - the kit reports whatever it got
            outcome[0] = error

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    return outcome[0], time.monotonic() - started


def _snapshot(redis: Redis) -> dict[bytes, Any]:
    """Every key and its value, to see whether a repeat changed anything."""
    state: dict[bytes, Any] = {}
    for key in redis.scan_iter(count=1000):
        state[key] = redis.dump(key)
    return state


def _effects(adapter: Adapter, notification: Notification) -> int | None:
    counter: Callable[[Notification], int] | None = getattr(adapter, "conformance_effects", None)
    return counter(notification) if counter else None


def check(
    cls: type[Adapter], redis: Redis, today: date | None = None, *, keep_samples: bool = False
) -> list[Finding]:
    """Run every rule against ``cls``; ``redis`` should be a throwaway database.

    The sample deliveries are cleaned up afterwards through the adapter's
    ``conformance_cleanup`` hook, unless ``keep_samples`` (to look at them)."""
    findings: list[Finding] = []
    try:
        check_declaration(cls)
    except RegistryError as error:
        return [Finding("declaration", "", False, str(error))]
    findings.append(Finding("declaration", "", True, f"{len(cls.fields)} event(s) declared"))
    needs = ", ".join(f"{event} {cls.need_for(event).code}" for event in sorted(cls.fields))
    findings.append(Finding("trust", "", True, f"acts on {needs}"))
    adapter = cls(redis)
    limit = float(cls.timeout)
    samples: list[Notification] = []
    try:
        _check_events(cls, adapter, redis, today, limit, findings, samples)
    finally:
        findings.append(_cleanup(adapter, samples, limit, keep_samples))
    return findings


def _check_events(
    cls: type[Adapter],
    adapter: Adapter,
    redis: Redis,
    today: date | None,
    limit: float,
    findings: list[Finding],
    samples: list[Notification],
) -> None:
    for event in sorted(cls.fields):
        declared = set(cls.fields_for(event))
        answers = sample_answers(EVENTS[event], today)
        fields = {f: answers[f] for f in cls.fields_for(event) if f in answers}

        first_note = _notification(cls, event, fields, "a")
        samples.append(first_note)
        watched = _watch(first_note)
        first, took = _call(adapter, first_note, limit * 2)
        if not isinstance(first, Receipt):
            findings.append(Finding("receipt", event, False, _describe(first)))
            continue
        findings.append(
            Finding(
                "timeout", event, took <= limit, f"answered in {took:.2f}s (limit {limit:.1f}s)"
            )
        )
        findings.append(Finding("receipt", event, True, f"receipt {first.reference}"))

        undeclared = watched.asked - declared
        findings.append(
            Finding(
                "minimal",
                event,
                not undeclared,
                f"asked for undeclared fields {sorted(undeclared)}"
                if undeclared
                else "read only declared fields",
            )
        )

        before = _snapshot(redis)
        effects_before = _effects(adapter, first_note)
        repeat_note = _notification(cls, event, fields, "a")
        again, _ = _call(adapter, repeat_note, limit * 2)
        after = _snapshot(redis)
        effects_after = _effects(adapter, repeat_note)
        problems = []
        if again != first:
            problems.append(_receipt_difference(first, again))
        changed = sorted(
            k.decode(errors="replace")
            for k in set(before) | set(after)
            if before.get(k) != after.get(k)
        )
        if changed:
            problems.append(f"repeat changed {changed[:5]}")
        if effects_before is not None and effects_after != effects_before:
            problems.append(f"effects went from {effects_before} to {effects_after}")
        findings.append(
            Finding(
                "idempotent",
                event,
                not problems,
                "; ".join(problems) or "repeat returned the first receipt, changed nothing",
            )
        )

        blank = _notification(cls, event, {f: "" for f in fields}, "blank")
        samples.append(blank)
        outcome, _ = _call(adapter, blank, limit * 2)
        classified = isinstance(outcome, Receipt | DeliveryError)
        findings.append(
            Finding(
                "errors",
                event,
                classified,
                f"blank fields gave {_describe(outcome)}"
                + ("" if classified else ": raise RetryableError or PermanentError"),
            )
        )


def _cleanup(adapter: Adapter, samples: list[Notification], limit: float, keep: bool) -> Finding:
    """Remove the sample deliveries from the adapter's own store, or say which remain."""
    ids = ", ".join(n.delivery_id for n in samples)
    hook: Callable[[Notification], Any] | None = getattr(adapter, "conformance_cleanup", None)
    if keep or hook is None:
        why = (
            "kept, as asked"
            if keep
            else "this adapter offers no conformance_cleanup(notification), so"
        )
        return Finding(
            "cleanup",
            "",
            True,
            f"{why} any store it keeps outside the kit's throwaway Redis still holds the "
            f"sample deliveries of case {SAMPLE_CASE}: {ids}",
            note=True,
        )
    problems = []
    for notification in samples:
        outcome, _ = _timed(hook, notification, limit * 2)
        if isinstance(outcome, BaseException):
            problems.append(f"{notification.delivery_id}: {_describe(outcome)}")
            continue
        left = _effects(adapter, notification)
        if left:
            problems.append(f"{notification.delivery_id} is still applied {left} time(s)")
    if problems:
        return Finding("cleanup", "", False, "cleanup left samples: " + "; ".join(problems))
    return Finding("cleanup", "", True, f"removed the {len(samples)} sample deliveries")


_ABSENT = object()


def _receipt_difference(first: Receipt, again: Any) -> str:
    """Every field in which the repeat's answer differs from the first receipt.

    Field by field (``extra`` key by key), both values in full: the reference alone
    says nothing when it was the same both times and the ``detail`` was not."""
    if not isinstance(again, Receipt):
        return (
            f"the repeat raised {_describe(again)}"
            if isinstance(again, BaseException)
            else f"the repeat returned {_describe(again)}"
        ) + f", not the first receipt ({_describe(first)})"
    differences = []
    for name in (f.name for f in dataclasses.fields(Receipt)):
        before, after = getattr(first, name), getattr(again, name)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            for key in sorted(set(before) | set(after), key=str):
                one, two = before.get(key, _ABSENT), after.get(key, _ABSENT)
                if one != two:
                    differences.append(f"{name}[{key!r}] {_value(one)} then {_value(two)}")
        elif before != after:
            differences.append(f"{name} {_value(before)} then {_value(after)}")
    if not differences:  # equal fields, yet not equal: a subclass of Receipt
        differences.append(f"type {type(first).__name__} then {type(again).__name__}")
    return (
        "the repeat's receipt differs from the first: "
        + "; ".join(differences)
        + " (a repeat must return an identical receipt, detail included)"
    )


def _value(value: Any) -> str:
    return "(none)" if value is _ABSENT else repr(value)


def _describe(outcome: Any) -> str:
    if isinstance(outcome, Receipt):
        return f"receipt {outcome.reference}"
    if isinstance(outcome, BaseException):
        return f"{type(outcome).__name__}: {outcome}"[:200]
    return repr(outcome)[:200]
