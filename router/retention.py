"""Personal data kept only as long as it is needed, and erased on request (issue 14).

A case keeps its personal data (its sealed answers and identity check, its dead letters,
its flag) until ``retain_days`` after it settles: every delivery final, nothing left for
a counter, no registration being checked. It then shrinks to a record without personal
data (event type, channel, dates, each department's outcome and receipt, what kind of
thing each department was sent, counter actions by kind), which is deleted with its
history, audit and death digests ``record_days`` after the erasure
(settings.RetentionPolicy says why 28 days and 13 months).

The purge runs in the workers' beat, one worker at a time (``keys.RETENTION_LOCK``), at
most every PURGE_SECONDS. It reads only ``keys.RETENTION`` (reference -> when to look at
it next; every case is listed from the moment it is made), so it touches a case a
handful of times in its life, not every case on every run. Each look is one
transaction that WATCHes the case: a delivery that moves on meanwhile makes it look
again later, never erase a case with work pending. A look that is killed half-way has
written nothing, so the purge is idempotent and survives kills.

When a case settled is decided by the purge's own clock (``clock``; injected in tests
and the year-long benchmark): the first look that finds it finished notes the time,
and the length of its history, which every change of a delivery lengthens, so a case
replayed and settled again is timed afresh. The data is erased at that time plus the
window, so it is kept between 28 days and 28 days and RETENTION_LOOK_SECONDS after it
settled, never less.

What waits for a Post Office visit that never comes would keep a case for ever: a week
after the date the citizen was given (28 days after the report, COUNTER_VALIDITY), the
purge fails those deliveries ("lapsed"), takes the case off its branch's queue and flags
it; the case then settles, and its window starts.

An erasure (by the purge, ``router case erase``, or the citizen from the status page)
is recorded in the case's history and in ``keys.ERASURES`` with the departments told
already: we cannot unsend, but we can say who has it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.client import Pipeline

from router import keys
from router.cases import (
    COUNTER_VALIDITY,
    FINAL_STATES,
    FLAG_NOT_AT_COUNTER,
    RETENTION_LOOK_SECONDS,
    Case,
    CaseStore,
    DeliveryState,
    delivery_id,
    history_entry,
    parse,
)
from router.settings import RetentionPolicy

log = logging.getLogger(__name__)

# How often the purge runs, at most, across every worker (seconds).
PURGE_SECONDS = 60
# Cases looked at per batch (one transaction each).
BATCH = 200
# Who erased a case's personal data.
BY_RETENTION, BY_REQUEST, BY_CITIZEN = "retention", "request", "citizen"
ERASED_BY = (BY_RETENTION, BY_REQUEST, BY_CITIZEN)
# The personal fields of a case hash, besides each answer's ``a:<name>``: the identity
# check, answers stored before sealing, the flag's reason (a department's words), and
# the caseworkers' notes (router.assisted.backoffice).
PERSONAL_FIELDS = ("identity", "answers", "flagged", "casework_notes")
# What waits for a Post Office visit lapses a week after the date the citizen was given
# (a reference is good at a counter for COUNTER_VALIDITY, 28 days, as Tell Us Once's is).
LAPSE_SECONDS = (COUNTER_VALIDITY + timedelta(days=7)).total_seconds()
LAPSED = "lapsed"  # a delivery's detail when it failed so
TOLD = frozenset({DeliveryState.DELIVERED, DeliveryState.COMPLETED_AT_COUNTER})


class NotFinished(Exception):
    """A case still has work to do: its personal data is needed."""

    def __init__(self, pending: list[str]) -> None:
        super().__init__(", ".join(pending))
        self.pending = pending


@dataclass(frozen=True)
class Erasure:
    """What an erasure did: when, and which departments had been told already."""

    ref: str
    at: str
    by: str
    told: tuple[str, ...]
    already: bool = False  # erased before; nothing more was done


@dataclass
class Purged:
    """What one purge did."""

    looked: int = 0
    settled: int = 0  # found finished for the first time: the window starts
    erased: int = 0
    deleted: int = 0  # records whose time was up
    kept: int = 0  # still pending, or inside the window
    lapsed: int = 0  # counter work that waited too long failed
    trimmed: int = 0  # audit entries trimmed by age
    refs: dict[str, list[str]] = field(default_factory=dict)  # what -> references

    def add(self, what: str, ref: str) -> None:
        setattr(self, what, getattr(self, what) + 1)
        self.refs.setdefault(what, []).append(ref)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def told(case: Case) -> list[str]:
    """The departments a case's personal data was sent to."""
    return sorted(name for name, d in case.deliveries.items() if d.state in TOLD)


