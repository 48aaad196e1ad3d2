"""Issue 13, row 9: the embedded Redis holds every case, the CSRF key, webhook secrets and
staff password hashes, so it asks for a password (kept in a 0600 file and a 0600
config, never on a command line), its folder is 0700 and its files 0600, `router up`
never prints the password, and web sessions are stored under a digest of their id."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from redis.exceptions import AuthenticationError, ResponseError

from router import keys, redis_server
from router.redis_server import RedisServer


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_row_9_the_embedded_redis_asks_for_its_password(redis_server: RedisServer) -> None:
    assert redis_server.port is not None and redis_server.data_dir is not None
    stranger = Redis(host="127.0.0.1", port=redis_server.port)
    with pytest.raises((AuthenticationError, ResponseError)):
        stranger.set("x", "1")
    stranger.close()
    assert Redis.from_url(redis_server.url).ping()


def test_row_9_its_folder_and_files_are_this_users_only(redis_server: RedisServer) -> None:
    folder = redis_server.data_dir
    assert folder is not None
    Redis.from_url(redis_server.url).set("row-9", "1")
    assert _mode(folder) == 0o700
    for name in ("password", "redis.conf"):
        assert _mode(folder / name) == 0o600, name
    written = [p for p in folder.rglob("*") if p.is_file() and "appendonly" in p.name]
    assert written, "the append-only file is there"
    for path in written:
        assert _mode(path) & 0o077 == 0, path


def test_row_9_the_password_is_never_on_a_command_line(redis_server: RedisServer) -> None:
    assert redis_server.process is not None and redis_server.data_dir is not None
    password = (redis_server.data_dir / "password").read_text().strip()
    cmdline = Path(f"/proc/{redis_server.process.pid}/cmdline").read_bytes().decode()
    assert password not in cmdline
    assert password not in redis_server_printed(redis_server.url)


def redis_server_printed(url: str) -> str:
    return redis_server.redacted(url)


def test_row_9_web_sessions_are_stored_under_a_digest_of_their_id(app: Flask, redis: Redis) -> None:
    client = app.test_client()
    client.get("/report/moving_house?lang=cy")
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    stored = [k.decode() for k in redis.scan_iter(keys.WEB_SESSION_PREFIX + "*")]
    assert stored, "a session was stored"
    assert all(cookie.value not in key for key in stored)
    assert not redis.exists(keys.WEB_SESSION_PREFIX + cookie.value)
