"""The chaos harness: a private Redis and worker pool per scenario, a seeded random
workload, a submitter thread, and the invariant every scenario ends with.

The invariant, for every case whose submission returned a reference:

* every planned ``digital`` delivery is ``delivered`` and ``assisted`` ones stay
  ``assisted``; nothing is left ``queued``, ``sending`` or ``retrying``;
* the department's mock log (``mock:<name>:log``, one entry per applied change) holds
  exactly one entry for each delivered delivery: ``duplicates`` counts entries beyond
  the first (must be 0), ``lost`` counts digital deliveries not delivered or with no
  entry (must be 0);
* no log entry names a delivery that is in no stored case's plan (``stray``), and the
  ``changes`` counters of each department's records add up to its log's length.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from router import catalogue, keys, routing
from router.adapters.mocks import Faults, configure_faults
from router.adapters.registry import Registry
from router.cases import PENDING_STATES, CaseStore, DeliveryState, delivery_id
from router.delivery.queues import queue_for
from router.delivery.recovery import RECOVERED_DETAIL
from router.delivery.worker import Supervisor
from router.exceptions import UnknownCase
from router.redis_server import RedisServer, start_redis
from router.service import LifeEventRouter
from router.settings import RetryPolicy
from tests.support.redis_dump import mock_log
from tests.support.samples import sample

DEPARTMENTS: tuple[str, ...] = ("dwp", "dvla", "payments", "hmrc", "council")
EVENT_TYPES: tuple[str, ...] = (
    "moving_house",
    "death",
    "birth",
    "new_job",
    "retiring",
    "change_of_name",
)
POLICY = RetryPolicy(max_retries=8, base_seconds=1, cap_seconds=4)
POLL_SECONDS = 0.2
SETTLE_SECONDS = 120.0
# Give up waiting early when no delivery has changed state for this long: with retries
# capped at 4 s and orphans swept within ~5 s, a live system never stalls this long.
STALL_SECONDS = 30.0
PENDING = frozenset(str(s) for s in PENDING_STATES)
RQ_QUEUE_KEY = "rq:queue:{name}"

CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError)


# --- the workload ------------------------------------------------------------------------

FIRST_NAMES = (
    "Aisha",
    "Bronwen",
    "Siân",
    "Zoë",
    "Chidi",
    "Priya",
    "Gareth",
    "Mairéad",
    "Tomasz",
    "Émile",
    "Oluwaseun",
    "Niamh",
    "Rhys",
    "Fatima",
    "Dafydd",
    "Yusuf",
    "Ewa",
    "Callum",
    "Ngozi",
    "Hamish",
)
LAST_NAMES = (
    "Okafor",
    "Llewellyn",
    "O'Brien",
    "Sharma",
    "Pendleton",
    "D'Souza",
    "Carter",
    "Nowak",
    "MacLeod",
    "Ó Súilleabháin",
    "Evans-Jones",
    "Begum",
    "Kowalski",
    "Adeyemi",
    "Price",
    "Morgan",
    "Hughes",
    "Campbell",
    "Khan",
    "Fraser",
)
PLACES = (
    ("Edinburgh", "EH2 2PR"),
    ("Cardiff", "CF10 1BH"),
    ("Leeds", "LS1 4AP"),
    ("Manchester", "M1 1AE"),
    ("Swansea", "SA1 1NW"),
    ("Bristol", "BS1 4DJ"),
    ("Birmingham", "B33 8TH"),
    ("Croydon", "CR2 6XH"),
    ("London", "SW1A 1AA"),
    ("London", "EC1A 1BB"),
    ("Glasgow", "G2 3DE"),
    ("Belfast", "BT1 5GS"),
    ("Newcastle", "NE1 7RU"),
    ("Liverpool", "L1 8JQ"),
    ("Plymouth", "PL1 2AA"),
    ("Aberdeen", "AB10 1XG"),
    ("Bangor", "LL57 2DG"),
)
STREETS = (
    "Rose Street",
    "Mill Lane",
    "Heol y Castell",
    "Quay Street",
    "Bryn Road",
    "High Street",
    "Station Road",
    "Church Walk",
)
EMPLOYERS = (
    "Northern Rail Works Ltd",
    "Cwmni Bara Cymru",
    "Tay Bridge Logistics",
    "St Mungo's Trust",
    "Harbour & Sons",
)
NINO_LETTERS = "ABCEGHJKLMNPRSTWXYZ"
NINO_NEVER = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"


def _name(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return f"{first} {last}", last


def _nino(rng: random.Random) -> str:
    while True:
        prefix = rng.choice(NINO_LETTERS) + rng.choice(NINO_LETTERS)
        if prefix not in NINO_NEVER:
            break
    digits = "".join(rng.choice(DIGITS) for _ in range(6))
    suffix = rng.choice("ABCD")
    if rng.random() < 0.5:  # as printed on a card, or as typed
        return f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
    return f"{prefix}{digits}{suffix}"


def _licence(rng: random.Random, surname: str) -> str:
    ascii_letters = "".join(
        c for c in unicodedata.normalize("NFKD", surname).upper() if "A" <= c <= "Z"
    )
    month = rng.randint(1, 12) + rng.choice((0, 50))
    return (
        ascii_letters[:5].ljust(5, "9")
        + rng.choice(DIGITS)
        + f"{month:02d}{rng.randint(1, 28):02d}"
        + rng.choice(DIGITS)
        + rng.choice(UPPER)
        + rng.choice(UPPER + "9")
        + rng.choice(DIGITS)
        + rng.choice(UPPER + DIGITS)
        + rng.choice(UPPER + DIGITS)
    )


def _birth_date(rng: random.Random, first_year: int, last_year: int) -> str:
    return f"{rng.randint(first_year, last_year)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _address(rng: random.Random, answers: dict[str, Any]) -> None:
    town, postcode = rng.choice(PLACES)
    answers["address_line_1"] = f"{rng.randint(1, 240)} {rng.choice(STREETS)}"
    answers["town"] = town
    answers["postcode"] = postcode.lower() if rng.random() < 0.2 else postcode


def _answers(rng: random.Random, event: str) -> dict[str, Any]:
    """Answers for ``event``: the sample's, with every personal detail and choice varied."""
    answers: dict[str, Any] = dict(sample(event)["answers"])
    yes_no = ("yes", "no")
    if event == "moving_house":
        answers["full_name"], surname = _name(rng)
        answers["date_of_birth"] = _birth_date(rng, 1945, 2004)
        answers["nino"] = _nino(rng)
        _address(rng, answers)
        answers["previous_postcode"] = rng.choice(PLACES)[1]
        answers["move_date"] = {"days_ago": rng.randint(-80, 300)}
        answers["has_driving_licence"] = rng.choice(yes_no)
        if answers["has_driving_licence"] == "yes":
            answers["driving_licence_number"] = _licence(rng, surname)
        else:
            del answers["driving_licence_number"]
    elif event == "death":
        answers["deceased_full_name"], surname = _name(rng)
        answers["deceased_date_of_birth"] = _birth_date(rng, 1925, 1990)
        answers["date_of_death"] = {"days_ago": rng.randint(0, 1500)}
        answers["deceased_nino"] = _nino(rng)
        _address(rng, answers)
        answers["informant_full_name"] = _name(rng)[0]
        answers["informant_relationship"] = rng.choice(
            ("spouse_or_partner", "child", "parent", "sibling", "executor", "other")
        )
        answers["had_driving_licence"] = rng.choice(yes_no)
        if answers["had_driving_licence"] == "yes":
            answers["driving_licence_number"] = _licence(rng, surname)
        else:
            del answers["driving_licence_number"]
    elif event == "birth":
        parent, surname = _name(rng)
        answers["child_full_name"] = f"{rng.choice(FIRST_NAMES)} {surname}"
        answers["child_date_of_birth"] = {"days_ago": rng.randint(0, 300)}
        answers["parent_full_name"] = parent
        answers["parent_date_of_birth"] = _birth_date(rng, 1975, 2004)
        answers["parent_nino"] = _nino(rng)
        _address(rng, answers)
        answers["claim_child_benefit"] = rng.choice(yes_no)
    elif event == "new_job":
        answers["full_name"] = _name(rng)[0]
        answers["date_of_birth"] = _birth_date(rng, 1960, 2006)
        answers["nino"] = _nino(rng)
        answers["employer_name"] = rng.choice(EMPLOYERS)
        if rng.random() < 0.7:
            answers["employer_paye_reference"] = (
                f"{rng.randint(100, 999)}/{rng.choice(UPPER)}{rng.choice(UPPER)}"
                f"{rng.randint(100, 99999)}"
            )
        else:
            del answers["employer_paye_reference"]  # optional
        answers["job_start_date"] = {"days_ago": rng.randint(-150, 300)}
        answers["claiming_benefits"] = rng.choice(yes_no)
        answers["postcode"] = rng.choice(PLACES)[1]
    elif event == "retiring":
        answers["full_name"] = _name(rng)[0]
        answers["date_of_birth"] = _birth_date(rng, 1950, 1966)
        answers["nino"] = _nino(rng)
        answers["retirement_date"] = {"days_ago": rng.randint(-300, 300)}
        _address(rng, answers)
        answers["has_bank_account"] = rng.choice(("yes", "yes", "no"))
        if answers["has_bank_account"] == "yes":
            answers["sort_code"] = "-".join(f"{rng.randint(0, 99):02d}" for _ in range(3))
            answers["account_number"] = "".join(rng.choice(DIGITS) for _ in range(8))
        else:
            del answers["sort_code"], answers["account_number"]
    elif event == "change_of_name":
        first = rng.choice(FIRST_NAMES)
        old_surname, new_surname = rng.sample(LAST_NAMES, 2)
        answers["previous_full_name"] = f"{first} {old_surname}"
        answers["full_name"] = f"{first} {new_surname}"
        answers["date_of_birth"] = _birth_date(rng, 1950, 2004)
        answers["nino"] = _nino(rng)
        answers["date_of_change"] = {"days_ago": rng.randint(0, 1500)}
        answers["reason"] = rng.choice(
            ("marriage", "civil_partnership", "divorce", "deed_poll", "other")
        )
        _address(rng, answers)
        answers["driving_licence"] = rng.choice(("photocard", "paper", "none"))
        if answers["driving_licence"] == "none":
            del answers["driving_licence_number"]
        else:
            answers["driving_licence_number"] = _licence(rng, old_surname)
    else:  # pragma: no cover - EVENT_TYPES is the whole catalogue
        raise ValueError(event)
    return answers


