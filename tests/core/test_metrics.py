"""Issue 16, item 3: the Prometheus counters are counted where things happen (a report
stored, a batch of deliveries settled, a task done at a counter), once each, and every
process's counts are summed when ``PROMETHEUS_MULTIPROC_DIR`` is shared."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from router import metrics
from router.adapters.mocks import Faults, configure_faults
from router.adapters.registry import Registry
from router.assisted.staff import Staff
from router.delivery.batch import Dispatcher
from router.exceptions import ValidationFailed
from router.service import LifeEventRouter
from tests.support.counter import photocard_change
from tests.support.paths import ROOT
from tests.support.samples import sample, submit_to_core


def counted(name: str, **labels: str) -> float:
    """This process's own count (the tests run without PROMETHEUS_MULTIPROC_DIR)."""
    return metrics.OWN.get_sample_value(name, labels) or 0.0


def samples_of(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, read with prometheus-client's own parser."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_a_report_stored_is_counted_once_by_event_and_channel(core: LifeEventRouter) -> None:
    before = counted("tuo_submissions_total", event="death", channel="web")
    answers, consent = sample("death")["answers"], sample("death")["consent"]
    core.submit("death", answers, consent, channel="web", submission_key="k-1")
    core.submit("death", answers, consent, channel="web", submission_key="k-1")  # a repeat
    assert counted("tuo_submissions_total", event="death", channel="web") == before + 1
    with pytest.raises(ValidationFailed):
        core.submit("death", {}, consent)  # refused: nothing stored, nothing counted
    assert counted("tuo_submissions_total", event="death", channel="web") == before + 1


@pytest.mark.parametrize(
    ("channel", "label"),
    [("web", "web"), ("counter", "counter"), ("api:acme-app", "api"), ("my laptop", "other")],
)
def test_a_channel_is_counted_by_its_kind_only(channel: str, label: str) -> None:
    # An API client's name, or whatever `router submit --channel` was given, is no label.
    assert metrics.channel_label(channel) == label


def test_each_delivery_outcome_and_time_to_tell_is_counted_after_its_batch_is_stored(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    configure_faults(redis, "hmrc", Faults(fail_first=1))
    configure_faults(redis, "council", Faults(permanent_rate=1.0))
    before = {
        (d, o): counted("tuo_deliveries_total", department=d, outcome=o)
        for d in ("dwp", "hmrc", "council")
        for o in metrics.OUTCOMES
    }
    told_before = counted("tuo_time_to_tell_seconds_count", department="dwp")
    submit_to_core(core, "death")
    dispatcher = Dispatcher(redis, registry)
    for name in ("dwp", "hmrc", "council"):
        dispatcher.drain_now(name)

    def grew(department: str, outcome: str) -> float:
        now = counted("tuo_deliveries_total", department=department, outcome=outcome)
        return now - before[department, outcome]

    assert (grew("dwp", "delivered"), grew("dwp", "retried"), grew("dwp", "failed")) == (1, 0, 0)
    # hmrc failed once: retried, and not yet due again.
    assert (grew("hmrc", "delivered"), grew("hmrc", "retried")) == (0, 1)
    assert (grew("council", "failed"), grew("council", "delivered")) == (1, 0)
    assert counted("tuo_time_to_tell_seconds_count", department="dwp") == told_before + 1


def test_a_task_done_at_a_counter_is_counted_and_a_refused_one_is_not(
    core: LifeEventRouter,
) -> None:
    sent = photocard_change(core)
    clerk = Staff("ann", core.case(sent.ref).branch, "clerk")
    photos = counted("tuo_counter_tasks_completed_total", task="photo")
    checks = counted("tuo_counter_tasks_completed_total", task="identity_check")
    with pytest.raises(ValidationFailed):  # the identity check comes first
        core.desk.complete(sent.ref, "photo", clerk)
    assert counted("tuo_counter_tasks_completed_total", task="photo") == photos
    core.desk.record_identity(sent.ref, "passport", "123A", clerk)
    core.desk.complete(sent.ref, "photo", clerk)
    assert counted("tuo_counter_tasks_completed_total", task="identity_check") == checks + 1
    assert counted("tuo_counter_tasks_completed_total", task="photo") == photos + 1


COUNT_ONCE = (
    "from router import metrics; metrics.submitted('birth', 'web'); "
    "metrics.settled('dwp', [0.3]); import os; print(os.getpid())"
)


def test_counts_from_two_processes_sharing_the_folder_are_summed(tmp_path: Path) -> None:
    env = dict(os.environ, **{metrics.FOLDER_ENV: str(tmp_path)}, PYTHONPATH=str(ROOT))
    pids = {
        subprocess.run(
            [sys.executable, "-c", COUNT_ONCE], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(pids) == 2
    found = samples_of(metrics.exposition(path=str(tmp_path)))
    assert found["tuo_submissions_total", frozenset({("event", "birth"), ("channel", "web")})] == 2
    dwp = frozenset({("department", "dwp")})
    assert found["tuo_deliveries_total", dwp | {("outcome", "delivered")}] == 2
    assert found["tuo_time_to_tell_seconds_bucket", dwp | {("le", "0.25")}] == 0
    assert found["tuo_time_to_tell_seconds_bucket", dwp | {("le", "0.5")}] == 2
    assert found["tuo_time_to_tell_seconds_count", dwp] == 2
    # A process that exits keeps its counts; the next `router up` starts from none.
    metrics.empty_folder(tmp_path)
    assert b"tuo_submissions_total{" not in metrics.exposition(path=str(tmp_path))


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def test_the_sample_dashboard_reads_only_what_metrics_exposes(core: LifeEventRouter) -> None:
    families = text_string_to_metric_families(core.metrics().decode())
    exposed = {f.name + suffix for f in families for suffix in SUFFIXES.get(f.type, ())}
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] == "tell-us-once"
    read = set()
    for panel in dashboard["panels"]:
        assert {"gridPos", "datasource", "targets", "title"} <= set(panel), panel["title"]
        for target in panel["targets"]:
            read |= set(re.findall(r"\btuo_\w+", target["expr"]))
    assert read and read <= exposed, read - exposed
    # Every family is on it somewhere.
    assert {name.removesuffix("_bucket") for name in read} >= {
        "tuo_submissions_total",
        "tuo_deliveries_total",
        "tuo_time_to_tell_seconds",
        "tuo_queue_depth",
        "tuo_breaker_state",
        "tuo_counter_tasks_completed_total",
    }
