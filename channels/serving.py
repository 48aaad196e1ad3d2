"""How gunicorn serves the web front door: a configuration module (`gunicorn -c
python:channels.serving`), read by the gunicorn master before it forks its workers.

gunicorn names itself in a ``Server`` header on every answer; a probe learns the stack
from it. ``hide_server_name`` makes that header say only which service this is.
"""

from __future__ import annotations

SERVER_NAME = "tell-us-once"


def hide_server_name() -> None:
    import gunicorn.http.wsgi

    gunicorn.http.wsgi.SERVER = SERVER_NAME


hide_server_name()
