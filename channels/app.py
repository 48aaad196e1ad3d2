"""The Flask app factory for the web front door."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flask import Flask, g, request
from flask_babel import Babel
from redis import Redis

from router.adapters.registry import Registry
from router.service import LifeEventRouter
from router.worker import FOLLOW_SECONDS

babel = Babel()

LANGUAGES = ("en", "cy")


def _templates_dir() -> str:
    here = Path(__file__).resolve().parent
    packaged = here / "templates"  # inside an installed wheel
    return str(packaged if packaged.is_dir() else here.parent / "templates")


class Config:
    REDIS_URL = "redis://127.0.0.1:6379/0"
    BABEL_DEFAULT_LOCALE = "en"
    SECRET_KEY: str | None = None
    JSON_SORT_KEYS = False


def select_locale() -> str:
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "en"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the web front door; ``config`` overrides settings (tests pass theirs)."""
    app = Flask(__name__, template_folder=_templates_dir())
    app.config.from_object(Config)
    app.config.from_prefixed_env("TUO")
    import os

    if os.environ.get("REDIS_URL"):
        app.config["REDIS_URL"] = os.environ["REDIS_URL"]
    if config:
        app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.urandom(32)

    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(__file__).parent / "translations")
    babel.init_app(app, locale_selector=select_locale)
    redis = Redis.from_url(app.config["REDIS_URL"])
    fixed = app.config.get("ADAPTERS")
    core = LifeEventRouter(redis, fixed or Registry.discover(redis))
    app.extensions["router"] = core
    looked_at = [time.monotonic()]

    @app.before_request
    def _follow_new_departments() -> None:
        # Webhook departments can be added while the service runs; look again now and
        # then, as the worker supervisor does.
        if fixed is None and time.monotonic() - looked_at[0] > FOLLOW_SECONDS:
            looked_at[0] = time.monotonic()
            core.use_adapters(Registry.discover(redis))

    from channels.web import api, pages

    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)

    @app.before_request
    def _locale() -> None:
        g.lang = select_locale()

    return app