def workload(seed: int, count: int = 210) -> list[dict[str, Any]]:
    """``count`` valid submissions, every event type about equally, in seeded random order.

    Each is ``{"event", "answers", "consent"}``; consent is a non-empty random subset of
    the departments interested in the event (all of them about half the time).
    """
    rng = random.Random(seed)
    registry = Registry.discover()
    events = [EVENT_TYPES[i % len(EVENT_TYPES)] for i in range(count)]
    rng.shuffle(events)
    cases = []
    for event in events:
        answers = _answers(rng, event)
        names = [a.name for a in routing.interested(event, registry)]
        if rng.random() < 0.5:
            consent = list(names)
        else:
            consent = rng.sample(names, rng.randint(1, len(names)))
        # A generator that writes invalid cases would test nothing: check each one.
        catalogue.get_event(event).validate(answers)
        routing.check_consent(event, consent, registry)
        cases.append({"event": event, "answers": answers, "consent": sorted(consent)})
    return cases


# --- processes: a private Redis and worker pool ------------------------------------------


def _proc_stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw.rsplit(")", 1)[1].split()
    return int(rest[1]), rest[0], rest[19]


def _children_of(parents: set[int]) -> list[tuple[int, str]]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None and stat[0] in parents:
                found.append((int(entry), stat[2]))
    return found


