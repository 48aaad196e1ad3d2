"""The JSON API: closed to anyone without a partner's key; submissions, their references
and status, field messages for bad input, no session, one case per client and
idempotency key; every answer as the OpenAPI document describes it."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from redis import Redis

from router import keys
from router.clients import ApiClients
from router.delivery.worker import Supervisor
from tests.support.api import api_key, bearer, conforms
from tests.support.processes import wait_settled
from tests.support.samples import sample


def _stored(redis: Redis) -> int:
    """How many keys Redis holds, leaving out the API's rate counters (a refused call
    still counts against its client's rate)."""
    return redis.dbsize() - len(redis.keys("api-rate:*"))


ENGLISH_401 = "Send a valid API key, as Authorization: Bearer followed by the key"

# --- who may call it -------------------------------------------------------------------------


def test_an_anonymous_call_is_refused_with_401_and_makes_nothing(
    client: FlaskClient, redis: Redis
) -> None:
    before = redis.dbsize()
    submitted = client.post("/api/v1/submissions", json=sample("death"))
    looked_up = client.get("/api/v1/cases/ACDE-FGHJ-K", headers={"X-Case-Secret": "x"})
    welsh = client.post("/api/v1/submissions?lang=cy", json=sample("death"))
    for response in (submitted, looked_up, welsh):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="tell-us-once"'
        conforms(response)
    assert submitted.get_json() == {"message": ENGLISH_401}
    assert welsh.get_json()["message"] not in ("", ENGLISH_401)
    assert redis.dbsize() == before


