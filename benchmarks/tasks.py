"""The work every system under test does per delivery: wait the department's latency,
then one HSET recording when it finished (the benchmark reads those times back)."""

from __future__ import annotations

import os
import threading
import time

from redis import Redis

from router.redis_server import connect

URL_VARIABLE = "BENCH_REDIS_URL"

_client: Redis | None = None
_lock = threading.Lock()


def client() -> Redis:
    """One client per process, made on first use (after any fork)."""
    global _client
    with _lock:
        if _client is None:
            _client = connect(os.environ[URL_VARIABLE])
        return _client


def record(hash_key: str, field: str, latency_ms: int) -> None:
    """Sleep ``latency_ms``, then HSET ``hash_key field <finish time>``; an empty field
    records this process's pid instead (used by warm-up tasks)."""
    if latency_ms:
        time.sleep(latency_ms / 1000)
    client().hset(hash_key, field or str(os.getpid()), repr(time.time()))


def rq_record(hash_key: str, field: str) -> None:
    """The bare-RQ job: one HSET on the job's own connection, as RQ code usually does."""
    from rq import get_current_job

    job = get_current_job()
    assert job is not None
    job.connection.hset(hash_key, field or str(os.getpid()), repr(time.time()))
