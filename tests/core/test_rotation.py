"""router.rotation and `router keys`: a new data key, every sealed value sealed again
under it (cases' answers and identity checks, webhook secrets, web sessions), and the
old key retired only once nothing is left under it (issue 14, item "keys")."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from redis import Redis

from router import keys, rotation, sealing
from router.adapters.webhook import add_webhook, load_webhooks
from router.cases import CaseStore, field_context
from router.redis_server import RedisServer
from router.rotation import Rotation, RotationRunning
from router.service import LifeEventRouter
from tests.support.journeys import reach_check
from tests.support.paths import ROOT
from tests.support.processes import router_cli
from tests.support.samples import samples, submit_to_core

RECORD = {"document": "passport", "last_four": "123A", "by": "clerk1", "branch": "home"}


@pytest.fixture
def cli_redis(redis: Redis, redis_server: RedisServer) -> Iterator[Redis]:
    """The `router` command's connection: as the cli user (after ``redis`` flushed)."""
    client = Redis.from_url(redis_server.url_as("cli"))
    try:
        yield client
    finally:
        client.close()


def _cases(core: LifeEventRouter, each: int = 1) -> list[str]:
    """Cases of every event, each with an identity check as the counter records it."""
    refs = []
    for _ in range(each):
        for name in samples():
            ref = submit_to_core(core, name).ref
            _record_identity(core.store, ref, RECORD)
            refs.append(ref)
    return refs


def _record_identity(store: CaseStore, ref: str, record: dict[str, str], kid: str = "") -> None:
    """What router.assisted.desk writes (sealed by ``store.seal``), or sealed under ``kid``."""
    plain = json.dumps(record)
    token = (
        store.ring.seal(plain.encode(), field_context(ref, "identity"), kid)
        if kid
        else store.seal(ref, "identity", plain)
    )
    store.redis.hset(keys.case(ref), "identity", token)


def _webhook(redis: Redis) -> str:
    add_webhook(
        redis,
        "coroners",
        "http://127.0.0.1:9/hook",
        {"death": ("date_of_death",)},
        allow_http_loopback=True,
    )
    return load_webhooks(redis)[0].secret


# Keys that hold raw key material, not sealed values: 32 random bytes (or a wrapped data
# key) that begin with sealing's one-byte mark one time in 256, and would be counted.
KEY_MATERIAL = frozenset({keys.PEOPLE_KEY, keys.WEB_SECRET_KEY, keys.KEY_RING})


def _sealed_everywhere(redis: Redis) -> list[tuple[str, bytes]]:
    """Every sealed value in Redis, wherever it is (any key, any type), and each sealed
    webhook secret: (where, the sealed value)."""
    found = []
    for raw in redis.scan_iter(count=1000):
        key = raw.decode()
        if key in KEY_MATERIAL:
            continue
        kind = redis.type(key).decode()
        if kind == "string":
            values = {key: redis.get(key)}
        elif kind == "hash":
            values = {f"{key}/{k.decode()}": v for k, v in redis.hgetall(key).items()}
        elif kind == "list":
            values = {f"{key}[{i}]": v for i, v in enumerate(redis.lrange(key, 0, -1))}
        else:
            continue
        for where, value in values.items():
            if sealing.is_sealed(value):
                found.append((where, value))
    for name, raw_config in redis.hgetall(keys.WEBHOOKS).items():
        secret = json.loads(raw_config)["secret"]
        assert secret.startswith(sealing.TEXT_PREFIX)
        token = base64.urlsafe_b64decode(secret[len(sealing.TEXT_PREFIX) :])
        found.append((f"{keys.WEBHOOKS}/{name.decode()}/secret", token))
    return found


def test_the_search_for_sealed_values_skips_key_material(redis: Redis) -> None:
    """The people key and the web secret key are random: one in 256 begins with the
    mark. Counted as sealed values, they failed these tests about once in 60 runs."""
    redis.set(keys.PEOPLE_KEY, sealing.MARK + bytes(31))
    redis.set(keys.WEB_SECRET_KEY, sealing.MARK + bytes(31))
    assert _sealed_everywhere(redis) == []


def _key_ids(redis: Redis) -> set[str]:
    return {sealing.key_id_of(token) for _, token in _sealed_everywhere(redis)}


def _sessions(redis: Redis) -> dict[str, bytes]:
    return {
        k.decode(): v
        for k in redis.scan_iter(keys.WEB_SESSION_PREFIX + "*")
        if isinstance(v := redis.get(k), bytes)
    }


def test_the_session_context_is_the_web_front_doors() -> None:
    from channels.app import SESSION_CONTEXT

    assert rotation.SESSION_CONTEXT == SESSION_CONTEXT


