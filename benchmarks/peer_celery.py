"""The fan-out written plainly on Celery: one task per (event, department), Redis
broker, acks_late, no result backend. Workers: ``celery -A benchmarks.peer_celery worker``.
"""

from __future__ import annotations

import os

from celery import Celery

from benchmarks.tasks import URL_VARIABLE, record

app = Celery("bench", broker=os.environ[URL_VARIABLE])
app.conf.update(
    task_acks_late=True,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.deliver")
def deliver(hash_key: str, field: str, latency_ms: int) -> None:
    record(hash_key, field, latency_ms)
