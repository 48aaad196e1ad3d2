"""API clients (router.clients) and `router api-clients`: a key shown once and stored only
as a digest, scoped to events, limited to a rate, revocable."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from click.testing import CliRunner
from redis import Redis
from redis.exceptions import ResponseError

from router import keys
from router.cli import main
from router.clients import ApiClients, Rate, submission_digest
from router.exceptions import SubmissionKeyReused, ValidationFailed
from router.redis_server import RedisServer
from router.service import LifeEventRouter
from tests.support.samples import sample


def _every_value(redis: Redis) -> bytes:
    """Everything Redis holds, as one lump of bytes."""
    found = b""
    for key in redis.scan_iter():
        try:
            found += b"".join(f + v for f, v in redis.hgetall(key).items())
        except ResponseError:  # not a hash
            found += redis.dump(key) or b""
    return found


def test_a_key_is_stored_only_as_its_digest(redis: Redis) -> None:
    client, key = ApiClients(redis).add("charity_app", ["death", "moving_house"])
    assert key.startswith("tuo_") and len(key) > 40
    assert key.encode() not in _every_value(redis)
    assert client.key_digest == hashlib.sha256(key.encode()).hexdigest()
    assert key not in repr(client) and client.key_digest not in repr(client)
    assert ApiClients(redis).admit(key).client == client
    assert ApiClients(redis).admit(key + "x").client is None
    assert ApiClients(redis).admit("").client is None


def test_a_revoked_key_lets_nobody_in_and_a_new_key_can_be_given(redis: Redis) -> None:
    clients = ApiClients(redis)
    _client, old = clients.add("registrar", ["death"], ["registration"])
    with pytest.raises(ValidationFailed) as twice:
        clients.add("registrar", ["death"])
    assert "revoke it first" in twice.value.errors["name"]
    revoked = clients.revoke("registrar")
    assert revoked is not None and revoked.revoked_at
    assert clients.admit(old).client is None
    assert clients.revoke("nobody") is None
    _again, new = clients.add("registrar", ["death"], ["registration"])
    assert clients.admit(new).client is not None and clients.admit(old).client is None


@pytest.mark.parametrize(
    ("name", "events", "vouches", "rate", "field"),
    [
        ("Bad Name", ["death"], [], "10/minute", "name"),
        ("ok_name", [], [], "10/minute", "events"),
        ("ok_name", ["winning_the_lottery"], [], "10/minute", "events"),
        ("ok_name", ["death"], ["identity"], "10/minute", "vouches"),
        ("ok_name", ["death"], [], "lots", "rate"),
        ("ok_name", ["death"], [], "0/minute", "rate"),
    ],
)
def test_a_client_is_refused_with_a_message_per_option(
    redis: Redis, name: str, events: list[str], vouches: list[str], rate: str, field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        ApiClients(redis).add(name, events, vouches, rate)
    assert field in refused.value.errors
    assert redis.hlen(keys.API_CLIENTS) == 0


def test_the_rate_is_per_client_and_per_window(redis: Redis) -> None:
    clients = ApiClients(redis)
    _a, key = clients.add("busy", ["death"], rate="2/minute")
    _b, other = clients.add("quiet", ["death"], rate="2/minute")
    at = 60 * 1000 + 15.5  # 15.5 s into a minute
    assert [clients.admit(key, now=at).retry_after for _ in range(3)] == [0, 0, 45]
    assert clients.admit(other, now=at).retry_after == 0
    assert clients.admit(key, now=at + 45).retry_after == 0  # the next minute
    assert Rate.parse("5 / hour") == Rate(5, 3600) and str(Rate(5, 3600)) == "5/hour"


def test_the_command_adds_lists_and_revokes_clients_without_showing_keys_again(
    redis: Redis, redis_server: RedisServer
) -> None:
    runner = CliRunner()
    env = {"REDIS_URL": redis_server.url_as("cli")}
    added = runner.invoke(
        main,
        [
            "api-clients",
            "add",
            "leeds_registrar",
            "--events",
            "death,birth",
            "--vouches",
            "registration",
            "--rate",
            "30/minute",
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    key = next(w for w in added.output.split() if w.startswith("tuo_"))
    assert ApiClients(redis).admit(key).client is not None

    listed = runner.invoke(main, ["api-clients", "list"], env=env)
    assert listed.exit_code == 0
    assert "leeds_registrar" in listed.output and "birth,death" in listed.output
    assert "registration" in listed.output and "30/minute" in listed.output
    assert key not in listed.output and "active" in listed.output

    revoked = runner.invoke(main, ["api-clients", "revoke", "leeds_registrar"], env=env)
    assert revoked.exit_code == 0
    assert "revoked" in runner.invoke(main, ["api-clients", "list"], env=env).output
    assert ApiClients(redis).admit(key).client is None

    bad = runner.invoke(main, ["api-clients", "add", "x", "--events", "death"], env=env)
    assert bad.exit_code == 2 and "name" in bad.output
    unknown = runner.invoke(main, ["api-clients", "revoke", "nobody"], env=env)
    assert unknown.exit_code != 0 and "No API client named nobody" in unknown.output


def test_racing_submissions_under_one_key_make_one_case_and_refuse_a_different_body(
    core: LifeEventRouter,
) -> None:
    """Eight at once with one key: the same body makes one case; a different body sent
    in the same race is refused, whichever arrives first."""
    same = sample("retiring")
    other = sample("retiring")
    other["consent"] = other["consent"][:1]
    bodies = [same] * 7 + [other]

    def send(body: dict[str, Any]) -> str:
        digest = submission_digest(body["event"], body["answers"], body["consent"])
        try:
            return core.submit(
                body["event"],
                body["answers"],
                body["consent"],
                channel="api:racer",
                submission_key="api:racer:k1",
                submission_digest=digest,
            ).ref
        except SubmissionKeyReused:
            return "refused"

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, bodies))
    refused = [i for i, a in enumerate(answers) if a == "refused"]
    # Either the different body lost the race (it alone is refused), or it won it
    # (it made the case and the seven others are refused).
    assert refused in ([7], list(range(7)))
    assert len({a for a in answers if a != "refused"}) == 1
