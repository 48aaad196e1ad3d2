"""Issue 14: after a journey for each event, sent online and delivered by real workers,
no personal answer is in plain text in any Redis value, nor in what was appended to the
append-only file on disk. The mock departments' own records (``mock:``) are left out:
they stand for the departments' systems, which hold what they were sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis

from router import catalogue
from router.catalogue import Kind
from router.delivery.worker import Supervisor
from router.redis_server import RedisServer
from tests.support.journeys import submit_sample
from tests.support.processes import wait_settled
from tests.support.redis_dump import case_keys, raw_values
from tests.support.samples import sample, samples

pytestmark = pytest.mark.slow

# Answers that name or reach a person; a yes/no or a choice from a list names nobody.
NAMELESS = {Kind.YES_NO, Kind.CHOICE}


def personal_answers(event_name: str) -> set[str]:
    """Each personal answer of the sample, as typed and as the router keeps it."""
    event = catalogue.get_event(event_name)
    given = sample(event_name)["answers"]
    clean = event.validate(given)
    today = datetime.now(UTC).date().isoformat()
    found: set[str] = set()
    for q in event.questions:
        if q.kind in NAMELESS or q.field not in given:
            continue
        for value in (given[q.field], clean.get(q.field)):
            text = str(value).strip() if isinstance(value, str) else ""
            if len(text) >= 5 and not text.startswith(today):
                found.add(text)
    return found


def _aof_files(server: RedisServer) -> list[Path]:
    assert server.data_dir is not None
    return sorted(p for p in server.data_dir.rglob("*") if p.is_file() and ".aof" in p.name)


def _appended(server: RedisServer, sizes: dict[Path, int]) -> bytes:
    """What Redis appended to its append-only files since ``sizes`` was taken."""
    out = b""
    for path in _aof_files(server):
        with path.open("rb") as f:
            f.seek(sizes.get(path, 0))
            out += f.read()
    return out


def _commands(resp: bytes) -> Iterator[list[bytes]]:
    """The commands in an append-only file's text (RESP arrays of bulk strings)."""
    at = 0
    while at < len(resp):
        assert resp[at : at + 1] == b"*", resp[at : at + 20]
        end = resp.index(b"\r\n", at)
        count, at = int(resp[at + 1 : end]), end + 2
        parts = []
        for _ in range(count):
            end = resp.index(b"\r\n", at)
            size = int(resp[at + 1 : end])
            parts.append(resp[end + 2 : end + 2 + size])
            at = end + 2 + size + 2
        yield parts


def _without(value: bytes, names: set[bytes]) -> bytes:
    for name in names:
        value = value.replace(name.lower(), b"")
    return value


@pytest.mark.usefixtures("workers")
def test_no_personal_answer_is_stored_in_plain_text(
    app: Flask, redis: Redis, redis_server: RedisServer, workers: Supervisor
) -> None:
    sizes = {p: p.stat().st_size for p in _aof_files(redis_server)}
    wanted: set[str] = set()
    for name in samples():
        wanted |= personal_answers(name)
        sent = submit_sample(app.test_client(), name)
        wait_settled(redis, sent.ref)
    assert len(wanted) > 20, wanted  # names, NI numbers, addresses, postcodes, dates...

    # The Post Office branch a case waits at is named after its place ("bristol-...");
    # which branch is not an answer, so branch names are taken out before searching.
    branches = {b for k in case_keys(redis) if (b := redis.hget(k, "branch"))}
    stored = [(key, _without(value.lower(), branches)) for key, value in raw_values(redis)]
    assert any(key.startswith("mock:") for key, _ in stored), "the departments were told"
    for value in sorted(wanted):
        needle = value.lower().encode()
        assert not [k for k, v in stored if needle in v and not k.startswith("mock:")], value

    appended = [c for c in _commands(_appended(redis_server, sizes)) if len(c) > 1]
    assert appended, "the append-only file grew"
    ours = _without(
        b"\n".join(b" ".join(c).lower() for c in appended if not c[1].startswith(b"mock:")),
        branches,
    )
    for value in sorted(wanted):
        assert value.lower().encode() not in ours, value
