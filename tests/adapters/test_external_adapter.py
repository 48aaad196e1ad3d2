"""The example external adapter (examples/adapter-example), installed as a department would.

The package is pip-installed into a directory of its own (never this venv's
site-packages) and put on PYTHONPATH, so the router finds it only through its
``tell_us_once.adapters`` entry point, exactly as after ``pip install`` next to it.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from router import settings
from router.adapters.contract import Adapter, Notification, PermanentError, RetryableError
from router.adapters.registry import Registry
from router.redis_server import RedisServer
from router.service import LifeEventRouter
from router.settings import RetryPolicy
from tests.support.identities import reporter_identity
from tests.support.journeys import walk
from tests.support.pages import soup
from tests.support.paths import ROOT
from tests.support.processes import router_cli
from tests.support.samples import sample

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "adapter-example"
BUILT_IN = {"dwp", "dvla", "payments", "hmrc", "council"}
NAME_FIELDS = ("previous_full_name", "full_name", "date_of_birth", "date_of_change")


def _pip_install(target: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"pip install failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package pip-installed into a directory of its own."""
    target = tmp_path_factory.mktemp("adapter-site")
    _pip_install(target)
    assert (target / "tuo_passport_adapter" / "__init__.py").is_file()
    return target


def _env(target: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path, **extra)
    env.pop("ROUTER_ADAPTERS", None)
    return env