@dataclass
class Kill:
    """One SIGKILL: of a worker (one department) or of Redis (every department)."""

    at: float  # time.time() just before the signal
    departments: tuple[str, ...]
    pid: int
    sending: tuple[str, ...] = ()  # deliveries of those departments seen "sending" before


class World:
    """One scenario's own Redis server and supervised `router worker` processes."""

    def __init__(self, data_dir: Path) -> None:
        self.server: RedisServer = start_redis(data_dir)
        self.url = self.server.url
        self.redis = Redis.from_url(self.url)
        self.store = CaseStore(self.redis)
        self.supervisor = Supervisor(self.url, DEPARTMENTS)
        # Processes our workers started (a forked RQ scheduler, say): a SIGKILLed worker
        # leaves them behind, so they are noted and stopped by pid at the end.
        self._descendants: set[tuple[int, str]] = set()
        self.kills: list[Kill] = []

    def start(self, timeout: float = 60.0) -> None:
        """Start the worker processes (each serves every department) and wait until
        each has registered."""
        self.supervisor.start()
        deadline = time.monotonic() + timeout
        while int(self.redis.scard("rq:workers")) < self.supervisor.processes:
            if time.monotonic() > deadline:
                raise AssertionError(f"the workers did not all start within {timeout}s")
            self.supervisor.check()
            time.sleep(0.1)

    def faults(self, faults: Faults, departments: Iterable[str] = DEPARTMENTS) -> None:
        for name in departments:
            configure_faults(self.redis, name, faults)

    def tick(self) -> None:
        """The supervisor's loop: restart any worker that died."""
        self.supervisor.check()
        self._note_descendants()

    def _note_descendants(self) -> None:
        self._descendants.update(_children_of(set(self.supervisor.pids())))

    def sending(self, refs: Sequence[str]) -> dict[str, list[str]]:
        """Deliveries now in "sending", by department (empty while Redis is down)."""
        found: dict[str, list[str]] = defaultdict(list)
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for ref in refs:
                    pipe.hgetall(keys.case(ref))
                raw = pipe.execute()
        except CONNECTION_ERRORS:
            return found
        for ref, data in zip(refs, raw, strict=True):
            for key, value in data.items():
                name = _text(key)
                if name.startswith("d:") and name.endswith(":state") and _text(value) == "sending":
                    department = name[2:-6]
                    found[department].append(delivery_id(ref, department))
        return found

    def kill_worker(self, rng: random.Random, refs: Sequence[str]) -> Kill | None:
        """SIGKILL one worker process (each serves every department, so whatever it
        holds mid-delivery is orphaned), chosen at random."""
        sending = self.sending(refs)
        slot = rng.choice(sorted(self.supervisor.children))
        child = self.supervisor.children[slot]
        if child.poll() is not None:
            return None
        self._note_descendants()
        held = tuple(d for ds in sending.values() for d in ds)
        kill = Kill(time.time(), DEPARTMENTS, child.pid, held)
        os.kill(child.pid, signal.SIGKILL)
        self.kills.append(kill)
        return kill

    def kill_redis(self, refs: Sequence[str]) -> Kill:
        sending = self.sending(refs)
        pid = self.server.pid or 0
        kill = Kill(time.time(), DEPARTMENTS, pid, tuple(d for ds in sending.values() for d in ds))
        self.server.kill()
        self.kills.append(kill)
        return kill

    def close(self) -> None:
        try:
            with contextlib.suppress(Exception):
                self._note_descendants()
            self.supervisor.stop()
        finally:
            _stop_leftovers(self._descendants)
            self.redis.close()
            self.server.stop()


