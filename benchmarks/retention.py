"""Benchmark parts for issue 14: Redis memory over simulated years with the retention
purge on an injected clock, and the cost of sealing personal data, on and off in the
same run.

``retention``: every simulated day, ``per_day`` cases are submitted and delivered by the
two real worker processes (0 ms departments), then the purge runs with its clock at the
end of that day; Redis's ``used_memory`` is read after it. Personal data is kept 28 days
after a case settles, the record without it 395 more, so memory should rise for 28
days, then grow only by the small records until day 423, then stay flat.

``sealing``: the same cases submitted (one thread, in this process) and then drained as
a backlog by the workers, once with answers sealed as always and once with the
benchmark's own process storing them in plain text (``KeyRing.seal`` replaced here,
never in the router: there is no switch to turn sealing off). The ratio is time with
sealing over time without.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from router import sealing
from router.adapters.registry import Registry
from router.cases import RETENTION_LOOK_SECONDS
from router.retention import Retention
from router.service import LifeEventRouter
from router.settings import RetentionPolicy

DAY = 86400.0


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def run_retention(
    ctx: Any,
    cases: Callable[[int], Sequence[dict[str, Any]]],
    per_day: int,
    days: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """``cases(day)``: the day's ``per_day`` events (each day's people are new)."""
    from benchmarks import run as bench

    redis = ctx.redis
    policy = RetentionPolicy()
    series: list[dict[str, float]] = []
    live = records = 0
    with bench.RouterWorkers(ctx, 0):
        core = LifeEventRouter(redis, Registry.discover(redis))
        start = time.time() + RETENTION_LOOK_SECONDS + 1
        clock = Clock(start)
        retention = Retention(redis, core.store, policy, clock)
        base = int(redis.info("memory")["used_memory"])
        began = time.monotonic()
        for day in range(days):
            todays = cases(day)
            refs = bench.produce(todays, lambda c: bench.submit(core, c), ctx.args.producers)
            _wait_settled(core, refs)
            # What the mock departments keep stands for their own systems, not ours.
            bench.delete_matching(redis, "mock:*:receipt:*")
            bench.delete_matching(redis, "mock:*:log")
            clock.at = start + (day + 1) * DAY - 1
            purged = retention.purge()
            live += len(refs) - purged.erased
            records += purged.erased - purged.deleted
            series.append(
                {
                    "day": day + 1,
                    "used_memory": int(redis.info("memory")["used_memory"]) - base,
                    "personal": live,
                    "records": records,
                    "erased": purged.erased,
                    "deleted": purged.deleted,
                }
            )
            if (day + 1) % 30 == 0 or day + 1 == days:
                row = series[-1]
                say(
                    f"   day {day + 1:>4}: {row['used_memory'] / 1e6:7.2f} MB, "
                    f"{live:>6} cases with personal data, {records:>6} records "
                    f"({time.monotonic() - began:.0f} s)"
                )
    window = policy.retain_days
    settled = [r["used_memory"] for r in series if window + 2 < r["day"]]
    tail = [r for r in series if r["day"] > window + policy.record_days + 2]
    result: dict[str, Any] = {
        "retention_days_simulated": days,
        "retention_cases_per_day": per_day,
        "retention_series": series,
        "retention_personal_cases_max": max(r["personal"] for r in series),
        "retention_personal_cases_last": series[-1]["personal"],
        "retention_memory_mb_day_28": _at(series, window) / 1e6,
        "retention_memory_mb_last": series[-1]["used_memory"] / 1e6,
    }
    if settled:
        result["retention_record_bytes_per_case"] = (settled[-1] - settled[0]) / max(
            1, per_day * (len(settled) - 1)
        )
    if tail:
        result["retention_memory_mb_flat_from"] = tail[0]["day"]
        result["retention_memory_mb_flat_min"] = min(r["used_memory"] for r in tail) / 1e6
        result["retention_memory_mb_flat_max"] = max(r["used_memory"] for r in tail) / 1e6
    return result


def _wait_settled(core: LifeEventRouter, refs: Sequence[str]) -> None:
    """Wait until no delivery of these cases is left for a worker (a death reported
    twice tells nobody again, so counting planned deliveries would wait for ever)."""
    from benchmarks import run as bench

    deadline = time.monotonic() + bench.STALL_SECONDS
    while not all(c is None or c.settled for c in core.store.load_many(refs)):
        if time.monotonic() > deadline:
            raise bench.BenchError(f"retention: deliveries of {len(refs)} cases not all done")
        time.sleep(0.02)


def _at(series: list[dict[str, float]], day: int) -> float:
    return next((r["used_memory"] for r in series if r["day"] == day), series[-1]["used_memory"])


@contextlib.contextmanager
def unsealed() -> Iterator[None]:
    """This process stores answers in plain text, as before sealing (the router reads
    both): only to measure what sealing costs."""
    original = sealing.KeyRing.seal

    def plain(self: sealing.KeyRing, value: bytes, context: str, kid: str = "") -> bytes:
        return value

    sealing.KeyRing.seal = plain  # type: ignore[method-assign]
    try:
        yield
    finally:
        sealing.KeyRing.seal = original  # type: ignore[method-assign]


def run_sealing(ctx: Any, cases: Sequence[dict[str, Any]], rounds: int = 2) -> dict[str, Any]:
    from benchmarks import run as bench

    timings: dict[str, list[float]] = {"on": [], "off": []}
    drains: dict[str, list[float]] = {"on": [], "off": []}
    planned = 0
    for _ in range(rounds):
        for mode in ("off", "on"):
            workers = bench.RouterWorkers(ctx, 0)  # empties the Redis first
            core = LifeEventRouter(ctx.redis, Registry.discover(ctx.redis))
            planned = bench.planned_digital(core, cases)
            with unsealed() if mode == "off" else contextlib.nullcontext():
                started = time.perf_counter()
                refs = [bench.submit(core, c) for c in cases]
                timings[mode].append(time.perf_counter() - started)
            with workers:
                times = bench.wait_delivered(ctx.redis, refs, planned)
            every = [t for ts in times.values() for t in ts]
            drains[mode].append((max(every) - min(every)) / max(1, planned - 1))
    on, off = min(timings["on"]), min(timings["off"])
    drain_on, drain_off = min(drains["on"]), min(drains["off"])
    return {
        "sealing_cases": len(cases),
        "sealing_deliveries": planned,
        "sealing_submit_ms_on": on / len(cases) * 1000,
        "sealing_submit_ms_off": off / len(cases) * 1000,
        "ratio_sealing_submit_on_vs_off": on / off,
        "sealing_delivery_ms_on": drain_on * 1000,
        "sealing_delivery_ms_off": drain_off * 1000,
        "ratio_sealing_delivery_on_vs_off": drain_on / drain_off,
    }
