"""Cases and their deliveries, stored in Redis.

One hash per case holds the answers, the routing plan and each delivery's state
(fields ``d:<department>:<attribute>``), so reading a whole case is one command and
moving a delivery on is one pipelined write. A list beside it keeps the timestamped
history. Personal data lives only here (and with the departments it is sent to), and
only sealed (router.sealing): each answer in its own field ``a:<name>``, bound to its
case and field, opened only when it is read.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from router import keys, reference, sealing
from router.adapters.contract import Notification, Receipt
from router.exceptions import UnknownCase, UnknownDelivery
from router.i18n import N_
from router.routing import Decision, RoutingPlan
from router.trust import Evidence, Missing


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    ASSISTED = "assisted"
    COMPLETED_AT_COUNTER = "completed_at_counter"
    # Waiting for evidence its department declared it needs (the detail says which:
    # "identity", "registration" or both); released once when the evidence arrives.
    WAITING = "waiting"
    # Held back because a death was reported for the person the case is about; a
    # person decides what happens to it (router.people).
    HELD = "held"


FINAL_STATES = frozenset(
    {DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.COMPLETED_AT_COUNTER}
)
# States a worker may still move on; "assisted" waits for a counter and "waiting" for
# evidence, not a worker.
PENDING_STATES = frozenset({DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.RETRYING})

COUNTER_VALIDITY = timedelta(days=28)
# The purge (router.retention) first looks at a case this long after it is made (most
# are settled by then), and again this often while it still has work to do: a case's
# personal data is kept between the retention window and this much longer.
RETENTION_LOOK_SECONDS = 3600

# Stores a new case in one round trip and one durable write (a script is atomic, and
# with appendfsync always Redis syncs its effects before it answers).
# KEYS: the case hash; the submission key's claim if ARGV[2] is not empty; then the key
# of each command to run, in order; last, the key ring (router.sealing).
# ARGV: the reference; the claim's time to live in seconds, or ""; the commands as one
# JSON array, each [name, arguments after its key...], every argument a string (one
# argument, not ~90: redis-py packs each argument in Python, ~10% of a submission), or
# for a binary argument (a sealed answer) the number of the ARGV that holds it; the id
# of the data key the answers were sealed under, or "".
# Returns {3} if that key is not the ring's current one (nothing written: a stale or
# lost key would leave answers nobody can open), {0} if the case key exists (a
# reference collision: nothing written), {1, ref} if another submission holds the
# claim (nothing written), else {2, replies...}: every
# command's reply in order (a nil reply is false, so it keeps its place).
CREATE_SCRIPT = """
if ARGV[4] ~= '' and redis.call('HGET', KEYS[#KEYS], 'current') ~= ARGV[4] then
  return {3}
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0}
end
local first = 2
if ARGV[2] ~= '' then
  local held = redis.call('GET', KEYS[2])
  if held and held ~= ARGV[1] then
    return {1, held}
  end
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
  first = 3
end
local commands = cjson.decode(ARGV[3])
local replies = {2}
for i, command in ipairs(commands) do
  for j = 2, #command do
    if type(command[j]) == 'number' then command[j] = ARGV[command[j]] end
  end
  replies[i + 1] = redis.call(command[1], KEYS[first + i - 1], unpack(command, 2))
end
return replies
"""
_COLLISION, _HELD, _COMMITTED, _STALE_KEY = 0, 1, 2, 3
# HSET of the case hash, RPUSH of its history and ZADD to the purge's list, before
# ``also``'s.
_CASE_WRITES = 3
_FIRST_BINARY = 5  # the ARGV of the first binary argument (after ref, ttl, commands, key)


def answer_context(ref: str, name: str) -> str:
    """What a sealed answer is bound to: its case and field."""
    return f"case:{ref}/{keys.answer_field(name)}"


def field_context(ref: str, name: str) -> str:
    """What another sealed field of a case (its identity check) is bound to."""
    return f"case:{ref}/{name}"


class Answers(Mapping[str, Any]):
    """A case's answers as stored: each sealed on its own and opened only when it is read,
    so a worker opens only the fields its department declared, at the moment of sending,
    and a view of states and times opens none. Reading one needs the master key."""

    def __init__(self, ref: str, stored: Mapping[str, bytes], ring: sealing.KeyRing | None) -> None:
        self._ref = ref
        self._stored = dict(stored)
        self._ring = ring
        self._opened: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name in self._opened:
            return self._opened[name]
        raw = self._stored[name]
        if sealing.is_sealed(raw):
            if self._ring is None:
                raise sealing.KeyProblem("this store opens no sealed answers")
            raw = self._ring.open(raw, answer_context(self._ref, name))
        value = json.loads(raw)
        self._opened[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored)

    def __len__(self) -> int:
        return len(self._stored)

    def __contains__(self, name: object) -> bool:
        return name in self._stored

    def __repr__(self) -> str:
        return f"Answers({sorted(self._stored)})"  # names only, never a value


class SealedRecord(Mapping[str, str]):
    """A small JSON record sealed as one field (the counter's identity check), opened on
    first read."""

    def __init__(self, stored: bytes | None, context: str, ring: sealing.KeyRing | None) -> None:
        self._stored = stored
        self._context = context
        self._ring = ring
        self._opened: dict[str, str] | None = None

    def _record(self) -> dict[str, str]:
        if self._opened is None:
            raw = self._stored
            if raw is None:
                self._opened = {}
            else:
                if sealing.is_sealed(raw):
                    if self._ring is None:
                        raise sealing.KeyProblem("this store opens no sealed fields")
                    raw = self._ring.open(raw, self._context)
                self._opened = json.loads(raw)
        return self._opened

    def __getitem__(self, name: str) -> str:
        return self._record()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._record())

    def __len__(self) -> int:
        return len(self._record())

    def __bool__(self) -> bool:
        return self._stored is not None

    def __repr__(self) -> str:
        return "SealedRecord(...)"


# Why a case is flagged for a caseworker. The case keeps the English words (message ids);
# the caseworkers' pages give them in the page's language (channels.presenters.flag_reason).
FLAG_HELP = N_("the citizen asked for help")
FLAG_NO_BRANCH = N_("no Post Office branch found for its postcode")
FLAG_NOT_TOLD = N_("a department could not be told online")
FLAG_DEATH_REPORTED = N_("a death was reported for the person it is about")
FLAG_NOT_AT_COUNTER = N_("not completed at a Post Office in time")
FLAG_REFUSED_BY_REGISTER = N_("the register did not confirm the registration (%(field)s)")
FLAG_DEPARTMENT_REMOVED = N_(
    "%(department)s: its department was removed; replay it once the department is back"
)
FLAG_REASONS = (FLAG_HELP, FLAG_NO_BRANCH, FLAG_NOT_TOLD, FLAG_DEATH_REPORTED, FLAG_NOT_AT_COUNTER)


@dataclass(frozen=True)
class Stored:
    """What CaseStore.create did. ``created`` is False when the submission key was seen
    before: ``ref`` is then the first case's and ``secret`` is empty (only the first
    answer may reveal it). ``replies``: the reply to each command ``also`` added, in
    order, as a pipeline would give them (empty unless created)."""

    ref: str
    secret: str
    created: bool
    replies: list[Any] = field(default_factory=list)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def history_entry(department: str, state: str, detail: str = "", at: str | None = None) -> str:
    """One entry of a case's history as it is stored: JSON, without an empty detail.

    ``department`` is "" for what happened to the case as a whole ("received", a new
    "branch"). The only builder of entries: the Lua scripts are handed its output.
    """
    entry = {"at": at or now_iso(), "department": department, "state": str(state)}
    if detail:
        entry["detail"] = detail
    return json.dumps(entry, **_TIGHT)


def delivery_id(ref: str, department: str) -> str:
    """The idempotency key of one delivery: ``<case>-<department>``."""
    return f"{ref}-{department}"


def split_delivery_id(value: str) -> tuple[str, str]:
    ref, sep, department = value.partition("-")
    if not sep or reference.normalise(ref) != ref or not department:
        raise UnknownDelivery()
    return ref, department


@dataclass
class Delivery:
    department: str
    state: DeliveryState
    mode: str
    reason: str
    fields: tuple[str, ...]
    tasks: tuple[str, ...]
    attempts: int = 0
    detail: str = ""
    receipt: Receipt | None = None
    updated_at: str = ""
    sent_at: str = ""
    retries: int = 0  # retries scheduled since it was (re)queued; replay starts afresh


@dataclass(frozen=True)
class Marked:
    """One delivery for CaseStore.mark_many: its case, and what its mark writes."""

    ref: str
    detail: str = ""
    receipt: Receipt | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class HistoryEntry:
    at: str
    department: str
    state: str
    detail: str = ""


@dataclass
class Case:
    ref: str
    event_type: str
    answers: Mapping[str, Any]
    consent: list[str]
    plan: RoutingPlan
    channel: str
    created_at: str
    # The status page's secret, hashed (router.reference); empty in the lean case a
    # department's drain loads (CaseStore.load_for_delivery), which does not read it.
    secret_hash: str = ""
    flagged: str = ""
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    # The assisted channel (router.assisted.desk): the Post Office branch the case waits at,
    # whether the citizen asked for help, tasks done at a counter, the identity check.
    branch: str = ""
    help_requested: bool = False
    tasks_done: dict[str, dict[str, str]] = field(default_factory=dict)
    identity: Mapping[str, str] = field(default_factory=dict)
    submitted_by: str = ""
    # The retry policy its deliveries follow, "max,base,cap" (set by the submitter).
    retry: str = ""
    # How we know who reported it, and that the event happened (router.trust).
    evidence: Evidence = field(default_factory=Evidence)
    # The reporter's relation to the person the event is about ("self", "parent",
    # "spouse_or_partner"...): the catalogue's Reporter, from the answers.
    reporter: str = ""
    # The registration is being checked with the register (it could not answer at first).
    verifying: bool = False
    # A death reported already: the first report's reference (for caseworkers only; a
    # channel says only that it was reported already). Its plan tells nobody.
    joined: str = ""
    # When its personal data was erased (router.retention), and by what: "retention",
    # "request" (an operator, for the citizen) or "citizen" (from the status page).
    erased_at: str = ""
    erased_by: str = ""
    # The language the report was made in ("en" or "cy"): what the reporter is sent is
    # written in it (router.delivery.notices), and what each message sent was (JSON).
    lang: str = "en"
    notices: str = ""
    # What caseworkers did (router.assisted.backoffice): the fixed messages they sent the
    # citizen, in order, and their notes, sealed (opened with CaseStore.open_field).
    casework_messages: list[str] = field(default_factory=list)
    casework_notes: bytes | None = None

    @property
    def display_ref(self) -> str:
        return reference.display(self.ref)

    @property
    def counter_tasks(self) -> list[str]:
        """Tasks still to be done at a counter, in the order they are asked for. A
        delivery waiting for the reporter's identity adds an identity check: a check at
        a counter gives medium confidence (P2), enough for any department."""
        waiting: list[str] = []
        for d in self.deliveries.values():
            if d.state == DeliveryState.ASSISTED:
                waiting += [t for t in d.tasks if t not in waiting and t not in self.tasks_done]
        if (
            self.waiting_for("identity")
            and "identity_check" not in waiting
            and "identity_check" not in self.tasks_done
        ):
            waiting.append("identity_check")
        return waiting

    def waiting_for(self, missing: Missing) -> list[str]:
        """The departments whose deliveries wait for ``missing`` evidence."""
        return [
            name
            for name, d in self.deliveries.items()
            if d.state == DeliveryState.WAITING
            and missing in self.plan.decision(name).missing(self.evidence)
        ]

    @property
    def at_counter(self) -> bool:
        """Whether the case waits for a counter: tasks to do, or help asked for and not given."""
        assisted = any(d.state == DeliveryState.ASSISTED for d in self.deliveries.values())
        return (
            assisted
            or bool(self.waiting_for("identity"))
            or (self.help_requested and "help" not in self.tasks_done)
        )

    @property
    def counter_valid_until(self) -> date:
        """A reference can be used at a counter for 28 days, as Tell Us Once's can."""
        return (datetime.fromisoformat(self.created_at) + COUNTER_VALIDITY).date()

    def delivery_id(self, department: str) -> str:
        return delivery_id(self.ref, department)

    @property
    def finished(self) -> bool:
        """True when nothing is left to do for anyone: every delivery final, nothing
        waiting for a counter, no registration being checked. Only a finished case's
        personal data may be erased (router.retention)."""
        return (
            all(d.state in FINAL_STATES for d in self.deliveries.values())
            and not self.at_counter
            and not self.verifying
        )

    @property
    def erased(self) -> bool:
        return bool(self.erased_at)

    @property
    def settled(self) -> bool:
        """True when no delivery is waiting on a worker."""
        return all(d.state not in PENDING_STATES for d in self.deliveries.values())


class CaseStore:
    """Cases in Redis. Every method takes plain values and returns plain values."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.ring = sealing.ring_for(redis)
        self._create = redis.register_script(CREATE_SCRIPT)
        self._load_for_delivery = redis.register_script(LOAD_FOR_DELIVERY_SCRIPT)
        self._mark_many = redis.register_script(MARK_MANY_SCRIPT)

    def seal(self, ref: str, name: str, plain: str) -> bytes:
        """A field of case ``ref`` other than an answer (the identity check), sealed."""
        return self.ring.seal(plain.encode(), field_context(ref, name))

    def open_field(self, ref: str, name: str, sealed: bytes) -> str:
        """A field ``seal`` sealed, opened."""
        return self.ring.open(sealed, field_context(ref, name)).decode()

    def _sealed_answers(self, ref: str, answers: Mapping[str, Any]) -> tuple[dict[str, bytes], str]:
        """Each answer sealed, and the id of the data key they were sealed under."""
        if not answers:
            return {}, ""
        kid = self.ring.current()
        try:
            return self._sealed_under(kid, ref, answers), kid
        except sealing.UnknownKey:
            # The key this thread read as current left Redis before it was loaded (the
            # ring flushed; retired by another process after a rotation): as for a
            # stale key, ask the ring again.
            self.ring.refresh()
            kid = self.ring.current()
            return self._sealed_under(kid, ref, answers), kid

    def _sealed_under(self, kid: str, ref: str, answers: Mapping[str, Any]) -> dict[str, bytes]:
        return {
            keys.answer_field(name): self.ring.seal(
                json.dumps(value, **_TIGHT).encode(), answer_context(ref, name), kid
            )
            for name, value in answers.items()
        }

    # --- writing ------------------------------------------------------------------

    def create(
        self,
        event_type: str,
        answers: Mapping[str, Any],
        consent: Iterable[str],
        routing: RoutingPlan,
        channel: str,
        also: Callable[[Pipeline, str], None] | None = None,
        submission_key: str | None = None,
        secret: str | None = None,
        extra: Mapping[str, str] | None = None,
        evidence: Evidence | None = None,
        waiting: Mapping[str, str] | None = None,
    ) -> Stored:
        """Store a new case in one atomic, durable write (CREATE_SCRIPT).

        ``also(pipeline, ref)`` adds writes to that same write (the fan-out's pending
        deliveries), so a case is never stored without them nor they without it. The
        pipeline only collects commands, each naming one key first (HSET, ZADD, SET,
        XADD...); ``also`` is called again if the reference drawn is taken. With
        ``submission_key``, a second submission with the same key gets the first one's
        reference back. ``secret``: the status secret, when the channel drew it first.
        """
        secret = secret or reference.new_secret()
        created_at = now_iso()
        mapping: dict[Any, Any] = {
            "event_type": event_type,
            "consent": json.dumps(sorted(consent), **_TIGHT),
            "plan": json.dumps([_compact(d.to_dict()) for d in routing.decisions], **_TIGHT),
            "channel": channel,
            "created_at": created_at,
            "secret_hash": reference.hash_secret(secret),
            **(extra or {}),
        }
        if evidence is not None and evidence.proofs:
            mapping["evidence"] = json.dumps(evidence.to_list(), **_TIGHT)
        waiting = waiting or {}
        history = [history_entry("", "received", channel, at=created_at)]
        for d in routing.deliveries:
            state = DeliveryState.ASSISTED if d.mode == "assisted" else DeliveryState.QUEUED
            detail = ""
            if state == DeliveryState.QUEUED and d.department in waiting:
                state, detail = DeliveryState.WAITING, waiting[d.department]
                mapping[keys.delivery_field(d.department, "detail")] = detail
            # Attempts (0) and updated_at (the case's creation) are implied until the
            # delivery first moves: every hash field costs ~60 bytes of Redis memory.
            mapping[keys.delivery_field(d.department, "state")] = state
            # The reason is in the plan; repeating it here cost ~60 bytes a delivery.
            history.append(history_entry(d.department, state, detail, at=created_at))
        claim = keys.submission(submission_key) if submission_key else None
        claimed = False  # whether we took the claim through _claim (the slow path)
        ref, case_key, writes, kid = self._writes(mapping, answers, history, also)
        while True:
            try:
                outcome, replies = self._run_create(case_key, ref, claim, writes, kid)
            except Exception:
                with contextlib.suppress(RedisError):
                    self.redis.delete(case_key, *([claim] if claim else []))
                raise
            if outcome in (_COLLISION, _STALE_KEY):
                # The rare collision: draw another reference (or the data key changed:
                # seal again under the current one). A claim we took names the
                # reference we lost: free it, to claim afresh.
                if claimed and claim is not None:
                    self.redis.delete(claim)
                    claimed = False
                if outcome == _STALE_KEY:
                    self.ring.refresh()
                ref, case_key, writes, kid = self._writes(mapping, answers, history, also)
                continue
            if outcome == _HELD and claim is not None:
                # Another submission holds the key. The script stores a claim with its
                # case, so that case is normally there already; _claim waits for one
                # that is not yet (or takes the key for this reference if it was freed).
                first = self._claim(claim, ref)
                if first is not None:
                    return Stored(first, "", False)
                claimed = True
                continue  # the same reference and writes: the claim now names them
            return Stored(ref, secret, True, replies[_CASE_WRITES:])

    def _writes(
        self,
        mapping: dict[Any, Any],
        answers: Mapping[str, Any],
        history: list[str],
        also: Callable[[Pipeline, str], None] | None,
    ) -> tuple[str, str, list[Any], str]:
        """Draw a reference; return it, its case key, the commands that store it (the
        case's own _CASE_WRITES, then those ``also`` adds) and the id of the data key
        its answers were sealed under, for the reference drawn (each is bound to its
        case)."""
        ref = reference.new_reference()
        case_key = keys.case(ref)
        # Pipelines that only collect commands; never executed.
        case = self.redis.pipeline(transaction=False)
        sealed, kid = self._sealed_answers(ref, answers)
        stored: dict[Any, Any] = {"ref": ref, **mapping, **sealed}
        case.hset(case_key, mapping=stored)
        case.rpush(keys.history(ref), *history)
        case.zadd(keys.RETENTION, {ref: time.time() + RETENTION_LOOK_SECONDS})
        more = self.redis.pipeline(transaction=False)
        if also is not None:
            also(more, ref)
        return ref, case_key, case.command_stack + more.command_stack, kid

    def _run_create(
        self, case_key: str, ref: str, claim: str | None, commands: list[Any], kid: str
    ) -> tuple[int, list[Any]]:
        """Run CREATE_SCRIPT: one round trip, one durable write. Returns the outcome
        and, once committed, each command's reply as a pipeline would give it."""
        script_keys = [case_key, *([claim] if claim else [])]
        listed = []
        binary: list[bytes] = []
        for command, _options in commands:
            name, key, *rest = command
            script_keys.append(key)
            listed.append([name, *(_argument(value, binary) for value in rest)])
        commands_json = json.dumps(listed, **_TIGHT)
        raw = self._create(
            keys=[*script_keys, keys.KEY_RING],
            args=[ref, keys.SUBMISSION_SECONDS if claim else "", commands_json, kid, *binary],
        )
        outcome = int(raw[0])
        if outcome != _COMMITTED:
            return outcome, []
        callbacks = self.redis.response_callbacks
        replies: list[Any] = []
        for (command, options), reply in zip(commands, raw[1:], strict=True):
            callback = callbacks.get(command[0])
            replies.append(callback(reply, **options) if callback else reply)
        return outcome, replies

    def remember_digest(self, submission_key: str, digest: str) -> bool:
        """Remember ``digest`` (of what is being submitted) with ``submission_key``, as
        long as its claim; False if the key was used with a different digest before."""
        key = keys.submission_digest(submission_key)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(key, digest, nx=True, ex=keys.SUBMISSION_SECONDS)
        pipe.get(key)
        held = pipe.execute()[1]
        return _text(held) == digest if held is not None else True

    def _claim(self, claim: str, ref: str, wait_seconds: float = 5.0) -> str | None:
        """Claim a submission key for ``ref``; if another submission holds it, return
        that one's reference once its case is stored (a concurrent twin may still be
        writing it). A twin that failed frees the key, and we claim it after all."""
        deadline = time.monotonic() + wait_seconds
        while True:
            if self.redis.set(claim, ref, nx=True, ex=keys.SUBMISSION_SECONDS):
                return None
            held = self.redis.get(claim)
            if held is not None:
                first = held.decode() if isinstance(held, bytes) else str(held)
                if self.exists(first) or time.monotonic() > deadline:
                    return first
            time.sleep(0.01)

    def mark(
        self,
        ref: str,
        department: str,
        state: DeliveryState,
        detail: str = "",
        *,
        receipt: Receipt | None = None,
        count_attempt: bool = False,
        sent: bool = False,
        pipeline: Pipeline | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Move one delivery to ``state`` and record it in the history; ``extra`` sets
        more of the delivery's attributes (``{"attempts": 2}``) in the same write.
        The delivery's place in the pending and sending sets is the fan-out's business
        (router.delivery.fanout), not this method's."""
        at = now_iso()
        mapping: dict[Any, Any] = {
            keys.delivery_field(department, "state"): str(state),
            keys.delivery_field(department, "updated_at"): at,
            keys.delivery_field(department, "detail"): detail,
        }
        if receipt is not None:
            mapping[keys.delivery_field(department, "receipt")] = json.dumps(receipt.to_dict())
        if sent:
            mapping[keys.delivery_field(department, "sent_at")] = at
        for attribute, value in (extra or {}).items():
            mapping[keys.delivery_field(department, attribute)] = value
        pipe = pipeline if pipeline is not None else self.redis.pipeline(transaction=True)
        case_key = keys.case(ref)
        pipe.hset(case_key, mapping=mapping)
        if count_attempt:
            pipe.hincrby(case_key, keys.delivery_field(department, "attempts"), 1)
        pipe.rpush(keys.history(ref), history_entry(department, state, detail, at=at))
        if state in FINAL_STATES:
            # Its reporter may be due a message now (router.delivery.notices): XX, so
            # only a case listed for notices is touched.
            pipe.zadd(keys.NOTICES, {ref: time.time()}, xx=True)
        if pipeline is None:
            pipe.execute()

    def mark_many(
        self,
        department: str,
        state: DeliveryState,
        deliveries: Sequence[Marked],
        *,
        sent: bool = False,
        pipeline: Pipeline | None = None,
    ) -> None:
        """``mark`` for several of ``department``'s deliveries at once, each with its
        own detail, receipt and ``extra`` (the same attributes for each), in one script
        call (MARK_MANY_SCRIPT): the same writes as a ``mark`` of each, in one round trip
        or inside the caller's transaction."""
        if not deliveries:
            return
        at = now_iso()
        attributes = ["state", "updated_at", "detail"]
        if deliveries[0].receipt is not None:
            attributes.append("receipt")
        if sent:
            attributes.append("sent_at")
        extras = list(deliveries[0].extra)
        attributes += extras
        names = [keys.delivery_field(department, a) for a in attributes]
        case_keys: list[str] = [keys.NOTICES]
        values: list[Any] = []
        for marked in deliveries:
            if (marked.receipt is None) != (deliveries[0].receipt is None) or list(
                marked.extra
            ) != extras:
                raise ValueError("mark_many: every delivery writes the same attributes")
            case_keys += (keys.case(marked.ref), keys.history(marked.ref))
            values += (str(state), at, marked.detail)
            if marked.receipt is not None:
                values.append(json.dumps(marked.receipt.to_dict()))
            if sent:
                values.append(at)
            values += marked.extra.values()
            values += (history_entry(department, state, marked.detail, at=at), marked.ref)
        final = "1" if state in FINAL_STATES else "0"
        self._mark_many(
            keys=case_keys,
            args=[final, time.time(), len(names), *names, *values],
            client=pipeline,
        )

    def flag(self, ref: str, reason: str, pipeline: Pipeline | None = None) -> None:
        """Flag a case for assisted follow-up by a person."""
        pipe = pipeline if pipeline is not None else self.redis.pipeline(transaction=True)
        pipe.hset(keys.case(ref), "flagged", reason)
        pipe.zadd(keys.FLAGGED, {ref: datetime.now(UTC).timestamp()})
        if pipeline is None:
            pipe.execute()

    def unflag(self, ref: str, pipeline: Pipeline | None = None) -> None:
        pipe = pipeline if pipeline is not None else self.redis.pipeline(transaction=True)
        pipe.hdel(keys.case(ref), "flagged")
        pipe.zrem(keys.FLAGGED, ref)
        if pipeline is None:
            pipe.execute()

    def dead_letter(self, ref: str, department: str, reason: str, pipeline: Pipeline) -> None:
        entry = {"case": ref, "department": department, "reason": reason, "at": now_iso()}
        pipeline.hset(keys.DEAD_LETTERS, delivery_id(ref, department), json.dumps(entry))

    # --- reading ------------------------------------------------------------------

    def exists(self, ref: str) -> bool:
        return bool(self.redis.hexists(keys.case(ref), "event_type"))

    def load(self, ref: str) -> Case:
        return self.parse(ref, self.redis.hgetall(keys.case(ref)))

    def parse(self, ref: str, raw: Mapping[Any, Any]) -> Case:
        """A case from its stored hash (HGETALL's answer); its answers open when read."""
        return parse(ref, raw, self.ring)

    def load_many(self, refs: Iterable[str]) -> list[Case | None]:
        """Several cases in one round trip; None for a reference with no case."""
        refs = list(refs)
        with self.redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.hgetall(keys.case(ref))
            raws = pipe.execute()
        cases: list[Case | None] = []
        for ref, raw in zip(refs, raws, strict=True):
            try:
                cases.append(self.parse(ref, raw))
            except UnknownCase:
                cases.append(None)
        return cases

    def load_for_delivery(self, refs: Iterable[str], department: str) -> list[Case | None]:
        """Several cases in one round trip (LOAD_FOR_DELIVERY_SCRIPT), each as
        ``department``'s drain needs it (lean_case); None for a reference with no case."""
        refs = list(refs)
        if not refs:
            return []
        names = [*FOR_DELIVERY, *(keys.delivery_field(department, a) for a in DELIVERY_ATTRIBUTES)]
        replies = self._load_for_delivery(
            keys=[keys.case(ref) for ref in refs],
            args=[department, keys.ANSWER_PREFIX, *names],
        )
        cases: list[Case | None] = []
        for n, ref in enumerate(refs):
            values, fields, answers = replies[3 * n : 3 * n + 3]
            data = {name: _text(v) for name, v in zip(names, values, strict=True) if v is not None}
            stored = {
                _text(name): v if isinstance(v, bytes) else v.encode()
                for name, v in zip(fields, answers, strict=False)
                if v is not None
            }
            try:
                cases.append(lean_case(ref, data, stored, department, self.ring))
            except UnknownCase:
                cases.append(None)
        return cases

    def history(self, ref: str) -> list[HistoryEntry]:
        return [
            HistoryEntry(**json.loads(item)) for item in self.redis.lrange(keys.history(ref), 0, -1)
        ]

    def notification(self, case: Case, department: str, attempt: int = 1) -> Notification:
        """What ``department`` is sent: the planned fields, nothing more."""
        delivery = case.deliveries[department]
        return Notification(
            delivery_id=case.delivery_id(department),
            case_ref=case.ref,
            department=department,
            event_type=case.event_type,
            fields={f: case.answers[f] for f in delivery.fields if f in case.answers},
            submitted_at=case.created_at,
            attempt=attempt,
        )

    def dead_letters(self) -> dict[str, dict[str, str]]:
        raw = self.redis.hgetall(keys.DEAD_LETTERS)
        return {_text(k): json.loads(v) for k, v in sorted(raw.items())}

    def flagged(self) -> list[str]:
        return [_text(r) for r in self.redis.zrange(keys.FLAGGED, 0, -1)]  # type: ignore[arg-type]


def parse(ref: str, raw: Mapping[Any, Any], ring: sealing.KeyRing | None = None) -> Case:
    """A case from its stored hash (HGETALL's answer). Nothing sealed is opened here:
    its answers (and identity check) open when read, with ``ring``."""
    data: dict[str, str] = {}
    stored: dict[str, bytes] = {}
    identity: bytes | None = None
    notes: bytes | None = None
    for k, v in raw.items():
        name = _text(k)
        if name.startswith(keys.ANSWER_PREFIX):
            stored[name[len(keys.ANSWER_PREFIX) :]] = v if isinstance(v, bytes) else v.encode()
        elif name == "identity":
            identity = v if isinstance(v, bytes) else v.encode()
        elif name == "casework_notes":
            notes = v if isinstance(v, bytes) else v.encode()
        else:
            data[name] = _text(v)
    if "event_type" not in data:
        raise UnknownCase()
    if "answers" in data:  # stored before answers were sealed: one plain JSON field
        stored = {
            name: json.dumps(value).encode() for name, value in json.loads(data["answers"]).items()
        }
    decisions = tuple(Decision.from_dict(d) for d in json.loads(data["plan"]))
    case = Case(
        ref=ref,
        event_type=data["event_type"],
        answers=Answers(ref, stored, ring),
        consent=json.loads(data["consent"]),
        plan=RoutingPlan(data["event_type"], decisions),
        channel=data["channel"],
        created_at=data["created_at"],
        secret_hash=data["secret_hash"],
        flagged=data.get("flagged", ""),
        branch=data.get("branch", ""),
        help_requested=data.get("help") == "yes",
        tasks_done=json.loads(data.get("counter_tasks", "{}")),
        identity=SealedRecord(identity, field_context(ref, "identity"), ring),
        submitted_by=data.get("submitted_by", ""),
        retry=data.get("retry", ""),
        evidence=Evidence.from_list(json.loads(data.get("evidence", "[]"))),
        reporter=data.get("reporter", ""),
        verifying=data.get("verifying") == "yes",
        joined=data.get("joined", ""),
        erased_at=data.get("erased_at", ""),
        erased_by=data.get("erased_by", ""),
        lang=data.get("lang", "en"),
        notices=data.get("notices", ""),
        casework_messages=json.loads(data.get("casework_messages", "[]")),
        casework_notes=notes,
    )
    for d in case.plan.deliveries:
        case.deliveries[d.department] = _delivery(d, data, case.created_at)
    return case


def _delivery(d: Decision, data: Mapping[str, str], created_at: str) -> Delivery:
    """Delivery ``d`` of a case, from its decoded hash ``data``."""
    receipt = data.get(keys.delivery_field(d.department, "receipt"))
    return Delivery(
        department=d.department,
        state=DeliveryState(data[keys.delivery_field(d.department, "state")]),
        mode=d.mode,
        reason=d.reason,
        fields=d.fields,
        tasks=d.tasks,
        attempts=int(data.get(keys.delivery_field(d.department, "attempts"), 0)),
        detail=data.get(keys.delivery_field(d.department, "detail"), ""),
        receipt=Receipt.from_dict(json.loads(receipt)) if receipt else None,
        updated_at=data.get(keys.delivery_field(d.department, "updated_at"), created_at),
        sent_at=data.get(keys.delivery_field(d.department, "sent_at"), ""),
        retries=int(data.get(keys.delivery_field(d.department, "retries"), 0)),
    )


# What a department's drain reads of a case besides its answers: these fields, and
# its own delivery's (DELIVERY_ATTRIBUTES). "answers" is a case stored before answers
# were sealed (one plain JSON field).
FOR_DELIVERY = ("event_type", "plan", "created_at", "channel", "retry", "lang", "answers")
DELIVERY_ATTRIBUTES = ("state", "attempts", "detail", "receipt", "updated_at", "sent_at", "retries")

# KEYS: the case hashes. ARGV: the department, the answers' field prefix, then the
# fields of FOR_DELIVERY and the department's own (d:<department>:<attribute>).
# For each case, three replies: those fields' values, the answer fields its plan sends
# the department, and their stored (sealed) values: one round trip for a batch, and
# nothing of a case the department is not sent.
LOAD_FOR_DELIVERY_SCRIPT = """
local department, prefix = ARGV[1], ARGV[2]
local names = {}
for i = 3, #ARGV do names[#names + 1] = ARGV[i] end
local out = {}
for _, key in ipairs(KEYS) do
  local values = redis.call('HMGET', key, unpack(names))
  local fields, answers = {}, {}
  if values[2] then
    for _, decision in ipairs(cjson.decode(values[2])) do
      if decision['department'] == department and type(decision['fields']) == 'table' then
        for _, name in ipairs(decision['fields']) do fields[#fields + 1] = name end
      end
    end
  end
  if #fields > 0 then
    local stored = {}
    for _, name in ipairs(fields) do stored[#stored + 1] = prefix .. name end
    answers = redis.call('HMGET', key, unpack(stored))
  end
  out[#out + 1] = values
  out[#out + 1] = fields
  out[#out + 1] = answers
end
return out
"""


# KEYS: the reporters' message schedule (notices:due), then each delivery's case hash
# and history list. ARGV: "1" if the state is final (its reporter may be due a message:
# ZADD XX to the schedule) else "0", the schedule's score, the number of fields each
# delivery writes, their names (the same for every delivery), then for each delivery its
# values, its history entry and its reference. CaseStore.mark for a batch of one
# department's deliveries: one command for redis-py to pack instead of two to four
# each, which cost a drain about a tenth of its CPU.
MARK_MANY_SCRIPT = """
local final, score, count = ARGV[1] == '1', ARGV[2], tonumber(ARGV[3])
local mapping = {}
for i = 1, count do mapping[2 * i - 1] = ARGV[3 + i] end
local at = 3 + count
for k = 2, #KEYS, 2 do
  for i = 1, count do mapping[2 * i] = ARGV[at + i] end
  redis.call('HSET', KEYS[k], unpack(mapping))
  redis.call('RPUSH', KEYS[k + 1], ARGV[at + count + 1])
  if final then redis.call('ZADD', KEYS[1], 'XX', score, ARGV[at + count + 2]) end
  at = at + count + 2
end
return #KEYS / 2
"""


def lean_case(
    ref: str,
    data: Mapping[str, str],
    stored: Mapping[str, bytes],
    department: str,
    ring: sealing.KeyRing | None = None,
) -> Case:
    """The part of a case one department's drain needs (router.delivery.batch): its
    event, when it was made, its retry policy, ``department``'s delivery alone (its
    plan holds that decision only) and that delivery's answers, sealed, opened only
    when read. ``data``: the case's FOR_DELIVERY fields and the department's own,
    decoded; ``stored``: its answers as stored. Evidence, the counter's state,
    casework and the other deliveries are left out: a drain under a backlog spent a
    quarter of its time loading and parsing whole cases. Nothing in a delivery's path
    reads them; anything else loads the whole case."""
    if "event_type" not in data:
        raise UnknownCase()
    if "answers" in data:  # stored before answers were sealed: one plain JSON field
        stored = {
            name: json.dumps(value).encode() for name, value in json.loads(data["answers"]).items()
        }
    decisions = tuple(
        Decision.from_dict(d) for d in json.loads(data["plan"]) if d["department"] == department
    )
    case = Case(
        ref=ref,
        event_type=data["event_type"],
        answers=Answers(ref, stored, ring),
        consent=[],
        plan=RoutingPlan(data["event_type"], decisions),
        channel=data.get("channel", ""),
        created_at=data["created_at"],
        retry=data.get("retry", ""),
        lang=data.get("lang", "en"),
    )
    for d in case.plan.deliveries:
        case.deliveries[d.department] = _delivery(d, data, case.created_at)
    return case


# Stored JSON without the spaces json.dumps puts after separators.
_TIGHT: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}


def _compact(decision: dict[str, Any]) -> dict[str, Any]:
    """A plan decision without its empty lists (Decision.from_dict defaults them)."""
    return {k: v for k, v in decision.items() if v not in ((), []) and (k, v) != ("need", "P0")}


def _argument(value: object, binary: list[bytes]) -> str | int:
    """A command argument as the text redis-py would send (its Encoder's rules); bytes
    go to ``binary`` (the script's ARGV from _FIRST_BINARY on) and are named by number."""
    if isinstance(value, bytes):
        binary.append(value)
        return _FIRST_BINARY + len(binary) - 1
    if isinstance(value, str):
        return str(value)  # a StrEnum's value, not its name
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    raise TypeError(f"CaseStore.create cannot send a {type(value).__name__} argument")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
