"""The web front door: the start page, the JSON API and the status page."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from router import keys, reference
from router.delivery.worker import Supervisor
from router.redis_server import RedisServer
from tests.support.processes import wait_settled
from tests.support.samples import sample


def test_start_page_lists_every_life_event(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    for title in (
        "Moving house",
        "Someone has died",
        "A baby has been born",
        "Starting a new job",
        "Retiring",
        "Changing your name",
    ):
        assert title in page


def test_api_submission_returns_reference_and_status_link(
    client: FlaskClient, redis: Redis, workers: Supervisor
) -> None:
    response = client.post("/api/v1/submissions", json=sample("birth"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["created"] is True
    ref = body["reference"].replace("-", "")
    wait_settled(redis, ref)

    status = client.get(
        f"/api/v1/cases/{body['reference']}", headers={"X-Case-Secret": body["secret"]}
    )
    assert status.status_code == 200
    deliveries = status.get_json()["deliveries"]
    assert {n: d["state"] for n, d in deliveries.items()} == {
        "dwp": "delivered",
        "hmrc": "delivered",
    }
    assert "parent_nino" in deliveries["hmrc"]["fields_sent"]

    page = client.get(body["status_url"].removeprefix("http://localhost"))
    assert page.status_code == 200
    assert "Told" in page.get_data(as_text=True)


def test_api_bad_input_gives_field_messages_not_a_500(client: FlaskClient, redis: Redis) -> None:
    data = sample("moving_house")
    data["answers"]["postcode"] = "ZZ"
    response = client.post("/api/v1/submissions", json=data)
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"postcode": "Enter a real postcode, like SW1A 1AA"}
    assert redis.dbsize() == 0

    welsh = client.post("/api/v1/submissions?lang=cy", json=data)
    assert welsh.status_code == 422
    assert welsh.get_json()["errors"]["postcode"] != "Enter a real postcode, like SW1A 1AA"

    for body in (b"{not json", b"[]"):
        bad = client.post("/api/v1/submissions", data=body, content_type="application/json")
        assert bad.status_code == 400
        assert "JSON object" in bad.get_json()["message"]
    assert redis.dbsize() == 0


def test_the_api_opens_no_session_and_takes_its_language_from_the_request(
    client: FlaskClient, redis: Redis
) -> None:
    """A browser that chose Welsh on the pages keeps its cookie; the API neither reads
    nor writes that session, and answers in the language the request itself asks for."""
    client.get("/?lang=cy")
    sessions = set(redis.keys(keys.WEB_SESSION_PREFIX + "*"))
    assert sessions and client.get_cookie("tuo_session") is not None
    data = sample("moving_house")
    data["answers"]["postcode"] = "ZZ"
    english = "Enter a real postcode, like SW1A 1AA"

    plain = client.post("/api/v1/submissions", json=data)
    welsh = client.post(
        "/api/v1/submissions", json=data, headers={"Accept-Language": "cy-GB,cy;q=0.9"}
    )
    made = client.post("/api/v1/submissions", json=sample("birth"))

    assert plain.get_json()["errors"]["postcode"] == english
    assert welsh.get_json()["errors"]["postcode"] not in ("", english)
    assert made.status_code == 201
    for response in (plain, welsh, made):
        assert "Set-Cookie" not in response.headers
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" not in response.headers
    assert set(redis.keys(keys.WEB_SESSION_PREFIX + "*")) == sessions


def test_api_same_idempotency_key_makes_one_case(client: FlaskClient, redis: Redis) -> None:
    headers = {"Idempotency-Key": "retry-of-request-42"}
    first = client.post("/api/v1/submissions", json=sample("retiring"), headers=headers)
    again = client.post("/api/v1/submissions", json=sample("retiring"), headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["reference"] == first.get_json()["reference"]
    assert "secret" not in again.get_json()


def test_a_reference_without_its_secret_reveals_nothing(client: FlaskClient, redis: Redis) -> None:
    body = client.post("/api/v1/submissions", json=sample("death")).get_json()
    ref = body["reference"]
    # The web answers a real and a made-up reference alike: "find your report".
    for made_up in (reference.display(reference.new_reference()), ref):
        for url in (f"/status/{made_up}", f"/status/{made_up}?s=wrong-secret"):
            response = client.get(url)
            assert response.status_code == 302
            assert response.location == f"/status?ref={made_up}"
            assert "Pendleton" not in client.get(response.location).get_data(as_text=True)
    for url, headers in (
        (f"/api/v1/cases/{ref}", {}),
        (f"/api/v1/cases/{ref}", {"X-Case-Secret": "wrong"}),
    ):
        response = client.get(url, headers=headers)
        assert response.status_code == 404
        assert "Pendleton" not in response.get_data(as_text=True)
    unknown = client.get("/api/v1/cases/ACDE-FGHJ-K", headers={"X-Case-Secret": "x"})
    assert unknown.status_code == 404
    assert (
        unknown.get_json()["message"]
        == client.get(f"/api/v1/cases/{ref}", headers={"X-Case-Secret": "wrong"}).get_json()[
            "message"
        ]
    )


def test_unknown_page_is_a_gov_uk_style_404(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_the_web_front_door_follows_webhook_departments_added_while_it_runs(
    app: Flask, client: FlaskClient, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.adapters.webhook import add_webhook

    add_webhook(redis, "coroners", "http://127.0.0.1:9/hook", {"death": ("date_of_death",)})
    data = sample("death")
    data["consent"] = ["coroners"]
    monkeypatch.setattr("router.settings.FOLLOW_SECONDS", -1.0)
    response = client.post("/api/v1/submissions", json=data)
    assert response.status_code == 201, response.get_json()
    assert redis.llen("rq:queue:dept-coroners") == 1


def test_every_web_process_signs_forms_with_the_same_key(
    redis: Redis, redis_server: RedisServer
) -> None:
    """gunicorn runs several processes: a form shown by one must be accepted by another."""
    from channels.app import create_app

    first = create_app({"REDIS_URL": redis_server.url})
    second = create_app({"REDIS_URL": redis_server.url})
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    browser = first.test_client()
    page = browser.get("/report/moving_house", follow_redirects=True).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    cookie = browser.get_cookie("tuo_session")
    assert cookie is not None
    other = second.test_client()
    other.set_cookie("tuo_session", cookie.value)
    answer = other.post(
        "/report/moving_house/full_name",
        data={"csrf_token": token.group(1), "full_name": "Sam Jones"},
    )
    assert answer.status_code == 302
    assert answer.location == "/report/moving_house/date_of_birth"