def _stop_leftovers(processes: set[tuple[int, str]], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, each noted process still alive (same pid, same start)."""

    def alive() -> list[int]:
        pids = []
        for pid, started in processes:
            stat = _proc_stat(pid)
            if stat is not None and stat[2] == started and stat[1] not in ("Z", "X"):
                pids.append(pid)
        return pids

    for pid in alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def world(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A private Redis and worker pool, stopped (by pid) however the scenario ends."""
    monkeypatch.delenv("ROUTER_ADAPTERS", raising=False)  # the five built-in departments
    w = World(data_dir)
    try:
        w.start()
        yield w
    finally:
        w.close()


# --- submitting -------------------------------------------------------------------------


class Submitter:
    """Submits the workload from a background thread, ``spacing`` seconds apart.

    A Redis connection error means the submission was not accepted (no reference came
    back): it is counted as refused and left out of the invariant.
    """

    def __init__(
        self,
        url: str,
        cases: Sequence[dict[str, Any]],
        spacing: float,
        policy: RetryPolicy = POLICY,
    ) -> None:
        self.redis = Redis.from_url(url)
        self.core = LifeEventRouter(self.redis, Registry.discover(), policy)
        self.cases = list(cases)
        self.spacing = spacing
        self.accepted: list[str] = []
        self.refused = 0
        self.error: BaseException | None = None
        self.started_at = 0.0
        self.finished_at = 0.0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="chaos-submitter", daemon=True)

    def start(self) -> Submitter:
        self.started_at = time.time()
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def refs(self) -> list[str]:
        with self._lock:
            return list(self.accepted)

    def _run(self) -> None:
        try:
            for case in self.cases:
                try:
                    submission = self.core.submit(
                        case["event"], case["answers"], case["consent"], channel="chaos"
                    )
                except CONNECTION_ERRORS:
                    self.refused += 1
                else:
                    with self._lock:
                        self.accepted.append(submission.ref)
                time.sleep(self.spacing)
        except BaseException as error:  # noqa: BLE001 - reported by join()
            self.error = error
        finally:
            self.finished_at = time.time()

    def join(self, timeout: float = 300.0) -> None:
        self._thread.join(timeout)
        self.redis.close()
        if self._thread.is_alive():
            raise AssertionError("the submitter did not finish")
        if self.error is not None:
            raise AssertionError(f"submitting failed: {self.error!r}") from self.error


