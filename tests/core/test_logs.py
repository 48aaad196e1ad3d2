"""Issue 16, item 3: logs are JSON lines, our events with their keys and values, a
library's records with their message, at the level ROUTER_LOG_LEVEL asks for."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from router import logs


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What ``logs.configure`` writes, in this process, for one test."""
    stream = io.StringIO()
    root = logging.getLogger()
    was = root.level
    logs.configure(stream, force=True)
    try:
        yield stream
    finally:
        for handler in [h for h in root.handlers if h.get_name() == logs.HANDLER_NAME]:
            root.removeHandler(handler)
        root.setLevel(was)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_event_and_each_librarys_record_is_one_json_object(written: io.StringIO) -> None:
    log = logs.get_logger("router.delivery.batch")
    log.info("delivery_told", ref="ACDEFGHJK", department="dwp", outcome="delivered", seconds=0.4)
    log.info("submission_accepted", ref="ACDEFGHJK", _event="death", channel="web")
    logging.getLogger("some.library").warning("plain %s, with\na second line", "words")
    try:
        raise TimeoutError("no answer")
    except TimeoutError as error:
        log.error("adapter_raised", ref="ACDEFGHJK", department="dwp", exc_info=error)
    told, accepted, plain, raised = lines(written)
    assert {k: told[k] for k in ("message", "ref", "department", "outcome", "seconds")} == {
        "message": "delivery_told",
        "ref": "ACDEFGHJK",
        "department": "dwp",
        "outcome": "delivered",
        "seconds": 0.4,
    }
    assert (told["level"], told["logger"]) == ("info", "router.delivery.batch")
    assert told["timestamp"].endswith("Z")
    # "event" is the life event, as in /metrics; what happened is the "message".
    assert (accepted["message"], accepted["event"]) == ("submission_accepted", "death")
    assert "event" not in told
    assert plain["message"] == "plain words, with\na second line"  # one line, escaped
    assert (plain["level"], plain["logger"]) == ("warning", "some.library")
    assert "TimeoutError: no answer" in raised["exception"]


def test_the_level_comes_from_router_log_level(
    written: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(logs.LEVEL_ENV, "warning")
    logs.configure(written, force=True)
    log = logs.get_logger("router.service")
    log.info("submission_accepted", ref="ACDEFGHJK")
    log.warning("departments_not_followed", error="ImportError")
    assert [line["message"] for line in lines(written)] == ["departments_not_followed"]
    monkeypatch.setenv(logs.LEVEL_ENV, "chatty")
    with pytest.raises(ValueError, match=logs.LEVEL_ENV):
        logs.configure(written, force=True)


def test_a_process_with_a_handler_of_its_own_is_left_alone(written: io.StringIO) -> None:
    # As logging.basicConfig: the router command run inside a test (click's CliRunner)
    # must not give pytest's process a handler on a stream that is closed afterwards.
    stray = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(stray)
    try:
        assert logs.configure(io.StringIO()) is None
    finally:
        logging.getLogger().removeHandler(stray)
    assert [
        h.stream for h in logging.getLogger().handlers if h.get_name() == logs.HANDLER_NAME
    ] == [written]
