"""A worker process outlives a Redis connection lost under RQ's work loop.

RQ's loop retries a connection lost while it waits for a job, but not one lost in the
steps around a job (its heartbeat after the job, its suspension check before the next):
there it logs "found an unhandled exception, quitting" and returns, and its teardown then
fails too (registering the worker's death needs Redis). In CI a Sentinel failover landed
there: the one worker process of tests/delivery/test_sentinel.py exited and nothing was
told again. A worker must carry on through a failover as the beat and the drains do."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue
from rq.serializers import JSONSerializer

from router.delivery import fanout, worker
from router.delivery.queues import queue_for
from router.redis_server import RedisServer


class _GaveUp(Exception):
    pass


@pytest.fixture
def own_signals() -> Iterator[None]:
    """RQ installs its own SIGTERM and SIGINT handlers; put pytest's back afterwards, and
    give up (rather than hang the suite) if the worker never stops."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}

    def give_up(signum: int, frame: object) -> None:
        raise _GaveUp("the worker did not stop within 60 s")

    signal.signal(signal.SIGALRM, give_up)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        for number, handler in saved.items():
            signal.signal(number, handler)


def test_a_connection_lost_after_a_job_restarts_rq_s_loop_in_the_same_process(
    redis: Redis,
    redis_server: RedisServer,
    own_signals: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first job's heartbeat finds the connection reset and the teardown that follows
    is refused (the CI failure's two tracebacks); the same process then takes the second
    job with a new loop, and stops on SIGTERM as it always did."""
    calls: list[str] = []
    real_execute = worker._Worker.execute_job
    real_heartbeat = worker._Worker.heartbeat
    real_death = worker._Worker.register_death

    def execute_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = real_execute(self, *args, **kwargs)
        calls.append("job")
        return result

    def heartbeat(self: Any, *args: Any, **kwargs: Any) -> Any:
        if calls and calls[-1] == "job":  # the loop's heartbeat after a job
            calls.append("heartbeat")
            if calls.count("job") == 1:
                raise RedisConnectionError("Error while reading: Connection reset by peer")
            os.kill(os.getpid(), signal.SIGTERM)  # the second job done: ask to stop
        return real_heartbeat(self, *args, **kwargs)

    def register_death(self: Any) -> Any:
        calls.append("death")
        if calls.count("death") == 1:
            raise RedisConnectionError("Connection refused")
        return real_death(self)

    monkeypatch.setattr(worker._Worker, "execute_job", execute_job)
    monkeypatch.setattr(worker._Worker, "heartbeat", heartbeat)
    monkeypatch.setattr(worker._Worker, "register_death", register_death)
    monkeypatch.setattr(worker, "RESTART_PAUSE_SECONDS", 0.1)

    process = worker.WorkerProcess(redis_server.url_as("worker"), ["dwp"])
    queue = Queue(queue_for("dwp"), connection=redis, serializer=JSONSerializer)
    for _ in range(2):
        queue.enqueue_call(fanout.drain, args=("dwp",))

    process.run()

    assert calls == ["job", "heartbeat", "death", "job", "heartbeat", "death"]
    assert queue.count == 0


def test_a_worker_asked_to_stop_while_redis_is_away_stops(
    redis: Redis,
    redis_server: RedisServer,
    own_signals: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM while the process waits for Redis to come back ends it, with no new loop."""
    loops: list[str] = []

    def work(self: Any, *args: Any, **kwargs: Any) -> bool:
        loops.append(self.name)
        raise RedisConnectionError("Connection refused")

    def redis_answers(self: Any) -> bool:
        os.kill(os.getpid(), signal.SIGTERM)  # arrives after RQ's loop has gone
        return False

    monkeypatch.setattr(worker._Worker, "work", work)
    monkeypatch.setattr(worker, "RESTART_PAUSE_SECONDS", 0.1)
    monkeypatch.setattr(worker.WorkerProcess, "_redis_answers", redis_answers)

    worker.WorkerProcess(redis_server.url_as("worker"), ["dwp"]).run()

    assert len(loops) == 1
