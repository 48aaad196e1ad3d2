"""One benchmark run on one private Redis: bare RQ, Celery, Dramatiq and the router.

    .venv/bin/python -m benchmarks.run [--events N] [--quick]

Starts its own ``redis-server`` (router.redis_server.start_redis: append-only file,
``appendfsync always``, data in a temporary folder), runs every part against it, stops
every process it started by pid, prints a table and writes the same figures as JSON to
``benchmarks/results/<UTC timestamp>.json``. See benchmarks/README.md for what each
figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from benchmarks import guarantees as guarantee_parts
from benchmarks import retention as retention_parts
from benchmarks.bare_flask import CASE_BYTES
from benchmarks.procs import ROOT, Group
from benchmarks.tasks import URL_VARIABLE, rq_record
from router import keys, routing, sealing
from router.adapters.mocks import Faults, configure_faults
from router.adapters.registry import Registry
from router.delivery.batch import BATCH
from router.delivery.worker import Supervisor, default_processes
from router.redis_server import RedisServer, connect, start_redis
from router.service import LifeEventRouter

DEPARTMENTS: tuple[str, ...] = ("dwp", "dvla", "payments", "hmrc", "council")
LATENCIES: tuple[int, ...] = (0, 20)
PHASES: tuple[str, ...] = (
    "baseline",
    "celery",
    "dramatiq",
    "router",
    "latency",
    "morning",
    "frontdoor",
    "memory",
    "sealing",
    "guarantees",
    "retention",
)
RESULTS_DIR = Path(__file__).resolve().parent / "results"

PEER_PROCESSES = 2
DRAMATIQ_THREADS = 8
BASELINE_QUEUE = "bench"
DONE_KEY = "bench:{system}:done"
WARM_KEY = "bench:{system}:warm"
# Give up on a part when nothing has progressed for this long.
STALL_SECONDS = 60.0
POLL_SECONDS = 0.05
# Commands the benchmark itself sends to take its measurements; left out of the counts.
OWN_COMMANDS = frozenset({"info", "config|resetstat", "flushall", "scard"})
FRONT_DOOR_CLIENTS = 20
FRONT_DOOR_THREADS = 2
# Threads sending work, for every system alike (--producers).
PRODUCERS = 4
T = TypeVar("T")
R = TypeVar("R")


class BenchError(RuntimeError):
    pass


def say(text: str) -> None:
    print(text, flush=True)


# --- measuring -----------------------------------------------------------------------------


def redis_cpu(redis: Redis) -> float:
    info = redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Window:
    """Redis commands and CPU time (workers, Redis, this process) over one measurement."""

    def __init__(self, redis: Redis, workers: Group) -> None:
        self.redis = redis
        self.workers = workers
        self.redis_cpu = self.own_cpu = self.workers_cpu = 0.0

    def start(self) -> None:
        self.redis.config_resetstat()
        self.redis_cpu = redis_cpu(self.redis)
        self.own_cpu = own_cpu()
        self.workers_cpu = self.workers.cpu_seconds()

    def finish(self, units: int) -> dict[str, Any]:
        """Per-unit figures (a unit is one job or one delivery)."""
        workers = self.workers.cpu_seconds() - self.workers_cpu
        producer = own_cpu() - self.own_cpu
        server = redis_cpu(self.redis) - self.redis_cpu
        stats = self.redis.info("commandstats")
        calls = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if name.removeprefix("cmdstat_") not in OWN_COMMANDS
        }
        top = sorted(calls.items(), key=lambda kv: -kv[1])[:10]
        return {
            "redis_commands_per_delivery": sum(calls.values()) / units,
            "redis_commands_top_per_delivery": {k: round(v / units, 2) for k, v in top},
            "worker_cpu_ms_per_delivery": 1000 * workers / units,
            "redis_cpu_ms_per_delivery": 1000 * server / units,
            "producer_cpu_ms_per_delivery": 1000 * producer / units,
        }


def wait_for(count: Callable[[], int], target: int, what: str, group: Group | None = None) -> None:
    """Poll ``count()`` until it reaches ``target``; fail when it stalls."""
    last, changed = -1, time.monotonic()
    while True:
        now_count = count()
        if now_count >= target:
            return
        now = time.monotonic()
        if now_count != last:
            last, changed = now_count, now
        elif now - changed > STALL_SECONDS:
            tail = f"\n{group.log_tail()}" if group is not None else ""
            raise BenchError(
                f"{what}: stuck at {now_count}/{target} for {STALL_SECONDS:.0f}s{tail}"
            )
        time.sleep(POLL_SECONDS)


def done_times(redis: Redis, key: str) -> list[float]:
    return [float(v) for v in redis.hvals(key)]


def produce(items: Sequence[T], send: Callable[[T], R], threads: int) -> list[R]:
    """``send`` every item from ``threads`` producer threads at once (every system gets
    the same number: a front door is many threads, and a producer that waits for
    Redis's fsync one call at a time would set every system's pace); results in order."""
    if threads <= 1:
        return [send(item) for item in items]
    with ThreadPoolExecutor(threads, thread_name_prefix="producer") as pool:
        return list(pool.map(send, items))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=1000, method="inclusive")[round(q * 1000) - 1]


# --- the workload ---------------------------------------------------------------------------


def workload(seed: int, count: int, registry: Registry) -> list[dict[str, Any]]:
    """``count`` valid events of every type, personal details varied (the chaos suite's
    seeded generator), each consenting to every department interested in its event."""
    from tests.chaos.workload import workload as chaos_workload

    cases = chaos_workload(seed, count)
    for case in cases:
        case["consent"] = sorted(a.name for a in routing.interested(case["event"], registry))
    return cases


def planned_digital(core: LifeEventRouter, cases: Iterable[dict[str, Any]]) -> int:
    """How many digital deliveries the router will plan for these events."""
    total = 0
    for case in cases:
        event, clean, consent = core.validate(case["event"], case["answers"], case["consent"])
        plan = routing.plan(event.name, clean, consent, core.adapters)
        total += sum(1 for d in plan.deliveries if d.mode == "digital")
    return total


# --- the run's context ------------------------------------------------------------------------


@dataclass
class Context:
    server: RedisServer
    redis: Redis
    logs: Path
    args: argparse.Namespace

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[URL_VARIABLE] = self.url
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.pop("ROUTER_ADAPTERS", None)
        return env

    def fresh(self) -> None:
        """Empty the Redis between parts (the server and its settings stay)."""
        self.redis.flushall()


# --- 1. baseline: bare RQ ---------------------------------------------------------------------


def run_baseline(ctx: Context, jobs: int) -> dict[str, Any]:
    """``jobs`` one-HSET jobs enqueued with enqueue_many on one queue, drained by two
    SimpleWorker processes; rate from the first job done to the last."""
    ctx.fresh()
    redis = ctx.redis
    key = DONE_KEY.format(system="rq")
    group = Group("rq", ctx.logs)
    try:
        for i in range(PEER_PROCESSES):
            group.spawn(
                [
                    sys.executable,
                    "-m",
                    "rq.cli",
                    "worker",
                    "--worker-class",
                    "rq.worker.SimpleWorker",
                    "--serializer",
                    "json",
                    "--url",
                    ctx.url,
                    "--name",
                    f"bench-rq-{i}",
                    "--logging_level",
                    "WARNING",
                    BASELINE_QUEUE,
                ],
                ctx.env,
            )
        wait_for(lambda: int(redis.scard("rq:workers")), PEER_PROCESSES, "RQ workers", group)
        queue = Queue(BASELINE_QUEUE, connection=redis, serializer=JSONSerializer)
        datas = [Queue.prepare_data(rq_record, args=(key, str(i))) for i in range(jobs)]
        window = Window(redis, group)
        window.start()
        started = time.time()
        with redis.pipeline() as pipe:
            queue.enqueue_many(datas, pipeline=pipe)
            pipe.execute()
        enqueued = time.time() - started
        wait_for(lambda: int(redis.hlen(key)), jobs, "bare RQ jobs", group)
        times = done_times(redis, key)
        figures = window.finish(jobs)
    finally:
        group.stop()
    first, last = min(times), max(times)
    return {
        "baseline_rq_jobs": jobs,
        "baseline_rq_worker_processes": PEER_PROCESSES,
        "baseline_rq_jobs_per_s": (jobs - 1) / (last - first),
        "baseline_rq_enqueue_many_s": enqueued,
        "baseline_rq_end_to_end_jobs_per_s": jobs / (last - started),
        **{f"baseline_rq_{k.replace('delivery', 'job')}": v for k, v in figures.items()},
    }


# --- 2. peers: Celery and Dramatiq -------------------------------------------------------------


def peer_available(system: str) -> bool:
    return importlib.util.find_spec(system) is not None


def start_peer(ctx: Context, system: str, group: Group) -> Callable[[str, str, int], None]:
    """Start the peer's workers; return how to send it one task."""
    if system == "celery":
        group.spawn(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "benchmarks.peer_celery",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(PEER_PROCESSES),
                "--loglevel",
                "WARNING",
                "--hostname",
                f"bench-celery-{os.getpid()}@%h",
            ],
            ctx.env,
        )
        from benchmarks import peer_celery

        def send_celery(key: str, field: str, latency_ms: int) -> None:
            peer_celery.deliver.apply_async(args=(key, field, latency_ms))

        return send_celery
    group.spawn(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "benchmarks.peer_dramatiq",
            "--processes",
            str(PEER_PROCESSES),
            "--threads",
            str(DRAMATIQ_THREADS),
            "--worker-shutdown-timeout",
            "10000",
        ],
        ctx.env,
    )
    from benchmarks import peer_dramatiq

    def send_dramatiq(key: str, field: str, latency_ms: int) -> None:
        peer_dramatiq.deliver.send(key, field, latency_ms)

    return send_dramatiq


