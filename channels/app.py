"""The Flask app factory for the web front door."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Flask, Request, g, jsonify, render_template, request, session, url_for
from flask import Response as FlaskResponse
from flask.globals import request_ctx
from flask.sessions import SessionInterface, SessionMixin
from flask_babel import Babel, format_date, gettext
from flask_htmx import HTMX
from flask_session import Session
from flask_wtf.csrf import CSRFError, CSRFProtect
from itsdangerous import BadData, URLSafeTimedSerializer
from jinja2 import ChainableUndefined, ChoiceLoader, FileSystemLoader, PackageLoader, PrefixLoader
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from channels.web import identity
from router.exceptions import StoreUnavailable
from router.i18n import N_
from router.redis_server import url_from_env
from router.sealing import KeyProblem, is_sealed
from router.service import LifeEventRouter

babel = Babel()
csrf = CSRFProtect()
htmx = HTMX()
sessions = Session()
log = logging.getLogger(__name__)

LANGUAGES = ("en", "cy")
MAX_BODY_BYTES = 64 * 1024
# Browser features no page here uses: refused, so an injected script could not use them.
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), "
    "bluetooth=(), magnetometer=(), gyroscope=(), accelerometer=(), interest-cohort=()"
)
HSTS = "max-age=31536000; includeSubDomains"
HERE = Path(__file__).resolve().parent


def _templates_dir() -> str:
    packaged = HERE / "templates"  # inside an installed wheel
    return str(packaged if packaged.is_dir() else HERE.parent / "templates")


class Config:
    REDIS_URL = "redis://127.0.0.1:6379/0"
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = "Europe/London"
    SECRET_KEY: str | bytes | None = None
    JSON_SORT_KEYS = False
    # Journey answers are kept server-side, in Redis, for two hours after the last page.
    # (Which Redis, and the key prefix, come from the core: see create_app.)
    SESSION_TYPE = "redis"
    SESSION_PERMANENT = True
    # Write the session only when it changed: a request that merely read it (a stylesheet,
    # a status poll) must never write back an older copy over a sign-out or an answer.
    SESSION_REFRESH_EACH_REQUEST = False
    PERMANENT_SESSION_LIFETIME = timedelta(hours=2)
    SESSION_COOKIE_NAME = "tuo_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = 2 * 3600
    # Every form and every API call fits in this: a larger body is refused (413) before
    # it is read, so a 200 MiB JSON body costs nothing (issue 13, row 10).
    MAX_CONTENT_LENGTH = MAX_BODY_BYTES
    # Served over https (TUO_HTTPS=true): cookies only over https, and HSTS.
    HTTPS = False
    # The address people reach this service at, e.g. https://tell-us-once.example
    # (TUO_PUBLIC_URL): links sent out (status links, the sign-in callback) are built on
    # it, never on a request's Host header (issue 13, row 17).
    PUBLIC_URL = ""
    # Host headers answered (TUO_TRUSTED_HOSTS, a JSON list); any other is a 400. By
    # default the public address's host, or this machine's own names without one.
    TRUSTED_HOSTS: list[str] | None = None
    # The bearer token /metrics asks for (METRICS_TOKEN); without one, /metrics answers
    # only clients on this machine (channels.web.metrics).
    METRICS_TOKEN = ""


LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]"]


def select_locale() -> str:
    """?lang=cy|en chooses and is remembered for the session; else the browser's choice."""
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        return chosen
    remembered = session.get("lang") if not _is_api() else None
    if remembered in LANGUAGES:
        return str(remembered)
    return request.accept_languages.best_match(LANGUAGES) or "en"


def _is_api() -> bool:
    return request.path.startswith("/api/")


# What a visitor's browser may hold before it has a session: its CSRF token and its
# language. They travel in a small signed cookie, so reading a page (the status page's
# find form, the sign-in page, ?lang=cy) writes nothing to Redis (issue 13, row 18).
LIGHT_KEYS = frozenset({"csrf_token", "lang", "_permanent"})
LIGHT_COOKIE = "tuo_pre"