@pytest.mark.parametrize(
    "authorization",
    ["Bearer tuo_not-a-key-anyone-was-given", "Basic cGFydG5lcjpzZWNyZXQ=", "Bearer", "tuo_x"],
)
def test_a_wrong_key_is_refused_with_401(
    client: FlaskClient, redis: Redis, partner: dict[str, str], authorization: str
) -> None:
    before = redis.dbsize()
    response = client.post(
        "/api/v1/submissions", json=sample("death"), headers={"Authorization": authorization}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="tell-us-once"')
    assert conforms(response) == {"message": ENGLISH_401}
    assert redis.dbsize() == before


def test_a_revoked_key_is_refused_at_once_and_the_client_stays_listed(
    client: FlaskClient, redis: Redis
) -> None:
    key = api_key(redis, "charity_app")
    assert (
        client.post("/api/v1/submissions", json=sample("death"), headers=bearer(key)).status_code
        == 201
    )
    revoked = ApiClients(redis).revoke("charity_app")
    assert revoked is not None and revoked.revoked_at
    response = client.post("/api/v1/submissions", json=sample("birth"), headers=bearer(key))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    conforms(response)
    assert [c.name for c in ApiClients(redis).all()] == ["charity_app"]


def test_a_client_may_send_only_the_life_events_it_is_scoped_for(
    client: FlaskClient, redis: Redis
) -> None:
    headers = bearer(api_key(redis, "removals_app", events=["moving_house"]))
    before = _stored(redis)
    refused = client.post("/api/v1/submissions", json=sample("death"), headers=headers)
    welsh = client.post("/api/v1/submissions?lang=cy", json=sample("death"), headers=headers)
    assert refused.status_code == 403 and welsh.status_code == 403
    assert conforms(refused)["message"] == "This API key may not send reports of that life event"
    assert conforms(welsh)["message"] != refused.get_json()["message"]
    assert _stored(redis) == before
    allowed = client.post("/api/v1/submissions", json=sample("moving_house"), headers=headers)
    assert allowed.status_code == 201
    conforms(allowed)


def test_over_its_rate_a_client_is_told_when_to_come_back(
    client: FlaskClient, redis: Redis
) -> None:
    headers = bearer(api_key(redis, "busy_app", rate="2/minute"))
    other = bearer(api_key(redis, "quiet_app"))
    data = sample("moving_house")
    data["answers"]["postcode"] = "ZZ"  # refused, but it still counts
    answers = [client.post("/api/v1/submissions", json=data, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [422, 422, 429]
    limited = answers[-1]
    conforms(limited)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Retry-After" in limited.get_json()["message"]
    status = client.get("/api/v1/cases/ACDE-FGHJ-K", headers={**headers, "X-Case-Secret": "x"})
    assert status.status_code == 429
    # One client's rate is its own.
    assert client.post("/api/v1/submissions", json=data, headers=other).status_code == 422


def test_the_openapi_document_needs_no_key(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/api/v1/submissions",
        "/api/v1/cases/{ref}",
        "/api/v1/openapi.json",
    }
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    submit = document["paths"]["/api/v1/submissions"]["post"]
    assert set(submit["responses"]) == {"200", "201", "400", "401", "403", "413", "422", "429"}


# --- submissions and status ------------------------------------------------------------------


def test_api_submission_returns_reference_and_status_link(
    client: FlaskClient, redis: Redis, workers: Supervisor, partner: dict[str, str]
) -> None:
    response = client.post("/api/v1/submissions", json=sample("birth"), headers=partner)
    assert response.status_code == 201
    body = conforms(response)
    assert body["created"] is True
    ref = body["reference"].replace("-", "")
    assert redis.hget(keys.case(ref), "channel") == b"api:partner"
    wait_settled(redis, ref)

    status = client.get(
        f"/api/v1/cases/{body['reference']}", headers={**partner, "X-Case-Secret": body["secret"]}
    )
    assert status.status_code == 200
    deliveries = conforms(status)["deliveries"]
    # The register confirms the birth, so DWP is told; HMRC acts on a reporter whose
    # identity is known (P1 at least), which an API report does not give: it waits.
    assert {n: d["state"] for n, d in deliveries.items()} == {
        "dwp": "delivered",
        "hmrc": "waiting",
    }
    assert deliveries["dwp"]["fields_sent"] and deliveries["hmrc"]["fields_sent"] == []

    # The person's status page (channels/web/status.py), with the secret in the link.
    assert body["status_url"] == (f"http://localhost/status/{body['reference']}?s={body['secret']}")


def test_a_report_sent_in_welsh_has_its_messages_sent_in_welsh(
    client: FlaskClient, redis: Redis, partner: dict[str, str]
) -> None:
    """As a Welsh web journey's does: the reporter's messages follow the request's language."""
    refs = {}
    for query in ("?lang=cy", ""):
        response = client.post(f"/api/v1/submissions{query}", json=sample("birth"), headers=partner)
        assert response.status_code == 201
        refs[query] = conforms(response)["reference"].replace("-", "")
    assert redis.hget(keys.case(refs["?lang=cy"]), "lang") == b"cy"
    assert redis.hget(keys.case(refs[""]), "lang") is None


def test_a_client_sees_only_the_cases_it_sent(
    client: FlaskClient, redis: Redis, partner: dict[str, str]
) -> None:
    body = client.post("/api/v1/submissions", json=sample("death"), headers=partner).get_json()
    other = bearer(api_key(redis, "someone_else"))
    url = f"/api/v1/cases/{body['reference']}"
    mine = client.get(url, headers={**partner, "X-Case-Secret": body["secret"]})
    theirs = client.get(url, headers={**other, "X-Case-Secret": body["secret"]})
    assert mine.status_code == 200
    assert theirs.status_code == 404
    assert conforms(theirs) == conforms(
        client.get(url, headers={**partner, "X-Case-Secret": "wrong"})
    )
    assert "Pendleton" not in theirs.get_data(as_text=True)


def test_api_bad_input_gives_field_messages_not_a_500(
    client: FlaskClient, redis: Redis, partner: dict[str, str]
) -> None:
    before = _stored(redis)
    data = sample("moving_house")
    data["answers"]["postcode"] = "ZZ"
    response = client.post("/api/v1/submissions", json=data, headers=partner)
    assert response.status_code == 422
    assert conforms(response)["errors"] == {"postcode": "Enter a real postcode, like SW1A 1AA"}

    welsh = client.post("/api/v1/submissions?lang=cy", json=data, headers=partner)
    assert welsh.status_code == 422
    assert conforms(welsh)["errors"]["postcode"] != "Enter a real postcode, like SW1A 1AA"

    for body in (b"{not json", b"[]"):
        bad = client.post(
            "/api/v1/submissions", data=body, content_type="application/json", headers=partner
        )
        assert bad.status_code == 400
        assert "JSON object" in conforms(bad)["message"]
    long_key = client.post(
        "/api/v1/submissions", json=data, headers={**partner, "Idempotency-Key": "k" * 201}
    )
    assert long_key.status_code == 400
    conforms(long_key)
    assert _stored(redis) == before


@pytest.mark.parametrize(
    ("query", "unknown"), [("?lnag=cy", "lnag"), ("?=", ""), ("?lang=cy&debug=1", "debug")]
)
def test_a_query_parameter_the_document_does_not_give_is_refused_by_name(
    client: FlaskClient, redis: Redis, partner: dict[str, str], query: str, unknown: str
) -> None:
    before = _stored(redis)
    url = f"/api/v1/submissions{query}"
    response = client.post(url, json=sample("moving_house"), headers=partner)
    assert response.status_code == 400
    assert repr(unknown) in conforms(response)["message"]  # in English or in Welsh
    assert _stored(redis) == before
    status = client.get(f"/api/v1/cases/ACDE-FGHJ-K{query}", headers=partner)
    assert status.status_code == 400
    assert repr(unknown) in conforms(status)["message"]


def test_the_api_opens_no_session_and_takes_its_language_from_the_request(
    client: FlaskClient, redis: Redis, partner: dict[str, str]
) -> None:
    """A browser that chose Welsh on the pages keeps its cookie; the API neither reads
    nor writes that session, and answers in the language the request itself asks for."""
    client.get("/report/moving_house?lang=cy")  # a journey started: a session
    sessions = set(redis.keys(keys.WEB_SESSION_PREFIX + "*"))
    assert sessions and client.get_cookie("tuo_session") is not None
    data = sample("moving_house")
    data["answers"]["postcode"] = "ZZ"
    english = "Enter a real postcode, like SW1A 1AA"

    plain = client.post("/api/v1/submissions", json=data, headers=partner)
    welsh = client.post(
        "/api/v1/submissions",
        json=data,
        headers={**partner, "Accept-Language": "cy-GB,cy;q=0.9"},
    )
    made = client.post("/api/v1/submissions", json=sample("birth"), headers=partner)
    anonymous = client.post("/api/v1/submissions", json=sample("birth"))

    assert plain.get_json()["errors"]["postcode"] == english
    assert welsh.get_json()["errors"]["postcode"] not in ("", english)
    assert made.status_code == 201
    for response in (plain, welsh, made, anonymous):
        conforms(response)
        assert "Set-Cookie" not in response.headers
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" not in response.headers
    assert set(redis.keys(keys.WEB_SESSION_PREFIX + "*")) == sessions


# --- idempotency keys, per client ------------------------------------------------------------


def test_api_same_idempotency_key_makes_one_case(
    client: FlaskClient, redis: Redis, partner: dict[str, str]
) -> None:
    headers = {**partner, "Idempotency-Key": "retry-of-request-42"}
    first = client.post("/api/v1/submissions", json=sample("retiring"), headers=headers)
    # The same JSON, its keys in another order, is the same submission.
    shuffled = dict(reversed(list(sample("retiring").items())))
    again = client.post("/api/v1/submissions", json=shuffled, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert conforms(again)["reference"] == conforms(first)["reference"]
    assert again.get_json()["created"] is False
    assert "secret" not in again.get_json()


def test_two_clients_with_the_same_idempotency_key_get_two_cases(
    client: FlaskClient, redis: Redis, partner: dict[str, str]
) -> None:
    other = bearer(api_key(redis, "other_app"), Idempotency_Key="request-1")
    mine = {**partner, "Idempotency-Key": "request-1"}
    first = client.post("/api/v1/submissions", json=sample("retiring"), headers=mine)
    second = client.post("/api/v1/submissions", json=sample("retiring"), headers=other)
    assert first.status_code == second.status_code == 201
    assert conforms(first)["reference"] != conforms(second)["reference"]


def test_an_idempotency_key_used_again_for_a_different_submission_is_refused(
    client: FlaskClient, redis: Redis, partner: dict[str, str]
) -> None:
    headers = {**partner, "Idempotency-Key": "request-7"}
    first = client.post("/api/v1/submissions", json=sample("retiring"), headers=headers)
    assert first.status_code == 201
    before = _stored(redis)
    changed = sample("retiring")
    changed["consent"] = changed["consent"][:1]
    for body, query in ((changed, ""), (sample("moving_house"), "?lang=cy")):
        refused = client.post(f"/api/v1/submissions{query}", json=body, headers=headers)
        assert refused.status_code == 422
        message = conforms(refused)["message"]
        if not query:
            assert "already used for a different submission" in message
        else:
            assert "different submission" not in message
    assert _stored(redis) == before
    # The first submission is still answered as before.
    again = client.post("/api/v1/submissions", json=sample("retiring"), headers=headers)
    assert again.status_code == 200
    assert again.get_json()["reference"] == first.get_json()["reference"]


# --- a registrar's system vouches for the registrations it makes ------------------------------


def _unregistered_death() -> dict[str, object]:
    data = sample("death")
    data["answers"]["registrar_reference"] = "QW3R 7T8Y 9PKM"  # not in the mock register
    return data


def test_a_registrar_vouches_for_the_death_it_registers_and_dwp_is_told(
    client: FlaskClient, redis: Redis, workers: Supervisor
) -> None:
    registrar = bearer(
        api_key(redis, "leeds_registrar", events=["death", "birth"], vouches=["registration"])
    )
    response = client.post("/api/v1/submissions", json=_unregistered_death(), headers=registrar)
    assert response.status_code == 201, response.get_json()
    body = conforms(response)
    case = wait_settled(redis, body["reference"].replace("-", ""))
    assert case.deliveries["dwp"].state.value == "delivered"
    vouched = [p for p in case.evidence.proofs if p.kind == "vouched"]
    assert [(p.source, p.covers) for p in vouched] == [("leeds_registrar", "registration")]


def test_the_same_death_from_a_client_not_trusted_for_registrations_is_refused(
    client: FlaskClient, redis: Redis, partner: dict[str, str]
) -> None:
    before = _stored(redis)
    response = client.post("/api/v1/submissions", json=_unregistered_death(), headers=partner)
    assert response.status_code == 422
    errors = conforms(response)["errors"]
    assert "registrar_reference" in errors
    assert _stored(redis) == before


def test_a_trusted_registrar_vouches_only_for_deaths_and_births(redis: Redis) -> None:
    clients = ApiClients(redis)
    registrar, _key = clients.add("registrar", ["death", "birth", "moving_house"], ["registration"])
    assert [p.kind for p in registrar.proofs_for("death")] == ["vouched"]
    assert registrar.proofs_for("moving_house") == []
    assert registrar.proofs_for(["death"]) == []
    plain = clients.get("registrar")
    assert plain is not None and plain.vouches == ("registration",)


def test_a_death_reported_twice_says_so_and_tells_nobody_again(
    client: FlaskClient, redis: Redis, partner: dict[str, str]
) -> None:
    first = client.post("/api/v1/submissions", json=sample("death"), headers=partner)
    again = client.post("/api/v1/submissions", json=sample("death"), headers=partner)
    assert first.status_code == again.status_code == 201
    assert "reported_already" not in conforms(first)
    body = conforms(again)
    assert body["reported_already"] is True
    assert body["reference"] != first.get_json()["reference"]
    case = client.get(
        f"/api/v1/cases/{body['reference']}", headers={**partner, "X-Case-Secret": body["secret"]}
    )
    assert conforms(case)["deliveries"] == {}


def test_an_address_the_api_does_not_have_links_to_its_documentation(
    client: FlaskClient, partner: dict[str, str]
) -> None:
    """Issue 15, item 16: the 404 and 405 name the OpenAPI document, which is there."""
    import jsonschema

    from channels.web import openapi

    problem = openapi.document()["components"]["schemas"]["Problem"]
    for method, path in (("get", "/api/v1/nothing-here"), ("delete", "/api/v1/submissions")):
        response = getattr(client, method)(path, headers=partner)
        assert response.status_code in (404, 405)
        body = response.get_json()
        jsonschema.validate(body, problem)
        assert body["documentation"] == "/api/v1/openapi.json"
        document = client.get(body["documentation"])
        assert document.status_code == 200 and document.get_json()["openapi"] == "3.1.0"
