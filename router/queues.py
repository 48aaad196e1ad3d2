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