class _NoSessionForTheApi(SessionInterface):
    """Flask-Session's interface, except that the JSON API opens no session (it takes no
    cookies, and CSRF is exempt for it), and no server-side session is made until one is
    needed: while a session holds only its CSRF token and language, they live in a
    signed cookie; the first answer, grant or sign-in moves it to Redis."""

    def __init__(self, inner: SessionInterface) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # regenerate, and the rest of Flask-Session's

    def _light(self, app: Flask) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(app.secret_key or "", salt="tuo-pre-session")

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith("/api/"):
            return None  # Flask gives the request a null session instead
        session = self.inner.open_session(app, request)
        if session is None or session:
            if session is not None:
                session.stored = True  # type: ignore[attr-defined]
            return session  # a server-side session already
        held = request.cookies.get(LIGHT_COOKIE)
        if held:
            max_age = int(app.permanent_session_lifetime.total_seconds())
            try:
                data = self._light(app).loads(held, max_age=max_age)
            except BadData:
                data = {}
            if isinstance(data, dict):
                session.update({k: data[k] for k in LIGHT_KEYS & data.keys()})
                session.modified = False  # read back, not a change
        return session

    def save_session(self, app: Flask, session: SessionMixin, response: FlaskResponse) -> None:
        if set(session) <= LIGHT_KEYS and not getattr(session, "stored", False):
            if session.modified and set(session) - {"_permanent"}:
                response.set_cookie(
                    LIGHT_COOKIE,
                    self._light(app).dumps(dict(session)),
                    max_age=int(app.permanent_session_lifetime.total_seconds()),
                    httponly=True,
                    secure=self.get_cookie_secure(app),
                    samesite=self.get_cookie_samesite(app),
                    path=self.get_cookie_path(app),
                )
            response.vary.add("Cookie")
            return  # no server-side session yet
        if LIGHT_COOKIE in request.cookies:
            response.delete_cookie(LIGHT_COOKIE, path=self.get_cookie_path(app))
        try:
            self.inner.save_session(app, session, response)
        except StoreUnavailable as error:
            # The session is saved after the page was made: a full or absent store must
            # not leave the citizen a page that says their answer was kept. The answer
            # becomes "busy, try again", as any other request would (issue 13, row 18).
            log.warning("session not saved: %s", type(error).__name__)
            response.status_code = 503
            response.headers.pop("Location", None)
            response.headers["Retry-After"] = "30"
            response.set_data(render_template("errors/503.html"))
            response.mimetype = "text/html"