def test_after_a_rotation_everything_opens_with_only_the_new_key_in_the_ring(
    core: LifeEventRouter, redis: Redis, cli_redis: Redis, app: Flask, redis_server: RedisServer
) -> None:
    refs = _cases(core)
    secret = _webhook(redis)
    browser = app.test_client()
    reach_check(browser, "moving_house")  # a journey's answers, held in its session
    sessions = _sessions(redis)
    assert sessions
    ring = sealing.KeyRing(redis)
    session_plain = {k: ring.open(v, rotation.SESSION_CONTEXT) for k, v in sessions.items()}
    ttls = {k: redis.pttl(k) for k in sessions}
    answers = {ref: dict(core.case(ref).answers) for ref in refs}
    (old,) = ring.ids()
    assert _key_ids(redis) == {old}

    outcome = Rotation(cli_redis).run()

    assert outcome.retired == [old] and outcome.finished and not outcome.resumed
    # answers (6 events) + 6 identity checks + 1 webhook secret + the sessions
    assert outcome.resealed == sum(len(a) for a in answers.values()) + len(refs) + 1 + len(sessions)
    fresh = Redis.from_url(redis_server.url)  # another process, holding no key yet
    try:
        new_ring = sealing.KeyRing(fresh)
        assert new_ring.ids() == [outcome.to] != [old]
        assert set(fresh.hkeys(keys.KEY_RING)) == {b"current", f"key:{outcome.to}".encode()}
        store = CaseStore(fresh)
        for ref in refs:
            case = store.load(ref)
            assert dict(case.answers) == answers[ref]
            assert dict(case.identity) == RECORD
        assert load_webhooks(fresh)[0].secret == secret
        after = _sessions(fresh)
        assert set(after) == set(sessions)
        for k, value in after.items():
            assert new_ring.open(value, rotation.SESSION_CONTEXT) == session_plain[k]
            assert 0 < fresh.pttl(k) <= ttls[k]  # its time to live kept
        assert _key_ids(fresh) == {outcome.to}
        with pytest.raises(sealing.UnknownKey):
            new_ring.seal(b"x", "anywhere", old)
    finally:
        fresh.close()
    # The journey carries on from its session, under the new key.
    assert browser.get("/report/moving_house/check").status_code == 200
    assert rotation.state(redis)["state"] == "done"


def test_a_value_written_between_the_sweeps_read_and_its_write_back_is_kept(
    core: LifeEventRouter, redis: Redis, cli_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = _cases(core)
    (old,) = sealing.KeyRing(redis).ids()
    target = refs[0]
    later = {**RECORD, "document": "photocard_licence", "last_four": "9ZZZ"}
    writes = []
    original = Rotation._compare_and_set

    def meanwhile(self: Rotation, written: Any) -> list[bool]:
        if not writes and any(s.key == keys.case(target) for s, _ in written):
            # A clerk records another identity check after the sweep read this case,
            # sealed under the old key (a process that has not followed yet), and a
            # worker marks a delivery.
            _record_identity(CaseStore(redis), target, later, kid=old)
            redis.hset(keys.case(target), "d:hmrc:detail", "marked meanwhile")
            writes.append(target)
        return original(self, written)

    monkeypatch.setattr(Rotation, "_compare_and_set", meanwhile)
    outcome = Rotation(cli_redis).run()

    assert writes == [target]
    assert outcome.finished and outcome.retired == [old]
    case = CaseStore(redis).load(target)
    assert dict(case.identity) == later  # not the check the sweep had read
    assert redis.hget(keys.case(target), "d:hmrc:detail") == b"marked meanwhile"
    assert _key_ids(redis) == {outcome.to}
    for ref in refs[1:]:
        assert dict(CaseStore(redis).load(ref).identity) == RECORD


KILLED_MID_SWEEP = textwrap.dedent(
    """
    import os, signal, sys
    from redis import Redis
    from router.rotation import Rotation

    def progress(p):
        if p.sweep == 1 and p.done >= 10:
            os.kill(os.getpid(), signal.SIGKILL)  # killed mid-sweep

    Rotation(Redis.from_url(sys.argv[1]), lease_seconds=2, batch=5).run(progress)
    """
)


def test_a_rotation_killed_mid_sweep_is_refused_while_its_lease_lasts_then_taken_up(
    core: LifeEventRouter, redis: Redis, cli_redis: Redis, redis_server: RedisServer
) -> None:
    refs = _cases(core, each=4)  # 24 cases: 5 batches of 5
    (old,) = sealing.KeyRing(redis).ids()
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_SWEEP, redis_server.url_as("cli")],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert killed.returncode == -9, killed.stderr.decode()
    held = rotation.state(redis)
    assert held["state"] == "running" and held["stale"] == "no"
    to = held["to"]
    assert to and to != old and int(held["done"]) >= 10
    assert _key_ids(redis) == {old, to}  # part way
    with pytest.raises(RotationRunning, match="already running"):
        Rotation(cli_redis).run()
    time.sleep(2.2)  # its lease (2 s) runs out: nobody renews it
    assert rotation.state(redis)["stale"] == "yes"
    assert "takes it up again" in rotation.describe(rotation.state(redis))

    outcome = Rotation(cli_redis).run()

    assert outcome.resumed and outcome.to == to  # the same new key, not another
    assert outcome.retired == [old]
    assert sealing.KeyRing(redis).ids() == [to]
    assert _key_ids(redis) == {to}
    for ref in refs:
        case = CaseStore(redis).load(ref)
        assert dict(case.identity) == RECORD and len(dict(case.answers)) > 0
    assert rotation.state(redis)["state"] == "done"


