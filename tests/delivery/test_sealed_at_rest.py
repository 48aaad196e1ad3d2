"""Issue 14: after a journey for each event, sent online and delivered by real workers,
no personal answer is in plain text in any Redis value, nor in what was appended to the
append-only file on disk. The mock departments' own records (``mock:``) are left out:
they stand for the departments' systems, which hold what they were sent. Nor is one in
a log line (JSON, issue 16), a job's payload or what /metrics says."""

from __future__ import annotations

import io
import json
import logging
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client import generate_latest
from redis import Redis

from router import catalogue, keys, logs, metrics
from router.adapters.mocks import Faults, configure_faults
from router.adapters.registry import Registry
from router.cases import CaseStore
from router.catalogue import Kind
from router.delivery.worker import Supervisor
from router.redis_server import RedisServer
from tests.support.journeys import done_page, reach_check, send, submit_sample
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


def _rq_payloads(commands: list[list[bytes]]) -> list[bytes]:
    """Every RQ job's payload written to Redis (its ``data`` field, zlib-compressed JSON)."""
    found = []
    for command in commands:
        if command[0].upper() in (b"HSET", b"HMSET") and command[1].startswith(b"rq:job:"):
            pairs = command[2:]
            for name, value in zip(pairs[::2], pairs[1::2], strict=True):
                if name == b"data":
                    found.append(zlib.decompress(value))
    return found


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Each line of ``text`` that a JSON log wrote; a line that is not JSON fails."""
    found = []
    for line in text.splitlines():
        if line.strip():
            parsed = json.loads(line)
            assert isinstance(parsed, dict) and "message" in parsed, line
            found.append(parsed)
    return found


def test_no_personal_answer_is_in_a_log_line_or_a_job_payload_or_the_metrics(
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    app: Flask,
    redis: Redis,
    redis_server: RedisServer,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A journey per event, where every department fails once before it succeeds and one
    never does (so the retry, failure and dead-letter paths log too): no personal answer
    in any line the web front door or the workers logged (each a JSON object naming the
    reference, department and outcome), in any RQ job's payload, in any exception the
    web front door turned into a page, or in what /metrics says."""
    caplog.set_level(logging.DEBUG)
    # The web front door's records as its gunicorn workers write them (router.logs).
    web_log = io.StringIO()
    as_json = logging.StreamHandler(web_log)
    as_json.setFormatter(logs.formatter())
    logging.getLogger().addHandler(as_json)
    # The workers count in a folder the web front door's /metrics reads, as under router up.
    monkeypatch.setenv(metrics.FOLDER_ENV, str(tmp_path / "metrics"))
    metrics.empty_folder(tmp_path / "metrics")
    for name in registry.names():
        configure_faults(redis, name, Faults(fail_first=1))
    configure_faults(redis, "council", Faults(permanent_rate=1.0))
    sizes = {p: p.stat().st_size for p in _aof_files(redis_server)}
    pool = Supervisor(redis_server.url_as("worker"), registry.names())
    pool.start()
    wanted: set[str] = set()
    try:
        for name in samples():
            wanted |= personal_answers(name)
            # With contact details, so the reporter's messages are written (to the
            # outbox: no Notify key here) and their paths log too.
            contact = {
                "contact_email": f"{name}.reporter@example.com",
                "contact_mobile": "07700900982",
            }
            wanted |= set(contact.values())
            browser = app.test_client()
            reach_check(browser, name, {**sample(name)["answers"], **contact})
            assert send(browser, name).status_code == 302
            sent = done_page(browser, name)
            wait_settled(redis, sent.ref, timeout=60)
        deadline = time.monotonic() + 10
        while redis.zcard(keys.OUTBOX_INDEX) < len(samples()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert redis.zcard(keys.OUTBOX_INDEX) == len(samples()), "every reporter was written to"
    finally:
        pool.stop()
        logging.getLogger().removeHandler(as_json)
    assert CaseStore(redis).dead_letters(), "a department failed for good"
    captured = capfd.readouterr()
    lines = (captured.out + captured.err).splitlines()
    lines += [record.getMessage() for record in caplog.records]
    lines += [record.exc_text or "" for record in caplog.records]
    lines += web_log.getvalue().splitlines()
    assert any("retry" in line.lower() or "fail" in line.lower() for line in lines), lines[:20]

    # The workers wrote nothing but JSON lines on standard error; with the web front
    # door's, they say what happened to each report by reference and department.
    events = _json_lines(captured.err) + _json_lines(web_log.getvalue())
    said = {e["message"] for e in events}
    assert {"submission_accepted", "deliveries_told", "delivery_retried", "delivery_failed"} <= said
    for e in events:
        if e["message"].startswith("delivery_"):
            assert {"ref", "department", "outcome"} <= set(e), e
        if e["message"] == "deliveries_told":
            assert e["outcome"] == "delivered" and e["department"], e
            assert all({"ref", "attempt", "seconds"} == set(told) for told in e["told"]), e
        if e["message"] == "submission_accepted":
            assert {"ref", "event", "channel", "seconds"} <= set(e), e

    scraped = app.test_client().get("/metrics")
    assert scraped.status_code == 200 and b'outcome="retried"' in scraped.data
    counted = (scraped.data + generate_latest(metrics.OWN)).decode().lower()
    payloads = _rq_payloads(list(_commands(_appended(redis_server, sizes))))
    assert payloads, "RQ jobs were enqueued"
    logged = "\n".join(lines).lower()
    queued = b"\n".join(payloads).lower()
    for value in sorted(wanted):
        assert value.lower() not in logged, value
        assert value.lower().encode() not in queued, value
        assert value.lower() not in counted, value
