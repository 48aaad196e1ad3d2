"""The fan-out written plainly on Dramatiq: one message per (event, department), Redis
broker, default middleware. Workers: ``dramatiq benchmarks.peer_dramatiq``.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from benchmarks.tasks import URL_VARIABLE, record

broker = RedisBroker(url=os.environ[URL_VARIABLE])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench")
def deliver(hash_key: str, field: str, latency_ms: int) -> None:
    record(hash_key, field, latency_ms)
