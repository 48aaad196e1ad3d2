"""Issue 16, item 3: a report sent by `router submit` and delivered by real worker
processes, read back at ``/metrics`` with prometheus-client's own parser: every
process's counts summed (multiprocess mode), the queues and breakers read from Redis,
and no label value that is not an event, a channel, a department, a state or an
outcome."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from router import metrics, reference
from router.adapters.registry import Registry
from router.catalogue import EVENTS
from router.delivery import health
from router.delivery.worker import Supervisor
from router.redis_server import RedisServer
from tests.support.paths import EXAMPLES
from tests.support.processes import router_cli, wait_settled
from tests.support.samples import sample

pytestmark = pytest.mark.slow


@pytest.fixture
def metrics_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PROMETHEUS_MULTIPROC_DIR for the processes this test starts, as `router up`
    sets one; the web app under test reads it."""
    folder = tmp_path / "metrics"
    metrics.empty_folder(folder)
    monkeypatch.setenv(metrics.FOLDER_ENV, str(folder))
    return folder


def test_a_report_delivered_by_real_workers_is_counted_at_metrics(
    metrics_folder: Path,
    client: FlaskClient,
    redis: Redis,
    redis_server: RedisServer,
    registry: Registry,
    cli_env: dict[str, str],
) -> None:
    pool = Supervisor(redis_server.url_as("worker"), registry.names())
    pool.start()
    try:
        # Both started before the report is sent (a worker stopped while it starts up
        # can take the supervisor's whole 15 s to stop: RQ's pubsub thread).
        deadline = time.monotonic() + 20
        while len(health.workers_alive(redis)) < len(pool.pids()) and time.monotonic() < deadline:
            time.sleep(0.1)
        env = {**cli_env, metrics.FOLDER_ENV: str(metrics_folder)}
        submitted = router_cli("submit", str(EXAMPLES / "death.json"), env=env)
        assert submitted.returncode == 0, submitted.stderr
        ref = reference.normalise(submitted.stdout.split()[1])
        assert ref is not None
        case = wait_settled(redis, ref)
    finally:
        pool.stop()  # what they counted outlives them
    told = sorted(n for n, d in case.deliveries.items() if d.state.value == "delivered")
    assert told == sorted(sample("death")["consent"])

    page = client.get("/metrics")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(family: str, sample_name: str, **labels: str) -> float:
        found = [
            s.value
            for s in families[family].samples
            if s.name == sample_name and s.labels == labels
        ]
        assert len(found) == 1, (sample_name, labels, families[family].samples)
        return found[0]

    assert value("tuo_submissions", "tuo_submissions_total", event="death", channel="cli") == 1
    for name in told:
        assert (
            value("tuo_deliveries", "tuo_deliveries_total", department=name, outcome="delivered")
            == 1
        )
        histogram = "tuo_time_to_tell_seconds"
        assert value(histogram, f"{histogram}_count", department=name) == 1
        assert value(histogram, f"{histogram}_bucket", department=name, le="+Inf") == 1
        assert value("tuo_breaker_state", "tuo_breaker_state", department=name, state="closed") == 1
        for state in ("pending", "retrying", "sending", "failed"):
            assert value("tuo_queue_depth", "tuo_queue_depth", department=name, state=state) == 0

    # Labels name only events, channels, departments, states, outcomes and bucket bounds.
    allowed = (
        set(EVENTS)
        | metrics.CHANNELS
        | {"other"}
        | set(registry.names())
        | set(metrics.OUTCOMES)
        | {"pending", "retrying", "sending", "failed", "closed", "open", "half-open"}
        | {"identity_check", "photo", "cash_voucher", "help"}
    )
    for family in families.values():
        for s in family.samples:
            assert {v for k, v in s.labels.items() if k != "le"} <= allowed, s
    assert ref not in text and reference.display(ref) not in text
