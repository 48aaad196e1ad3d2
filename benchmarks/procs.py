"""Processes the benchmark starts: spawned, their CPU time read, and stopped by pid.

Every process is tracked with its start time (from ``/proc``), so a pid reused by the
system after one of ours exited is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    pid: int
    start: str  # start time in clock ticks since boot, as /proc shows it


@dataclass(frozen=True)
class Stat:
    ppid: int
    state: str
    start: str
    cpu_seconds: float


def stat(pid: int) -> Stat | None:
    """A process's parent, state, start time and CPU seconds; None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw.rsplit(")", 1)[1].split()
    # Fields after the command: state(3) ppid(4) ... utime(14) stime(15) ... starttime(22).
    ticks = int(rest[11]) + int(rest[12])
    return Stat(int(rest[1]), rest[0], rest[19], ticks / CLOCK_TICKS)


def alive(proc: Proc) -> bool:
    s = stat(proc.pid)
    return s is not None and s.start == proc.start and s.state not in ("Z", "X")


def tree(roots: Iterable[int]) -> set[Proc]:
    """The given processes and all their descendants now alive."""
    found: set[Proc] = set()
    parents = set()
    for pid in roots:
        s = stat(pid)
        if s is not None:
            found.add(Proc(pid, s.start))
            parents.add(pid)
    while parents:
        children = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                s = stat(int(entry))
                if s is not None and s.ppid in parents and Proc(int(entry), s.start) not in found:
                    found.add(Proc(int(entry), s.start))
                    children.add(int(entry))
        parents = children
    return found


class Group:
    """Processes started for one system under test; stopped together, by pid."""

    def __init__(self, name: str, log_dir: Path) -> None:
        self.name = name
        self.log_dir = log_dir
        self.popens: list[subprocess.Popen[bytes]] = []
        self.roots: list[int] = []
        self.known: set[Proc] = set()
        self._logs: list[IO[bytes]] = []

    def spawn(self, args: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{self.name}-{len(self.popens)}.log").open("wb")
        self._logs.append(log)
        process = subprocess.Popen(
            list(args),
            env=dict(env),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.popens.append(process)
        self.adopt([process.pid])
        return process

    def adopt(self, pids: Iterable[int]) -> None:
        """Track processes started by someone else (the router's Supervisor)."""
        self.roots.extend(pids)
        self.note()

    def note(self) -> None:
        self.known |= tree(self.roots)

    def pids(self) -> list[int]:
        self.note()
        return sorted(p.pid for p in self.known if alive(p))

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of every live process of the group."""
        self.note()
        total = 0.0
        for proc in self.known:
            s = stat(proc.pid)
            if s is not None and s.start == proc.start:
                total += s.cpu_seconds
        return total

    def log_tail(self, lines: int = 15) -> str:
        parts = []
        for path in sorted(self.log_dir.glob(f"{self.name}-*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM what we spawned, wait; then SIGTERM, and at last SIGKILL, any
        tracked process (a pool child, say) still alive."""
        with contextlib.suppress(Exception):
            self.note()
        for process in self.popens:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.popens:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        leftovers = [p for p in self.known if alive(p)]
        for proc in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in leftovers) and time.monotonic() < deadline:
            time.sleep(0.1)
        for proc in leftovers:
            if alive(proc):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
        for log in self._logs:
            log.close()
        self.popens.clear()
        self._logs.clear()