def warm_up(redis: Redis, send: Callable[[str, str, int], None], system: str, group: Group) -> None:
    """Send short tasks until both worker processes have run one (so process start-up
    is not timed), then let the stragglers finish."""
    key = WARM_KEY.format(system=system)
    deadline = time.monotonic() + 90
    while int(redis.hlen(key)) < PEER_PROCESSES:
        if time.monotonic() > deadline:
            if int(redis.hlen(key)) >= 1:
                say(f"   note: only one {system} worker process took warm-up tasks")
                break
            raise BenchError(f"{system}: no worker took a task within 90s\n{group.log_tail()}")
        for _ in range(4):
            send(key, "", 50)
        time.sleep(0.2)
    time.sleep(1.0)


def run_peer(ctx: Context, system: str, events: int, latency_ms: int) -> dict[str, Any]:
    """``events`` x 5 departments plain tasks, each sleeping ``latency_ms`` then one
    HSET; rate from the first task sent to the last one done."""
    ctx.fresh()
    redis = ctx.redis
    key = DONE_KEY.format(system=system)
    total = events * len(DEPARTMENTS)
    group = Group(f"{system}-{latency_ms}ms", ctx.logs)
    try:
        send = start_peer(ctx, system, group)
        warm_up(redis, send, system, group)
        window = Window(redis, group)
        window.start()
        started = time.time()
        fields = [f"{event}-{department}" for event in range(events) for department in DEPARTMENTS]
        produce(fields, lambda field: send(key, field, latency_ms), ctx.args.producers)
        sent = time.time() - started
        wait_for(lambda: int(redis.hlen(key)), total, f"{system} tasks", group)
        times = done_times(redis, key)
        figures = window.finish(total)
    finally:
        group.stop()
    suffix = f"{latency_ms}ms"
    return {
        f"{system}_deliveries_{suffix}": total,
        f"{system}_deliveries_per_s_{suffix}": total / (max(times) - started),
        f"{system}_events_per_s_{suffix}": events / (max(times) - started),
        f"{system}_enqueue_s_{suffix}": sent,
        f"{system}_drain_deliveries_per_s_{suffix}": (total - 1) / (max(times) - min(times)),
        **{f"{system}_{k}_{suffix}": v for k, v in figures.items()},
    }


