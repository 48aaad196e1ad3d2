"""Prometheus metrics: what happened, counted where it happens, read at ``/metrics``.

Counters and the time-to-tell histogram are kept by each process that does the work
(the web front door's gunicorn workers take submissions, the delivery workers settle
deliveries, the counter desk completes tasks). With ``PROMETHEUS_MULTIPROC_DIR`` set
(``router up`` sets it to a folder in its data folder, emptied at start), every
process writes its figures to files there and ``exposition`` sums them, so a scrape
of any web process counts them all. Without it each process counts only its own.

Queue depths and breaker states are not counted here: they are read from Redis when
scraped (router.delivery.gauges), as every process would otherwise disagree.

Label values are only ever event names, channels, department names, task kinds and
outcomes: never a reference, and nothing a person typed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

# Where every process of one host writes its figures (prometheus-client's own variable,
# read by it when a process first imports it).
FOLDER_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The time from submission to told, in seconds: the bounds of the histogram's buckets
# (the last bucket, past a week, has none). Counter visits make days a normal time.
# The per-minute outcome records in Redis (router.delivery.health) use the same.
TELL_BOUNDS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)

# The channels a submission is counted under; any other (``router submit --channel``
# takes any word) is "other", and an API client's ``api:<name>`` is "api".
CHANNELS = frozenset({"web", "counter", "api", "cli"})
OUTCOMES = ("delivered", "retried", "failed")

# Our own metrics only: no process or platform collectors, whose figures would differ
# from process to process.
OWN = CollectorRegistry(auto_describe=True)

SUBMISSIONS = Counter(
    "tuo_submissions",
    "Life events reported (a repeat of one submission is not counted again).",
    ["event", "channel"],
    registry=OWN,
)
DELIVERIES = Counter(
    "tuo_deliveries",
    "Delivery attempts settled, by outcome: delivered, retried (will be tried again) "
    "or failed (retries exhausted or refused for good).",
    ["department", "outcome"],
    registry=OWN,
)
COUNTER_TASKS = Counter(
    "tuo_counter_tasks_completed",
    "Tasks completed at a Post Office counter (identity_check, photo, cash_voucher, help).",
    ["task"],
    registry=OWN,
)
TIME_TO_TELL = Histogram(
    "tuo_time_to_tell_seconds",
    "Seconds from a report's submission to its department's answer, per delivery told.",
    ["department"],
    buckets=TELL_BOUNDS,
    registry=OWN,
)


def channel_label(channel: str) -> str:
    """The channel a submission is counted under: one of CHANNELS, or "other"."""
    kind = channel.partition(":")[0]
    return kind if kind in CHANNELS else "other"


def submitted(event: str, channel: str) -> None:
    """Count a report stored (its event's name and the channel it came through)."""
    SUBMISSIONS.labels(event=event, channel=channel_label(channel)).inc()


def settled(
    department: str, told_after: Sequence[float], retried: int = 0, failed: int = 0
) -> None:
    """Count one batch's outcomes for ``department``, once its transaction is stored:
    ``told_after`` holds each delivered delivery's seconds since its submission."""
    if told_after:
        DELIVERIES.labels(department=department, outcome="delivered").inc(len(told_after))
        histogram = TIME_TO_TELL.labels(department=department)
        for seconds in told_after:
            histogram.observe(max(0.0, seconds))
    if retried:
        DELIVERIES.labels(department=department, outcome="retried").inc(retried)
    if failed:
        DELIVERIES.labels(department=department, outcome="failed").inc(failed)


def task_completed(task: str) -> None:
    """Count a task done at a counter."""
    COUNTER_TASKS.labels(task=task).inc()


def folder() -> str | None:
    """The folder every process writes its figures to, if multiprocess mode is on."""
    return os.environ.get(FOLDER_ENV, "").strip() or None


def empty_folder(path: Path) -> None:
    """Make ``path`` the folder for a fresh start: created if need be, and the figures
    of processes from an earlier run removed (else they would be counted again)."""
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()


def process_gone(pid: int) -> None:
    """A process that wrote figures has exited (gunicorn's ``child_exit``, the worker
    supervisor): its counts stay, as Prometheus counters must; only a live gauge would
    be removed (prometheus-client's bookkeeping; we keep none in files)."""
    path = folder()
    if path and os.path.isdir(path):
        mark_process_dead(pid, path)


def exposition(collectors: Iterable[Collector] = (), path: str | None = None) -> bytes:
    """The text exposition of every process's figures (those written to ``path``,
    default ``PROMETHEUS_MULTIPROC_DIR``; without one, this process's), then what
    ``collectors`` read at this moment."""
    registry = CollectorRegistry(auto_describe=False)
    path = path or folder()
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(OWN)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)
