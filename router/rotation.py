"""Rotating the data key (issue 14): ``router keys rotate``.

A rotation adds a data key and makes it current (router.sealing), waits a little longer
than ``sealing.FOLLOW_SECONDS`` so that every process seals under it, then sweeps every
sealed value in Redis and seals again, under the new key, each one sealed under any
other:

* each case hash's sealed fields: its answers (``a:<name>``) and its identity check,
  each bound to ``case:<ref>/<field>`` (``cases.answer_context`` is
  ``cases.field_context`` of the field ``a:<name>``);
* each webhook department's signing secret, inside its JSON config;
* each web session (``web:session:*``), keeping its time to live.

Each value is written back with a compare-and-set (a Lua script that replaces it only
if it still holds exactly what was read), so a write made meanwhile (a worker marking a
delivery, a clerk recording an identity check, a citizen's next page) is never
overwritten: the value is read again and, if it is still under an old key, sealed again.
A second sweep catches what was sealed under the old key in the moments before every
process followed. Then a last, read-only pass counts what is left under the old keys:
only if nothing is are they retired (a value sealed under a retired key can never be
opened again). Otherwise the old keys stay, and the outcome says what is left and where.

The rotation's state and progress are kept in ``keys.ROTATION`` (a hash: state, from,
to, sweep, total, done, resealed, started_at, finished_at, and the lease its process
renews every second). One runs at a time; one whose process died (its lease ran out)
or failed is taken up again by the next ``rotate``, with the same new key. Running it
again once it is done rotates again, which does no harm.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from router import keys, sealing
from router.adapters.webhook import secret_context
from router.cases import field_context

log = logging.getLogger(__name__)

# What a web session is sealed for (channels.app.SESSION_CONTEXT: the router does not
# import the web front door; a test checks the two agree).
SESSION_CONTEXT = "web:session"

# How long after the new key is current the sweep begins: every process asks Redis
# which key is current at least every FOLLOW_SECONDS.
FOLLOW_MARGIN = 0.5
LEASE_SECONDS = 10.0  # a rotation whose process has not renewed this long is dead
BEAT_SECONDS = 1.0
BATCH = 200  # keys read per round trip (SCAN's COUNT too)
TRIES = 5  # reads of one value that keeps changing under us, per sweep
SWEEPS = 2
SHOWN = 5  # places named when something is left under an old key

# Replaces each field only if it still holds exactly what was read. KEYS: the hash.
# ARGV: triples of field, the value read, the value to write. Returns 1 or 0 for each.
HASH_CAS = """
local replaced = {}
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    replaced[#replaced + 1] = 1
  else
    replaced[#replaced + 1] = 0
  end
end
return replaced
"""

# Replaces a string only if it still holds exactly what was read, keeping its time to
# live (a session that has ended is not brought back). KEYS: the key. ARGV: the value
# read, the value to write.
STRING_CAS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Takes the rotation for one process. KEYS: the rotation hash. ARGV: the owner's token,
# the lease in ms, the time it starts (ISO 8601). Returns {0, to} if another process
# holds it (its lease has not run out), {1, to} to take up a rotation that died or
# failed, or {2, ""} to begin a new one.
CLAIM_SCRIPT = (
    _NOW_MS
    + """
local state = redis.call('HGET', KEYS[1], 'state')
local to = redis.call('HGET', KEYS[1], 'to') or ''
if state == 'running' and tonumber(redis.call('HGET', KEYS[1], 'lease') or '0') > now then
  return {0, to}
end
local outcome = 1
if (state ~= 'running' and state ~= 'failed') or to == '' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'started_at', ARGV[3], 'to', '', 'from', '', 'resealed', 0)
  outcome, to = 2, ''
end
redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[1], 'lease', now + ARGV[2],
  'heartbeat', now)
redis.call('HDEL', KEYS[1], 'finished_at', 'error', 'left')
return {outcome, to}
"""
)

# Renews the lease while this process owns the rotation. KEYS: the rotation hash.
# ARGV: the owner's token, the lease in ms. Returns 0 if another process took it.
BEAT_SCRIPT = (
    _NOW_MS
    + """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'lease', now + ARGV[2], 'heartbeat', now)
