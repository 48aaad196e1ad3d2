"""Worker processes: by default two, each serving every department's queue.

Each process is an RQ ``SimpleWorker`` listening on every ``dept-<name>`` queue
(round-robin, so no department's wake-ups wait behind another's) whose jobs are only
wake-ups (router.fanout.drain); the deliveries themselves are sent by the process's
drain threads, one per busy department, in concurrent batches (router.batch). A worker
on several queues dequeues with BLPOP, so a kill between taking a job and recording it
can lose that job: here that loses only a wake-up, never a delivery (the deliveries
wait in Redis, and every worker's beat wakes any department with due work and no
drain). A supervisor restarts any worker process that dies.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence

from redis import BlockingConnectionPool, Redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer
from rq.worker import DequeueStrategy

from router import keys
from router.adapters.registry import Registry
from router.cases import split_delivery_id
from router.delivery import batch, fanout, recovery
from router.delivery.queues import queue_for

log = logging.getLogger(__name__)

# How often a supervisor looks for departments added while it runs.
FOLLOW_SECONDS = 2.0
# Worker processes a supervisor runs (each serves every department).
DEFAULT_PROCESSES = 2


def default_processes() -> int:
    value = os.environ.get("ROUTER_WORKER_PROCESSES", "").strip()
    return max(1, int(value)) if value else DEFAULT_PROCESSES


def run_worker(redis_url: str, departments: Sequence[str] = (), burst: bool = False) -> None:
    """Serve ``departments`` (default: every one) in this process until SIGTERM; with
    ``burst``, until nothing is left to deliver."""
    registry = Registry.discover(Redis.from_url(redis_url))
    names = list(departments) or registry.names()
    # One connection per sending thread (a batch per department at a time), the drain
    # threads, RQ and the beat: redis-py's default pool stops at 100 and then raises.
    # A blocking pool makes a thread wait for a connection rather than fail.
    pool = BlockingConnectionPool.from_url(
        redis_url, max_connections=(len(names) + 1) * (batch.BATCH + 2) + 8, timeout=30
    )
    connection = Redis(connection_pool=pool)
    for name in names:
        registry.get(name)  # refuse to work a queue nobody can deliver
    fanout.set_registry(registry)
    dispatcher = batch.Dispatcher(connection, registry)
    batch.install(dispatcher)
    waker = fanout.FanOut(connection, registry)
    background = Redis(connection_pool=connection.connection_pool)

    def take_over(orphans: list[str]) -> None:
        # Drain the orphans' departments here and now, whoever holds their wake keys.
        departments = {split_delivery_id(d)[1] for d in orphans}
        here = sorted(departments & set(names))
        with background.pipeline(transaction=False) as pipe:
            for department in here:
                pipe.set(keys.wake(department), "1", px=keys.WAKE_MS)
            pipe.execute()
        for department in here:
            dispatcher.wake(department)
        elsewhere = sorted(departments - set(names))
        if elsewhere:
            waker.trigger(elsewhere)

    def beat() -> None:
        recovery.beat(
            background,
            lambda: waker.wake(names),
            also=dispatcher.renew_wakes,
            recovered=take_over,
        )

    recovery.start_background(background, beat)
    queues = [Queue(queue_for(n), connection=connection, serializer=JSONSerializer) for n in names]
    worker = SimpleWorker(
        queues,
        connection=connection,
        serializer=JSONSerializer,
        default_result_ttl=fanout.RESULT_TTL,
    )
    try:
        if burst:
            waker.wake(names)
        worker.work(
            burst=burst,
            with_scheduler=False,
            logging_level="WARNING",
            dequeue_strategy=DequeueStrategy.ROUND_ROBIN,
        )
        if burst:
            for name in names:
                dispatcher.drain_now(name)
    finally:
        dispatcher.stop()


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
        """Serve departments added since (a webhook added while running): the worker
        processes are replaced, one at a time, by ones that serve them too."""
        added = [d for d in departments if d not in self.departments]
        if not added:
            return []
        self.departments += added
        if not self.children:
            self.start()
            return added
        for slot, child in list(self.children.items()):
            self.children[slot] = spawn(self.redis_url, self.departments)
            _stop_child(child, 15.0)
        return added

    def check(self) -> None:
        """Restart any worker that has exited."""
        for slot, child in list(self.children.items()):
            if child.poll() is not None:
                log.warning("worker %s exited (%s); restarting", slot, child.returncode)
                self.children[slot] = spawn(self.redis_url, self.departments)
                self.restarts += 1

    def pids(self) -> list[int]:
        return [c.pid for c in self.children.values()]

    def stop(self, timeout: float = 15.0) -> None:
        """Ask every worker to finish its batches in hand and stop; kill stragglers."""
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            _stop_child(child, max(0.1, deadline - time.monotonic()))
        self.children.clear()


def _stop_child(child: subprocess.Popen[bytes], timeout: float) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=5)


def supervise(
    redis_url: str, departments: Sequence[str], follow: bool = False, processes: int | None = None
) -> None:
    """Run worker processes for ``departments`` until SIGTERM or Ctrl-C; with
    ``follow``, also for departments registered later (webhooks added while running)."""
    supervisor = Supervisor(redis_url, departments, processes)
    connection = Redis.from_url(redis_url)
    last_look = time.monotonic()
    supervisor.start()
    stopping = False

    def handle(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    try:
        while not stopping:
            supervisor.check()
            if follow and time.monotonic() - last_look > FOLLOW_SECONDS:
                last_look = time.monotonic()
                supervisor.ensure(Registry.discover(connection).names())
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
