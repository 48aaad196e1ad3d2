"""Proving your identity online after sending a report, through the real flow: the status
page's button, the development identity provider's own form, the callback.

A move that nobody signed in for waits: DVLA, DWP and HMRC need medium confidence (P2),
the council low (P1). What the provider returns counts only if it is the reporter, at the
confidence it says, and only for the case and the browser that started the sign-in.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from redis import Redis

from router.cases import CaseStore, DeliveryState
from router.delivery.worker import Supervisor
from router.dev_identity import DevelopmentProvider, Person, core_identity_jwt
from router.redis_server import RedisServer
from router.service import LifeEventRouter
from tests.support.journeys import done_page, reach_check, send
from tests.support.pages import csrf_token, path_of, post_form, soup, text
from tests.support.processes import wait_settled
from tests.support.samples import answers_for, submit_to_core
from tests.support.sent import Sent
from tests.support.sign_in import (
    Authorization,
    finish,
    prove_online,
    sign_in_at_provider,
    start_sign_in,
)

EVENT = "moving_house"
REPORTER = "sample-moving_house"  # the development provider's user for the sample's reporter
NO_MATCH = (
    "The identity you signed in with does not match the name and date of birth in this "
    "report, so it does not count."
)
RELEASED = "You proved your identity. The organisations that were waiting for it are being told."


def anonymous_move(core: LifeEventRouter, client: FlaskClient) -> Sent:
    """The sample move, sent without signing in; ``client`` opens its status link."""
    sent = submit_to_core(core, EVENT, confidence=None)
    assert set(core.case(sent.ref).waiting_for("identity")) == {"council", "dvla", "dwp", "hmrc"}
    assert client.get(sent.status_link, follow_redirects=True).status_code == 200
    return sent


def states(core: LifeEventRouter, sent: Sent) -> dict[str, str]:
    return {n: d.state.value for n, d in core.case(sent.ref).deliveries.items()}


def banner(page: object) -> str:
    found = page.select_one(".govuk-notification-banner__heading")  # type: ignore[attr-defined]
    return text(found) if found is not None else ""


def how_we_know(page: object) -> list[str]:
    heading = page.select_one("#how-we-know")  # type: ignore[attr-defined]
    assert heading is not None, "no 'How we know it is you' section"
    return [text(li) for li in heading.find_next_sibling("ul").select("li")]


def person(provider: DevelopmentProvider, sub: str, name: str, born: str, vot: str) -> str:
    provider.add(Person(sub, name, born, vot))
    return sub


# --- the request -----------------------------------------------------------------------------


def test_the_button_sends_a_one_login_shaped_authorization_request(
    core: LifeEventRouter, client: FlaskClient, identity_provider: DevelopmentProvider
) -> None:
    sent = anonymous_move(core, client)
    page = soup(client.get(f"/status/{sent.display}"))
    assert "development identity provider, not GOV.UK One Login" in text(page.find("main"))
    authorization = start_sign_in(client, sent)
    assert authorization.url.startswith(f"{identity_provider.issuer}/oauth2/authorize?")
    params = authorization.params
    # (One Login's scope is "openid"; the development provider's plain claims need "profile".)
    assert params["response_type"] == "code" and params["scope"] == "openid profile"
    assert params["client_id"] == identity_provider.client_id
    assert json.loads(params["vtr"]) == ["Cl.Cm.P2"]
    assert (
        "https://vocab.account.gov.uk/v1/coreIdentityJWT"
        in json.loads(params["claims"])["userinfo"]
    )
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 20 and len(params["nonce"]) >= 20
    assert urlsplit(params["redirect_uri"]).path == "/sign-in/callback"
    # Nothing about the citizen goes to the provider.
    assert "Siân" not in authorization.url and "1984" not in authorization.url


def test_only_a_browser_that_may_see_the_case_can_start_signing_in_for_it(
    app: Flask, core: LifeEventRouter, client: FlaskClient
) -> None:
    sent = anonymous_move(core, client)
    stranger = app.test_client()
    page = soup(stranger.get("/status"))  # any page, for a CSRF token of its own
    token = page.find("input", {"name": "csrf_token"})["value"]  # type: ignore[index]
    refused = stranger.post(f"/status/{sent.display}/prove-identity", data={"csrf_token": token})
    assert refused.status_code == 404
    # And without the form's CSRF token, not even the citizen's own browser.
    assert client.post(f"/status/{sent.display}/prove-identity").status_code == 400


# --- the callback ----------------------------------------------------------------------------


def test_the_reporter_signing_in_releases_what_waited_for_their_identity(
    core: LifeEventRouter, client: FlaskClient
) -> None:
    sent = anonymous_move(core, client)
    page = prove_online(client, sent, REPORTER)
    assert banner(page) == RELEASED
    assert states(core, sent) == dict.fromkeys(("council", "dvla", "dwp", "hmrc"), "queued")
    proofs = core.case(sent.ref).evidence.proofs
    assert [(p.kind, p.confidence.name) for p in proofs] == [("identity_provider", "P2")]
    said = how_we_know(page)
    assert len(said) == 1 and said[0].startswith(
        "You proved your identity online (medium confidence), with the development identity "
        "provider, not GOV.UK One Login, on "
    )
    assert page.select_one('form[action$="/prove-identity"]') is None
    # Said once: the next look at the page has no banner.
    assert banner(soup(client.get(f"/status/{sent.display}"))) == ""


def test_a_callback_with_a_state_this_browser_did_not_start_is_refused(
    app: Flask, core: LifeEventRouter, client: FlaskClient
) -> None:
    sent = anonymous_move(core, client)
    callback = sign_in_at_provider(start_sign_in(client, sent), REPORTER)
    query = parse_qs(urlsplit(callback).query)
    forged = "/sign-in/callback?" + urlencode({"code": query["code"][0], "state": "made-up"})
    assert finish(client, forged).status_code == 400
    # Another browser that may see the case, handed this browser's callback: refused too.
    other = app.test_client()
    assert other.get(sent.status_link, follow_redirects=True).status_code == 200
    refused = finish(other, callback)
    assert refused.status_code == 400
    assert "Sorry, we could not use that sign-in" in text(soup(refused).find("h1"))
    assert core.case(sent.ref).evidence.proofs == ()
    assert set(states(core, sent).values()) == {"waiting"}


def test_an_identity_that_does_not_match_the_report_earns_nothing_and_the_page_says_why(
    core: LifeEventRouter, client: FlaskClient, identity_provider: DevelopmentProvider
) -> None:
    sent = anonymous_move(core, client)
    born = answers_for(EVENT)["date_of_birth"]
    someone = person(identity_provider, "someone-else", "Someone Else", born, "P2.Cl.Cm")
    page = prove_online(client, sent, someone)
    assert banner(page) == NO_MATCH
    assert core.case(sent.ref).evidence.proofs == ()
    assert set(states(core, sent).values()) == {"waiting"}
    assert how_we_know(page) == ["Nobody has proved who sent this report yet"]
    assert page.select_one('form[action$="/prove-identity"]') is not None  # try again


@pytest.mark.parametrize(
    ("vot", "released"),
    [("Cl.Cm", set()), ("P1.Cl.Cm", {"council"})],
    ids=["P0", "P1"],
)
def test_a_low_confidence_identity_does_not_release_what_needs_medium(
    core: LifeEventRouter,
    client: FlaskClient,
    identity_provider: DevelopmentProvider,
    vot: str,
    released: set[str],
) -> None:
    sent = anonymous_move(core, client)
    answers = answers_for(EVENT)
    sub = person(
        identity_provider, f"low-{vot}", answers["full_name"], answers["date_of_birth"], vot
    )
    page = prove_online(client, sent, sub)
    now = states(core, sent)
    assert {n for n, s in now.items() if s == "queued"} == released
    assert {"dvla", "dwp", "hmrc"} <= {n for n, s in now.items() if s == "waiting"}
    assert "not proved strongly enough" in banner(page) or "does not count" in banner(page)
    assert page.select_one('form[action$="/prove-identity"]') is not None


def test_the_account_without_an_identity_earns_nothing(
    core: LifeEventRouter, client: FlaskClient
) -> None:
    sent = anonymous_move(core, client)
    page = prove_online(client, sent, "no-identity")
    assert "has not proved an identity, so it does not count" in banner(page)
    assert core.case(sent.ref).evidence.proofs == ()


def test_the_development_provider_may_carry_plain_name_and_birthdate_claims(
    core: LifeEventRouter, client: FlaskClient, identity_provider: DevelopmentProvider
) -> None:
    sent = anonymous_move(core, client)
    answers = answers_for(EVENT)
    identity_provider.add(
        Person("plain", "", ""),
        claims={
            "vot": "P2.Cl.Cm",
            "name": answers["full_name"].upper(),  # compared regardless of case
            "birthdate": answers["date_of_birth"],
        },
    )
    assert banner(prove_online(client, sent, "plain")) == RELEASED
    assert set(states(core, sent).values()) == {"queued"}


def test_a_core_identity_not_signed_by_the_identity_key_is_refused(
    core: LifeEventRouter, client: FlaskClient, identity_provider: DevelopmentProvider
) -> None:
    sent = anonymous_move(core, client)
    answers = answers_for(EVENT)
    forger = ECKey.generate_key("P-256", parameters={"kid": "development"})
    forged = core_identity_jwt(
        forger,
        issuer=identity_provider.issuer,
        sub="forged",
        audience=identity_provider.client_id,
        full_name=answers["full_name"],
        birthdate=answers["date_of_birth"],
    )
    identity_provider.add(
        Person("forged", "", ""),
        claims={"vot": "P2.Cl.Cm", "https://vocab.account.gov.uk/v1/coreIdentityJWT": forged},
    )
    page = prove_online(client, sent, "forged")
    assert "does not count" in banner(page)
    assert core.case(sent.ref).evidence.proofs == ()


def test_declining_at_the_provider_changes_nothing(
    core: LifeEventRouter, client: FlaskClient
) -> None:
    sent = anonymous_move(core, client)
    authorization = start_sign_in(client, sent)
    denied = requests.post(
        authorization.url, data={"action": "deny"}, allow_redirects=False, timeout=10
    )
    assert denied.status_code == 302
    back = finish(client, path_of(denied.headers["Location"]))
    assert back.status_code == 303
    page = soup(client.get(path_of(back.location)))
    assert banner(page) == "You did not finish signing in. Nothing has changed."
    assert set(states(core, sent).values()) == {"waiting"}


def test_signing_in_twice_sends_each_organisation_once(
    core: LifeEventRouter, client: FlaskClient, redis: Redis, workers: Supervisor
) -> None:
    sent = anonymous_move(core, client)
    authorization = start_sign_in(client, sent)
    callback = sign_in_at_provider(authorization, REPORTER)
    assert finish(client, callback).status_code == 303
    assert finish(client, callback).status_code == 400  # the same callback again: refused
    # Nothing waits for an identity any more: the button is gone, and pressing an old
    # one just shows the page again.
    page = soup(client.get(f"/status/{sent.display}"))
    assert page.select_one('form[action$="/prove-identity"]') is None
    token = soup(client.get("/status")).find("input", {"name": "csrf_token"})["value"]  # type: ignore[index]
    again = client.post(f"/status/{sent.display}/prove-identity", data={"csrf_token": token})
    assert again.status_code == 303 and path_of(again.location) == f"/status/{sent.display}"
    case = wait_settled(redis, sent.ref)
    assert {n: d.state for n, d in case.deliveries.items()} == dict.fromkeys(
        ("council", "dvla", "dwp", "hmrc"), DeliveryState.DELIVERED
    )
    history = CaseStore(redis).history(sent.ref)
    for department in ("council", "dvla", "dwp", "hmrc"):
        told = [h for h in history if h.department == department and h.state == "delivered"]
        assert len(told) == 1, (department, told)


def test_without_a_provider_there_is_no_button_and_no_sign_in(
    redis: Redis, core: LifeEventRouter, redis_server: RedisServer
) -> None:
    from channels.app import create_app

    app = create_app(
        {
            "TESTING": True,
            "REDIS_URL": redis_server.url_as("web"),
            "SECRET_KEY": "test",
        }
    )
    client = app.test_client()
    sent = anonymous_move(core, client)
    page = soup(client.get(f"/status/{sent.display}"))
    assert page.select_one('form[action$="/prove-identity"]') is None
    assert "Post Office" in text(page.select_one("#prove-identity").find_next_sibling("h3"))
    token = soup(client.get("/status")).find("input", {"name": "csrf_token"})["value"]  # type: ignore[index]
    refused = client.post(f"/status/{sent.display}/prove-identity", data={"csrf_token": token})
    assert refused.status_code == 404


def test_a_real_provider_is_told_who_we_are_with_a_signed_client_assertion(
    redis: Redis,
    redis_server: RedisServer,
    core: LifeEventRouter,
    identity_provider: DevelopmentProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Configured as a real provider (no OIDC_DEVELOPMENT), the token request carries a
    private_key_jwt assertion signed with the client's key, and no secret. (The
    development provider cannot check one, so it refuses the client: the page says we
    could not finish, and nothing changes.)"""
    from channels.app import create_app

    key = RSAKey.generate_key(2048)
    settings = identity_provider.settings()
    del settings["OIDC_DEVELOPMENT"]
    app = create_app(
        {
            "TESTING": True,
            "REDIS_URL": redis_server.url_as("web"),
            "SECRET_KEY": "test",
            "OIDC_PRIVATE_KEY": key.as_pem(private=True).decode(),
            **settings,
        }
    )
    sent_bodies: list[str] = []
    send = requests.Session.send

    def spy(self: requests.Session, request: requests.PreparedRequest, **kwargs: object) -> object:
        if str(request.url).endswith("/oauth2/token"):
            body = request.body
            sent_bodies.append(body.decode() if isinstance(body, bytes) else str(body))
            assert "Authorization" not in request.headers
        return send(self, request, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(requests.Session, "send", spy)
    client = app.test_client()
    sent = anonymous_move(core, client)
    authorization = start_sign_in(client, sent)
    assert authorization.params["scope"] == "openid"  # One Login's scope
    page = prove_online(client, sent, REPORTER)
    assert banner(page) == (
        "We could not finish signing you in. Try again later, or have your identity "
        "checked at a Post Office."
    )
    assert set(states(core, sent).values()) == {"waiting"}
    assert "development identity provider" not in text(page.find("main"))
    (body,) = sent_bodies
    form = {k: v[0] for k, v in parse_qs(body).items()}
    assert form["client_assertion_type"] == (
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    assert "client_secret" not in form and form["code_verifier"]
    assertion = jwt.decode(form["client_assertion"], key)
    claims = assertion.claims
    assert claims["iss"] == claims["sub"] == identity_provider.client_id
    assert claims["aud"] == f"{identity_provider.issuer}/oauth2/token"
    assert claims["exp"] > claims["iat"] and claims["jti"]


# --- before sending, from "check your answers" -------------------------------------------------


def prove_before_sending(client: FlaskClient, sub: str) -> object:
    """On "check your answers", prove your identity online as ``sub``; return the check
    page you come back to."""
    check = f"/report/{EVENT}/check"
    page = soup(client.get(check))
    form = page.select_one(f'form[action="/report/{EVENT}/prove-identity"]')
    assert form is not None, "no button to prove your identity before sending"
    away = client.post(str(form["action"]), data={"csrf_token": csrf_token(page)})
    assert away.status_code == 303
    back = finish(client, sign_in_at_provider(Authorization(away.location), sub))
    assert back.status_code == 303 and path_of(back.location) == check, back.location
    return soup(client.get(check))


def test_proving_your_identity_before_sending_goes_with_the_report(
    core: LifeEventRouter, client: FlaskClient
) -> None:
    reach_check(client, EVENT)
    page = prove_before_sending(client, REPORTER)
    assert banner(page).startswith("You proved your identity. It will be sent with your report")
    inset = page.select_one("#prove-identity + .govuk-inset-text")
    assert inset is not None and "medium confidence" in text(inset)
    assert page.select_one(f'form[action="/report/{EVENT}/prove-identity"]') is None
    assert send(client, EVENT).status_code == 302
    done = done_page(client, EVENT)
    case = core.case(done.ref)
    assert [(p.kind, p.confidence.name) for p in case.evidence.proofs] == [
        ("identity_provider", "P2")
    ]
    assert {d.state for d in case.deliveries.values()} == {DeliveryState.QUEUED}


def test_an_identity_proved_before_sending_is_dropped_when_the_name_is_changed(
    core: LifeEventRouter, client: FlaskClient
) -> None:
    reach_check(client, EVENT)
    prove_before_sending(client, REPORTER)
    changed = post_form(
        client, f"/report/{EVENT}/full_name?change=1", {"full_name": "Sian Someone Else"}
    )
    assert changed.status_code == 302
    page = soup(client.get(f"/report/{EVENT}/check"))
    assert page.select_one(f'form[action="/report/{EVENT}/prove-identity"]') is not None
    assert send(client, EVENT).status_code == 302
    case = core.case(done_page(client, EVENT).ref)
    assert case.evidence.proofs == ()
    assert {d.state for d in case.deliveries.values()} == {DeliveryState.WAITING}


def test_someone_else_proved_before_sending_earns_nothing(client: FlaskClient) -> None:
    reach_check(client, EVENT)
    page = prove_before_sending(client, "sample-retiring")  # Gareth Llewellyn
    assert banner(page) == NO_MATCH
    assert page.select_one(f'form[action="/report/{EVENT}/prove-identity"]') is not None


def test_a_real_provider_without_a_client_key_stops_the_app_from_starting(
    redis: Redis, redis_server: RedisServer
) -> None:
    from channels.app import create_app

    with pytest.raises(RuntimeError, match="TUO_OIDC_PRIVATE_KEY"):
        create_app(
            {
                "TESTING": True,
                "REDIS_URL": redis_server.url_as("web"),
                "SECRET_KEY": "test",
                "OIDC_ISSUER": "https://oidc.integration.account.gov.uk",
                "OIDC_CLIENT_ID": "tell-us-once",
            }
        )
