"""Structured logs: one JSON object per line, for an operator's log shipper.

Our own events are logged with keys and values (structlog):
``log.info("delivery_retried", ref=ref, department="dwp", outcome="retried", attempt=2)``.
They travel through the standard library's logging, like every library's records, so
one handler writes both, and pytest's caplog, gunicorn and any handler see them all.
``configure`` (run by the ``router`` command and by each gunicorn worker) gives the
root logger that handler: every line is then a JSON object with ``message`` (what
happened: ``delivery_retried``; a library's record, its formatted message), ``level``,
``logger`` and ``timestamp``, and the event's own keys. ``event`` is the life event
(``death``), as in /metrics's labels: structlog keeps its message under "event", so a
call gives the life event as ``_event=`` (renamed when written).

What goes in an event: references, department names, life events, channels,
outcomes, counts, seconds and the names of errors. Never personal data: no name, NI
number, address, postcode, date of birth or contact detail, and not an adapter's
reasons for refusing a delivery (they may echo what was sent). The traceback of an
unexpected error is written in full, as finding the bug needs it.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor

# The lowest level written (DEBUG, INFO, WARNING, ERROR), for every process.
LEVEL_ENV = "ROUTER_LOG_LEVEL"
DEFAULT_LEVEL = "INFO"

# What every line carries, whoever logged it.
_STAMPS: list[Processor] = [
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

# Our events: dropped early below the logger's level, stamped, and handed to logging.
_EVENTS: list[Processor] = [
    structlog.stdlib.filter_by_level,
    *_STAMPS,
    structlog.stdlib.PositionalArgumentsFormatter(),
    structlog.processors.StackInfoRenderer(),
    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
]


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """The logger of module ``name`` (a structlog ``BoundLogger`` on the standard
    library's logger of that name), whether or not ``configure`` ran."""
    return wrap(logging.getLogger(name))


def wrap(logger: logging.Logger) -> structlog.stdlib.BoundLogger:
    """Log structured events to ``logger`` (gunicorn's access log uses this)."""
    return structlog.stdlib.BoundLogger(logger, _EVENTS, context={})


def formatter() -> logging.Formatter:
    """The formatter that writes a record, ours or a library's, as one JSON object."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_STAMPS,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message", replace_by="_event"),
            _stamps_first,
            structlog.processors.JSONRenderer(),
        ],
    )


def _stamps_first(logger: object, name: str, event: EventDict) -> EventDict:
    """When, how serious, where and what first, for a person reading the lines."""
    first = {k: event.pop(k) for k in ("timestamp", "level", "logger", "message") if k in event}
    return {**first, **event}


def level() -> str:
    """The level ROUTER_LOG_LEVEL asks for, else INFO."""
    wanted = os.environ.get(LEVEL_ENV, "").strip().upper() or DEFAULT_LEVEL
    if wanted not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"{LEVEL_ENV}={wanted!r}: give DEBUG, INFO, WARNING or ERROR")
    return wanted


def configure(stream: TextIO | None = None, force: bool = False) -> logging.Handler | None:
    """Write every record of this process at or above ``level()`` to ``stream``
    (standard error) as JSON lines, in place of any handler an earlier call set.

    As ``logging.basicConfig``, it leaves alone a process whose root logger has another
    handler already (the ``router`` command run inside a test, under pytest's own),
    unless ``force``; then it returns None."""
    lowest = level()
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == HANDLER_NAME]
    if not force and len(ours) < len(root.handlers):
        return None
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter())
    handler.set_name(HANDLER_NAME)
    for old in ours:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(lowest)
    return handler


HANDLER_NAME = "router.logs"
