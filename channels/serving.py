"""How gunicorn serves the web front door: a configuration module (`gunicorn -c
python:channels.serving`), read by the gunicorn master before it forks its workers.

gunicorn names itself in a ``Server`` header on every answer; a probe learns the stack
from it. ``hide_server_name`` makes that header say only which service this is.

Logs (router.logs): each worker writes JSON lines on standard error, and gunicorn's own
messages are JSON too. The access log is on, one JSON line per request on standard
output with its method, its path without the query string, the status, the bytes sent
and the seconds taken: never the query string (a status link carries its secret
there), the referrer (it may hold one too), the user agent or the client's address.

Each web worker counts its metrics in the folder ``PROMETHEUS_MULTIPROC_DIR`` names
(router.metrics); ``child_exit`` tells prometheus-client when one has gone.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from router import logs, metrics

SERVER_NAME = "tell-us-once"


def hide_server_name() -> None:
    import gunicorn.http.wsgi

    gunicorn.http.wsgi.SERVER = SERVER_NAME


hide_server_name()


class JsonLogger(Logger):
    """gunicorn's logger, writing JSON lines: its own messages as every line of the
    service is, and the access log's line per request as ``request`` with exactly the
    fields of ACCESS_FIELDS."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(logs.formatter())
        self.requests = logs.wrap(self.access_log)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not getattr(self, "access_log_enabled", bool(self.cfg.accesslog)):
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        try:
            self.requests.info(
                "request",
                method=environ.get("REQUEST_METHOD", ""),
                path=environ.get("PATH_INFO", ""),  # without the query string
                status=int(status),
                bytes=getattr(resp, "sent", None) or 0,
                seconds=round(request_time.total_seconds(), 6),
            )
        except Exception:  # noqa: BLE001 - as gunicorn's own: a log line never fails a request
            self.error_log.exception("access log line not written")


ACCESS_FIELDS = ("method", "path", "status", "bytes", "seconds")

# gunicorn's settings, read from this module.
logger_class = JsonLogger
accesslog = "-"  # standard output


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn's hook, in each new web worker: its records as JSON lines."""
    logs.configure()


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's hook, in the master, when a web worker has exited."""
    metrics.process_gone(worker.pid)
