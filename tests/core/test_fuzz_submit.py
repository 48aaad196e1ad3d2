"""Fuzzing `router submit`: any input gives a clear answer, never a traceback, and
nothing is written unless the event was accepted."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis

from router.catalogue import EVENTS
from router.cli import main
from router.redis_server import RedisServer

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """Events shaped like the real thing, with answers that are mostly wrong."""
    event = draw(st.sampled_from(sorted(EVENTS)) | st.text(max_size=12))
    fields = list(EVENTS[event].fields) if event in EVENTS else ["full_name"]
    answers = draw(
        st.dictionaries(
            st.sampled_from(fields) | st.text(max_size=8),
            st.text(max_size=20) | st.integers() | st.none() | _json,
            max_size=len(fields) + 2,
        )
    )
    consent = draw(st.lists(st.sampled_from(["dwp", "dvla", "hmrc", "council", "payments", "x"])))
    return {"event": event, "answers": answers, "consent": consent}


def _check(runner: CliRunner, redis: Redis, text: str) -> None:
    before = redis.dbsize()
    result = runner.invoke(main, ["submit", "-"], input=text)
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert "nothing was saved" in result.output
        assert redis.dbsize() == before
    else:
        assert result.output.startswith("Reference: ")


FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(payload=near_valid() | _json)
def test_any_json_gives_an_answer_not_a_crash(
    payload: Any, redis: Redis, redis_server: RedisServer
) -> None:
    runner = CliRunner(env={"REDIS_URL": redis_server.url_as("cli"), "ROUTER_ADAPTERS": None})
    _check(runner, redis, json.dumps(payload))


@FUZZ
@given(text=st.text(max_size=200))
def test_any_text_gives_an_answer_not_a_crash(
    text: str, redis: Redis, redis_server: RedisServer
) -> None:
    runner = CliRunner(env={"REDIS_URL": redis_server.url_as("cli"), "ROUTER_ADAPTERS": None})
    _check(runner, redis, text)
