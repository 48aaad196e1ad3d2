"""Issue 13, row 9: the embedded Redis holds every case, the CSRF key, webhook secrets and
staff password hashes. So nobody gets in without a user and its password; the web front
door, the workers and the `router` command each have their own user (`web`, `worker`,
`cli`; `admin` starts and stops it), each password drawn once into a 0600 file, the
config holding only their SHA-256 (0600 too), never a command line; web and worker may
run no administrative command, and a worker reads only the keys deliveries need, never a
session, a staff account or a secret. Its folder is 0700 and its files 0600, `router up`
never prints a password, and web sessions are stored under a digest of their id."""

from __future__ import annotations

import stat
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from router import keys, ledger
from router.adapters.registry import Registry
from router.assisted.staff import StaffStore
from router.clients import ApiClients
from router.delivery.worker import Supervisor
from router.redis_server import ACL, RedisServer, redacted, start_redis
from router.service import LifeEventRouter
from tests.support.identities import evidence_for
from tests.support.paths import ROOT
from tests.support.processes import wait_settled
from tests.support.samples import sample

USERS = ("admin", "cli", "web", "worker")

# What no process but the one that starts Redis may do (each is @dangerous in Redis).
ADMINISTRATIVE = [
    ("CONFIG", "GET", "maxmemory"),
    ("CONFIG", "SET", "maxmemory", "1mb"),
    ("ACL", "LIST"),
    ("ACL", "SETUSER", "intruder", "on", ">x", "+@all", "~*"),
    ("FLUSHDB",),
    ("FLUSHALL",),
    ("DEBUG", "SLEEP", "0"),
    ("MODULE", "LIST"),
    ("REPLICAOF", "NO", "ONE"),
    ("KEYS", "*"),
    ("CLIENT", "LIST"),
    ("CLIENT", "KILL", "TYPE", "normal"),
    ("MONITOR",),
    ("SAVE",),
    ("BGREWRITEAOF",),
    ("SWAPDB", "0", "1"),
    ("SHUTDOWN", "NOSAVE"),
]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _password(server: RedisServer, user: str) -> str:
    assert server.data_dir is not None
    return (server.data_dir / f"password-{user}").read_text().strip()


def _without_credentials(url: str) -> str:
    netloc = urllib.parse.urlsplit(url).netloc
    return url.replace(netloc, netloc.rsplit("@", 1)[-1], 1)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own, started as `router up` starts one, for commands
    that would end the suite's server if they were let through."""
    server = start_redis(tmp_path / "redis", fsync="no")
    try:
        yield server
    finally:
        server.stop()


def test_row_9_nobody_gets_in_without_a_user_and_its_password(
    redis_server: RedisServer,
) -> None:
    stranger = Redis.from_url(_without_credentials(redis_server.url))
    with pytest.raises((AuthenticationError, ResponseError)):
        stranger.set("x", "1")
    # The default user is off: no password opens it, not even one of the users'.
    with pytest.raises((AuthenticationError, ResponseError)):
        stranger.execute_command("AUTH", _password(redis_server, "admin"))
    with pytest.raises((AuthenticationError, ResponseError)):
        stranger.execute_command("AUTH", "web", _password(redis_server, "worker"))
    stranger.close()
    assert Redis.from_url(redis_server.url).ping()


def test_row_9_each_process_has_its_own_user_and_password(redis_server: RedisServer) -> None:
    passwords = {user: _password(redis_server, user) for user in USERS}
    assert len(set(passwords.values())) == len(USERS), "one password each"
    for user in USERS:
        url = redis_server.url_as(user)
        parts = urllib.parse.urlsplit(url)
        assert parts.username == user
        assert urllib.parse.unquote(parts.password or "") == passwords[user]
        client = Redis.from_url(url)
        assert client.ping()
        client.close()
    admin = Redis.from_url(redis_server.url)
    assert admin.execute_command("ACL", "WHOAMI") == b"admin"
    admin.close()


def test_row_9_its_folder_and_files_are_this_users_only(redis_server: RedisServer) -> None:
    folder = redis_server.data_dir
    assert folder is not None
    Redis.from_url(redis_server.url).set("row-9", "1")
    assert _mode(folder) == 0o700
    for name in ("redis.conf", *(f"password-{user}" for user in USERS)):
        assert _mode(folder / name) == 0o600, name
    written = [p for p in folder.rglob("*") if p.is_file() and "appendonly" in p.name]
    assert written, "the append-only file is there"
    for path in written:
        assert _mode(path) & 0o077 == 0, path


