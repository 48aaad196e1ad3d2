"""Worker processes: by default two, each serving every department's queue.

Each process is an RQ ``SimpleWorker`` listening on every ``dept-<name>`` queue
(round-robin, so no department's wake-ups wait behind another's) whose jobs are only
wake-ups (router.delivery.fanout.drain); the deliveries themselves are sent by the process's
drain threads, one per busy department, in concurrent batches (router.delivery.batch). A worker
on several queues dequeues with BLPOP, so a kill between taking a job and recording it
can lose that job: here that loses only a wake-up, never a delivery (the deliveries
wait in Redis, and every worker's beat wakes any department with due work and no
drain). A supervisor restarts any worker process that dies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer
from rq.worker import DequeueStrategy

from router import keys, logs, metrics, redis_server, settings
from router.adapters import register
from router.adapters.registry import Registry
from router.cases import split_delivery_id
from router.delivery import batch, fanout, health, jobs, notices, recovery
from router.delivery.evidence import Release
from router.delivery.queues import queue_for
from router.delivery.registrations import Registrations
from router.retention import PURGE_SECONDS, Retention

log = logs.get_logger(__name__)

# Worker processes a supervisor runs (each serves every department).
DEFAULT_PROCESSES = 2

# Between looks at Redis while a worker waits for it to come back (a failover takes ~2 s).
RESTART_PAUSE_SECONDS = 1.0


def default_processes() -> int:
    value = os.environ.get("ROUTER_WORKER_PROCESSES", "").strip()
    return max(1, int(value)) if value else DEFAULT_PROCESSES


class _Worker(SimpleWorker):
    """RQ's SimpleWorker without its pub/sub channel. RQ listens there for commands
    (``rq.command.send_shutdown_command`` and the like), which nothing here sends: these
    workers stop on SIGTERM. Its listening thread waits up to 60 s between looks, and
    redis-py's ``PubSubWorkerThread.stop`` now joins it without a timeout, so a worker
    asked to stop could hang until the supervisor killed it 15 s later (a dozen 15 s
    teardowns in every run of the suite). One connection fewer per worker, too."""

    def __init__(self, *args: Any, asked_to_stop: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked_to_stop = asked_to_stop

    def subscribe(self) -> None:
        pass

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM or SIGINT: remember it for WorkerProcess.run, then stop as RQ does."""
        self.asked_to_stop.set()
        super().request_stop(signum, frame)