# --- 3. and 4. the router ----------------------------------------------------------------------


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Point this process's stdout and stderr at ``path`` while children are started,
    so they inherit the file (the Supervisor gives its workers our own output, and a
    worker logs a line per delivery)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with path.open("ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


class RouterWorkers:
    """The project's own Supervisor, as `router up` runs it: two `router worker`
    processes, each serving every department's queue."""

    def __init__(self, ctx: Context, latency_ms: int) -> None:
        self.ctx = ctx
        ctx.fresh()
        for name in DEPARTMENTS:
            configure_faults(ctx.redis, name, Faults(latency_ms=latency_ms))
        self.supervisor = Supervisor(ctx.url, DEPARTMENTS)
        self.group = Group(f"router-{latency_ms}ms", ctx.logs)
        self.log = ctx.logs / f"router-{latency_ms}ms-workers.log"

    def __enter__(self) -> RouterWorkers:
        with output_to(self.log):
            self.supervisor.start()
        self.group.adopt(self.supervisor.pids())
        deadline = time.monotonic() + 90
        while int(self.ctx.redis.scard("rq:workers")) < self.supervisor.processes:
            with output_to(self.log):
                self.supervisor.check()
            if time.monotonic() > deadline:
                raise BenchError("the router's workers did not all register within 90s")
            time.sleep(0.1)
        self.group.note()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.supervisor.stop()
        finally:
            self.group.stop()


def mock_log_total(redis: Redis) -> int:
    with redis.pipeline(transaction=False) as pipe:
        for name in DEPARTMENTS:
            pipe.llen(f"mock:{name}:log")
        return sum(int(n) for n in pipe.execute())


def delivered_at(redis: Redis, refs: Sequence[str]) -> dict[str, list[float]]:
    """Per case, the times its deliveries were recorded delivered (case history)."""
    with redis.pipeline(transaction=False) as pipe:
        for ref in refs:
            pipe.lrange(keys.history(ref), 0, -1)
        raw = pipe.execute()
    found: dict[str, list[float]] = {}
    for ref, history in zip(refs, raw, strict=True):
        times = []
        for item in history:
            entry = json.loads(item)
            if entry["state"] == "delivered":
                times.append(datetime.fromisoformat(entry["at"]).timestamp())
        found[ref] = times
    return found


def wait_delivered(redis: Redis, refs: Sequence[str], planned: int) -> dict[str, list[float]]:
    """Wait for every planned delivery to be applied by its department (cheap: LLEN of
    the mock logs), then recorded delivered in its case; return the delivery times."""
    wait_for(lambda: mock_log_total(redis), planned, "router deliveries")
    deadline = time.monotonic() + STALL_SECONDS
    while True:
        times = delivered_at(redis, refs)
        count = sum(len(t) for t in times.values())
        if count >= planned:
            if count > planned:
                raise BenchError(f"router: {count} deliveries recorded for {planned} planned")
            return times
        if time.monotonic() > deadline:
            raise BenchError(f"router: {count}/{planned} deliveries recorded delivered")
        time.sleep(POLL_SECONDS)


def submit(core: LifeEventRouter, case: dict[str, Any]) -> str:
    """Submit as a partner channel would: the reporter signed in (P2), a death or birth
    vouched for by the registrar's system, so every department acts on it."""
    from tests.support.identities import evidence_for

    return core.submit(
        case["event"],
        case["answers"],
        case["consent"],
        channel="bench",
        **evidence_for(case["event"], case["answers"]),
    ).ref


def run_router(
    ctx: Context, cases: Sequence[dict[str, Any]], planned: int, latency_ms: int
) -> dict[str, Any]:
    """All events submitted through LifeEventRouter.submit as fast as the producer
    threads can, while the two worker processes deliver; first submission to last
    delivered."""
    redis = ctx.redis
    with RouterWorkers(ctx, latency_ms) as workers:
        core = LifeEventRouter(redis, Registry.discover(redis))
        window = Window(redis, workers.group)
        window.start()
        started = time.time()
        refs = produce(cases, lambda c: submit(core, c), ctx.args.producers)
        submitted = time.time() - started
        times = wait_delivered(redis, refs, planned)
        figures = window.finish(planned)
    every = [t for ts in times.values() for t in ts]
    first, last = min(every), max(every)
    suffix = f"{latency_ms}ms"
    return {
        f"router_drain_deliveries_per_s_{suffix}": (planned - 1) / (last - first),
        f"router_deliveries_per_s_{suffix}": planned / (last - started),
        f"router_events_per_s_{suffix}": len(cases) / (last - started),
        f"router_end_to_end_s_{suffix}": last - started,
        f"router_submit_s_{suffix}": submitted,
        f"router_submit_events_per_s_{suffix}": len(cases) / submitted,
        **{f"router_{k}_{suffix}": v for k, v in figures.items()},
    }


def run_router_backlog(
    ctx: Context, cases: Sequence[dict[str, Any]], planned: int, latency_ms: int
) -> dict[str, Any]:
    """The workers' own capacity, without the submitters setting the pace:
    every event submitted first with no worker running, then the two worker processes
    started; first delivery done to last (as bare RQ's rate is measured)."""
    redis = ctx.redis
    workers = RouterWorkers(ctx, latency_ms)
    core = LifeEventRouter(redis, Registry.discover(redis))
    refs = produce(cases, lambda c: submit(core, c), ctx.args.producers)
    with workers:
        times = wait_delivered(redis, refs, planned)
    every = [t for ts in times.values() for t in ts]
    return {
        f"router_backlog_drain_deliveries_per_s_{latency_ms}ms": (planned - 1)
        / (max(every) - min(every))
    }


def run_latency(
    ctx: Context, cases: Sequence[dict[str, Any]], planned: int, rate: float, latency_ms: int
) -> dict[str, Any]:
    """Events offered at a steady ``rate`` (open loop, one thread); per event, from its
    submission accepted to its last digital delivery recorded delivered."""
    redis = ctx.redis
    accepted: dict[str, float] = {}
    submit_ms: list[float] = []
    with RouterWorkers(ctx, latency_ms):
        core = LifeEventRouter(redis, Registry.discover(redis))
        begin = time.monotonic()
        for i, c in enumerate(cases):
            pause = begin + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            before = time.time()
            ref = submit(core, c)
            accepted[ref] = time.time()
            submit_ms.append(1000 * (accepted[ref] - before))
        offered_s = time.monotonic() - begin
        times = wait_delivered(redis, list(accepted), planned)
    latencies = [max(ts) - accepted[ref] for ref, ts in times.items() if ts]
    last_delivered = max(t for ts in times.values() for t in ts)
    return {
        "router_latency_drain_after_last_submit_s": last_delivered - max(accepted.values()),
        "router_latency_adapter_ms": latency_ms,
        "router_latency_offered_events_per_s": rate,
        "router_latency_achieved_events_per_s": len(cases) / offered_s,
        "router_latency_events": len(cases),
        "router_latency_deliveries": planned,
        "router_latency_p50_s": percentile(latencies, 0.50),
        "router_latency_p95_s": percentile(latencies, 0.95),
        "router_latency_p99_s": percentile(latencies, 0.99),
        "router_latency_max_s": max(latencies),
        "router_latency_submit_p50_ms": percentile(submit_ms, 0.50),
        "router_latency_submit_p99_ms": percentile(submit_ms, 0.99),
    }


def run_morning(
    ctx: Context,
    backlog: Sequence[dict[str, Any]],
    steady: Sequence[dict[str, Any]],
    planned: tuple[int, int],
    rate: float,
    latency_ms: int,
) -> dict[str, Any]:
    """A morning: a backlog stored overnight (submitted with no worker running), then
    the workers start and steady traffic arrives at ``rate`` (open loop, one thread);
    per steady event, from its submission accepted to its last digital delivery, split
    by whether it arrived while the backlog was still draining or after."""
    redis = ctx.redis
    workers = RouterWorkers(ctx, latency_ms)
    core = LifeEventRouter(redis, Registry.discover(redis))
    backlog_refs = produce(backlog, lambda c: submit(core, c), ctx.args.producers)
    accepted: dict[str, float] = {}
    with workers:
        began = time.time()
        begin = time.monotonic()
        for i, c in enumerate(steady):
            pause = begin + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            ref = submit(core, c)
            accepted[ref] = time.time()
        times = wait_delivered(redis, [*backlog_refs, *accepted], sum(planned))
    drained = max(t for ref in backlog_refs for t in times[ref])
    during = [max(times[r]) - at for r, at in accepted.items() if times[r] and at <= drained]
    after = [max(times[r]) - at for r, at in accepted.items() if times[r] and at > drained]
    figures: dict[str, Any] = {
        "router_morning_backlog_deliveries": planned[0],
        "router_morning_backlog_drained_s": drained - began,
        "router_morning_steady_events": len(steady),
        "router_morning_steady_deliveries": planned[1],
        "router_morning_rate": rate,
        "router_morning_adapter_ms": latency_ms,
    }
    for name, values in (("during", during), ("after", after)):
        figures[f"router_morning_{name}_events"] = len(values)
        for q in (0.50, 0.99):
            figures[f"router_morning_{name}_p{round(q * 100)}_s"] = (
                percentile(values, q) if values else None
            )
    return figures


# --- 5. the front door ----------------------------------------------------------------------------

WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.body = [==[{body}]==]
"""
# The front door's API client: a partner service allowed far more than wrk can send.
BENCH_CLIENT = "benchmark"
BENCH_RATE = "999999999/minute"


def _wrk_seconds(text: str) -> float:
    """A wrk duration ("812.00us", "1.52ms", "2.01s") in seconds."""
    for unit, scale in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise BenchError(f"wrk: cannot read the duration {text!r}")


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, p50/p99 latency and the count of non-2xx answers from wrk --latency."""
    found: dict[str, float] = {"non_2xx": 0.0, "errors": 0.0}
    for line in output.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            found["rps"] = float(words[1])
        elif len(words) == 2 and words[0] in ("50%", "99%"):
            found[f"p{words[0][:-1]}_ms"] = 1000 * _wrk_seconds(words[1])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            found["non_2xx"] = float(words[-1])
        elif line.strip().startswith("Socket errors:"):
            found["errors"] = float(sum(int(w.strip(",")) for w in words if w.strip(",").isdigit()))
        elif "requests in" in line:
            found["requests"] = float(words[0])
    if "rps" not in found:
        raise BenchError(f"wrk printed no Requests/sec:\n{output}")
    return found


def wait_http(url: str, group: Group, timeout: float = 30.0) -> None:
    """Wait until something answers HTTP at ``url`` (any status)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        try:
            opener.open(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(f"nothing answered at {url}\n{group.log_tail()}") from None
            time.sleep(0.2)


def run_front_door(ctx: Context, seconds: float) -> dict[str, Any]:
    """POST /api/v1/submissions under FRONT_DOOR_CLIENTS concurrent wrk connections,
    to the real front door (gunicorn as `router up` serves it) and to two yardsticks on
    the same gunicorn settings (benchmarks.bare_flask): bare Flask, and bare Flask with
    the one durable write a submission needs; requests/s, p50/p99, the ratios."""
    import shutil

    from router.cli import WEB_APP, gunicorn_command
    from router.clients import ApiClients
    from router.redis_server import free_port
    from tests.support.samples import sample

    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk not found: apt-get install -y wrk, or leave frontdoor out of --only")
    event = sample("moving_house")
    body = json.dumps({k: event[k] for k in ("event", "answers", "consent")})
    script = ctx.logs / "post.lua"
    results: dict[str, Any] = {}
    for name, app in (
        ("bare_flask", "benchmarks.bare_flask:app"),
        ("durable_floor", "benchmarks.bare_flask:durable"),
        ("front_door", WEB_APP),
    ):
        ctx.fresh()
        # The API takes only a partner's key (the bare endpoint ignores it: the same
        # request bytes for both).
        _client, key = ApiClients(ctx.redis).add(
            BENCH_CLIENT, [str(event["event"])], rate=BENCH_RATE
        )
        script.write_text(WRK_SCRIPT.format(body=body, key=key))
        port = free_port()
        group = Group(f"gunicorn-{name}", ctx.logs)
        env = dict(ctx.env, REDIS_URL=ctx.url)
        try:
            group.spawn(gunicorn_command("127.0.0.1", port, app), env)
            url = f"http://127.0.0.1:{port}/api/v1/submissions"
            wait_http(url, group)
            group.note()

            def load(duration: float, url: str = url) -> str:
                done = subprocess.run(
                    [
                        wrk,
                        f"-t{FRONT_DOOR_THREADS}",
                        f"-c{FRONT_DOOR_CLIENTS}",
                        f"-d{duration:g}s",
                        "--latency",
                        "-s",
                        str(script),
                        url,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=duration + 60,
                    check=True,
                )
                return done.stdout

            load(2)  # warm up: imports, connection pools, first requests
            before = int(ctx.redis.dbsize())
            figures = parse_wrk(load(seconds))
            cases_added = int(ctx.redis.dbsize()) - before
        finally:
            group.stop()
        if figures["non_2xx"] or figures["errors"]:
            raise BenchError(
                f"{name}: {figures['non_2xx']:.0f} non-2xx answers, "
                f"{figures['errors']:.0f} socket errors under load"
            )
        results[f"{name}_rps"] = figures["rps"]
        results[f"{name}_p50_ms"] = figures["p50_ms"]
        results[f"{name}_p99_ms"] = figures["p99_ms"]
        results[f"{name}_requests"] = figures.get("requests")
        if name == "front_door":
            results["front_door_redis_keys_added"] = cases_added
    ratio = results["front_door_rps"] / results["bare_flask_rps"]
    results["ratio_front_door_vs_bare_flask"] = ratio
    results["ratio_front_door_vs_durable_floor"] = (
        results["front_door_rps"] / results["durable_floor_rps"]
    )
    results["front_door_clients"] = FRONT_DOOR_CLIENTS
    results["front_door_seconds"] = seconds
    results["front_door_server"] = " ".join(gunicorn_command("HOST", 0, "APP")[1:])
    return results


# --- 6. Redis memory per case -------------------------------------------------------------------


def delete_matching(redis: Redis, pattern: str) -> int:
    deleted = 0
    batch: list[Any] = []
    for key in redis.scan_iter(match=pattern, count=2000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += int(redis.delete(*batch))
            batch = []
    if batch:
        deleted += int(redis.delete(*batch))
    return deleted


def run_memory(ctx: Context, cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Store the cases with no worker running (their deliveries stay pending); INFO
    memory used_memory before and after, then again with the pending sets, wake keys
    and RQ's job and queue keys deleted."""
    ctx.fresh()
    redis = ctx.redis
    core = LifeEventRouter(redis, Registry.discover(redis))
    before = int(redis.info("memory")["used_memory"])
    started = time.time()
    refs = [submit(core, c) for c in cases]
    submitted = time.time() - started
    with_jobs = int(redis.info("memory")["used_memory"])
    keys_with_jobs = int(redis.dbsize())
    pending = sum(int(redis.zcard(k)) for k in redis.scan_iter(match=keys.pending("*"), count=1000))
    jobs = delete_matching(redis, "rq:job:*")
    queues = delete_matching(redis, "rq:queue:*") + int(redis.delete("rq:queues"))
    queues += delete_matching(redis, keys.pending("*")) + delete_matching(redis, keys.wake("*"))
    alone = int(redis.info("memory")["used_memory"])
    sample = refs[:: max(1, len(refs) // 200)]
    with redis.pipeline(transaction=False) as pipe:
        for ref in sample:
            pipe.memory_usage(keys.case(ref), samples=0)
            pipe.memory_usage(keys.history(ref), samples=0)
        usage = [int(n or 0) for n in pipe.execute()]
    return {
        "router_memory_cases": len(refs),
        "router_memory_bytes_per_case_incl_queued_jobs": (with_jobs - before) / len(refs),
        "router_memory_bytes_per_case_alone": (alone - before) / len(refs),
        "router_memory_usage_cmd_bytes_per_case": sum(usage) / len(sample),
        "router_memory_keys_per_case_incl_queued_jobs": keys_with_jobs / len(refs),
        "router_memory_queued_jobs": jobs,
        "router_memory_pending_deliveries": pending,
        "router_memory_queue_keys_deleted": queues,
        "router_submit_events_per_s_no_workers": len(refs) / submitted,
    }


# --- the report -------------------------------------------------------------------------------


# The guarantees part's ratios (time with the guarantee over time without), as printed.
GUARANTEE_RATIOS: tuple[tuple[str, str], ...] = (
    ("encryption, submission", "ratio_encryption_submit_on_vs_off"),
    ("encryption, delivery", "ratio_encryption_delivery_on_vs_off"),
    ("ledger, delivery", "ratio_ledger_delivery_on_vs_off"),
    ("GRO check, submission of a death or birth", "ratio_gro_submit_on_vs_off"),
    ("retention, a case's whole life", "ratio_retention_case_on_vs_off"),
    ("WAIT for 2 replicas, submission", "ratio_wait_submit_on_vs_off"),
    ("WAIT for 2 replicas, delivery", "ratio_wait_delivery_on_vs_off"),
)


def expected_keys() -> list[str]:
    """Every figure's key, so that a part skipped or failed still appears (as null)."""
    keys = [
        "baseline_rq_jobs",
        "baseline_rq_jobs_per_s",
        "baseline_rq_redis_commands_per_job",
        "router_events",
        "router_deliveries",
        "router_worker_processes",
    ]
    for lat in LATENCIES:
        for system in ("celery", "dramatiq", "router"):
            keys += [
                f"{system}_deliveries_per_s_{lat}ms",
                f"{system}_events_per_s_{lat}ms",
                f"{system}_redis_commands_per_delivery_{lat}ms",
            ]
        keys += [f"ratio_router_vs_{s}_{lat}ms" for s in ("rq", "celery", "dramatiq")]
        keys.append(f"router_backlog_drain_deliveries_per_s_{lat}ms")
    keys += [
        "router_latency_p50_s",
        "router_latency_p95_s",
        "router_latency_p99_s",
        "router_morning_backlog_deliveries",
        "router_morning_backlog_drained_s",
        "router_morning_during_p99_s",
        "router_morning_after_p99_s",
        "router_memory_bytes_per_case_incl_queued_jobs",
        "router_memory_bytes_per_case_alone",
        "front_door_rps",
        "front_door_p50_ms",
        "front_door_p99_ms",
        "bare_flask_rps",
        "bare_flask_p50_ms",
        "bare_flask_p99_ms",
        "ratio_front_door_vs_bare_flask",
        "durable_floor_rps",
        "ratio_front_door_vs_durable_floor",
        *(key for _name, key in GUARANTEE_RATIOS),
    ]
    return keys


def add_ratios(results: dict[str, Any]) -> None:
    for lat in LATENCIES:
        router = results.get(f"router_deliveries_per_s_{lat}ms")
        others = {
            "rq": results.get("baseline_rq_jobs_per_s"),
            "celery": results.get(f"celery_deliveries_per_s_{lat}ms"),
            "dramatiq": results.get(f"dramatiq_deliveries_per_s_{lat}ms"),
        }
        for name, other in others.items():
            key = f"ratio_router_vs_{name}_{lat}ms"
            results[key] = router / other if router and other else None


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def table(results: dict[str, Any], notes: dict[str, str]) -> str:
    r = results
    lines = []
    head = (
        f"{'system':<10} {'workers':<38} {'adapter':>7} {'deliveries':>10} "
        f"{'deliv/s':>8} {'drain/s':>8} {'events/s':>8} {'cmds/deliv':>10} "
        f"{'CPU ms/delivery: workers redis producer':>40}"
    )
    lines += [head, "-" * len(head)]

    def row(
        system: str,
        workers: str,
        lat: str,
        count: Any,
        rate: Any,
        events: Any,
        key: str,
        unit: str = "delivery",
    ) -> None:
        def get(metric: str) -> Any:
            return r.get(key.format(metric=metric.format(unit=unit)))

        cpu = (
            f"{fmt(get('worker_cpu_ms_per_{unit}'), 2):>8} "
            f"{fmt(get('redis_cpu_ms_per_{unit}'), 2):>6} "
            f"{fmt(get('producer_cpu_ms_per_{unit}'), 2):>9}"
        )
        lines.append(
            f"{system:<10} {workers:<38} {lat:>7} {fmt(count):>10} {fmt(rate):>8} "
            f"{fmt(get('drain_deliveries_per_s')):>8} {fmt(events):>8} "
            f"{fmt(get('redis_commands_per_{unit}'), 1):>10} {cpu:>40}"
        )

    row(
        "bare RQ",
        "2 SimpleWorker processes",
        "-",
        r.get("baseline_rq_jobs"),
        r.get("baseline_rq_jobs_per_s"),
        None,
        "baseline_rq_{metric}",
        unit="job",
    )
    for system, workers in (
        ("celery", "1 worker, prefork -c 2 (2 processes)"),
        ("dramatiq", "2 processes x 8 threads"),
    ):
        if notes.get(system):
            lines.append(f"{system:<10} {notes[system]}")
            continue
        for lat in LATENCIES:
            row(
                system,
                workers,
                f"{lat} ms",
                r.get(f"{system}_deliveries_{lat}ms"),
                r.get(f"{system}_deliveries_per_s_{lat}ms"),
                r.get(f"{system}_events_per_s_{lat}ms"),
                f"{system}_{{metric}}_{lat}ms",
            )
    for lat in LATENCIES:
        row(
            "router",
            "2 processes x 5 queues, batches of 32",
            f"{lat} ms",
            r.get("router_deliveries"),
            r.get(f"router_deliveries_per_s_{lat}ms"),
            r.get(f"router_events_per_s_{lat}ms"),
            f"router_{{metric}}_{lat}ms",
        )
    if r.get("router_backlog_drain_deliveries_per_s_0ms") is not None:
        lines.append(
            "router, the same deliveries as a backlog (submitted before the workers start; "
            "first delivery to last): "
            + ", ".join(
                f"{fmt(r.get(f'router_backlog_drain_deliveries_per_s_{lat}ms'))}/s at {lat} ms"
                for lat in LATENCIES
            )
        )
    lines.append("")
    lines.append(f"{'ratio (router deliveries/s / other)':<44} {'0 ms':>7} {'20 ms':>7}")
    for name, label in (
        ("rq", "router / bare RQ jobs/s (no latency)"),
        ("celery", "router / Celery"),
        ("dramatiq", "router / Dramatiq"),
    ):
        lines.append(
            f"{label:<44} {fmt(r.get(f'ratio_router_vs_{name}_0ms'), 2):>7} "
            f"{fmt(r.get(f'ratio_router_vs_{name}_20ms'), 2):>7}"
        )
    lines.append("")
    for lat in LATENCIES:
        if r.get(f"router_submit_s_{lat}ms") is not None:
            lines.append(
                f"router submission, {lat} ms run: {r['router_events']} events in "
                f"{r[f'router_submit_s_{lat}ms']:.2f} s "
                f"({r[f'router_submit_events_per_s_{lat}ms']:.0f} events/s, "
                f"{r.get('producers', 1)} producer threads, "
                f"workers running); end to end {r[f'router_end_to_end_s_{lat}ms']:.2f} s"
            )
    if r.get("router_submit_events_per_s_no_workers") is not None:
        lines.append(
            f"router submission alone (no workers, memory part): "
            f"{r['router_submit_events_per_s_no_workers']:.0f} events/s"
        )
    if r.get("router_latency_p50_s") is not None:
        lines.append(
            f"latency, submission accepted -> all its digital deliveries delivered: "
            f"{r['router_latency_events']} events offered at "
            f"{r['router_latency_offered_events_per_s']:.0f}/s (achieved "
            f"{r['router_latency_achieved_events_per_s']:.1f}/s), "
            f"{r['router_latency_adapter_ms']} ms departments"
        )
        lines.append(
            f"  p50 {r['router_latency_p50_s']:.3f} s  p95 {r['router_latency_p95_s']:.3f} s  "
            f"p99 {r['router_latency_p99_s']:.3f} s  max {r['router_latency_max_s']:.3f} s; "
            f"last delivery {r['router_latency_drain_after_last_submit_s']:.2f} s after the "
            f"last submission; submit call p50 {r['router_latency_submit_p50_ms']:.1f} ms, "
            f"p99 {r['router_latency_submit_p99_ms']:.1f} ms"
        )
    if r.get("router_morning_backlog_deliveries") is not None:
        lines.append(
            f"morning: a backlog of {r['router_morning_backlog_deliveries']} deliveries "
            f"(drained in {r['router_morning_backlog_drained_s']:.1f} s), then "
            f"{r['router_morning_steady_events']} events at {r['router_morning_rate']:.0f}/s, "
            f"{r['router_morning_adapter_ms']} ms departments; submission to all delivered:"
        )
        for name, label in (("during", "while the backlog drains"), ("after", "after it")):
            lines.append(
                f"  {label:<25} {r[f'router_morning_{name}_events']:>5} events  p50 "
                f"{fmt(r[f'router_morning_{name}_p50_s'], 3)} s  p99 "
                f"{fmt(r[f'router_morning_{name}_p99_s'], 3)} s"
            )
    if r.get("router_memory_cases") is not None:
        lines.append(
            f"Redis memory per case ({r['router_memory_cases']} cases, INFO used_memory): "
            f"{r['router_memory_bytes_per_case_incl_queued_jobs']:,.0f} B incl. queued jobs; "
            f"{r['router_memory_bytes_per_case_alone']:,.0f} B alone "
            f"(MEMORY USAGE of case hash + history: "
            f"{r['router_memory_usage_cmd_bytes_per_case']:,.0f} B)"
        )
    for label, key in (
        ("bare RQ", "baseline_rq_redis_commands_top_per_job"),
        ("celery 0 ms", "celery_redis_commands_top_per_delivery_0ms"),
        ("dramatiq 0 ms", "dramatiq_redis_commands_top_per_delivery_0ms"),
        ("router 0 ms", "router_redis_commands_top_per_delivery_0ms"),
    ):
        if r.get(key):
            top = ", ".join(f"{k} {v:g}" for k, v in r[key].items())
            lines.append(f"Redis commands per delivery, {label}: {top}")
    if r.get("front_door_rps") is not None:
        lines.append(
            f"front door, POST /api/v1/submissions, {r['front_door_clients']} wrk connections "
            f"for {r['front_door_seconds']:g} s, gunicorn 2 workers x 4 threads:"
        )
        for key, label in (
            ("front_door", "router front door"),
            ("bare_flask", "bare Flask"),
            ("durable_floor", "bare Flask + 1 EVAL"),
        ):
            lines.append(
                f"  {label:<20} {r[f'{key}_rps']:>8,.0f} requests/s  p50 "
                f"{r[f'{key}_p50_ms']:6.1f} ms  p99 {r[f'{key}_p99_ms']:6.1f} ms"
            )
        lines.append(
            f"  ratio front door / bare Flask: {r['ratio_front_door_vs_bare_flask']:.2f}; "
            f"/ the durable-write floor (one EVAL of {CASE_BYTES:,} B, appendfsync always): "
            f"{r['ratio_front_door_vs_durable_floor']:.2f}"
        )
    elif notes.get("frontdoor"):
        lines.append(f"front door: {notes['frontdoor']}")
    if r.get("guarantees_cases") is not None:
        lines.append(
            f"what each guarantee costs, on / off, {r['guarantees_cases']} events submitted "
            "and drained in this process (best of "
            f"{r['guarantees_rounds']}); ms per submission or per delivery:"
        )
        for name, key in GUARANTEE_RATIOS:
            kind = key.removeprefix("ratio_").removesuffix("_on_vs_off")
            guarantee, _, part = kind.rpartition("_")
            unit = {"submit": "submit", "delivery": "delivery"}.get(part)
            if unit is None:  # retention: a case's whole life
                on = r.get("guarantee_retention_case_ms_without", 0) + r.get(
                    "guarantee_retention_purge_ms_per_case", 0
                )
                off = r.get("guarantee_retention_case_ms_without")
            else:
                on = r.get(f"guarantee_{guarantee}_{unit}_ms_on")
                off = r.get(f"guarantee_{guarantee}_{unit}_ms_off")
            lines.append(
                f"  {name:<44} {fmt(on, 3):>7} / {fmt(off, 3):>7} ms  {fmt(r.get(key), 3):>6}x"
            )
    lines += [
        "notes: the router runs 2 worker processes, each serving all 5 department queues; bare",
        "  RQ and the peers run 2. deliv/s is first send or submission to last delivery done;",
        "  drain/s first delivery done to last (bare RQ's jobs were enqueued beforehand in one",
        "  batch, so its deliv/s is a drain rate). Ratios use deliv/s; the bare RQ jobs have no",
        "  latency.",
        "  CPU: user+system seconds of the worker processes, of redis-server, and of this",
        "  process (the producer/submitter, and the polling), per delivery.",
    ]
    return "\n".join(lines)


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in ("rq", "redis", "celery", "kombu", "dramatiq"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


# --- main ----------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Router vs bare RQ, Celery and Dramatiq on one private Redis.",
    )
    parser.add_argument("--events", type=int, help="events per part (default 1000; quick 200)")
    parser.add_argument("--quick", action="store_true", help="a smaller run (about 2 minutes)")
    parser.add_argument("--rate", type=float, default=50.0, help="offered events/s, latency part")
    parser.add_argument("--latency-seconds", type=float, help="latency part (default 10; quick 5)")
    parser.add_argument("--memory-cases", type=int, help="memory part (default 10000; quick 2000)")
    parser.add_argument(
        "--morning-backlog-events",
        type=int,
        help="morning part: events in the backlog (default 3000, about 10,000 deliveries; "
        "quick 600)",
    )
    parser.add_argument(
        "--morning-seconds", type=float, help="morning part: steady traffic (default 20; quick 8)"
    )
    parser.add_argument(
        "--front-door-seconds", type=float, help="front door part, per server (default 10; quick 5)"
    )
    parser.add_argument(
        "--producers",
        type=int,
        default=PRODUCERS,
        help=f"threads sending work, for every system alike (default {PRODUCERS})",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--fsync",
        choices=("always", "everysec"),
        default="always",
        help="the Redis appendfsync policy (default: always, as `router up` runs it)",
    )
    parser.add_argument(
        "--only",
        default=",".join(PHASES),
        help=f"comma-separated parts to run (default all: {','.join(PHASES)})",
    )
    parser.add_argument(
        "--retention-days", type=int, help="days simulated, retention part (default 460)"
    )
    parser.add_argument(
        "--retention-per-day", type=int, help="cases a day, retention part (default 40; quick 10)"
    )
    parser.add_argument(
        "--guarantees-events",
        type=int,
        help="guarantees part: events per measurement (default 300; quick 100)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON")
    args = parser.parse_args(argv)
    args.events = args.events or (200 if args.quick else 1000)
    args.latency_seconds = args.latency_seconds or (5.0 if args.quick else 10.0)
    args.memory_cases = args.memory_cases or (2000 if args.quick else 10000)
    args.morning_backlog_events = args.morning_backlog_events or (600 if args.quick else 3000)
    args.morning_seconds = args.morning_seconds or (8.0 if args.quick else 20.0)
    args.front_door_seconds = args.front_door_seconds or (5.0 if args.quick else 10.0)
    args.retention_days = args.retention_days or 460
    args.guarantees_events = args.guarantees_events or (100 if args.quick else 300)
    args.retention_per_day = args.retention_per_day or (10 if args.quick else 40)
    args.only = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(args.only) - set(PHASES)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    return args


def run(ctx: Context, results: dict[str, Any], notes: dict[str, str]) -> None:
    args = ctx.args
    registry = Registry.discover()
    events = args.events
    core = LifeEventRouter(ctx.redis, registry)
    results["producers"] = args.producers

    if "baseline" in args.only:
        jobs = events * len(DEPARTMENTS)
        say(f"1. baseline: bare RQ, {jobs} one-HSET jobs, 2 SimpleWorker processes ...")
        results.update(run_baseline(ctx, jobs))
        say(f"   {results['baseline_rq_jobs_per_s']:.0f} jobs/s")

    for system in ("celery", "dramatiq"):
        if system not in args.only:
            continue
        if not peer_available(system):
            notes[system] = "skipped: not installed (pip install -e '.[bench]')"
            say(f"2. {system}: {notes[system]}")
            continue
        for lat in LATENCIES:
            say(f"2. {system}: {events} events x 5 departments, {lat} ms latency ...")
            results.update(run_peer(ctx, system, events, lat))
            say(f"   {results[f'{system}_deliveries_per_s_{lat}ms']:.0f} deliveries/s")

    if "router" in args.only:
        cases = workload(args.seed, events, registry)
        planned = planned_digital(core, cases)
        results["router_events"] = events
        results["router_deliveries"] = planned
        results["router_worker_processes"] = default_processes()
        for lat in LATENCIES:
            say(
                f"3. router: {events} events ({planned} digital deliveries), "
                f"{default_processes()} worker processes, {lat} ms department latency ..."
            )
            results.update(run_router(ctx, cases, planned, lat))
            say(
                f"   {results[f'router_deliveries_per_s_{lat}ms']:.0f} deliveries/s, "
                f"{results[f'router_events_per_s_{lat}ms']:.0f} events/s"
            )
            say(f"3b. router: the same {planned} deliveries as a backlog, {lat} ms ...")
            results.update(run_router_backlog(ctx, cases, planned, lat))
            say(
                f"   {results[f'router_backlog_drain_deliveries_per_s_{lat}ms']:.0f} "
                "deliveries/s drained"
            )

    if "latency" in args.only:
        count = max(1, round(args.rate * args.latency_seconds))
        cases = workload(args.seed + 1, count, registry)
        planned = planned_digital(core, cases)
        say(f"4. latency: {count} events at {args.rate:.0f}/s, 20 ms departments ...")
        results.update(run_latency(ctx, cases, planned, args.rate, 20))
        say(f"   p99 {results['router_latency_p99_s']:.3f} s")

    if "morning" in args.only:
        steady_count = max(1, round(args.rate * args.morning_seconds))
        backlog = workload(args.seed + 4, args.morning_backlog_events, registry)
        steady = workload(args.seed + 5, steady_count, registry)
        planned_morning = (planned_digital(core, backlog), planned_digital(core, steady))
        say(
            f"4b. morning: a backlog of {planned_morning[0]} deliveries, then "
            f"{steady_count} events at {args.rate:.0f}/s, 20 ms departments ..."
        )
        results.update(run_morning(ctx, backlog, steady, planned_morning, args.rate, 20))
        say(
            f"   backlog drained in {results['router_morning_backlog_drained_s']:.1f} s; p99 "
            f"{fmt(results['router_morning_during_p99_s'], 3)} s during, "
            f"{fmt(results['router_morning_after_p99_s'], 3)} s after"
        )

    if "frontdoor" in args.only:
        say(
            f"5. front door: {FRONT_DOOR_CLIENTS} wrk connections, {args.front_door_seconds:g} s "
            "each, router front door and bare Flask on gunicorn ..."
        )
        results.update(run_front_door(ctx, args.front_door_seconds))
        say(
            f"   {results['front_door_rps']:.0f} vs {results['bare_flask_rps']:.0f} requests/s "
            f"({results['ratio_front_door_vs_bare_flask']:.2f})"
        )

    if "memory" in args.only:
        cases = workload(args.seed + 2, args.memory_cases, registry)
        say(f"6. memory: {args.memory_cases} cases stored with no workers running ...")
        results.update(run_memory(ctx, cases))
        say(f"   {results['router_memory_bytes_per_case_alone']:.0f} B per case alone")

    if "sealing" in args.only:
        cases = workload(args.seed + 3, events, registry)
        say(f"7. sealing: {events} events submitted and drained, sealed and in plain text ...")
        results.update(retention_parts.run_sealing(ctx, cases))
        say(
            f"   submission {results['ratio_sealing_submit_on_vs_off']:.3f}x, delivery "
            f"{results['ratio_sealing_delivery_on_vs_off']:.3f}x the time without sealing"
        )

    if "guarantees" in args.only:
        cases = workload(args.seed + 6, args.guarantees_events, registry)
        say(
            f"7b. guarantees: each on and off, {args.guarantees_events} events submitted and "
            "drained in this process ..."
        )
        results.update(guarantee_parts.run_guarantees(ctx, cases, say=say))
        say(
            "   "
            + ", ".join(
                f"{name} {results[key]:.3f}x"
                for name, key in GUARANTEE_RATIOS
                if results.get(key) is not None
            )
        )

    if "retention" in args.only:
        per_day = args.retention_per_day
        say(
            f"8. retention: {args.retention_days} simulated days of {args.retention_per_day} "
            "cases, delivered by real workers, the purge on an injected clock ..."
        )
        results.update(
            retention_parts.run_retention(
                ctx,
                lambda day: workload(args.seed + 100 + day, per_day, registry),
                per_day,
                args.retention_days,
                say,
            )
        )

    if "frontdoor" not in args.only:
        notes["frontdoor"] = "skipped (--only)"
    add_ratios(results)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    os.environ.pop("ROUTER_ADAPTERS", None)  # the five built-in mock departments
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results: dict[str, Any] = dict.fromkeys(expected_keys())
    notes: dict[str, str] = {}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tuo-bench-") as tmp:
        logs = Path(tmp) / "logs"
        logs.mkdir()
        server = start_redis(Path(tmp) / "redis", fsync=args.fsync)
        # Its own master key, as `router up` makes one, for this process and its workers.
        os.environ.pop(sealing.MASTER_ENV, None)
        os.environ[sealing.KEY_FILE_ENV] = str(sealing.make_key_file(Path(tmp) / "master.key"))
        redis = connect(server.url)
        os.environ[URL_VARIABLE] = server.url  # for the peers' producer side
        info = redis.info("server")
        redis_fsync = redis.config_get("appendfsync")["appendfsync"]
        say(
            f"tell-us-once benchmark {stamp}: redis {info['redis_version']} ({server.kind}, "
            f"pid {server.pid}, appendfsync {redis_fsync}), "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"events={args.events}{' (quick)' if args.quick else ''}"
        )
        failed: BaseException | None = None
        try:
            run(Context(server, redis, logs, args), results, notes)
        except BenchError as error:
            failed = error
            say(f"FAILED: {error}")
        finally:
            redis.close()
            server.stop()
        meta = {
            "timestamp_utc": stamp,
            "quick": args.quick,
            "events": args.events,
            "parts": args.only,
            "rate": args.rate,
            "latency_seconds": args.latency_seconds,
            "memory_cases": args.memory_cases,
            "seed": args.seed,
            "redis_version": info["redis_version"],
            "redis_kind": server.kind,
            "appendfsync": redis_fsync,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "versions": versions(),
            "celery_mode": "one worker, --pool prefork --concurrency 2 (1 parent + 2 pool "
            "processes), acks_late, one queue",
            "dramatiq_mode": f"{PEER_PROCESSES} processes x {DRAMATIQ_THREADS} threads, one queue",
            "baseline_mode": "2 `rq worker --worker-class rq.worker.SimpleWorker` processes, "
            "JSON serializer, default result_ttl, jobs enqueue_many'd after the workers "
            "registered; rate from first job done to last",
            "router_mode": "router.delivery.worker.Supervisor as `router up` runs it: "
            f"{default_processes()} `router worker` processes, each an RQ SimpleWorker on all "
            "5 department queues whose drain jobs wake per-department drain threads sending "
            f"batches of up to {BATCH} concurrently; events submitted by {args.producers} "
            "producer threads through LifeEventRouter.submit while they run",
            "producers": args.producers,
            "front_door_seconds": args.front_door_seconds,
            "notes": notes,
            "wall_seconds": round(time.monotonic() - began, 1),
            "failed": str(failed) if failed else None,
        }
    say("")
    say(table(results, notes))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{stamp}.json"
    path.write_text(json.dumps({**results, "meta": meta}, indent=2, sort_keys=False) + "\n")
    say(f"\nfigures written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    say(f"wall time {meta['wall_seconds']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
