"""Real processes: the `router` command, and waiting for real workers to settle a case."""

from __future__ import annotations

import subprocess
import sys
import time

from redis import Redis

from router.cases import Case, CaseStore
from tests.support.paths import ROOT


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
