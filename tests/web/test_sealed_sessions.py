"""Issue 14: a web session holds a journey's answers between pages, so what Redis keeps
of it is sealed (router.sealing), and once the report is sent the answers leave it."""

from __future__ import annotations

from flask import Flask
from redis import Redis

from router import keys, sealing
from tests.support.journeys import done_page, reach_check, send
from tests.support.samples import sample


def _stored_sessions(redis: Redis) -> list[bytes]:
    return [
        value
        for key in redis.scan_iter(keys.WEB_SESSION_PREFIX + "*")
        if isinstance(value := redis.get(key), bytes)
    ]


def test_a_journeys_answers_are_sealed_in_the_session_store(app: Flask, redis: Redis) -> None:
    client = app.test_client()
    answers = sample("moving_house")["answers"]
    reach_check(client, "moving_house")
    stored = _stored_sessions(redis)
    assert stored, "the journey's session is kept in Redis"
    for value in stored:
        assert sealing.is_sealed(value)
        for answer in (answers["full_name"], answers["nino"], answers["postcode"]):
            assert str(answer).encode() not in value
    assert b"moving_house" not in b"".join(stored)  # not even the event's name


def test_the_answers_leave_the_session_once_the_report_is_sent(app: Flask, redis: Redis) -> None:
    client = app.test_client()
    reach_check(client, "moving_house")
    send(client, "moving_house")
    done_page(client, "moving_house")  # the confirmation still shows from the session
    with client.session_transaction() as session:
        journey = session["journeys:journey"]["moving_house"]
        assert journey["ref"] and journey["answers"] == {}


def test_a_session_that_does_not_open_starts_afresh(app: Flask, redis: Redis) -> None:
    client = app.test_client()
    reach_check(client, "moving_house")
    for key in redis.scan_iter(keys.WEB_SESSION_PREFIX + "*"):
        value = redis.get(key)
        assert isinstance(value, bytes)
        redis.set(key, value[:-1] + bytes([value[-1] ^ 1]))  # tampered with
    page = client.get("/report/moving_house/check")
    assert page.status_code in (200, 302)  # no 500: the journey begins again