def switch_language(lang: str) -> str:
    """This page's address in the other language."""
    args = request.args.to_dict()
    args["lang"] = lang
    return f"{request.path}?{urlencode(args)}"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the web front door; ``config`` overrides settings (tests pass theirs)."""
    app = Flask(
        __name__,
        template_folder=_templates_dir(),
        static_folder=str(HERE / "static"),
        static_url_path="/assets",  # where GOV.UK Frontend's CSS looks for its fonts
    )
    app.config.from_object(Config)
    app.config.from_prefixed_env("TUO")
    if url_from_env():  # REDIS_URL, or the Sentinel URL REDIS_SENTINELS builds
        app.config["REDIS_URL"] = url_from_env()
    if os.environ.get("METRICS_TOKEN", "").strip():
        app.config["METRICS_TOKEN"] = os.environ["METRICS_TOKEN"].strip()
    if config:
        app.config.update(config)
    if app.config.get("HTTPS"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.wsgi_app = _ProbesOnAnyHost(app)  # type: ignore[method-assign]
    _behind_proxies(app)  # outside it: the forwarded host is taken first, then replaced
    if app.config.get("TRUSTED_HOSTS") is None:
        public_host = urlsplit(str(app.config.get("PUBLIC_URL") or "")).hostname
        app.config["TRUSTED_HOSTS"] = [public_host] if public_host else list(LOCAL_HOSTS)

    app.jinja_loader = ChoiceLoader(
        [
            FileSystemLoader(_templates_dir()),
            PrefixLoader(
                {
                    "govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja"),
                    "govuk_frontend_wtf": PackageLoader("govuk_frontend_wtf"),
                }
            ),
        ]
    )
    # GOV.UK Frontend's macros read optional parameters as chains (params.hint.text).
    app.jinja_env.undefined = ChainableUndefined
    app.jinja_env.globals["switch_language"] = switch_language
    app.jinja_env.globals["format_date"] = format_date

    fixed = app.config.get("ADAPTERS")
    core = LifeEventRouter.from_url(app.config["REDIS_URL"], fixed or None)
    app.extensions["router"] = core
    if not app.config.get("SECRET_KEY"):
        # The same for every web process on every host (TUO_SECRET_KEY overrides).
        app.config["SECRET_KEY"] = core.web_secret_key()
    app.config["SESSION_REDIS"], prefix = core.session_store()
    app.config.setdefault("SESSION_KEY_PREFIX", prefix)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(HERE / "translations")
    babel.init_app(app, locale_selector=select_locale)
    sessions.init_app(app)
    _store_sessions_under_a_digest(app.session_interface)
    _seal_sessions(app.session_interface, core.session_sealer())
    app.session_interface = _NoSessionForTheApi(app.session_interface)
    csrf.init_app(app)
    htmx.init_app(app)
    identity.init_app(app)
    # Proving your identity online posts a form that is redirected to the provider.
    form_action = " ".join(filter(None, ("'self'", identity.origin(app))))

    @app.before_request
    def _follow_new_departments() -> None:
        # Webhook departments can be added while the service runs; look again now and
        # then, as the worker supervisor does (not when the config fixed the adapters).
        if fixed is None and request.endpoint not in PROBES:
            core.follow_new_departments()

    @app.before_request
    def _locale() -> None:
        if _is_api():
            # JSON only: no page to carry a language or a nonce, no session to remember
            # a language in. Babel asks select_locale when a message is translated.
            return
        g.csp_nonce = secrets.token_urlsafe(16)
        g.lang = select_locale()
        if request.args.get("lang") in LANGUAGES:
            session["lang"] = g.lang

    @app.context_processor
    def _layout() -> dict[str, str]:
        # The journey's pages serve counter staff too, in the counter's own layout.
        counter = request.blueprint in ("counter", "counter_journey")
        return {"layout": "counter/base.html" if counter else "base.html"}

    https = bool(app.config.get("HTTPS"))

    @app.after_request
    def _headers(response: Response) -> Response:
        # One URL answers htmx with a fragment and browsers with a page: caches must
        # keep them apart. Status links carry a secret: never send it on as a referrer.
        response.vary.add("HX-Request")
        response.vary.add("Cookie")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if https:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        if response.mimetype == "text/html" and "csp_nonce" in g:
            # Scripts and styles from our own /assets only; the GOV.UK template's one
            # inline script (it marks the page js-enabled) carries this response's nonce.
            response.headers.setdefault(
                "Content-Security-Policy",
                f"default-src 'self'; script-src 'self' 'nonce-{g.csp_nonce}'; "
                "style-src 'self'; img-src 'self' data:; font-src 'self'; "
                f"connect-src 'self'; form-action {form_action}; base-uri 'none'; "
                "object-src 'none'; frame-ancestors 'none'",
            )
        return response

    from channels.backoffice import casework, ops
    from channels.counter import views as counter
    from channels.web import api, health, journey, metrics, pages, performance, sign_in, status

    # Endpoints that must answer without the follow of new departments (which asks
    # Redis): /healthz during an outage; /metrics follows them itself, an outage or not.
    PROBES = health.ENDPOINTS | {metrics.ENDPOINT}

    app.register_blueprint(pages.bp)
    app.register_blueprint(journey.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(performance.bp)
    app.register_blueprint(sign_in.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(counter.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(casework.bp)
    # The same journey, for counter staff reporting on a citizen's behalf.
    app.register_blueprint(journey.bp, name="counter_journey", url_prefix="/counter/report")
    # Deny by default: every staff page needs a signed-in member of staff of its area's
    # role (the counter and that journey: clerks; /ops: operators; /casework: caseworkers).
    app.before_request(counter.guard)
    csrf.exempt(api.bp)  # the JSON API takes no cookies, so there is nothing to forge
    _register_errors(app)
    return app


# Answered whatever the Host header (TRUSTED_HOSTS): a load balancer or Prometheus
# probes each web process by its address, not by the service's name.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class _ProbesOnAnyHost:
    """WSGI middleware: a request for one of PROBE_PATHS is given our own first trusted
    host in place of the one it sent, so TRUSTED_HOSTS does not refuse it. Nothing
    these answer is built on the host, and /metrics has its own guard."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.inner = app.wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        trusted = self.app.config.get("TRUSTED_HOSTS")
        if trusted and environ.get("PATH_INFO") in PROBE_PATHS:
            environ["HTTP_HOST"] = str(trusted[0]).lstrip(".")
        return self.inner(environ, start_response)


def _store_sessions_under_a_digest(interface: Any) -> None:
    """Keep each web session in Redis under a digest of its id, not the id itself: what
    is stored (or read back from a Redis backup) cannot be played back as a cookie to
    sign in as the member of staff it belongs to (issue 13, row 9)."""
    prefix = interface.key_prefix

    def store_id(sid: str) -> str:
        return prefix + hashlib.sha256(sid.encode()).hexdigest()

    interface._get_store_id = store_id


