"""Helpers for tests that run real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from redis import Redis

from router.cases import Case, CaseStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "events"


def sample(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def samples() -> list[str]:
    return sorted(p.stem for p in EXAMPLES.glob("*.json"))


def wait_settled(redis: Redis, ref: str, timeout: float = 30.0) -> Case:
    """Wait until no delivery of the case is queued, sending or retrying."""
    store = CaseStore(redis)
    deadline = time.monotonic() + timeout
    while True:
        case = store.load(ref)
        if case.settled:
            return case
        if time.monotonic() > deadline:
            states = {n: d.state.value for n, d in case.deliveries.items()}
            raise AssertionError(f"case {ref} not settled after {timeout}s: {states}")
        time.sleep(0.1)


def router_cli(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def mock_log(redis: Redis, department: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in redis.lrange(f"mock:{department}:log", 0, -1)]