def pending_work(case: Case) -> list[str]:
    """What a case still waits for, in words an operator reads (empty once finished)."""
    waiting = [
        f"{name} ({d.state})"
        for name, d in sorted(case.deliveries.items())
        if d.state not in FINAL_STATES
    ]
    if case.at_counter and not any("assisted" in w for w in waiting):
        waiting.append("a Post Office counter")
    if case.verifying:
        waiting.append("the register")
    return waiting


class Retention:
    """The purge and erasure of one Redis's cases."""

    def __init__(
        self,
        redis: Redis,
        store: CaseStore | None = None,
        policy: RetentionPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.store = store or CaseStore(redis)
        self.policy = policy or RetentionPolicy.from_env()
        self.clock = clock

    # --- the purge -------------------------------------------------------------------

    def run_if_due(self) -> Purged | None:
        """The purge, if no other worker ran it in the last PURGE_SECONDS (the beat)."""
        if not self.redis.set(keys.RETENTION_LOCK, "1", nx=True, ex=PURGE_SECONDS):
            return None
        purged = self.purge()
        if purged.erased or purged.deleted or purged.trimmed:
            log.info(
                "retention: %d erased, %d records deleted, %d audit entries trimmed",
                purged.erased,
                purged.deleted,
                purged.trimmed,
            )
        return purged

    def purge(self, limit: int | None = None) -> Purged:
        """Look at every case that is due (at most ``limit``), then trim the audits."""
        purged = Purged()
        now = self.clock()
        while limit is None or purged.looked < limit:
            batch = BATCH if limit is None else min(BATCH, limit - purged.looked)
            due = self.redis.zrangebyscore(keys.RETENTION, "-inf", now, start=0, num=batch)
            if not due:
                break
            for raw in due:
                ref = _text(raw)  # type: ignore[arg-type]
                purged.looked += 1
                purged.add(self.look(ref, now), ref)
            if len(due) < batch:
                break
        purged.trimmed = self.trim_audits(now)
        return purged

    def look(self, ref: str, now: float) -> str:
        """Do what is due for one case; return what was done (a ``Purged`` count's name)."""
        case_key = keys.case(ref)
        outcome = "kept"

        def attempt(pipe: Pipeline) -> None:
            nonlocal outcome
            raw = pipe.hgetall(case_key)
            data = {_text(k): v for k, v in raw.items()}
            if "event_type" not in data:
                pipe.multi()
                self._delete_record(pipe, ref, data)
                outcome = "deleted"
                return
            erased_at = _text(data.get("erased_at", b""))
            if erased_at:
                until = epoch(erased_at) + self.policy.record_seconds
                pipe.multi()
                if now >= until:
                    self._delete_record(pipe, ref, data)
                    outcome = "deleted"
                else:
                    pipe.zadd(keys.RETENTION, {ref: until})
                    outcome = "kept"
                return
            case = parse(ref, raw, self.store.ring)
            if not case.finished:
                pipe.multi()
                pipe.hdel(case_key, "settled_at")
                pipe.zadd(keys.RETENTION, {ref: now + RETENTION_LOOK_SECONDS})
                outcome = "kept"
                if now >= epoch(case.created_at) + LAPSE_SECONDS and self._lapse(pipe, case):
                    outcome = "lapsed"
                return
            changes = int(pipe.llen(keys.history(ref)))
            settled = _text(data.get("settled_at", b""))
            at, _, seen = settled.partition("|")
            if not settled or seen != str(changes):
                pipe.multi()
                pipe.hset(case_key, "settled_at", f"{iso(now)}|{changes}")
                pipe.zadd(keys.RETENTION, {ref: now + self.policy.retain_seconds})
                outcome = "settled"
                return
            until = epoch(at) + self.policy.retain_seconds
            pipe.multi()
            if now < until:
                pipe.zadd(keys.RETENTION, {ref: until})
                outcome = "kept"
                return
            self._erase(pipe, case, data, by=BY_RETENTION, reason="", now=now)
            outcome = "erased"

        self.redis.transaction(attempt, case_key)  # retried while the case changes
        return outcome

    def _lapse(self, pipe: Pipeline, case: Case) -> bool:
        """In a transaction: what waited for a Post Office visit that never came, a week
        after the date the citizen was given, fails ("lapsed"), and the case leaves its
        branch's queue and is flagged; the case then settles, and its data goes in time.
        Returns whether anything lapsed."""
        lapsed = [
            name
            for name, d in case.deliveries.items()
            if d.state == DeliveryState.ASSISTED
            or (d.state == DeliveryState.WAITING and name in case.waiting_for("identity"))
        ]
        help_lapsed = case.help_requested and "help" not in case.tasks_done
        if not lapsed and not help_lapsed:
            return False
        for name in lapsed:
            self.store.mark(case.ref, name, DeliveryState.FAILED, LAPSED, pipeline=pipe)
        if help_lapsed:
            pipe.hset(keys.case(case.ref), "help", "lapsed")
            pipe.rpush(keys.history(case.ref), history_entry("", "help", LAPSED))
        if case.branch:
            pipe.zrem(keys.branch_queue(case.branch), case.ref)
        if lapsed:
            self.store.flag(case.ref, FLAG_NOT_AT_COUNTER, pipe)
        return True

    def trim_audits(self, now: float) -> int:
        """Trim every audit stream to the record's window (XTRIM MINID)."""
        oldest = f"{int((now - self.policy.record_seconds) * 1000)}-0"
        streams = [_text(s) for s in self.redis.smembers(keys.AUDIT_STREAMS)]
        streams.append(keys.ERASURES)
        with self.redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xtrim(stream, minid=oldest, approximate=False)
            return sum(int(n) for n in pipe.execute())

    # --- erasure on request ----------------------------------------------------------

    def erase(self, ref: str, by: str, reason: str = "") -> Erasure:
        """Erase case ``ref``'s personal data now (an operator's ``router case erase``,
        or the citizen from the status page). Refused (``NotFinished``) while it still
        has work to do; a case erased before is left as it is."""
        if by not in ERASED_BY:
            raise ValueError(f"unknown eraser {by!r}")
        case_key = keys.case(ref)
        result: Erasure | None = None

        def attempt(pipe: Pipeline) -> None:
            nonlocal result
            raw = pipe.hgetall(case_key)
            data = {_text(k): v for k, v in raw.items()}
            case = parse(ref, raw, self.store.ring)  # UnknownCase if there is none
            if case.erased:
                pipe.multi()
                result = Erasure(ref, case.erased_at, case.erased_by, tuple(told(case)), True)
                return
            if not case.finished:
                raise NotFinished(pending_work(case))
            pipe.multi()
            result = self._erase(pipe, case, data, by=by, reason=reason, now=self.clock())

        self.redis.transaction(attempt, case_key)
        assert result is not None
        return result

    # --- the writes --------------------------------------------------------------------

    def _erase(
        self, pipe: Pipeline, case: Case, data: dict[str, Any], *, by: str, reason: str, now: float
    ) -> Erasure:
        """In a transaction: erase the case's personal data and everything that goes
        with it, keep the record, and look at it again when the record's time is up."""
        ref = case.ref
        at = iso(now)
        personal = [
            name for name in data if name.startswith(keys.ANSWER_PREFIX) or name in PERSONAL_FIELDS
        ]
        if personal:
            pipe.hdel(keys.case(ref), *personal)
        pipe.hset(keys.case(ref), mapping={"erased_at": at, "erased_by": by})
        pipe.rpush(keys.history(ref), history_entry("", "erased", by, at=at))
        dead = [delivery_id(ref, name) for name in case.deliveries]
        if dead:
            pipe.hdel(keys.DEAD_LETTERS, *dead)
        pipe.zrem(keys.FLAGGED, ref)
        pipe.zrem(keys.VERIFYING, ref)
        # The reporter's messages: no more are sent, and the outbox's copies go.
        pipe.zrem(keys.NOTICES, ref)
        pipe.delete(keys.outbox(ref))
        pipe.zrem(keys.OUTBOX_INDEX, ref)
        pipe.zadd(keys.RETENTION, {ref: now + self.policy.record_seconds})
        sent = tuple(told(case))
        entry = {"at": at, "case": ref, "by": by, "told": json.dumps(list(sent))}
        if reason:
            entry["reason"] = reason
        pipe.xadd(keys.ERASURES, entry)  # type: ignore[arg-type]
        return Erasure(ref, at, by, sent)

    def _delete_record(self, pipe: Pipeline, ref: str, data: dict[str, Any]) -> None:
        """In a transaction: the record's time is up (or its case is gone): delete it,
        its history, its audit and the death digests that name it."""
        pipe.delete(keys.case(ref), keys.history(ref), keys.case_audit(ref))
        for key in json.loads(_text(data.get("death_keys", b"[]"))):
            pipe.delete(key)
        pipe.zrem(keys.RETENTION, ref)

    # --- reading -------------------------------------------------------------------------

    def erasures(self, ref: str | None = None) -> list[dict[str, Any]]:
        """The erasures recorded (of one case, with ``ref``), oldest first."""
        found = []
        for entry_id, fields in self.redis.xrange(keys.ERASURES):  # type: ignore[union-attr]
            entry = {_text(k): _text(v) for k, v in fields.items()}  # type: ignore[union-attr]
            if ref is None or entry.get("case") == ref:
                entry["id"] = _text(entry_id)  # type: ignore[arg-type]
                entry["told"] = json.loads(entry.get("told", "[]"))
                found.append(entry)
        return found

    def export(self, ref: str) -> dict[str, Any]:
        """Everything held about case ``ref``, for a subject access request: its answers
        and identity check (opened), what each department was sent and when, its history,
        its counter audit, its erasures, and how long each part is kept."""
        case = self.store.load(ref)  # UnknownCase if there is none
        raw = self.redis.hget(keys.case(ref), "settled_at")
        settled = _text(raw).partition("|")[0] if raw else ""
        shared = [
            {
                "department": name,
                "fields": list(d.fields),
                "at": d.sent_at or d.updated_at,
                "receipt": d.receipt.to_dict() if d.receipt else None,
            }
            for name, d in case.deliveries.items()
            if d.state in TOLD
        ]
        kept: dict[str, str] = {}
        if case.erased:
            kept["personal_data_erased_at"] = case.erased_at
            kept["record_deleted_after"] = iso(epoch(case.erased_at) + self.policy.record_seconds)
        elif settled:
            kept["settled_at"] = settled
            kept["personal_data_erased_after"] = iso(epoch(settled) + self.policy.retain_seconds)
        return {
            "reference": case.display_ref,
            "event_type": case.event_type,
            "channel": case.channel,
            "received_at": case.created_at,
            "submitted_by": case.submitted_by,
            "answers": dict(case.answers),
            "consent": case.consent,
            "identity_check": dict(case.identity),
            "evidence": case.evidence.to_list(),
            "deliveries": {
                name: {
                    "state": d.state.value,
                    "mode": d.mode,
                    "why": d.reason,
                    "fields": list(d.fields),
                    "attempts": d.attempts,
                    "detail": d.detail,
                    "sent_at": d.sent_at,
                    "updated_at": d.updated_at,
                    "receipt": d.receipt.to_dict() if d.receipt else None,
                }
                for name, d in case.deliveries.items()
            },
            "not_told": {d.department: d.reason for d in case.plan.decisions if not d.told},
            "shared": shared,
            "counter_tasks_done": case.tasks_done,
            "history": [asdict(entry) for entry in self.store.history(ref)],
            "audit": self._case_audit(ref),
            "erasures": self.erasures(ref),
            "retention": kept,
            "exported_at": iso(self.clock()),
        }

    def _case_audit(self, ref: str) -> list[dict[str, str]]:
        """The counter's audit of one case (router.assisted.audit), oldest first."""
        raw: list[tuple[bytes, dict[bytes, bytes]]] = self.redis.xrange(  # type: ignore[assignment]
            keys.case_audit(ref)
        )
        return [
            {"id": _text(entry_id), **{_text(k): _text(v) for k, v in fields.items()}}
            for entry_id, fields in raw
        ]

    def index(self, refs: Iterable[str]) -> int:
        """List cases the purge does not know yet (made before it existed): due now."""
        now = self.clock()
        with self.redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.zadd(keys.RETENTION, {ref: now}, nx=True)
            return sum(int(n) for n in pipe.execute())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
