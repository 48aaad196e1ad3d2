"""The JSON API: submissions, their references and status, field messages for bad input,
no session, and one case per idempotency key."""

from __future__ import annotations

from flask.testing import FlaskClient
from redis import Redis

from router import keys
from router.delivery.worker import Supervisor
from tests.support.processes import wait_settled
from tests.support.samples import sample


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
