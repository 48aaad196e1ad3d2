"""Settings read from the environment when a process starts, never at import time."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# How often a process that runs for long (a web front door, a worker supervisor) looks
# again for departments added while it runs (webhooks), in seconds.
FOLLOW_SECONDS = 2.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, in whole seconds (RQ schedules by the second).

    Attempt n waits between half and all of ``base * 2**n`` (capped), a different
    draw for each delivery, so a department that comes back is not hit by a storm of
    retries all at once.
    """

    max_retries: int = 8
    base_seconds: int = 2
    cap_seconds: int = 600

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(
            max_retries=_int("ROUTER_RETRY_MAX", cls.max_retries),
            base_seconds=_int("ROUTER_RETRY_BASE_SECONDS", cls.base_seconds),
            cap_seconds=_int("ROUTER_RETRY_CAP_SECONDS", cls.cap_seconds),
        )
