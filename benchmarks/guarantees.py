"""Benchmark part for issue 18, item 4: what each guarantee costs, on and off in the same
run.

Every figure is CPU-bound work in this one process, on the benchmark's Redis
(``appendfsync always``): submissions through ``LifeEventRouter.submit`` from one
thread, and a stored backlog drained in-process by a ``Dispatcher`` (its drain and
thread pool, 0 ms departments), so the time measured is the router's own and nothing
else shares it. Each pair is measured on the same cases, off then on, ``rounds``
times; the best of each is kept. A ratio is time with the guarantee over time
without: 1.10 means it costs 10%.

- ``encryption``: answers sealed (AES-GCM per answer, as always) or stored in plain
  text by this process (``KeyRing.seal`` replaced here; the router has no switch to
  turn sealing off). Submission, and the drain (which opens what it sends).
- ``ledger``: the drain posting a ledger entry per delivered delivery, or not
  (``ledger.post`` replaced here). Drain only: submissions post nothing, except a
  register's check (counted under ``gro``).
- ``gro``: deaths and births checked with the (mock) General Register Office at
  submission, each registered there first, or vouched for by a registrar's system as
  in the rest of the benchmark. Submissions of deaths and births only.
- ``retention``: the purge's work per case over its life (it first sees a case
  settled, erases its personal data after the window, deletes the record at the end)
  added to what submitting and delivering it cost, over the same without the purge.
- ``wait``: on a primary with two replicas (router.redis_server.start_ha, as
  ``router up --ha``), a submission and a drain waiting for every replica (WAIT) or
  not waiting. Submission and drain.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from redis import Redis

from router import keys, ledger
from router.adapters import mock_gro
from router.adapters.registry import Registry
from router.cases import RETENTION_LOOK_SECONDS
from router.catalogue import EVENTS
from router.delivery.batch import Dispatcher
from router.redis_server import connect, start_ha
from router.retention import Retention
from router.service import LifeEventRouter
from router.settings import Durability, RetentionPolicy
from router.trust import Proof

DAY = 86400.0


@contextlib.contextmanager
def without_ledger() -> Iterator[None]:
    """This process's drain posts no ledger entry: only to measure what posting costs."""
    original = ledger.post
    ledger.post = lambda pipe, entries: None
    try:
        yield
    finally:
        ledger.post = original


def _submit_all(
    core: LifeEventRouter, cases: Sequence[dict[str, Any]], vouched: bool = True
) -> tuple[list[str], float]:
    """Submit every case from this thread; the references and the seconds it took."""
    from tests.support.identities import evidence_for

    refs = []
    started = time.perf_counter()
    for case in cases:
        evidence = evidence_for(case["event"], case["answers"])
        if not vouched:
            evidence["proofs"] = [p for p in evidence["proofs"] if p != Proof.vouched("registrar")]
        refs.append(
            core.submit(
                case["event"], case["answers"], case["consent"], channel="bench", **evidence
            ).ref
        )
    return refs, time.perf_counter() - started


def _drain_all(redis: Redis, registry: Registry, durability: Durability | None = None) -> float:
    """Drain every department's stored backlog in this process; the seconds it took and
    check that every planned delivery was delivered."""
    dispatcher = Dispatcher(redis, registry, durability=durability or Durability())
    try:
        started = time.perf_counter()
        for department in registry.names():
            dispatcher.drain_now(department)
        return time.perf_counter() - started
    finally:
        dispatcher.stop()


def _pending(redis: Redis, registry: Registry) -> int:
    with redis.pipeline(transaction=False) as pipe:
        for department in registry.names():
            pipe.zcard(keys.pending(department))
        return sum(int(n) for n in pipe.execute())


