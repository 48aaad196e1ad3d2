"""Browser-test fixtures: the real service on a loopback port, driven in Debian's Chromium.

Chromium (/usr/bin/chromium) and axe-core (node_modules/) are installed by
`python -m scripts.browser ensure`, which `./dev test` runs before pytest.
Every test in this folder is marked `browser`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from redis import Redis
from werkzeug.serving import make_server

from router.dev_identity import DevelopmentProvider
from router.redis_server import RedisServer
from tests.browser.helpers import assert_accessible, check_accessibility, screenshot  # noqa: F401 - re-exported for the tests' convenience

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 10_000  # Playwright's default is 30 s; a page of ours that takes 10 s is broken

PageFactory = Callable[..., Page]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def live_server_config() -> dict[str, Any]:
    """Extra settings for the live app; override this fixture in a test module to change them."""
    return {}


def _read_whole(app: Any) -> Any:
    """The app, each answer read whole (and its file closed) before it is sent. Werkzeug's
    development server does not close an answer whose browser went away mid-way (a page
    left while its crest image was still being sent), and the open file's ResourceWarning
    failed whichever test was running (seen once in CI). Gunicorn, which serves the real
    service, closes it."""

    def serve(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        answer = app(environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            if hasattr(answer, "close"):
                answer.close()

    return serve


@pytest.fixture
def live_server(
    redis: Redis,
    redis_server: RedisServer,
    identity_provider: DevelopmentProvider,
    live_server_config: dict[str, Any],
) -> Iterator[str]:
    """The real web app served by a real threaded server on 127.0.0.1; yields its base URL.
    Citizens sign in with the development identity provider.

    Redis is flushed first (the `redis` fixture). Use it with `workers` when deliveries
    must happen.
    """
    from channels.app import create_app

    app = create_app(
        {
            "REDIS_URL": redis_server.url_as("web"),
            "SECRET_KEY": "test",
            **identity_provider.settings(),
            **live_server_config,
        }
    )
    server = make_server("127.0.0.1", 0, _read_whole(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        for client in _redis_clients(app.extensions.get("router"), app.config):
            client.close()


def _redis_clients(core: Any, config: Any) -> list[Redis]:
    found = [getattr(core, "redis", None), config.get("SESSION_REDIS")]
    return [c for c in found if isinstance(c, Redis)]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, launched once for the session."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `python -m scripts.browser ensure` "
            "(./dev test does it first)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[PageFactory]:
    """Make pages, each in a fresh browser context: ``new_page(java_script_enabled=False,
    **context_options)``. Every context made is closed after the test."""
    contexts = []

    def make(*, java_script_enabled: bool = True, **options: Any) -> Page:
        options.setdefault("locale", "en-GB")
        context = browser.new_context(java_script_enabled=java_script_enabled, **options)
        # Nothing leaves this machine: the development identity provider's page asks a
        # CDN for its stylesheet, which would only time out.
        context.route("https://**/*", lambda route: route.abort())
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        return context.new_page()

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def page(new_page: PageFactory, request: pytest.FixtureRequest) -> Page:
    """A page in a new context with JavaScript on; parametrize indirectly with False
    (``@pytest.mark.parametrize("page", [True, False], indirect=True)``) to turn it off."""
    return new_page(java_script_enabled=getattr(request, "param", True))


@pytest.fixture
def page_nojs(new_page: PageFactory) -> Page:
    """A page in a new context with JavaScript off, as some citizens browse."""
    return new_page(java_script_enabled=False)