# --- reading the state back ----------------------------------------------------------------


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def case_refs(redis: Redis) -> list[str]:
    """Every case key (``case:<ref>``, one colon; not histories)."""
    refs = []
    for key in redis.scan_iter(match=keys.case("*"), count=1000):
        name = _text(key)
        if name.count(":") == 1:
            refs.append(name.partition(":")[2])
    return sorted(refs)


def delivery_states(redis: Redis) -> dict[str, tuple[str, str]]:
    """Every stored delivery: id -> (state, updated_at)."""
    refs = case_refs(redis)
    with redis.pipeline(transaction=False) as pipe:
        for ref in refs:
            pipe.hgetall(keys.case(ref))
        raw = pipe.execute()
    states: dict[str, tuple[str, str]] = {}
    for ref, data in zip(refs, raw, strict=True):
        fields = {_text(k): _text(v) for k, v in data.items()}
        for name, value in fields.items():
            if name.startswith("d:") and name.endswith(":state"):
                department = name[2:-6]
                states[delivery_id(ref, department)] = (
                    value,
                    fields.get(f"d:{department}:updated_at", ""),
                )
    return states


def queued_jobs(redis: Redis) -> int:
    """Work not yet done: drain jobs queued, deliveries pending or claimed."""
    with redis.pipeline(transaction=False) as pipe:
        for name in DEPARTMENTS:
            pipe.llen(RQ_QUEUE_KEY.format(name=queue_for(name)))
            pipe.zcard(keys.pending(name))
        pipe.zcard(keys.SENDING)
        return sum(int(n) for n in pipe.execute())


@dataclass
class Settled:
    settled: bool
    seconds: float
    pending: dict[str, str]  # delivery id -> state, when not settled
    queued_jobs: int


def wait_settled(
    w: World, timeout: float = SETTLE_SECONDS, stall: float = STALL_SECONDS
) -> Settled:
    """Poll every 0.2 s until no stored delivery is queued, sending or retrying, and
    every department queue, pending set and the sending set are empty; give up at
    ``timeout``, or after ``stall`` seconds in which no delivery changed state."""
    started = time.monotonic()
    last_change = started
    last_signature: frozenset[tuple[str, str, str]] | None = None
    pending: dict[str, str] = {}
    jobs = 0
    while True:
        w.tick()
        try:
            states = delivery_states(w.redis)
            jobs = queued_jobs(w.redis)
        except CONNECTION_ERRORS:
            states = None
        now = time.monotonic()
        if states is not None:
            pending = {d: s for d, (s, _) in states.items() if s in PENDING}
            if not pending and jobs == 0:
                return Settled(True, now - started, {}, 0)
            signature = frozenset((d, s, at) for d, (s, at) in states.items())
            if signature != last_signature:
                last_signature, last_change = signature, now
        if now - started > timeout or now - last_change > stall:
            return Settled(False, now - started, pending, jobs)
        time.sleep(POLL_SECONDS)


# --- the invariant --------------------------------------------------------------------------


@dataclass
class Report:
    cases: int = 0  # accepted: a reference came back
    deliveries: int = 0  # planned digital deliveries of accepted cases
    assisted: int = 0
    delivered: int = 0
    duplicates: int = 0
    lost: int = 0
    stray: int = 0
    stuck: int = 0  # still queued, sending or retrying
    failed: int = 0
    unacknowledged: int = 0  # stored cases whose submission never returned a reference
    retries: int = 0  # "retrying" entries in accepted cases' histories
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def describe(self, limit: int = 25) -> str:
        more = len(self.problems) - limit
        lines = self.problems[:limit] + ([f"... and {more} more"] if more > 0 else [])
        return "\n".join(lines)