@pytest.fixture
def on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installed example importable in this process for one test."""
    monkeypatch.delenv("ROUTER_ADAPTERS", raising=False)
    monkeypatch.syspath_prepend(str(installed))
    importlib.invalidate_caches()
    try:
        yield installed
    finally:
        # Forget the module, so later tests see only what their own sys.path holds.
        sys.modules.pop("tuo_passport_adapter", None)
        importlib.invalidate_caches()


@pytest.fixture
def passport_class(on_path: Path) -> type[Adapter]:
    module = importlib.import_module("tuo_passport_adapter")
    assert Path(module.__file__ or "").is_relative_to(on_path), "imported from elsewhere"
    cls: type[Adapter] = module.PassportOffice
    return cls


def _rows(db: Path) -> list[tuple[str, str, str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT delivery_id, receipt, event_type, record_change FROM applied_deliveries"
        ).fetchall()


def _adapter(cls: type[Adapter], db: Path) -> Any:
    """An adapter instance on its own database file (``db_path`` is the example's own)."""
    return cls(None, db_path=str(db))  # type: ignore[call-arg]


def _notification(**fields: Any) -> Notification:
    return Notification(
        delivery_id="ACDEFGHJK-passport",
        case_ref="ACDEFGHJK",
        department="passport",
        event_type="change_of_name",
        fields=fields,
        submitted_at="2026-01-01T00:00:00.000+00:00",
    )


NAME_CHANGE = {
    "previous_full_name": "Emily Carter",
    "full_name": "Emily D'Souza",
    "date_of_birth": "1992-04-08",
    "date_of_change": "2026-01-01",
}


def test_discovered_through_its_entry_point(installed: Path) -> None:
    code = (
        "from router.adapters.registry import Registry\n"
        "r = Registry.discover()\n"
        "print(','.join(r.names()))\n"
        "print(r.get('passport').__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(installed),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    names, module = done.stdout.split()
    assert set(names.split(",")) == BUILT_IN | {"passport"}
    assert module == "tuo_passport_adapter"


def test_discovered_in_process(passport_class: type[Adapter]) -> None:
    registry = Registry.discover()
    assert set(registry.names()) == BUILT_IN | {"passport"}
    assert registry.get("passport") is passport_class
    assert passport_class.fields["change_of_name"] == NAME_FIELDS
    assert passport_class.timeout == 5.0


def test_real_worker_delivers_a_change_of_name(
    on_path: Path,
    passport_class: type[Adapter],
    redis: Redis,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    db = tmp_path / "passport.sqlite3"
    registry = Registry.discover()
    assert "passport" in registry
    core = LifeEventRouter(
        redis, registry, RetryPolicy(max_retries=2, base_seconds=1, cap_seconds=1)
    )
    event = sample("change_of_name")
    env = _env(on_path, REDIS_URL=redis_server.url_as("worker"), PASSPORT_ADAPTER_DB=str(db))
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "router", "worker", "--department", "passport"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        submitted = core.submit(
            event["event"],
            event["answers"],
            [*event["consent"], "passport"],
            channel="test",
            identity=reporter_identity(event["event"], event["answers"]),
        )
        ref = submitted.ref
        deadline = time.monotonic() + 30
        while True:
            delivery = core.case(ref).deliveries["passport"]
            if delivery.state == "delivered":
                break
            if delivery.state == "failed" or worker.poll() is not None:
                raise AssertionError(
                    f"passport delivery {delivery.state}: {delivery.detail}\n{log.read_text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"passport delivery still {delivery.state} after 30s\n{log.read_text()}"
                )
            time.sleep(0.1)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)

    case = core.case(ref)
    assert case.delivery_id("passport") == f"{ref}-passport"
    rows = _rows(db)
    assert len(rows) == 1
    delivery_id, receipt, event_type, record_change = rows[0]
    assert delivery_id == f"{ref}-passport"
    assert event_type == "change_of_name"
    change = json.loads(record_change)
    assert set(change) == set(NAME_FIELDS)  # only what it declared: no NI number, no address
    assert change["full_name"] == event["answers"]["full_name"]
    assert change["previous_full_name"] == event["answers"]["previous_full_name"]
    stored = case.deliveries["passport"].receipt
    assert stored is not None
    assert stored.to_dict() == json.loads(receipt)


def test_repeated_delivery_returns_first_receipt_and_changes_nothing(
    passport_class: type[Adapter], tmp_path: Path
) -> None:
    db = tmp_path / "passport.sqlite3"
    adapter = _adapter(passport_class, db)
    first = adapter.deliver(_notification(**NAME_CHANGE))
    assert first.reference.startswith("HMPO-")
    assert _rows(db)[0][3] == json.dumps(NAME_CHANGE, sort_keys=True)

    # The same delivery again, from a fresh adapter instance (as another worker would).
    again = _adapter(passport_class, db).deliver(_notification(**NAME_CHANGE))
    assert again == first
    assert len(_rows(db)) == 1
    assert adapter.conformance_effects(_notification(**NAME_CHANGE)) == 1


def test_database_path_from_environment(
    passport_class: type[Adapter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "from-env.sqlite3"
    monkeypatch.setenv("PASSPORT_ADAPTER_DB", str(db))
    passport_class().deliver(_notification(**NAME_CHANGE))
    assert len(_rows(db)) == 1


def test_missing_field_is_permanent_and_reason_has_no_personal_data(
    passport_class: type[Adapter], tmp_path: Path
) -> None:
    db = tmp_path / "passport.sqlite3"
    partial = {k: v for k, v in NAME_CHANGE.items() if k != "date_of_birth"}
    with pytest.raises(PermanentError) as refused:
        _adapter(passport_class, db).deliver(_notification(**partial))
    assert "date_of_birth" in refused.value.reason
    for value in NAME_CHANGE.values():
        assert value not in refused.value.reason
    assert not db.exists() or _rows(db) == []


def test_locked_database_is_retryable_then_delivers(
    passport_class: type[Adapter], tmp_path: Path
) -> None:
    db = tmp_path / "passport.sqlite3"
    adapter = _adapter(passport_class, db)
    adapter.busy_seconds = 0.1
    with closing(sqlite3.connect(db, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(RetryableError) as busy:
            adapter.deliver(_notification(**NAME_CHANGE))
        other.execute("ROLLBACK")
    for value in NAME_CHANGE.values():
        assert value not in busy.value.reason
    assert adapter.deliver(_notification(**NAME_CHANGE)).reference == "HMPO-00000001"
    assert len(_rows(db)) == 1


def test_listed_and_passing_the_conformance_kit_from_the_command_line(
    installed: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = _env(
        installed,
        REDIS_URL=redis_server.url_as("cli"),
        PASSPORT_ADAPTER_DB=str(tmp_path / "check.sqlite3"),
    )
    listed = router_cli("adapters", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "passport  HM Passport Office (example external adapter)" in listed.stdout
    assert "queue: dept-passport" in listed.stdout

    checked = router_cli("adapters", "check", "passport", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "PASS cleanup: removed the 4 sample deliveries" in checked.stdout
    assert "passport: all 13 checks passed" in checked.stdout
    assert _rows(tmp_path / "check.sqlite3") == []  # the kit left nothing behind


def test_the_kit_keeps_its_samples_when_asked_and_says_which(
    installed: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    db = tmp_path / "kept.sqlite3"
    env = _env(installed, REDIS_URL=redis_server.url_as("cli"), PASSPORT_ADAPTER_DB=str(db))
    checked = router_cli("adapters", "check", "passport", "--keep-samples", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    kept = sorted(row[0] for row in _rows(db))
    # Each event's sample and the one with blank fields it refused: the two it applied.
    assert kept == ["CONFRMANC-passport-change_of_name-a", "CONFRMANC-passport-death-a"]
    assert "NOTE cleanup: kept, as asked" in checked.stdout
    for delivery_id in kept:
        assert delivery_id in checked.stdout


def test_cleanup_removes_only_samples_and_never_reuses_a_receipt_number(
    passport_class: type[Adapter], tmp_path: Path
) -> None:
    db = tmp_path / "passport.sqlite3"
    adapter = _adapter(passport_class, db)
    sample_note = dataclasses.replace(
        _notification(**NAME_CHANGE),
        delivery_id="CONFRMANC-passport-change_of_name-a",
        case_ref="CONFRMANC",
    )
    assert adapter.deliver(sample_note).reference == "HMPO-00000001"
    real = _notification(**NAME_CHANGE)
    with pytest.raises(ValueError, match="only the conformance kit's sample"):
        adapter.conformance_cleanup(real)
    adapter.conformance_cleanup(sample_note)
    assert adapter.conformance_effects(sample_note) == 0
    # The sample's number is never handed out again to a real delivery.
    assert adapter.deliver(real).reference == "HMPO-00000002"


@pytest.fixture(params=["existed", "made by the install"])
def site_packages(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A folder on sys.path with nothing installed in it yet: site-packages, or a folder
    named in PYTHONPATH that does not exist until ``pip install --target`` makes it."""
    folder = tmp_path / "site-packages"
    if request.param == "existed":
        folder.mkdir()
    monkeypatch.delenv("ROUTER_ADAPTERS", raising=False)
    monkeypatch.syspath_prepend(str(folder))
    # As a process's imports at start-up do: each looks through sys.path, and the import
    # system remembers what it saw of each folder (of one not there yet: nothing, in
    # sys.path_importer_cache, until importlib.invalidate_caches()).
    assert importlib.util.find_spec("tuo_passport_adapter") is None
    try:
        yield folder
    finally:
        sys.modules.pop("tuo_passport_adapter", None)
        importlib.invalidate_caches()


def _offered(client: FlaskClient) -> set[str]:
    """The organisations the tell page of a change of name offers, by name."""
    response = client.get("/report/change_of_name/tell")
    assert response.status_code == 200, response.status_code
    return {str(box["value"]) for box in soup(response).select('input[name="departments"]')}


def _offered_within_follow_seconds(client: FlaskClient, name: str) -> set[str]:
    since = time.monotonic()
    while name not in (offered := _offered(client)):
        waited = time.monotonic() - since
        assert waited < settings.FOLLOW_SECONDS + 1.0, (
            f"{name} not offered {waited:.1f}s after it was installed: {sorted(offered)}"
        )
        time.sleep(0.1)
    return offered


def test_the_web_front_door_offers_a_department_installed_while_it_runs(
    site_packages: Path, app: Flask, client: FlaskClient
) -> None:
    """pip install next to a running front door: its tell page offers the new department
    within FOLLOW_SECONDS, without a restart, as the workers serve it."""
    _, url = walk(client, "change_of_name", sample("change_of_name")["answers"])
    assert url == "/report/change_of_name/tell"
    before = _offered(client)
    assert before and "passport" not in before

    _pip_install(site_packages)
    assert _offered_within_follow_seconds(client, "passport") == before | {"passport"}


def test_a_department_half_installed_leaves_the_front_door_serving_what_it_knew(
    site_packages: Path,
    installed: Path,
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An entry point whose code cannot be imported (pip midway through an install, or a
    broken adapter) must not break the pages: they offer what they offered, and the new
    department once its code is there."""
    _, url = walk(client, "change_of_name", sample("change_of_name")["answers"])
    before = _offered(client)
    monkeypatch.setattr("router.settings.FOLLOW_SECONDS", 0.0)  # look again every request
    dist_info = next(installed.glob("*.dist-info"))
    shutil.copytree(dist_info, site_packages / dist_info.name)
    with caplog.at_level(logging.WARNING, logger="router.service"):
        for _ in range(3):
            assert _offered(client) == before
    said = [r.getMessage() for r in caplog.records if r.name == "router.service"]
    assert len(said) == 1, said  # once, not on every look
    assert "No module named 'tuo_passport_adapter'" in said[0]
    shutil.copytree(installed / "tuo_passport_adapter", site_packages / "tuo_passport_adapter")
    assert _offered_within_follow_seconds(client, "passport") == before | {"passport"}