class _SealedSerializer:
    """Flask-Session's serializer, sealing what it stores (router.sealing): a session
    holds a journey's answers between pages, so it is personal data at rest. One that
    does not open (a retired key, a tampered value) reads as no session."""

    def __init__(self, inner: Any, sealer: Any) -> None:
        self.inner = inner
        self.sealer = sealer

    def encode(self, session: Any) -> bytes:
        return bytes(self.sealer.seal(self.inner.encode(session), SESSION_CONTEXT))

    def decode(self, serialized: bytes) -> dict[str, Any]:
        if not is_sealed(serialized):
            return dict(self.inner.decode(serialized))  # kept before sessions were sealed
        try:
            plain = self.sealer.open(serialized, SESSION_CONTEXT)
        except KeyProblem:
            log.warning("a stored web session did not open; starting afresh")
            return {}
        return dict(self.inner.decode(plain))


SESSION_CONTEXT = "web:session"


def _seal_sessions(interface: Any, sealer: Any) -> None:
    interface.serializer = _SealedSerializer(interface.serializer, sealer)


def _behind_proxies(app: Flask) -> None:
    """Behind ``ROUTER_PROXY_HOPS`` proxies (a load balancer: 1), take the client's
    address, scheme and host from the headers the nearest proxies set (ProxyFix),
    trusting exactly that many hops; with 0 (the default) no forwarded header is
    trusted, as any client could write one."""
    raw = os.environ.get("ROUTER_PROXY_HOPS", "0").strip() or "0"
    if not raw.isdigit() or int(raw) > 5:
        raise ValueError(
            f"ROUTER_PROXY_HOPS={raw!r}: give the number of proxies in front of the web "
            "front door, 0 to 5 (0: none, and no forwarded header is trusted)"
        )
    hops = int(raw)
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )


def _register_errors(app: Flask) -> None:
    """GOV.UK error pages for people, JSON for the API; never a stack trace."""

    wants_json = _is_api

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> Any:
        if wants_json():
            return jsonify({"message": gettext("Send the request again")}), 400
        return render_template("errors/400.html"), 400

    @app.errorhandler(SecurityError)
    def _untrusted_host(error: SecurityError) -> Any:
        # A Host header not in TRUSTED_HOSTS (row 17): no URL adapter was bound, so the
        # page's links are built on our own first trusted host, never on the one sent.
        request_ctx.url_adapter = app.url_map.bind(
            app.config["TRUSTED_HOSTS"][0], script_name=request.root_path or "/"
        )
        return _http(error)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        code = error.code or 500
        if wants_json():
            message = gettext(_API_MESSAGES.get(code, _API_FALLBACK), kib=MAX_BODY_BYTES // 1024)
            body = {"message": message}
            if code not in _API_MESSAGES or code in (404, 405):
                body["documentation"] = url_for("api.document")  # the OpenAPI document
            return jsonify(body), code
        if code == 404 or code == 405:
            return render_template("errors/404.html"), code
        if code == 403:
            return render_template("errors/403.html"), code
        if code == 413:
            return render_template("errors/413.html", kib=MAX_BODY_BYTES // 1024), code
        if code >= 500:
            return render_template("errors/500.html"), code
        return render_template("errors/400.html"), code

    @app.errorhandler(StoreUnavailable)
    def _store(error: Exception) -> Any:
        # Redis down, restarting or full: nothing half-written is kept (every case is
        # one atomic write), so "try again" is true and safe.
        log.warning(
            "store unavailable on %s %s: %s", request.method, request.url_rule, type(error).__name__
        )
        if wants_json():
            body = {"message": gettext("The service is busy: try again in a few minutes")}
            return jsonify(body), 503, {"Retry-After": "30"}
        return render_template("errors/503.html"), 503, {"Retry-After": "30"}

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:  # the catch-all goes last
        log.exception("unhandled error on %s %s", request.method, request.url_rule)
        return _http(InternalServerError())


_API_MESSAGES = {  # message ids, translated when sent
    404: N_("There is nothing at this address. Check it against the API documentation"),
    405: N_("This address does not accept that method. Check the API documentation"),
    413: N_("The request is too large: send at most %(kib)s KiB"),
    500: N_("Sorry, there is a problem with the service. Try again later"),
}
_API_FALLBACK = N_("The request could not be used. Check it against the API documentation")