def record_changes(redis: Redis, department: str) -> int:
    """The sum of the ``changes`` counters of a mock department's records."""
    keys = list(redis.scan_iter(match=f"mock:{department}:*", count=1000))
    with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.type(key)
        types = pipe.execute()
    hashes = [k for k, t in zip(keys, types, strict=True) if _text(t) == "hash"]
    with redis.pipeline(transaction=False) as pipe:
        for key in hashes:
            pipe.hget(key, "changes")
        return sum(int(v) for v in pipe.execute() if v is not None)


def check_invariant(redis: Redis, accepted: Iterable[str]) -> Report:
    """Check the invariant (see the module docstring) for the accepted cases."""
    report = Report()
    store = CaseStore(redis)
    accepted = list(dict.fromkeys(accepted))
    stored = {}
    for ref in case_refs(redis):
        # UnknownCase: a reference claimed by a submission that failed or lost a race.
        with contextlib.suppress(UnknownCase):
            stored[ref] = store.load(ref)
    planned = {
        (name, case.delivery_id(name))
        for case in stored.values()
        for name, d in case.deliveries.items()
        if d.mode == "digital"
    }
    logs = {name: mock_log(redis, name) for name in DEPARTMENTS}
    entries: Counter[tuple[str, str]] = Counter()
    receipts: dict[tuple[str, str], str] = {}
    for name, log in logs.items():
        for entry in log:
            key = (name, entry["delivery_id"])
            entries[key] += 1
            receipts.setdefault(key, entry["receipt"])
        changes = record_changes(redis, name)
        if changes != len(log):
            report.problem(f"{name}: records changed {changes} times for {len(log)} log entries")
    for key, count in entries.items():
        if count > 1:
            report.duplicates += count - 1
            report.problem(f"{key[1]}: applied {count} times")
        if key not in planned:
            report.stray += count
            report.problem(f"{key[1]}: in the {key[0]} log but in no case's plan")

    report.cases = len(accepted)
    report.unacknowledged = len(set(stored) - set(accepted))
    with redis.pipeline(transaction=False) as pipe:
        for ref in accepted:
            pipe.lrange(keys.history(ref), 0, -1)
        histories = pipe.execute()
    for ref, history in zip(accepted, histories, strict=True):
        report.retries += sum(json.loads(h)["state"] == "retrying" for h in history)
        case = stored.get(ref)
        if case is None:
            report.lost += 1
            report.problem(f"{ref}: accepted, but no such case in Redis")
            continue
        for name, d in case.deliveries.items():
            key = (name, case.delivery_id(name))
            if d.mode == "assisted":
                report.assisted += 1
                if d.state != DeliveryState.ASSISTED or entries[key]:
                    report.problem(f"{key[1]}: assisted, but {d.state} with {entries[key]} entries")
                continue
            report.deliveries += 1
            if d.state in PENDING_STATES:
                report.stuck += 1
            if d.state == DeliveryState.FAILED:
                report.failed += 1
            if d.state == DeliveryState.DELIVERED and entries[key] >= 1:
                report.delivered += 1
                if d.receipt is None or d.receipt.reference != receipts[key]:
                    report.problem(f"{key[1]}: receipt {d.receipt} is not the department's")
            else:
                report.lost += 1
                report.problem(
                    f"{key[1]}: {d.state} ({d.detail or 'no detail'}) after {d.attempts} "
                    f"attempts, {entries[key]} log entries; job {job_whereabouts(redis, key[1])}"
                )
    return report


def job_whereabouts(redis: Redis, delivery: str) -> str:
    """Where a delivery waits: its department's pending set (and when it is due), the
    sending set (and when its lease runs out), the dead letters. For diagnosing a
    lost one."""
    ref, _, department = delivery.partition("-")
    found = []
    due = redis.zscore(keys.pending(department), ref)
    if due is not None:
        found.append(f"pending, due in {due - time.time():.1f}s")
    lease = redis.zscore(keys.SENDING, delivery)
    if lease is not None:
        found.append(f"sending, lease ends in {lease / 1000 - time.time():.1f}s")
    if redis.hexists(keys.DEAD_LETTERS, delivery):
        found.append("dead-lettered")
    queued = redis.llen(RQ_QUEUE_KEY.format(name=queue_for(department)))
    return ", ".join(found) or f"nowhere ({queued} drain jobs queued for {department})"