return 1
"""
)

# Writes fields of the rotation hash while this process owns it. KEYS: the rotation
# hash. ARGV: the owner's token, then field, value pairs. Returns 0 if it is not ours.
UPDATE_SCRIPT = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""

_CLAIM_BUSY, _CLAIM_RESUME, _CLAIM_NEW = 0, 1, 2


class RotationError(RuntimeError):
    """A rotation could not start or finish; the message says why in one line."""


class RotationRunning(RotationError):
    """Another process is rotating the data key now."""


@dataclass
class Progress:
    """Where a sweep is: ``done`` of ``total`` keys read, in sweep ``sweep``."""

    sweep: int
    done: int
    total: int
    resealed: int


@dataclass
class Outcome:
    """What a rotation did."""

    to: str  # the new data key
    old: list[str]  # the keys it was to retire
    resumed: bool
    resealed: int = 0  # values sealed again under the new key
    seconds: float = 0.0
    retired: list[str] = field(default_factory=list)
    left: dict[str, int] = field(default_factory=dict)  # old key -> values still under it
    where: list[str] = field(default_factory=list)  # some of the places they are
    unknown: int = 0  # values under keys no longer in the ring: they cannot be opened

    @property
    def finished(self) -> bool:
        return not self.left


@dataclass
class _Slot:
    """One sealed value as read: ``key`` (and ``field`` of a hash), what it held."""

    key: str
    field: str | None  # None: the whole string (a web session)
    stored: bytes
    context: str
    text: bool = False  # a webhook config: JSON whose "secret" is sealing's text form

    @property
    def where(self) -> str:
        return f"{self.key}/{self.field}" if self.field is not None else self.key

    def token(self) -> bytes | None:
        if not self.text:
            return self.stored if sealing.is_sealed(self.stored) else None
        try:
            secret = json.loads(self.stored).get("secret", "")
            if not isinstance(secret, str) or not secret.startswith(sealing.TEXT_PREFIX):
                return None
            token = base64.urlsafe_b64decode(secret[len(sealing.TEXT_PREFIX) :])
        except (ValueError, AttributeError, binascii.Error):
            return None  # an unreadable config: load_webhooks reports it
        return token if sealing.is_sealed(token) else None

    def with_token(self, token: bytes) -> bytes:
        if not self.text:
            return token
        data = json.loads(self.stored)
        data["secret"] = sealing.TEXT_PREFIX + base64.urlsafe_b64encode(token).decode()
        return json.dumps(data, sort_keys=True).encode()  # as WebhookConfig.to_json


@dataclass
class _Tally:
    """What a read-only pass found: values by key id, and where the ones not under
    ``to`` are."""

    by_key: Counter[str] = field(default_factory=Counter)
    where: dict[str, list[str]] = field(default_factory=dict)


class Rotation:
    """One rotation of the data key of ``redis`` (see the module's docstring)."""

    def __init__(
        self,
        redis: Redis,
        ring: sealing.KeyRing | None = None,
        *,
        follow_seconds: float | None = None,
        lease_seconds: float = LEASE_SECONDS,
        batch: int = BATCH,
    ) -> None:
        self.redis = redis
        self.ring = ring or sealing.KeyRing(redis)
        self.follow_seconds = (
            sealing.FOLLOW_SECONDS + FOLLOW_MARGIN if follow_seconds is None else follow_seconds
        )
        self.lease_ms = int(lease_seconds * 1000)
        self.batch = batch
        self.owner = secrets.token_hex(8)
        self._hash_cas = redis.register_script(HASH_CAS)
        self._string_cas = redis.register_script(STRING_CAS)
        self._claim = redis.register_script(CLAIM_SCRIPT)
        self._beat = redis.register_script(BEAT_SCRIPT)
        self._update = redis.register_script(UPDATE_SCRIPT)
        self._stop = threading.Event()
        self._lost = threading.Event()

    # --- the whole rotation ------------------------------------------------------------

    def run(self, progress: Callable[[Progress], None] | None = None) -> Outcome:
        """Rotate: add the new key (unless taking up one that died), wait for every
        process to follow, sweep twice, check, retire. ``RotationRunning`` if another
        process is rotating now."""
        began = time.monotonic()
        outcome_code, to = self._take()
        beating = threading.Thread(target=self._beat_until_done, name="rotation-lease", daemon=True)
        beating.start()
        try:
            outcome = self._rotate(outcome_code == _CLAIM_RESUME, to, progress, began)
        except BaseException as error:
            self._finish("failed", error=_one_line(error))
            raise
        finally:
            self._stop.set()
            beating.join(timeout=5)
        return outcome

    def _take(self) -> tuple[int, str]:
        started = datetime.now(UTC).isoformat(timespec="seconds")
        raw = self._claim(keys=[keys.ROTATION], args=[self.owner, self.lease_ms, started])
        code, to = int(raw[0]), _text(raw[1])
        if code == _CLAIM_BUSY:
            raise RotationRunning(
                "A key rotation is already running"
                + (f" (to key {to})" if to else "")
                + ": wait for it to finish; `router keys list` shows its progress"
            )
        return code, to

    def _rotate(
        self, resumed: bool, to: str, progress: Callable[[Progress], None] | None, began: float
    ) -> Outcome:
        # Opens the current key first: a new key wrapped under another master key than
        # the ring's would leave every other process unable to seal.
        self.ring.current()
        held = self.ring.ids()
        if resumed and to not in held:
            log.warning("rotation: key %s is no longer in the ring; adding another", to)
            resumed, to = False, ""
        if resumed:
            if self.ring.current() != to:  # what it was made current for: again
                self.redis.hset(keys.KEY_RING, "current", to)
                self.ring.refresh()
        else:
            to = self.ring.add_key()
        old = [kid for kid in self.ring.ids() if kid != to]
        self._set(to=to, **{"from": ",".join(old)}, phase="following")
        log.info("rotation: %s to %s%s", ",".join(old) or "-", to, " (resumed)" if resumed else "")
        outcome = Outcome(to=to, old=old, resumed=resumed)
        outcome.resealed = int(self.redis.hget(keys.ROTATION, "resealed") or 0)
        self._wait(self.follow_seconds)
        for sweep in range(1, SWEEPS + 1):
            self._sweep(sweep, outcome, progress)
        self._set(phase="checking")
        tally = self.tally(to)
        outcome.unknown = sum(n for kid, n in tally.by_key.items() if kid not in old + [to])
        outcome.left = {kid: n for kid, n in tally.by_key.items() if kid in old}
        outcome.where = [w for kid in outcome.left for w in tally.where[kid]][:SHOWN]
        outcome.seconds = time.monotonic() - began
        if outcome.left:
            self._finish("failed", left=_counts(outcome.left), error="values left under old keys")
            return outcome
        self._set(phase="retiring")
        self.ring.retire(old)
        outcome.retired = [kid for kid in old if kid not in self.ring.ids()]
        self._finish("done", retired=",".join(outcome.retired), seconds=f"{outcome.seconds:.1f}")
        log.info(
            "rotation: %d values sealed again under %s in %.1fs; retired %s",
            outcome.resealed,
            to,
            outcome.seconds,
            ",".join(outcome.retired) or "none",
        )
        return outcome

    # --- sweeping ----------------------------------------------------------------------

    def _sweep(
        self, sweep: int, outcome: Outcome, progress: Callable[[Progress], None] | None
    ) -> None:
        total = self.count()
        done = 0
        self._set(phase=f"sweep {sweep}", sweep=sweep, total=total, done=0)
        if progress:
            progress(Progress(sweep, 0, total, outcome.resealed))
        for batch, slots in self._batches():
            outcome.resealed += self._reseal(slots, outcome.to)
            done += batch
            self._set(done=done, resealed=outcome.resealed)
            if progress:
                progress(Progress(sweep, done, max(total, done), outcome.resealed))

    def _reseal(self, slots: list[_Slot], to: str) -> int:
        """Seal again under ``to`` each value not under it; return how many were."""
        resealed = 0
        pending = [s for s in slots if _needs(s, to)]
        for _ in range(TRIES):
            if not pending:
                break
            written: list[tuple[_Slot, bytes]] = []
            for slot in pending:
                token = slot.token()
                assert token is not None
                try:
                    plain = self.ring.open(token, slot.context)
                except sealing.KeyProblem:
                    continue  # a retired key, or tampered with: the final check counts it
                written.append((slot, slot.with_token(self.ring.seal(plain, slot.context, to))))
            replaced = self._compare_and_set(written)
            resealed += sum(replaced)
            changed = [slot for (slot, _), ok in zip(written, replaced, strict=True) if not ok]
            pending = [s for s in self._read_again(changed) if _needs(s, to)]
        if pending:
            log.warning(
                "rotation: %d values kept changing; the next sweep takes them", len(pending)
            )
        return resealed

    def _compare_and_set(self, written: Sequence[tuple[_Slot, bytes]]) -> list[bool]:
        """Write each new value where its slot still holds what was read (one script per
        session, one per hash for all its fields); which were written."""
        jobs: dict[str, list[int]] = {}  # a hash's key -> the indexes of its slots
        strings: list[int] = []
        for i, (slot, _) in enumerate(written):
            if slot.field is None:
                strings.append(i)
            else:
                jobs.setdefault(slot.key, []).append(i)
        if not written:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for i in strings:
                slot, new = written[i]
                self._string_cas(keys=[slot.key], args=[slot.stored, new], client=pipe)
            for key, indexes in jobs.items():
                args: list[Any] = []
                for i in indexes:
                    slot, new = written[i]
                    args += [slot.field, slot.stored, new]
                self._hash_cas(keys=[key], args=args, client=pipe)
            replies = pipe.execute()
        ok = [False] * len(written)
        for i, reply in zip(strings, replies, strict=False):
            ok[i] = bool(reply)
        for indexes, reply in zip(jobs.values(), replies[len(strings) :], strict=True):
            for i, one in zip(indexes, reply, strict=True):
                ok[i] = bool(one)
        return ok

    def _read_again(self, slots: Sequence[_Slot]) -> list[_Slot]:
        """Each slot as it is now (none if its value is gone)."""
        if not slots:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for slot in slots:
                if slot.field is None:
                    pipe.get(slot.key)
                else:
                    pipe.hget(slot.key, slot.field)
            values = pipe.execute()
        return [
            _Slot(slot.key, slot.field, value, slot.context, slot.text)
            for slot, value in zip(slots, values, strict=True)
            if isinstance(value, bytes)
        ]

    # --- reading every sealed value ----------------------------------------------------

    def count(self) -> int:
        """How many keys a sweep reads (cases, sessions, the webhooks' hash)."""
        found = sum(1 for _ in self._case_keys()) + sum(1 for _ in self._session_keys())
        return found + int(self.redis.exists(keys.WEBHOOKS))

    def tally(self, to: str = "") -> _Tally:
        """Every sealed value, counted by the id of the key it is sealed under; where
        (up to SHOWN of) those not under ``to`` are."""
        tally = _Tally()
        for _, slots in self._batches():
            for slot in slots:
                token = slot.token()
                if token is None:
                    continue
                kid = sealing.key_id_of(token)
                tally.by_key[kid] += 1
                if kid != to:
                    places = tally.where.setdefault(kid, [])
                    if len(places) < SHOWN:
                        places.append(slot.where)
        return tally

    def _batches(self) -> Iterator[tuple[int, list[_Slot]]]:
        """(keys read, the sealed values they hold), a batch at a time."""
        yield from self._case_batches()
        yield from self._session_batches()
        if self.redis.exists(keys.WEBHOOKS):
            yield 1, self._webhook_slots()

    def _case_keys(self) -> Iterator[str]:
        for key in self.redis.scan_iter(match=keys.case("*"), count=self.batch):
            name = _text(key)
            if name.count(":") == 1:  # not case:<ref>:history
                yield name

    def _session_keys(self) -> Iterator[str]:
        for key in self.redis.scan_iter(match=keys.WEB_SESSION_PREFIX + "*", count=self.batch):
            yield _text(key)

    def _case_batches(self) -> Iterator[tuple[int, list[_Slot]]]:
        for names in _chunks(self._case_keys(), self.batch):
            with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(name)
                hashes = pipe.execute(raise_on_error=False)
            slots = []
            for name, held in zip(names, hashes, strict=True):
                if not isinstance(held, dict):
                    continue  # not a hash (WRONGTYPE): not a case
                ref = name.partition(":")[2]
                for raw_field, value in held.items():
                    if sealing.is_sealed(value):
                        f = _text(raw_field)
                        slots.append(_Slot(name, f, value, field_context(ref, f)))
            yield len(names), slots
            self._check_lease()

    def _session_batches(self) -> Iterator[tuple[int, list[_Slot]]]:
        for names in _chunks(self._session_keys(), self.batch):
            with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.get(name)
                values = pipe.execute(raise_on_error=False)
            slots = [
                _Slot(name, None, value, SESSION_CONTEXT)
                for name, value in zip(names, values, strict=True)
                if sealing.is_sealed(value)
            ]
            yield len(names), slots
            self._check_lease()

    def _webhook_slots(self) -> list[_Slot]:
        slots = []
        for raw_name, value in self.redis.hgetall(keys.WEBHOOKS).items():
            name = _text(raw_name)
            stored = value if isinstance(value, bytes) else value.encode()
            slot = _Slot(keys.WEBHOOKS, name, stored, secret_context(name), text=True)
            if slot.token() is not None:
                slots.append(slot)
        return slots

    # --- the rotation's own state ------------------------------------------------------

    def _set(self, **values: object) -> None:
        args: list[Any] = [self.owner]
        for name, value in values.items():
            args += [name, str(value)]
        if not self._update(keys=[keys.ROTATION], args=args):
            self._lost.set()
            self._check_lease()

    def _finish(self, kind: str, **values: object) -> None:
        finished = datetime.now(UTC).isoformat(timespec="seconds")
        args: list[Any] = [self.owner, "state", kind, "finished_at", finished, "lease", 0]
        for name, value in values.items():
            args += [name, str(value)]
        self._update(keys=[keys.ROTATION], args=args)

    def _beat_until_done(self) -> None:
        while not self._stop.wait(BEAT_SECONDS):
            try:
                if not self._beat(keys=[keys.ROTATION], args=[self.owner, self.lease_ms]):
                    self._lost.set()
                    return
            except Exception:  # noqa: BLE001 - a missed beat; the next one tries again
                log.warning("rotation: could not renew the lease", exc_info=True)

    def _check_lease(self) -> None:
        if self._lost.is_set():
            raise RotationError(
                "Another process took over this key rotation (this one stopped renewing "
                "its lease): it carries on from here"
            )

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))
            self._check_lease()