def test_row_9_no_password_is_on_a_command_line_printed_or_in_the_config(
    redis_server: RedisServer,
) -> None:
    assert redis_server.pid is not None and redis_server.data_dir is not None
    cmdline = Path(f"/proc/{redis_server.pid}/cmdline").read_bytes().decode()
    config = (redis_server.data_dir / "redis.conf").read_text()
    for user in USERS:
        password = _password(redis_server, user)
        assert password not in cmdline, user
        assert password not in config, user  # only its SHA-256
        assert password not in redacted(redis_server.url_as(user)), user


@pytest.mark.parametrize("user", ["web", "worker"])
def test_row_9_web_and_worker_may_run_no_administrative_command(
    own_server: RedisServer, user: str
) -> None:
    admin = Redis.from_url(own_server.url)
    admin.set("row-9", "kept")
    client = Redis.from_url(own_server.url_as(user))
    let_through = []
    for command in ADMINISTRATIVE:
        try:
            client.execute_command(*command)
        except NoPermissionError:
            continue
        except ResponseError as error:
            # Redis 7 refuses DEBUG to every user unless enable-debug-command is set.
            if command[0] == "DEBUG" and "not allowed" in str(error):
                continue
        let_through.append(" ".join(command))
    client.close()
    assert let_through == []
    assert admin.get("row-9") == b"kept"
    assert admin.config_get("maxmemory") != {"maxmemory": str(1024 * 1024)}
    admin.close()


def test_row_9_a_worker_reads_no_session_staff_account_api_client_or_secret(
    app: Flask, redis: Redis, redis_server: RedisServer
) -> None:
    StaffStore(redis).add("ann", "a long counter password", "cardiff-queen-street", "clerk")
    ApiClients(redis).add("partner", ["death"])
    core = LifeEventRouter(redis, Registry.discover(redis))
    core.web_secret_key()
    core.people.person_key("QQ123456C")
    app.test_client().get("/report/moving_house?lang=cy")  # a session in Redis
    guarded = [
        keys.WEB_SECRET_KEY,
        keys.staff("ann"),
        keys.API_CLIENTS,
        keys.API_CLIENT_KEYS,
        keys.PEOPLE_KEY,
        keys.throttle("status", "someone"),
        keys.submission("a-key"),
        *(k.decode() for k in redis.scan_iter(keys.WEB_SESSION_PREFIX + "*")),
    ]
    assert redis.exists(keys.WEB_SECRET_KEY) and redis.exists(keys.staff("ann"))
    worker = Redis.from_url(redis_server.url_as("worker"))
    for key in guarded:
        with pytest.raises(NoPermissionError):
            worker.type(key)
        with pytest.raises(NoPermissionError):
            worker.set(key, "overwritten")
    worker.close()
    assert redis.type(keys.staff("ann")) == b"hash"


def test_row_9_real_workers_deliver_as_the_worker_user(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    data = sample("death")
    evidence = evidence_for("death", data["answers"])
    ref = core.submit("death", data["answers"], data["consent"], **evidence).ref
    case = wait_settled(redis, ref)
    assert {d.state.value for d in case.deliveries.values()} == {"delivered"}
    users = {c["user"] for c in redis.client_list() if c.get("name")}  # RQ names its own
    assert users == {"worker"}
    # Each delivered delivery's ledger entry was posted by the worker user (its ACL
    # lets it write ledger:*), in the transaction that recorded it.
    month = ledger.month_of(datetime.now(UTC))
    posted = {k.decode() for k in redis.hkeys(keys.ledger(month))}
    assert posted == {case.delivery_id(name) for name in case.deliveries}


def test_row_9_the_worker_and_web_users_may_post_to_the_ledger_and_nothing_near_it(
    redis_server: RedisServer,
) -> None:
    """The counter (the web user) and the workers post entries; a worker's ACL names
    the ledger's keys and no more."""
    for user in ("worker", "web"):
        client = Redis.from_url(redis_server.url_as(user))
        assert client.hsetnx(keys.ledger("2026-12"), f"{user}-entry", "{}") == 1
        client.close()
    worker = Redis.from_url(redis_server.url_as("worker"))
    with pytest.raises(NoPermissionError):
        worker.set("ledgers", "x")
    worker.close()


def test_row_9_web_sessions_are_stored_under_a_digest_of_their_id(app: Flask, redis: Redis) -> None:
    client = app.test_client()
    client.get("/report/moving_house?lang=cy")
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    stored = [k.decode() for k in redis.scan_iter(keys.WEB_SESSION_PREFIX + "*")]
    assert stored, "a session was stored"
    assert all(cookie.value not in key for key in stored)
    assert not redis.exists(keys.WEB_SESSION_PREFIX + cookie.value)


def test_row_9_security_md_gives_a_deployment_the_users_the_embedded_redis_has() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    assert "user default off\n" in text
    for user in ("web", "worker", "cli"):
        assert f"user {user} on >PASSWORD {ACL[user]}\n" in text, user