class WorkerProcess:
    """One worker process: an RQ SimpleWorker on every department's queue, whose drain
    jobs wake this process's Dispatcher, and the beat that keeps it all honest."""

    def __init__(self, redis_url: str, departments: Sequence[str] = ()) -> None:
        registry = Registry.discover(redis_server.connect(redis_url))
        wanted = list(departments) or registry.names()
        # A department nobody can deliver to (a webhook removed a moment ago) is logged
        # and skipped: refusing to start would stop every other department too.
        for name in wanted:
            if name not in registry:
                log.error("department_not_served", department=name, why="not registered")
        self.departments = [name for name in wanted if name in registry]
        # One connection per sending thread (a batch per department at a time), the
        # drain threads, RQ and the beat: redis-py's default pool stops at 100 and then
        # raises. A blocking pool makes a thread wait for a connection rather than fail.
        # Through Sentinel too (redis_server.connect): each new connection asks the
        # sentinels for the primary, so after a failover RQ's dequeue loop, which
        # retries on a connection error, and the beat carry on against the new one.
        self.redis = redis_server.connect(
            redis_url,
            blocking=True,
            max_connections=(len(self.departments) + 1) * (batch.BATCH + 2) + 8,
            timeout=30,
        )
        self.dispatcher = batch.Dispatcher(self.redis, registry)
        self.fanout = fanout.FanOut(self.redis, registry)
        self.registrations = Registrations(
            self.redis, register.discover(), Release(self.redis, self.fanout)
        )
        self.retention = Retention(self.redis)
        self._purged_at = 0.0
        self.name = health.worker_name()
        self._beat_at = 0.0
        self.beat = recovery.Beat(self.step)
        # The reporters' messages go on a thread of their own: a slow GOV.UK Notify must
        # never hold up the beat, which renews this process's leases.
        self.notices = notices.Notices(
            self.redis, titles=lambda n: registry.get(n).title if n in registry else n
        )
        self.notice_beat = recovery.Beat(self.notices.beat, notices.INTERVAL_SECONDS)

    def step(self) -> None:
        """One beat: renew this process's leases and wake keys, put back orphans (and
        drain their departments here and now), wake departments with due work, and ask
        the register again about registrations it could not confirm before; and, once a
        minute across every worker, run the retention purge (router.retention)."""
        self.dispatcher.leases.renew()
        self.dispatcher.renew_wakes()
        if time.monotonic() - self._beat_at >= health.BEAT_SECONDS:
            self._beat_at = time.monotonic()
            health.beat(self.redis, self.name)  # for router queues and /readyz
        orphans = recovery.sweep(self.redis, self.dispatcher.leases.lease_ms)
        if orphans:
            self.take_over(orphans)
        self.fanout.wake(self.departments)
        self.registrations.retry_due()
        if time.monotonic() - self._purged_at > PURGE_SECONDS:
            self._purged_at = time.monotonic()
            self.retention.run_if_due()

    def take_over(self, orphans: list[str]) -> None:
        """Drain the orphans' departments here, whoever holds their wake keys (the dead
        worker may: see router.delivery.recovery)."""
        departments = {split_delivery_id(d)[1] for d in orphans}
        here = sorted(departments & set(self.departments))
        with self.redis.pipeline(transaction=False) as pipe:
            for department in here:
                pipe.set(keys.wake(department), "1", px=keys.WAKE_MS)
            pipe.execute()
        for department in here:
            self.dispatcher.wake(department)
        elsewhere = sorted(departments - set(self.departments))
        if elsewhere:
            self.fanout.trigger(elsewhere)

    def run(self, burst: bool = False) -> None:
        """Serve until SIGTERM; with ``burst``, until nothing is left to deliver.

        RQ's work loop retries a connection lost while it waits for a job, but quits on
        one lost around a job (its heartbeat, its suspension check), and its teardown
        then fails as well. Unless asked to stop, this process waits for Redis (through
        Sentinel, the new primary) and starts a new loop: its drains, leases and beat
        carry on, where a supervisor's restart would have dropped them."""
        queues = [
            Queue(queue_for(n), connection=self.redis, serializer=JSONSerializer)
            for n in self.departments
        ]
        asked_to_stop = threading.Event()
        self.beat.start()
        self.notice_beat.start()
        try:
            with jobs.dispatching(self.dispatcher):
                if burst:
                    self.fanout.wake(self.departments)
                while True:
                    worker = _Worker(
                        queues,
                        connection=self.redis,
                        serializer=JSONSerializer,
                        default_result_ttl=fanout.RESULT_TTL,
                        asked_to_stop=asked_to_stop,
                    )
                    try:
                        worker.work(
                            burst=burst,
                            with_scheduler=False,
                            logging_level="WARNING",
                            dequeue_strategy=DequeueStrategy.ROUND_ROBIN,
                        )
                    except RedisError as error:  # RQ's teardown, Redis still away
                        log.warning("worker_loop_ended", error=type(error).__name__)
                    if burst or asked_to_stop.is_set():
                        break
                    self._wait_for_redis(asked_to_stop)
                    if asked_to_stop.is_set():
                        break
                    log.warning("worker_loop_restarted", worker=self.name)
            if burst:
                for name in self.departments:
                    self.dispatcher.drain_now(name)
        finally:
            self.beat.stop()
            self.notice_beat.stop()
            self.dispatcher.stop()
            # Redis gone too: then the name is counted gone after ALIVE_SECONDS.
            with contextlib.suppress(RedisError):
                health.stopped(self.redis, self.name)

    def _wait_for_redis(self, asked_to_stop: threading.Event) -> None:
        """Until Redis answers or SIGTERM or SIGINT asks this process to stop. RQ's own
        handlers went with its loop, so these signals are handled here meanwhile."""

        def stop(signum: int, frame: FrameType | None) -> None:
            asked_to_stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not asked_to_stop.wait(RESTART_PAUSE_SECONDS):
            if self._redis_answers():
                return

    def _redis_answers(self) -> bool:
        try:
            return bool(self.redis.ping())
        except RedisError:
            return False


def run_worker(redis_url: str, departments: Sequence[str] = (), burst: bool = False) -> None:
    """Serve ``departments`` (default: every one) in this process until SIGTERM; with
    ``burst``, until nothing is left to deliver."""
    WorkerProcess(redis_url, departments).run(burst=burst)


