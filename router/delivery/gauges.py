"""The gauges of ``/metrics`` read from Redis when scraped: each department's queue
and breaker, from the same figures ``router queues`` prints (router.delivery.health),
in one round trip. Not kept per process: every process would count only its own part
of a queue that lives in Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from redis import Redis

from router.delivery import health
from router.exceptions import StoreUnavailable

QUEUE_STATES = ("pending", "retrying", "sending", "failed")
BREAKER_STATES = ("closed", "open", "half-open")  # router.delivery.breaker.state_of


class QueueGauges:
    """A prometheus-client collector: ``tuo_queue_depth{department,state}``,
    ``tuo_queue_oldest_seconds{department}``, ``tuo_breaker_state{department,state}``
    (1 for the state it is in, 0 for the others) and ``tuo_redis_up``."""

    def __init__(self, redis: Redis, departments: Callable[[], Sequence[str]]) -> None:
        self.redis = redis
        self.departments = departments

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("tuo_redis_up", "Whether Redis answered this scrape (1) or not (0).")
        try:
            figures = health.department_figures(self.redis, list(self.departments()))
        except StoreUnavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "tuo_queue_depth",
            "Deliveries per department: pending (due now), retrying (waiting for a backoff "
            "or an open breaker), sending (claimed by a worker) and failed (dead letters).",
            labels=["department", "state"],
        )
        oldest = GaugeMetricFamily(
            "tuo_queue_oldest_seconds",
            "How long the longest-waiting due delivery of each department has been due.",
            labels=["department"],
        )
        state = GaugeMetricFamily(
            "tuo_breaker_state",
            "Each department's circuit breaker: 1 for the state it is in, 0 for the others.",
            labels=["department", "state"],
        )
        for f in figures:
            for name in QUEUE_STATES:
                depth.add_metric([f.department, name], getattr(f, name))
            oldest.add_metric([f.department], f.oldest_seconds)
            for name in BREAKER_STATES:
                state.add_metric([f.department, name], 1 if f.breaker == name else 0)
        yield depth
        yield oldest
        yield state
