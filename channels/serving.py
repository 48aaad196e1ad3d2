"""How gunicorn serves the web front door: a configuration module (`gunicorn -c
python:channels.serving`), read by the gunicorn master before it forks its workers.

gunicorn names itself in a ``Server`` header on every answer; a probe learns the stack
from it. ``hide_server_name`` makes that header say only which service this is.

Each web worker counts its metrics in the folder ``PROMETHEUS_MULTIPROC_DIR`` names
(router.metrics); ``child_exit`` tells prometheus-client when one has gone.
"""

from __future__ import annotations

from typing import Any

from router import metrics

SERVER_NAME = "tell-us-once"


def hide_server_name() -> None:
    import gunicorn.http.wsgi

    gunicorn.http.wsgi.SERVER = SERVER_NAME


hide_server_name()


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's hook, in the master, when a web worker has exited."""
    metrics.process_gone(worker.pid)