def _pair(
    rounds: int, measure: Callable[[bool], tuple[float, float]]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """``measure(on)`` -> (submission seconds, drain seconds), off then on, ``rounds``
    times; the best of each side."""
    found: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(rounds):
        for on in (False, True):
            found[on].append(measure(on))

    def best(on: bool) -> tuple[float, float]:
        return min(s for s, _ in found[on]), min(d for _, d in found[on])

    return best(False), best(True)


def _round(
    redis: Redis,
    fresh: Callable[[], object],
    cases: Sequence[dict[str, Any]],
    *,
    seal: bool = True,
    post: bool = True,
    vouched: bool = True,
    durability: Durability | None = None,
) -> tuple[float, float, list[str], int]:
    """Submit ``cases`` then drain them in-process, from an empty Redis: submission
    seconds, drain seconds, references, deliveries made."""
    from benchmarks.retention import unsealed

    fresh()
    registry = Registry.discover(redis)
    core = LifeEventRouter(redis, registry, durability=durability or Durability())
    if not vouched:
        _register(redis, cases)
    with contextlib.nullcontext() if seal else unsealed():
        refs, submitted = _submit_all(core, cases, vouched)
    planned = _pending(redis, registry)
    with contextlib.nullcontext() if post else without_ledger():
        drained = _drain_all(redis, registry, durability)
    left = _pending(redis, registry)
    if left:
        raise RuntimeError(f"guarantees: {left} deliveries left after the drain")
    return submitted, drained, refs, planned


def _register(redis: Redis, cases: Sequence[dict[str, Any]]) -> None:
    """Enter every death and birth of ``cases`` in the mock register, as reported."""
    today = date.today()
    for case in cases:
        registration = EVENTS[case["event"]].registration
        if registration is None:
            continue
        answers = case["answers"]
        when = _date(answers[registration.date_field], today)
        mock_gro.add(
            redis,
            registration.kind,
            str(answers[registration.name_field]),
            when,
            "Leeds",
            today,
            reference=str(answers["registrar_reference"]),
        )


def _date(value: Any, today: date) -> date:
    if isinstance(value, dict) and "days_ago" in value:
        return today - timedelta(days=int(value["days_ago"]))
    if isinstance(value, dict):
        return date(int(value["year"]), int(value["month"]), int(value["day"]))
    return date.fromisoformat(str(value))


def run_guarantees(
    ctx: Any, cases: Sequence[dict[str, Any]], rounds: int = 2, say: Callable[[str], None] = print
) -> dict[str, Any]:
    redis: Redis = ctx.redis
    results: dict[str, Any] = {"guarantees_cases": len(cases), "guarantees_rounds": rounds}

    def per(total: float, count: int) -> float:
        return 1000 * total / max(1, count)

    def record(
        name: str, count: tuple[int, int], off: tuple[float, float], on: tuple[float, float]
    ) -> None:
        cases_n, deliveries_n = count
        for side, (submitted, drained) in (("off", off), ("on", on)):
            if cases_n:
                results[f"guarantee_{name}_submit_ms_{side}"] = per(submitted, cases_n)
            if deliveries_n:
                results[f"guarantee_{name}_delivery_ms_{side}"] = per(drained, deliveries_n)
        if cases_n:
            results[f"ratio_{name}_submit_on_vs_off"] = on[0] / off[0]
        if deliveries_n:
            results[f"ratio_{name}_delivery_on_vs_off"] = on[1] / off[1]

    counts: dict[str, tuple[int, int]] = {}

    def measured(name: str, **flags: Any) -> Callable[[bool], tuple[float, float]]:
        key, on_value, off_value, chosen = flags["key"], flags["on"], flags["off"], flags["cases"]

        def measure(on: bool) -> tuple[float, float]:
            submitted, drained, _refs, planned = _round(
                redis, ctx.fresh, chosen, **{key: on_value if on else off_value}
            )
            counts[name] = (len(chosen), planned)
            return submitted, drained

        return measure

    say(f"   encryption, ledger, GRO check: {len(cases)} events, {rounds} rounds each ...")
    off, on = _pair(rounds, measured("encryption", key="seal", on=True, off=False, cases=cases))
    record("encryption", counts["encryption"], off, on)
    off, on = _pair(rounds, measured("ledger", key="post", on=True, off=False, cases=cases))
    record("ledger", (0, counts["ledger"][1]), off, on)
    registered = [c for c in cases if EVENTS[c["event"]].registration is not None]
    off, on = _pair(rounds, measured("gro", key="vouched", on=False, off=True, cases=registered))
    record("gro", (len(registered), 0), off, on)

    # Retention: the purge's three looks at each case, against submitting and
    # delivering it (the same cases, the same round).
    best_purge = best_life = float("inf")
    for _ in range(rounds):
        submitted, drained, refs, _planned = _round(redis, ctx.fresh, cases)
        started = time.time()
        clock = _Clock(started)
        retention = Retention(redis, policy=RetentionPolicy(), clock=clock)
        purge_started = time.perf_counter()
        looks = []
        for at in (
            started + RETENTION_LOOK_SECONDS + 1,
            started + RETENTION_LOOK_SECONDS + (RetentionPolicy().retain_days + 1) * DAY,
            started + (RetentionPolicy().retain_days + RetentionPolicy().record_days + 2) * DAY,
        ):
            clock.at = at
            looks.append(retention.purge())
        purged = time.perf_counter() - purge_started
        # Cases still waiting for a counter visit keep their data: not every case.
        if not looks[1].erased or not looks[2].deleted:
            raise RuntimeError(f"guarantees: the purge erased or deleted none of {len(refs)}")
        best_purge = min(best_purge, purged)
        best_life = min(best_life, submitted + drained)
    results["guarantee_retention_purge_ms_per_case"] = per(best_purge, len(cases))
    results["guarantee_retention_case_ms_without"] = per(best_life, len(cases))
    results["ratio_retention_case_on_vs_off"] = (best_life + best_purge) / best_life

    say("   WAIT: a primary and two replicas ...")
    results.update(_wait_pair(cases, rounds))
    return results


class _Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def _wait_pair(cases: Sequence[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """Submission and drain on a primary with two replicas, waiting for every replica
    or not (the same servers, one after the other)."""
    with tempfile.TemporaryDirectory(prefix="tuo-bench-ha-") as tmp:
        ha = start_ha(Path(tmp) / "ha", fsync="always")
        redis = connect(ha.primary.url)
        try:
            every = Durability(replicas=len(ha.replicas))

            def measure(on: bool) -> tuple[float, float]:
                submitted, drained, _refs, planned = _round(
                    redis, redis.flushall, cases, durability=every if on else Durability()
                )
                measure.planned = planned  # type: ignore[attr-defined]
                return submitted, drained

            off, on = _pair(rounds, measure)
            planned = measure.planned  # type: ignore[attr-defined]
        finally:
            redis.close()
            ha.stop()
    return {
        "guarantee_wait_replicas": len(ha.replicas),
        "guarantee_wait_submit_ms_off": 1000 * off[0] / len(cases),
        "guarantee_wait_submit_ms_on": 1000 * on[0] / len(cases),
        "guarantee_wait_delivery_ms_off": 1000 * off[1] / max(1, planned),
        "guarantee_wait_delivery_ms_on": 1000 * on[1] / max(1, planned),
        "ratio_wait_submit_on_vs_off": on[0] / off[0],
        "ratio_wait_delivery_on_vs_off": on[1] / off[1],
    }