def spawn(redis_url: str, departments: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start ``router worker --serve --department NAME ...`` as a child process."""
    env = dict(os.environ, REDIS_URL=redis_url)
    args = [sys.executable, "-m", "router", "worker", "--serve"]
    for department in departments:
        args += ["--department", department]
    return subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL)


class Supervisor:
    """Keeps ``processes`` worker processes running, each serving every department;
    restarts any that die."""

    def __init__(
        self, redis_url: str, departments: Iterable[str], processes: int | None = None
    ) -> None:
        self.redis_url = redis_url
        self.departments = list(departments)
        self.processes = processes or default_processes()
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts = 0

    def start(self) -> None:
        if not self.departments:
            return
        for i in range(self.processes):
            self.children[f"worker-{i}"] = spawn(self.redis_url, self.departments)

    def ensure(self, departments: Iterable[str]) -> list[str]:
        """Serve exactly ``departments`` (the registry's, looked at again): those added
        since (a webhook added while running) and no longer those removed. The worker
        processes are replaced, one at a time, by ones that serve the new list; return
        the departments added."""
        wanted = list(dict.fromkeys(departments))
        added = [d for d in wanted if d not in self.departments]
        removed = [d for d in self.departments if d not in wanted]
        if not added and not removed:
            return []
        for name in removed:
            log.warning("department_not_served", department=name, why="no longer registered")
        self.departments = wanted
        if not self.children:
            self.start()
            return added
        for slot, child in list(self.children.items()):
            self.children[slot] = spawn(self.redis_url, self.departments)
            _stop_child(child, 15.0)
            metrics.process_gone(child.pid)
        return added

    def check(self) -> None:
        """Restart any worker that has exited."""
        for slot, child in list(self.children.items()):
            if child.poll() is not None:
                log.warning("worker_restarted", slot=slot, pid=child.pid, exit=child.returncode)
                metrics.process_gone(child.pid)
                self.children[slot] = spawn(self.redis_url, self.departments)
                self.restarts += 1

    def run(
        self,
        stopping: Callable[[], bool],
        follow: Redis | None = None,
        added: Callable[[str], None] | None = None,
        also: Callable[[], None] | None = None,
    ) -> None:
        """Keep the workers running until ``stopping()``. With ``follow`` (a connection),
        serve departments registered later too (webhooks added while running), telling
        ``added`` of each; ``also`` runs on every round (``router up`` watches its web
        front door with it)."""
        last_look = time.monotonic()
        failed = ""
        while not stopping():
            self.check()
            if follow is not None and time.monotonic() - last_look > settings.FOLLOW_SECONDS:
                last_look = time.monotonic()
                try:
                    found = Registry.look_again(follow)
                except Exception as error:  # noqa: BLE001 - any adapter's import error
                    # pip midway through installing an adapter, a broken one, or Redis
                    # gone a moment: keep serving what we serve; look again next round.
                    reason = f"{type(error).__name__}: {error}"
                    if reason != failed:
                        log.warning(
                            "departments_not_followed", error=reason, keeping=self.departments
                        )
                    failed = reason
                else:
                    failed = ""
                    for name in self.ensure(found.names()):
                        if added is not None:
                            added(name)
            if also is not None:
                also()
            time.sleep(0.5)

    def pids(self) -> list[int]:
        return [c.pid for c in self.children.values()]

    def stop(self, timeout: float = 15.0) -> None:
        """Ask every worker to finish its batches in hand and stop; kill stragglers."""
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            _stop_child(child, max(0.1, deadline - time.monotonic()), signalled=True)
            metrics.process_gone(child.pid)
        self.children.clear()


def _stop_child(child: subprocess.Popen[bytes], timeout: float, signalled: bool = False) -> None:
    if not signalled and child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=5)


def stop_on_signals() -> Callable[[], bool]:
    """Handle SIGTERM and SIGINT (Ctrl-C) by asking to stop; return "asked yet?".

    Handled here rather than left to KeyboardInterrupt: a shell that starts a command
    in the background sets SIGINT to "ignore", and Python would never raise it."""
    asked = threading.Event()

    def handle(signum: int, frame: object) -> None:
        asked.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return asked.is_set


def supervise(
    redis_url: str, departments: Sequence[str], follow: bool = False, processes: int | None = None
) -> None:
    """Run worker processes for ``departments`` until SIGTERM or Ctrl-C; with
    ``follow``, also for departments registered later (webhooks added while running)."""
    supervisor = Supervisor(redis_url, departments, processes)
    stopping = stop_on_signals()
    supervisor.start()
    try:
        supervisor.run(stopping, follow=redis_server.connect(redis_url) if follow else None)
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