# --- kill to running again ---------------------------------------------------------------------


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@dataclass
class Reruns:
    gaps: dict[str, float]  # delivery id -> seconds from the kill to its next "sending"
    never: list[str]  # interrupted deliveries that never ran again
    # delivery id -> seconds from the kill to its next history entry of any kind (the
    # sweeper putting it back as "queued"): how long the orphan went unnoticed.
    noticed: dict[str, float] = field(default_factory=dict)

    @property
    def longest(self) -> float | None:
        if self.never:
            return float("inf")
        return max(self.gaps.values()) if self.gaps else None

    @property
    def longest_unnoticed(self) -> float | None:
        return max(self.noticed.values()) if self.noticed else None


def reruns(store: CaseStore, refs: Sequence[str], kills: Sequence[Kill]) -> Reruns:
    """For every delivery a kill caught mid-call, the time from the kill to it running again.

    Every worker process serves every department, so a delivery "sending" at a kill
    was in the killed process or in one that lived on. It was caught by the kill when
    its last history entry at or before the kill is "sending" and the next is the
    sweeper putting it back ("queued": its worker stopped), or there is no next entry
    at all (never sent again); one that a live process finished is not. A delivery
    already orphaned by an earlier kill counts from that first kill. Running again is
    the first "sending" entry after the kill.
    """
    histories: dict[tuple[str, str], list[tuple[float, str, str, str]]] = defaultdict(list)
    for ref in refs:
        for h in store.history(ref):
            if h.department:
                histories[(ref, h.department)].append((_timestamp(h.at), h.at, h.state, h.detail))
    orphaned: dict[tuple[str, str, str], float] = {}
    for kill in sorted(kills, key=lambda k: k.at):
        for (ref, department), entries in histories.items():
            if department not in kill.departments:
                continue
            before = [e for e in entries if e[0] <= kill.at]
            if not before or before[-1][2] != "sending":
                continue
            after = [e for e in entries if e[0] > kill.at]
            if after and not (after[0][2] == "queued" and after[0][3] == RECOVERED_DETAIL):
                continue  # a live worker finished it
            orphaned.setdefault((ref, department, before[-1][1]), kill.at)
    result = Reruns({}, [])
    for (ref, department, _), killed_at in orphaned.items():
        after = [e for e in histories[(ref, department)] if e[0] > killed_at]
        again = [e[0] for e in after if e[2] == "sending"]
        delivery = delivery_id(ref, department)
        if after:
            noticed = after[0][0] - killed_at
            result.noticed[delivery] = max(result.noticed.get(delivery, 0.0), noticed)
        if again:
            result.gaps[delivery] = max(result.gaps.get(delivery, 0.0), again[0] - killed_at)
        else:
            result.never.append(delivery)
    return result


# --- timings and the summary ----------------------------------------------------------------


def completion_times(redis: Redis, since: float) -> dict[str, float]:
    """Per department: seconds from ``since`` to its last applied change."""
    times = {}
    for name in DEPARTMENTS:
        log = mock_log(redis, name)
        if log:
            times[name] = max(float(e["at"]) for e in log) - since
    return times


def seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == float("inf"):
        return "never"
    return f"{value:.1f}s"


def summary(name: str, report: Report, elapsed: float, **extra: object) -> str:
    """One line, e.g. ``chaos[worker-kills]: cases=213 deliveries=687 kills=22 restarts=22
    duplicates=0 lost=0 longest_kill_to_rerun=3.4s elapsed=41.2s``."""
    first = ("kills", "restarts")
    parts = [
        f"cases={report.cases}",
        f"deliveries={report.deliveries}",
        *(f"{k}={extra[k]}" for k in first if k in extra),
        f"duplicates={report.duplicates}",
        f"lost={report.lost}",
        *(f"{k}={v}" for k, v in extra.items() if k not in first),
        f"elapsed={elapsed:.1f}s",
    ]
    return f"chaos[{name}]: " + " ".join(parts)
