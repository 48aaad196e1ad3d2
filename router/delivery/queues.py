"""Queue names, in one place: one RQ queue per department.

A department's deliveries wait in its own pending set (router.delivery.fanout); its queue
carries only the small "drain" jobs that wake a worker to take a batch of them. A slow
or failing department fills only its own pending set and queue, so it delays no other.
"""

from __future__ import annotations

QUEUE_PREFIX = "dept-"


def queue_for(department: str) -> str:
    """The RQ queue that carries ``department``'s drain jobs."""
    return f"{QUEUE_PREFIX}{department}"
