"""Issue 16, item 3: gunicorn as `router up` runs it writes an access log line per
request, as JSON, with the method, the path without its query string, the status, the
size and the duration, and never the query string, the referrer or the user agent;
its web workers' records are JSON lines too. ``child_exit`` does prometheus-client's
bookkeeping for a web worker gone."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from redis import Redis

from channels import serving
from router import metrics
from router.cli import gunicorn_command
from router.redis_server import RedisServer, free_port
from tests.support.paths import ROOT

SECRET = "q7Zs3cr3tStatusLinkSecret"


def _get(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0  # not listening yet


def test_the_access_log_is_a_json_line_per_request_without_its_query_string(
    redis: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    port = free_port()
    env = dict(os.environ, REDIS_URL=redis_server.url_as("web"), PYTHONPATH=str(ROOT))
    env[metrics.FOLDER_ENV] = str(tmp_path)
    web = subprocess.Popen(
        gunicorn_command("127.0.0.1", port),
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while _get(f"http://127.0.0.1:{port}/healthz", {}) != 200:
            assert time.monotonic() < deadline and web.poll() is None, "gunicorn did not start"
            time.sleep(0.1)
        page = f"http://127.0.0.1:{port}/status/ACDE-FGHJ-K?s={SECRET}"
        sent = {"Referer": f"https://elsewhere.example/?s={SECRET}", "User-Agent": "Probe/9.1"}
        assert _get(page, sent) == 404  # no such case: what matters is its line
    finally:
        web.terminate()
        out, err = web.communicate(timeout=30)
    requests = [json.loads(line) for line in out.splitlines()]
    status = [r for r in requests if r["path"].startswith("/status/")]
    assert len(status) == 1, out
    line = status[0]
    assert {k: line[k] for k in serving.ACCESS_FIELDS} == {
        "method": "GET",
        "path": "/status/ACDE-FGHJ-K",
        "status": 404,
        "bytes": line["bytes"],
        "seconds": line["seconds"],
    }
    assert line["bytes"] > 0 and 0 < line["seconds"] < 10
    assert set(line) == {*serving.ACCESS_FIELDS, "message", "level", "logger", "timestamp"}
    assert line["message"] == "request" and line["logger"] == "gunicorn.access"
    for written in (out, err):
        assert SECRET not in written and "Probe/9.1" not in written
        assert "elsewhere.example" not in written
    # Whatever gunicorn and the web workers said on standard error is JSON too.
    assert all(json.loads(line)["message"] for line in err.splitlines() if line.strip())


def test_child_exit_does_prometheus_clients_bookkeeping_for_a_worker_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(metrics.FOLDER_ENV, str(tmp_path))
    live = tmp_path / "gauge_livesum_4242.db"
    counts = tmp_path / "counter_4242.db"
    live.write_bytes(b"")
    counts.write_bytes(b"")
    serving.child_exit(None, SimpleNamespace(pid=4242))
    assert not live.exists()
    assert counts.exists()  # a counter outlives its process, as Prometheus expects
