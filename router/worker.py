"""RQ workers: one process per department queue, supervised.

A worker listening on a single queue dequeues with BLMOVE, which RQ makes safe against
a crash between taking a job and recording it; that, and isolation (a slow department
ties up only its own process), is why each department gets its own process rather
than one worker listening on every queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from router import fanout, recovery
from router.adapters.registry import Registry
from router.queues import queue_for

log = logging.getLogger(__name__)

# How often a supervisor looks for departments added while it runs.
FOLLOW_SECONDS = 2.0


def run_worker(redis_url: str, department: str, burst: bool = False) -> None:
    """Work one department's queue in this process (with the scheduler, for retries)."""
    connection = Redis.from_url(redis_url)
    registry = Registry.discover(connection)
    registry.get(department)  # refuse to work a queue nobody can deliver
    fanout.set_registry(registry)
    queue = Queue(queue_for(department), connection=connection, serializer=JSONSerializer)
    # RQ's scheduler (it moves due retries onto the queue) runs as a thread on the
    # recovery beat rather than as RQ's forked child, which a SIGKILL of this process
    # would leave running as an orphan.
    scheduler = RQScheduler(
        [queue],
        connection=connection,
        interval=1,
        serializer=JSONSerializer,
        name=scheduler_name(department, os.getpid()),
    )

    rescue = recovery.IntermediateRescue(
        Redis(connection_pool=connection.connection_pool),
        queue.key,
        queue.intermediate_queue_key,
    )

    started = recovery.StartedRescue(
        Redis(connection_pool=connection.connection_pool),
        queue.started_job_registry.key,
        fanout.FanOut(connection, registry).requeue,
    )

    def schedule() -> None:
        rescue()
        started()
        if scheduler.acquired_locks != {queue.name}:
            scheduler.acquire_locks()
        if scheduler.acquired_locks:
            scheduler.heartbeat()
            scheduler.enqueue_scheduled_jobs()

    recovery.start_background(
        Redis(connection_pool=connection.connection_pool),
        fanout.FanOut(connection, registry).requeue,
        also=schedule,
    )
    worker = SimpleWorker(
        [queue],
        connection=connection,
        serializer=JSONSerializer,
        default_result_ttl=fanout.RESULT_TTL,
    )
    try:
        worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
    finally:
        scheduler.release_locks()


def scheduler_name(department: str, pid: int) -> str:
    return f"router-{department}-{pid}"


def release_dead_scheduler_lock(redis: Redis, department: str, pid: int) -> None:
    """A worker died holding its queue's scheduler lock: free it for its successor
    now, rather than after the lock's 61 s lease."""
    key = RQScheduler.get_locking_key(queue_for(department))
    holder = redis.get(key)
    if isinstance(holder, bytes) and holder.decode() == scheduler_name(department, pid):
        redis.delete(key)


def spawn(redis_url: str, department: str) -> subprocess.Popen[bytes]:
    """Start ``router worker --department NAME`` as a child process."""
    env = dict(os.environ, REDIS_URL=redis_url)
    return subprocess.Popen(
        [sys.executable, "-m", "router", "worker", "--department", department],
        env=env,
        stdin=subprocess.DEVNULL,
    )


class Supervisor:
    """Keeps one worker process per department running; restarts any that die."""

    def __init__(self, redis_url: str, departments: Iterable[str]) -> None:
        self.redis_url = redis_url
        self.departments = list(departments)
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts = 0
        self.redis = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> None:
        for department in self.departments:
            self.children[department] = spawn(self.redis_url, department)

    def ensure(self, departments: Iterable[str]) -> list[str]:
        """Start workers for departments added since (a webhook added while running)."""
        added = [d for d in departments if d not in self.children]
        for department in added:
            self.departments.append(department)
            self.children[department] = spawn(self.redis_url, department)
        return added

    def check(self) -> None:
        """Restart any worker that has exited."""
        for department, child in list(self.children.items()):
            if child.poll() is not None:
                log.warning("worker for %s exited (%s); restarting", department, child.returncode)
                # If Redis is down too, the lock's lease runs out on its own.
                with contextlib.suppress(RedisError):
                    release_dead_scheduler_lock(self.redis, department, child.pid)
                self.children[department] = spawn(self.redis_url, department)
                self.restarts += 1

    def pids(self) -> list[int]:
        return [c.pid for c in self.children.values()]

    def stop(self, timeout: float = 15.0) -> None:
        """Ask every worker to finish its current job and stop; kill stragglers."""
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=5)
        self.children.clear()
        self.redis.close()


def supervise(redis_url: str, departments: Sequence[str], follow: bool = False) -> None:
    """Run workers for ``departments`` until SIGTERM or Ctrl-C; with ``follow``, also
    for departments registered later (webhooks added while running)."""
    supervisor = Supervisor(redis_url, departments)
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
