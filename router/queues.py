"""Queue names, in one place: one RQ queue per department.

A slow or failing department fills only its own queue, so it delays no other.
"""

from __future__ import annotations

from collections.abc import Iterable

QUEUE_PREFIX = "dept-"


def queue_for(department: str) -> str:
    """The RQ queue that carries deliveries to ``department``."""
    return f"{QUEUE_PREFIX}{department}"


def all_queues(departments: Iterable[str]) -> list[str]:
    return [queue_for(d) for d in sorted(departments)]


def job_id(ref: str, department: str, round_: int = 0) -> str:
    """The RQ job id of one delivery's send: ``deliver-<ref>-<department>[-r<round>]``.
    A delivery sent again (replay, recovery, a breaker pause) gets the next round."""
    base = f"deliver-{ref}-{department}"
    return base if round_ == 0 else f"{base}-r{round_}"


def parse_job_id(value: str) -> tuple[str, str, int] | None:
    """(ref, department, round) from a job id made by ``job_id``, else None."""
    parts = value.split("-")
    if len(parts) not in (3, 4) or parts[0] != "deliver":
        return None
    round_ = 0
    if len(parts) == 4:
        if not parts[3].startswith("r") or not parts[3][1:].isdigit():
            return None
        round_ = int(parts[3][1:])
    return parts[1], parts[2], round_
