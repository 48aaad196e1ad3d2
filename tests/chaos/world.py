"""One chaos scenario's world: its own Redis server and supervised `router worker`
processes, faults and kills, a thread submitting the workload, and the state read back
until it settles."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from router import keys, metrics, reference, sealing
from router.adapters.mocks import Faults, configure_faults
from router.adapters.registry import Registry
from router.cases import PENDING_STATES, CaseStore, delivery_id
from router.cli import start_web
from router.delivery.queues import queue_for
from router.delivery.worker import Supervisor
from router.exceptions import NotReplicated
from router.redis_server import (
    HighAvailability,
    RedisServer,
    connect,
    free_port,
    start_ha,
    start_redis,
)
from router.service import LifeEventRouter
from router.settings import RetryPolicy
from tests.chaos.workload import DEPARTMENTS
from tests.support.identities import evidence_for
from tests.support.paths import ROOT

POLICY = RetryPolicy(max_retries=8, base_seconds=1, cap_seconds=4)
POLL_SECONDS = 0.2
SETTLE_SECONDS = 120.0
# Give up waiting early when no delivery has changed state for this long: with retries
# capped at 4 s and orphans swept within ~5 s, a live system never stalls this long.
STALL_SECONDS = 30.0
PENDING = frozenset(str(s) for s in PENDING_STATES)
RQ_QUEUE_KEY = "rq:queue:{name}"

CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError)


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
    """One scenario's own Redis server and supervised `router worker` processes; with
    ``ha``, a primary, two replicas and three sentinels (``start_ha``, as `router up --ha`),
    every client going through the sentinels."""

    def __init__(self, data_dir: Path, ha: bool = False, workers: bool = True) -> None:
        self.workers = workers
        self.ha: HighAvailability | None = start_ha(data_dir) if ha else None
        self.server: RedisServer = self.ha.primary if self.ha else start_redis(data_dir)
        self.url = self.ha.url if self.ha else self.server.url
        self.redis = connect(self.url)
        self.store = CaseStore(self.redis)
        worker_url = self.ha.url_as("worker") if self.ha else self.server.url_as("worker")
        self.supervisor = Supervisor(worker_url, DEPARTMENTS)
        # Processes our workers started (a forked RQ scheduler, say): a SIGKILLed worker
        # leaves them behind, so they are noted and stopped by pid at the end.
        self._descendants: set[tuple[int, str]] = set()
        self.kills: list[Kill] = []

    def start(self, timeout: float = 60.0) -> None:
        """Start the worker processes (each serves every department) and wait until
        each has registered. Without ``workers`` (hosts of their own run them), none."""
        if not self.workers:
            return
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
                name = as_text(key)
                if (
                    name.startswith("d:")
                    and name.endswith(":state")
                    and as_text(value) == "sending"
                ):
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

    def kill_redis(self, refs: Sequence[str], server: RedisServer | None = None) -> Kill:
        """SIGKILL ``server`` (default: the one the world started on, the first primary)."""
        victim = server or self.server
        sending = self.sending(refs)
        pid = victim.pid or 0
        kill = Kill(time.time(), DEPARTMENTS, pid, tuple(d for ds in sending.values() for d in ds))
        victim.kill()
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
            if self.ha is not None:
                self.ha.stop()
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
def world(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, ha: bool = False, workers: bool = True
) -> Iterator[World]:
    """A private Redis (with ``ha``, through Sentinel) and worker pool (unless not
    ``workers``), stopped (by pid) however the scenario ends."""
    monkeypatch.delenv("ROUTER_ADAPTERS", raising=False)  # the five built-in departments
    w = World(data_dir, ha, workers)
    try:
        w.start()
        yield w
    finally:
        w.close()


# --- submitting -------------------------------------------------------------------------


class Submitter:
    """Submits the workload from a background thread, ``spacing`` seconds apart.

    A Redis connection error, or too few replicas in time (NotReplicated), means the
    submission was not accepted (no reference came back): it is counted as refused.
    Without ``retry`` it is left out of the invariant. With ``retry`` it is sent again,
    ``spacing`` later, with the same submission key, as a citizen pressing "try again"
    (whose journey keeps its key) or an API client resending its Idempotency-Key does,
    until it is accepted or ``give_up`` seconds have passed.
    """

    def __init__(
        self,
        url: str,
        cases: Sequence[dict[str, Any]],
        spacing: float,
        policy: RetryPolicy = POLICY,
        retry: bool = False,
        give_up: float = 60.0,
    ) -> None:
        self.redis = connect(url)
        self.core = LifeEventRouter(self.redis, Registry.discover(), policy)
        self.cases = list(cases)
        self.spacing = spacing
        self.retry = retry
        self.give_up = give_up
        self.accepted: list[str] = []
        self.accepted_at: list[float] = []  # time.time() each reference came back
        self.refused = 0  # attempts refused (with ``retry``, several for one case)
        self.abandoned = 0  # with ``retry``: cases still refused after ``give_up``
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

    def first_accepted_after(self, at: float) -> float | None:
        """Seconds from ``at`` to the first submission acknowledged after it; None if
        none was."""
        with self._lock:
            later = [t for t in self.accepted_at if t > at]
        return min(later) - at if later else None

    def _run(self) -> None:
        try:
            for number, case in enumerate(self.cases):
                first_try = time.monotonic()
                while True:
                    try:
                        submission = self.core.submit(
                            case["event"],
                            case["answers"],
                            case["consent"],
                            channel="chaos",
                            submission_key=f"chaos-{number}" if self.retry else None,
                            **evidence_for(case["event"], case["answers"]),
                        )
                    except (*CONNECTION_ERRORS, NotReplicated):
                        self.refused += 1
                        if self.retry and time.monotonic() - first_try < self.give_up:
                            time.sleep(self.spacing)
                            continue
                        self.abandoned += self.retry
                    else:
                        with self._lock:
                            self.accepted.append(submission.ref)
                            self.accepted_at.append(time.time())
                    break
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


def as_text(value: bytes | str) -> str:
    """A Redis reply as text (the clients here do not decode)."""
    return value.decode() if isinstance(value, bytes) else value


def case_refs(redis: Redis) -> list[str]:
    """Every case key (``case:<ref>``, one colon; not histories)."""
    refs = []
    for key in redis.scan_iter(match=keys.case("*"), count=1000):
        name = as_text(key)
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
        fields = {as_text(k): as_text(v) for k, v in data.items() if not sealing.is_sealed(v)}
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


# --- several hosts: `router up` each, sharing one Redis --------------------------------------


def _wait_ok(
    url: str,
    process: subprocess.Popen[bytes],
    name: str,
    timeout: float,
    log: Callable[[], str],
) -> None:
    """Until ``url`` answers 200; fail at once if ``process`` stops meanwhile."""
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{name} stopped at start ({process.returncode}): {log()[-2000:]}")
        try:
            with opener.open(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{name} did not answer {url} in {timeout}s: {log()[-2000:]}")


class Host:
    """One host of a deployment, as `router up` runs it with ``REDIS_URL`` set: a
    worker supervisor and its workers, and a web front door (gunicorn), with a data
    folder and port of its own. Started in a session of its own, so that ``kill``
    takes every process of it at once, as losing the machine would."""

    def __init__(self, name: str, folder: Path, redis_url: str) -> None:
        self.name = name
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        for unset in ("REDIS_SENTINELS", "TUO_PUBLIC_URL", metrics.FOLDER_ENV):
            self.env.pop(unset, None)
        self.env.update(
            REDIS_URL=redis_url,
            ROUTER_DATA_DIR=str(folder),
            # The chaos workload's retries (POLICY), as the other scenarios' workers.
            ROUTER_RETRY_MAX=str(POLICY.max_retries),
            ROUTER_RETRY_BASE_SECONDS=str(POLICY.base_seconds),
            ROUTER_RETRY_CAP_SECONDS=str(POLICY.cap_seconds),
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.killed_at: float | None = None

    def start(self) -> Host:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "router-up.log").open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "router", "up", "--port", str(self.port)],
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until its /readyz answers 200 (Redis reachable, a worker beating)."""
        assert self.process is not None
        _wait_ok(f"{self.url}/readyz", self.process, self.name, timeout, self.log)

    def log(self) -> str:
        path = self.folder / "router-up.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def processes(self) -> list[int]:
        """The pids of its session: `router up`, its workers, gunicorn and its workers."""
        if self.process is None:
            return []
        session = self.process.pid
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    rest = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                    if int(rest[3]) == session and rest[0] not in ("Z", "X"):
                        found.append(int(entry))
        return found

    def kill(self) -> int:
        """SIGKILL every process of the host at once; return how many there were."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.name} had stopped (exit {self.process.returncode}): {self.log()[-3000:]}"
            )
        count = len(self.processes())
        self.killed_at = time.time()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        return count

    def stop(self) -> None:
        """Ctrl-C's way (SIGTERM to `router up`, which stops what it started); then
        SIGKILL whatever of its session is left."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