def test_the_old_key_is_kept_while_a_value_under_it_does_not_open(
    core: LifeEventRouter, redis: Redis, cli_redis: Redis, cli_env: dict[str, str]
) -> None:
    refs = _cases(core)
    (old,) = sealing.KeyRing(redis).ids()
    field = keys.case(refs[0])
    token = redis.hget(field, "identity")
    assert isinstance(token, bytes)
    redis.hset(field, "identity", token[:-1] + bytes([token[-1] ^ 1]))  # tampered with

    result = router_cli("keys", "rotate", env=cli_env)

    assert result.returncode == 1 and "Traceback" not in result.stderr
    (message,) = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert f"1 values are still sealed under key {old}" in message
    assert f"{keys.case(refs[0])}/identity" in message
    assert old in sealing.KeyRing(redis).ids()  # kept: retiring it would lose the value
    held = rotation.state(redis)
    assert held["state"] == "failed" and held["left"] == f"{old}:1"
    # Once the value is put right (here: its check recorded again), the next rotate
    # takes the same rotation up and retires the old key.
    _record_identity(core.store, refs[0], RECORD, kid=old)
    again = router_cli("keys", "rotate", env=cli_env)
    assert again.returncode == 0, again.stderr
    assert f"under key {held['to']}" in again.stdout and f"retired key {old}." in again.stdout
    assert sealing.KeyRing(redis).ids() == [held["to"]]


def test_router_keys_rotate_prints_progress_and_figures_and_list_shows_them(
    core: LifeEventRouter, redis: Redis, cli_env: dict[str, str]
) -> None:
    refs = _cases(core)
    (old,) = sealing.KeyRing(redis).ids()
    before = router_cli("keys", "list", "--count", env=cli_env)
    assert before.returncode == 0, before.stderr
    values = len(_sealed_everywhere(redis))
    assert f"{old}  current   {values} values" in before.stdout
    assert "No key rotation has run." in before.stdout

    result = router_cli("keys", "rotate", env=cli_env)

    assert result.returncode == 0, result.stderr
    (new,) = sealing.KeyRing(redis).ids()
    out = result.stdout
    assert "Sweep 1 of 2" in out and "Sweep 2 of 2" in out
    assert f"Sweep 1 of 2: {len(refs)} keys read, {values} values sealed again" in out
    assert "Sweep 2 of 2: " in out and "0 values sealed again" in out
    assert f"Sealed {values} values again under key {new} in " in out
    assert out.rstrip().endswith(f"retired key {old}.")
    listed = router_cli("keys", "list", "--count", env=cli_env).stdout
    assert f"{new}  current   {values} values" in listed and old not in listed.splitlines()[0]
    assert f"Last key rotation from {old} to {new} done at " in listed
    # Twice does no harm: another key, everything under it, the last one retired.
    twice = router_cli("keys", "rotate", env=cli_env)
    assert twice.returncode == 0, twice.stderr
    (third,) = sealing.KeyRing(redis).ids()
    assert third not in (old, new) and f"retired key {new}." in twice.stdout
    assert _key_ids(redis) == {third}


def test_router_keys_rotate_while_one_runs_is_refused_in_one_line(
    core: LifeEventRouter, redis: Redis, cli_redis: Redis, cli_env: dict[str, str]
) -> None:
    _cases(core)
    holding, release = threading.Event(), threading.Event()
    outcomes: list[rotation.Outcome] = []

    def progress(p: rotation.Progress) -> None:
        if p.sweep == 1:
            holding.set()
            release.wait(timeout=30)

    running = threading.Thread(
        target=lambda: outcomes.append(Rotation(cli_redis).run(progress)), daemon=True
    )
    running.start()
    try:
        assert holding.wait(timeout=30)
        result = router_cli("keys", "rotate", env=cli_env)
        listed = router_cli("keys", "list", env=cli_env)
    finally:
        release.set()
        running.join(timeout=30)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "A key rotation is already running" in errors[0], errors
    assert "running since" in listed.stdout and "sweep 1 of 2" in listed.stdout
    assert outcomes and outcomes[0].finished
    assert len(sealing.KeyRing(redis).ids()) == 1  # the refused one added no key
