"""Where the CPU goes: py-spy over the router's own processes under the benchmark's load.

    .venv/bin/python -m benchmarks.profile drain [--events 2000] [--latency-ms 0]
    .venv/bin/python -m benchmarks.profile frontdoor [--seconds 10]

``drain``: the events are stored with no worker running (as the backlog part), then the
two worker processes `router up` runs drain them while py-spy samples each (only the
thread holding the GIL: CPU spent in Python and in C called from it). ``frontdoor``:
gunicorn serving the front door as `router up` does, under wrk's POSTs to
/api/v1/submissions, py-spy on each gunicorn worker.

Prints the share of samples in each function (inclusive: the function and what it
calls) for the project's own code and the libraries under it, and the top functions
by their own samples; writes the collapsed stacks to ``benchmarks/results/`` (load
them into speedscope or flamegraph.pl to look closer). Needs the bench extra (py-spy)
and, for ``frontdoor``, wrk. A tool to look with, not a figure to publish: sampling
costs the profiled processes some speed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import run as bench
from benchmarks.procs import ROOT, Group
from router import sealing
from router.adapters.registry import Registry
from router.redis_server import connect, free_port, start_redis
from router.service import LifeEventRouter

SAMPLES_PER_S = 250
# "function (path/to/file.py:line)" in py-spy's raw output.
_FRAME = re.compile(r"^(?P<function>.+?) \((?P<path>[^():]+)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``module.py:function``, the path cut to the part under site-packages or the
    project, so the same function reads the same in every process."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["path"]
    for marker in ("site-packages/", f"{ROOT}/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{match['function']}"


def summarise(raw: Sequence[str], top: int = 40) -> str:
    """The inclusive and the own share of each function in py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [frame_name(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    if not total:
        return "no samples (is py-spy allowed to read the processes?)"
    lines = [f"{total} samples", "", "inclusive (a function and what it calls):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "own (the function itself):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top // 2)]
    return "\n".join(lines)


def record(pids: Sequence[int], seconds: float, out: Path) -> list[Path]:
    """py-spy record each of ``pids`` for ``seconds``, at once; their collapsed stacks."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise bench.BenchError("py-spy not found: pip install -e '.[bench]'")
    files = [out / f"profile-{pid}.txt" for pid in pids]
    spies = [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(seconds))),
                "--rate",
                str(SAMPLES_PER_S),
                "--gil",
                "--nonblocking",
                "--function",
                "--format",
                "raw",
                "--output",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for pid, path in zip(pids, files, strict=True)
    ]
    for spy_process in spies:
        _, error = spy_process.communicate(timeout=seconds + 60)
        if spy_process.returncode:
            sys.stderr.write(error.decode(errors="replace"))
    return [path for path in files if path.exists()]


def profile_drain(ctx: bench.Context, events: int, latency_ms: int) -> list[Path]:
    registry = Registry.discover(ctx.redis)
    cases = bench.workload(ctx.args.seed, events, registry)
    core = LifeEventRouter(ctx.redis, registry)
    planned = bench.planned_digital(core, cases)
    workers = bench.RouterWorkers(ctx, latency_ms)
    refs = bench.produce(cases, lambda c: bench.submit(core, c), ctx.args.producers)
    bench.say(f"stored {len(refs)} events ({planned} deliveries); draining with py-spy ...")
    with workers:
        started = time.monotonic()
        pids = workers.supervisor.pids()
        # Sample for most of the drain: at ~1,500/s, planned/1,500 seconds.
        files = record(pids, max(2.0, planned / 1500 * 0.8), ctx.logs)
        bench.wait_delivered(ctx.redis, refs, planned)
        took = time.monotonic() - started
    bench.say(f"drained in {took:.1f} s ({planned / took:.0f} deliveries/s under the profiler)")
    return files


def profile_front_door(ctx: bench.Context, seconds: float) -> list[Path]:
    from router.cli import WEB_APP, gunicorn_command
    from router.clients import ApiClients
    from tests.support.samples import sample

    wrk = shutil.which("wrk")
    if wrk is None:
        raise bench.BenchError("wrk not found: apt-get install -y wrk")
    event = sample("moving_house")
    body = json.dumps({k: event[k] for k in ("event", "answers", "consent")})
    _client, key = ApiClients(ctx.redis).add(
        bench.BENCH_CLIENT, [str(event["event"])], rate=bench.BENCH_RATE
    )
    script = ctx.logs / "post.lua"
    script.write_text(bench.WRK_SCRIPT.format(body=body, key=key))
    port = free_port()
    group = Group("gunicorn-profile", ctx.logs)
    url = f"http://127.0.0.1:{port}/api/v1/submissions"
    try:
        env = dict(ctx.env, REDIS_URL=ctx.url)
        master = group.spawn(gunicorn_command("127.0.0.1", port, WEB_APP), env).pid
        bench.wait_http(url, group)
        children = subprocess.run(
            ["pgrep", "-P", str(master)], capture_output=True, text=True, check=False
        ).stdout.split()
        load = subprocess.Popen(
            [wrk, "-t2", f"-c{bench.FRONT_DOOR_CLIENTS}", f"-d{seconds + 2:g}s", "-s", str(script)]
            + [url],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)
        files = record([int(pid) for pid in children], seconds, ctx.logs)
        output, _ = load.communicate(timeout=seconds + 60)
        bench.say(output.strip())
    finally:
        group.stop()
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("part", choices=("drain", "frontdoor"))
    parser.add_argument("--events", type=int, default=2000, help="drain: events stored")
    parser.add_argument("--latency-ms", type=int, default=0, help="drain: department latency")
    parser.add_argument("--seconds", type=float, default=10.0, help="frontdoor: sampled time")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=bench.RESULTS_DIR)
    args = parser.parse_args(argv)
    args.producers = bench.PRODUCERS
    os.environ.pop("ROUTER_ADAPTERS", None)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(prefix="tuo-profile-") as tmp:
        logs = Path(tmp) / "logs"
        logs.mkdir()
        server = start_redis(Path(tmp) / "redis", fsync="always")
        os.environ.pop(sealing.MASTER_ENV, None)
        os.environ[sealing.KEY_FILE_ENV] = str(sealing.make_key_file(Path(tmp) / "master.key"))
        redis = connect(server.url)
        try:
            ctx = bench.Context(server, redis, logs, args)
            ctx.fresh()
            if args.part == "drain":
                files = profile_drain(ctx, args.events, args.latency_ms)
            else:
                files = profile_front_door(ctx, args.seconds)
            raw = [line for path in files for line in path.read_text().splitlines()]
        finally:
            redis.close()
            server.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    kept = args.out / f"{stamp}-profile-{args.part}.txt"
    kept.write_text("\n".join(raw) + "\n")
    bench.say(summarise(raw))
    bench.say(f"\ncollapsed stacks in {kept.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