class FrontDoor:
    """A web front door on its own, as `router up` serves it (gunicorn, its JSON API),
    on a free port: a host with no workers."""

    def __init__(self, name: str, redis_url: str) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = start_web(redis_url, "127.0.0.1", self.port)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until its /healthz answers 200."""
        _wait_ok(f"{self.url}/healthz", self.process, self.name, timeout, lambda: "")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


class Door(Protocol):
    name: str
    url: str


class Balancer:
    """A load balancer's clients: each submission goes to the next host in turn, over
    HTTP (the JSON API, with an Idempotency-Key); a host that does not answer, or
    answers 5xx, is skipped for ``skip`` seconds and the same submission is sent to
    the next host with the same key, until one gives a reference (or ``give_up``)."""

    def __init__(
        self,
        hosts: Sequence[Door],
        cases: Sequence[dict[str, Any]],
        token: str,
        spacing: float,
        give_up: float = 60.0,
        skip: float = 5.0,
    ) -> None:
        self.hosts = list(hosts)
        self.cases = list(cases)
        self.token = token
        self.spacing = spacing
        self.give_up = give_up
        self.skip = skip
        self.accepted: list[str] = []
        self.accepted_at: list[float] = []
        self.served: dict[str, int] = {h.name: 0 for h in hosts}
        self.refused = 0  # attempts a host did not answer, or answered 5xx
        self.abandoned = 0
        self.error: BaseException | None = None
        self._down_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="chaos-balancer", daemon=True)

    def start(self) -> Balancer:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def refs(self) -> list[str]:
        with self._lock:
            return list(self.accepted)

    def first_accepted_after(self, at: float) -> float | None:
        with self._lock:
            later = [t for t in self.accepted_at if t > at]
        return min(later) - at if later else None

    def _post(self, host: Door, body: dict[str, Any], key: str) -> str | None:
        """The reference ``host`` gave, or None if it did not answer or answered 5xx."""
        request = urllib.request.Request(
            f"{host.url}/api/v1/submissions",
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token}",
                "Idempotency-Key": key,
            },
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=30) as answer:
                ref = reference.normalise(str(json.loads(answer.read())["reference"]))
        except urllib.error.HTTPError as error:
            with error:
                if error.code < 500:
                    raise AssertionError(f"{host.name} refused {key}: {error.code}") from None
            return None
        except (urllib.error.URLError, OSError):
            return None
        if ref is None:
            raise AssertionError(f"{host.name} gave {key} no reference")
        return ref

    def _run(self) -> None:
        turn = 0
        try:
            for number, body in enumerate(self.cases):
                key, first_try = f"chaos-host-{number}", time.monotonic()
                while True:
                    now = time.monotonic()
                    live = [h for h in self.hosts if self._down_until.get(h.name, 0) <= now]
                    host = (live or self.hosts)[turn % len(live or self.hosts)]
                    turn += 1
                    ref = self._post(host, body, key)
                    if ref is not None:
                        with self._lock:
                            self.accepted.append(ref)
                            self.accepted_at.append(time.time())
                            self.served[host.name] += 1
                        break
                    self.refused += 1
                    self._down_until[host.name] = time.monotonic() + self.skip
                    if time.monotonic() - first_try > self.give_up:
                        self.abandoned += 1
                        break
                    time.sleep(self.spacing)
                time.sleep(self.spacing)
        except BaseException as error:  # noqa: BLE001 - reported by join()
            self.error = error

    def join(self, timeout: float = 300.0) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError("the balancer did not finish")
        if self.error is not None:
            raise AssertionError(f"submitting failed: {self.error!r}") from self.error