# --- reading the state -------------------------------------------------------------------


def state(redis: Redis) -> dict[str, str]:
    """The rotation under way or last finished (``keys.ROTATION``), as text; with
    ``stale`` "yes" if it says running but its lease has run out."""
    raw = {_text(k): _text(v) for k, v in redis.hgetall(keys.ROTATION).items()}
    if raw.get("state") == "running":
        seconds, micros = redis.time()
        now = int(seconds) * 1000 + int(micros) // 1000
        raw["stale"] = "yes" if int(raw.get("lease", 0) or 0) <= now else "no"
    return raw


def describe(held: dict[str, str]) -> str:
    """One line about the rotation ``state`` returned."""
    if not held:
        return "No key rotation has run."
    moving = f"from {held.get('from') or '-'} to {held.get('to') or '(not yet chosen)'}"
    where = ""
    if held.get("sweep"):
        done, total = held.get("done", 0), held.get("total", 0)
        where = f", sweep {held['sweep']} of {SWEEPS}: {done}/{total} keys"
    resealed = f", {held.get('resealed', 0)} values sealed again"
    kind = held.get("state", "?")
    if kind == "running" and held.get("stale") == "yes":
        return (
            f"Key rotation {moving} stopped (its process is gone){where}{resealed}: "
            "`router keys rotate` takes it up again"
        )
    if kind == "running":
        return (
            f"Key rotation {moving} running since {held.get('started_at', '?')}, "
            f"{held.get('phase', '')}{where}{resealed}"
        )
    if kind == "done":
        return (
            f"Last key rotation {moving} done at {held.get('finished_at', '?')}"
            f"{resealed} in {held.get('seconds', '?')}s; retired {held.get('retired') or 'none'}"
        )
    left = f"; left under old keys: {held['left']}" if held.get("left") else ""
    return (
        f"Last key rotation {moving} failed at {held.get('finished_at', '?')} "
        f"({held.get('error', 'no reason given')}){left}{resealed}: `router keys rotate` "
        "takes it up again"
    )


# --- helpers -----------------------------------------------------------------------------


def _needs(slot: _Slot, to: str) -> bool:
    token = slot.token()
    return token is not None and sealing.key_id_of(token) != to


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _counts(by_key: dict[str, int]) -> str:
    return ",".join(f"{kid}:{n}" for kid, n in sorted(by_key.items()))


def _one_line(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
