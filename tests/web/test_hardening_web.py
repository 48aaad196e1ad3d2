"""Issue 13, security hardening: each finding of the outside probe on the web front door,
with a test named after its row that failed before the fix."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from werkzeug.test import TestResponse

from router.service import LifeEventRouter
from tests.support.api import api_key, bearer, conforms
from tests.support.journeys import INFORMANT_BORN, find_case
from tests.support.samples import sample, submit_to_core


def from_address(app: Flask, address: str) -> FlaskClient:
    """A browser at another address (another client)."""
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = address
    return browser


def at_once(count: int, attempt: Callable[[int], TestResponse]) -> list[int]:
    """``count`` requests in threads, released together; their status codes."""
    start = threading.Barrier(count)
    codes: list[int] = [0] * count

    def run(i: int) -> None:
        start.wait()
        codes[i] = attempt(i).status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


# --- row 4: the throttle counts atomically -------------------------------------------------


def test_row_4_sixteen_concurrent_wrong_guesses_get_no_more_than_the_limit_through(
    app: Flask, core: LifeEventRouter
) -> None:
    sent = submit_to_core(core, "death")
    # Each thread its own browser (a CSRF token each), all from one address.
    browsers = [app.test_client() for _ in range(16)]
    tokens = [find_case_token(b, sent.display) for b in browsers]

    def guess(i: int) -> TestResponse:
        return browsers[i].post(
            f"/status?ref={sent.display}",
            data={
                "csrf_token": tokens[i],
                "reference": sent.display,
                "date_of_birth": ["1", "1", str(1900 + i)],
                "postcode": "LS1 4AP",
            },
        )

    codes = at_once(16, guess)
    assert codes.count(429) >= 11, codes  # at most 5 (the limit) were tried
    assert set(codes) <= {400, 429}


def test_row_4_the_throttle_lets_no_more_than_the_limit_through_concurrently(
    core: LifeEventRouter,
) -> None:
    throttle = core.throttle("row-4", limit=5)
    results: list[int] = []
    start = threading.Barrier(16)

    def guess() -> None:
        start.wait()
        results.append(throttle.attempt("ref client"))

    threads = [threading.Thread(target=guess) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(0) == 5


def find_case_token(browser: FlaskClient, ref: str) -> str:
    from tests.support.pages import csrf_token, soup

    return csrf_token(soup(browser.get(f"/status?ref={ref}")))


# --- row 2: a correct secret is never throttled; failures per (reference, client) ------------


def test_row_2_a_correct_secret_is_never_throttled(app: Flask, core: LifeEventRouter) -> None:
    sent = submit_to_core(core, "death")
    attacker = app.test_client()
    for year in range(1950, 1960):
        find_case(attacker, sent.display, ["1", "1", str(year)])
        attacker.get(f"/status/{sent.display}?s=not-the-secret")
    # The citizen's link opens the page, even from the attacker's own address.
    owner = app.test_client()
    assert owner.get(sent.status_link, follow_redirects=True).status_code == 200


def test_row_2_wrong_guesses_at_a_reference_lock_out_only_the_client_that_made_them(
    app: Flask, core: LifeEventRouter
) -> None:
    sent = submit_to_core(core, "death")
    attacker = from_address(app, "192.0.2.66")
    for year in range(1950, 1956):
        find_case(attacker, sent.display, ["1", "1", str(year)])
    assert find_case(attacker, sent.display, ["1", "1", "1960"]).status_code == 429
    citizen = from_address(app, "198.51.100.7")
    found = find_case(citizen, sent.display, INFORMANT_BORN)
    assert found.status_code == 302, "the citizen at their own address is let in"


# --- row 1: only the reporter's own details open the status page; identifiers masked -----


def test_row_1_only_the_reporters_date_of_birth_and_postcode_open_the_status_page(
    app: Flask, core: LifeEventRouter
) -> None:
    sent = submit_to_core(core, "death")
    guesser = from_address(app, "192.0.2.1")
    # The person who died's date of birth is in the case, but it is not the reporter's.
    assert find_case(guesser, sent.display, ["3", "2", "1941"]).status_code == 400
    assert find_case(guesser, sent.display, INFORMANT_BORN, "SW1A 1AA").status_code == 400
    citizen = from_address(app, "192.0.2.2")
    found = find_case(citizen, sent.display, INFORMANT_BORN, "ls14ap")
    assert found.status_code == 302 and found.location == f"/status/{sent.display}"


def test_row_1_a_babys_date_of_birth_does_not_open_a_birth_report(
    app: Flask, core: LifeEventRouter
) -> None:
    answers = sample("birth")["answers"]
    sent = submit_to_core(core, "birth")
    year, month, day = str(core.case(sent.ref).answers["child_date_of_birth"]).split("-")
    baby = [str(int(day)), str(int(month)), year]
    postcode = answers["postcode"]
    assert find_case(app.test_client(), sent.display, baby, postcode).status_code == 400
    year, month, day = answers["parent_date_of_birth"].split("-")
    parent = [str(int(day)), str(int(month)), year]
    assert find_case(app.test_client(), sent.display, parent, postcode).status_code == 302


def test_row_1_identifiers_are_masked_on_the_status_page_and_in_what_we_shared(
    app: Flask, core: LifeEventRouter, workers: object
) -> None:
    from tests.support.pages import soup

    for event, fields in (
        ("death", ("deceased_nino", "driving_licence_number")),
        ("retiring", ("nino", "sort_code", "account_number")),
    ):
        answers = sample(event)["answers"]
        sent = submit_to_core(core, event)
        wait_until_shared(core, sent.ref)
        page = soup(app.test_client().get(sent.status_link, follow_redirects=True)).get_text(
            " ", strip=True
        )
        assert "What we shared" in page
        for field in fields:
            whole = answers[field].replace(" ", "").replace("-", "")
            spaced = " ".join(answers[field].split())
            assert whole not in page.replace(" ", "").replace("-", ""), (event, field)
            assert spaced not in page, (event, field)
        nino = answers.get("nino") or answers["deceased_nino"]
        assert f"Ending {nino.replace(' ', '')[-3:]}" in page


def wait_until_shared(core: LifeEventRouter, ref: str) -> None:
    import time

    from router.cases import PENDING_STATES

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        case = core.case(ref)
        if not any(d.state in PENDING_STATES for d in case.deliveries.values()):
            return
        time.sleep(0.1)
    raise AssertionError("deliveries still pending")


# --- row 14: the API's case lookup: one compare on a miss, wrong secrets rate-limited ------


def test_row_14_an_unknown_reference_costs_the_same_compare_as_a_wrong_secret(
    app: Flask, core: LifeEventRouter, partner: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from channels.web import api as api_module
    from router import reference

    body = (
        app.test_client()
        .post("/api/v1/submissions", json=sample("moving_house"), headers=partner)
        .get_json()
    )
    compared: list[str] = []
    real = reference.secret_matches

    def counting(secret: str, stored: str) -> bool:
        compared.append(stored)
        return real(secret, stored)

    monkeypatch.setattr(api_module.reference, "secret_matches", counting)
    browser = app.test_client()
    made_up = reference.display(reference.new_reference())
    for ref in (made_up, body["reference"]):
        answer = browser.get(
            f"/api/v1/cases/{ref}", headers={**partner, "X-Case-Secret": "not-the-secret"}
        )
        assert answer.status_code == 404
        conforms(answer)
    assert len(compared) == 2, "a miss compares once, as a wrong secret does"
    assert compared[0] == api_module._NO_CASE_SECRET_HASH


def test_row_14_wrong_case_secrets_are_rate_limited_per_client(
    app: Flask, redis: Redis, partner: dict[str, str]
) -> None:
    browser = app.test_client()
    body = browser.post(
        "/api/v1/submissions", json=sample("moving_house"), headers=partner
    ).get_json()
    url = f"/api/v1/cases/{body['reference']}"
    codes = [
        browser.get(url, headers={**partner, "X-Case-Secret": f"guess {i}"}).status_code
        for i in range(21)
    ]
    assert codes == [404] * 20 + [429]
    refused = browser.get(url, headers={**partner, "X-Case-Secret": "guess again"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    conforms(refused)
    # The right secret is never slowed, and another client is not held back.
    right = browser.get(url, headers={**partner, "X-Case-Secret": body["secret"]})
    assert right.status_code == 200
    other = bearer(api_key(redis, "other"))
    answer = browser.get(url, headers={**other, "X-Case-Secret": "guess"})
    assert answer.status_code == 404


# --- row 20: the secret leaves the address; the citizen can end this browser's access ------


def test_row_20_a_status_link_grants_then_redirects_to_a_clean_address(
    app: Flask, core: LifeEventRouter
) -> None:
    sent = submit_to_core(core, "death")
    browser = app.test_client()
    opened = browser.get(sent.status_link)
    assert opened.status_code == 302
    assert opened.location == f"/status/{sent.display}"
    assert sent.secret not in opened.location
    page = browser.get(opened.location)
    assert page.status_code == 200 and sent.secret not in page.get_data(as_text=True)
    # Welsh is kept across the redirect.
    welsh = browser.get(f"{sent.status_link}&lang=cy")
    assert welsh.location == f"/status/{sent.display}?lang=cy"


def test_row_20_sign_out_of_this_report_ends_this_browsers_access(
    app: Flask, core: LifeEventRouter
) -> None:
    from tests.support.pages import csrf_token, soup

    sent = submit_to_core(core, "death")
    browser = app.test_client()
    page = soup(browser.get(sent.status_link, follow_redirects=True))
    form = page.select_one(f'form[action="/status/{sent.display}/sign-out"]')
    assert form is not None and form["method"] == "post"
    assert "Sign out of this report" in form.get_text()
    # Without the CSRF token it is refused, and nothing changes.
    assert browser.post(f"/status/{sent.display}/sign-out").status_code == 400
    assert browser.get(f"/status/{sent.display}").status_code == 200

    signed_out = browser.post(
        f"/status/{sent.display}/sign-out", data={"csrf_token": csrf_token(page)}
    )
    assert signed_out.status_code == 302
    assert signed_out.location == f"/status?ref={sent.display}"
    find = soup(browser.get(signed_out.location)).get_text(" ", strip=True)
    assert "You have signed out of this report." in find
    assert browser.get(f"/status/{sent.display}").status_code == 302
    assert browser.get(f"/status/{sent.display}/deliveries").status_code == 404


def test_signing_out_of_one_report_keeps_the_others_and_needs_no_report_open(
    app: Flask, core: LifeEventRouter
) -> None:
    from tests.support.pages import csrf_token, soup

    first, second = submit_to_core(core, "death"), submit_to_core(core, "birth")
    browser = app.test_client()
    page = soup(browser.get(first.status_link, follow_redirects=True))
    browser.get(second.status_link, follow_redirects=True)
    token = {"csrf_token": csrf_token(page)}
    assert browser.post(f"/status/{first.display}/sign-out", data=token).status_code == 302
    assert browser.get(f"/status/{first.display}").status_code == 302
    assert browser.get(f"/status/{second.display}").status_code == 200
    # Signing out twice, or from a browser that never opened the report, changes nothing.
    assert browser.post(f"/status/{first.display}/sign-out", data=token).status_code == 302
    assert browser.get(f"/status/{second.display}").status_code == 200
    stranger = app.test_client()
    page = soup(stranger.get("/status"))
    signed_out = stranger.post(
        f"/status/{first.display}/sign-out", data={"csrf_token": csrf_token(page)}
    )
    assert signed_out.status_code == 302


# --- row 17: links are built on the configured address, never on the Host header ---------


def test_row_17_a_forged_host_header_never_gets_a_status_url_on_it(
    app: Flask, partner: dict[str, str]
) -> None:
    forged = app.test_client().post(
        "/api/v1/submissions",
        json=sample("moving_house"),
        headers={**partner, "Host": "evil.example"},
    )
    assert forged.status_code == 400
    assert "evil.example" not in forged.get_data(as_text=True)
    conforms(forged)
    page = app.test_client().get("/status", headers={"Host": "evil.example"})
    assert page.status_code == 400


def test_row_17_links_are_built_on_the_configured_public_address(
    app: Flask, partner: dict[str, str]
) -> None:
    app.config.update(
        PUBLIC_URL="https://tell-us-once.example", TRUSTED_HOSTS=["tell-us-once.example"]
    )
    api = app.test_client()
    body = api.post(
        "/api/v1/submissions",
        json=sample("moving_house"),
        headers={**partner, "Host": "tell-us-once.example"},
    ).get_json()
    assert body["status_url"] == (
        f"https://tell-us-once.example/status/{body['reference']}?s={body['secret']}"
    )
    refused = api.post(
        "/api/v1/submissions", json=sample("moving_house"), headers={**partner, "Host": "localhost"}
    )
    assert refused.status_code == 400


# --- row 18: no session until one is needed --------------------------------------------


def test_row_18_reading_pages_creates_no_session(
    app: Flask, core: LifeEventRouter, redis: Redis
) -> None:
    from router import keys
    from tests.support.pages import csrf_token, soup

    sent = submit_to_core(core, "death")
    browser = app.test_client()
    for url in ("/", "/status", f"/status?ref={sent.display}", "/?lang=cy", "/counter/sign-in"):
        for _ in range(3):
            assert browser.get(url).status_code == 200, url
    assert redis.keys(keys.WEB_SESSION_PREFIX + "*") == []
    assert browser.get_cookie("tuo_session") is None
    # The form read above still works: its CSRF token was kept without a session, and
    # the language chosen is remembered.
    page = soup(browser.get(f"/status?ref={sent.display}"))
    assert page.find("html")["lang"] == "cy"
    wrong = browser.post(
        f"/status?ref={sent.display}",
        data={
            "csrf_token": csrf_token(page),
            "reference": sent.display,
            "date_of_birth": ["1", "1", "1900"],
            "postcode": "LS1 4AP",
        },
    )
    assert wrong.status_code == 400  # a wrong answer, not a CSRF failure
    assert redis.keys(keys.WEB_SESSION_PREFIX + "*") == []
    # A grant needs a session: now there is one, and only one.
    found = find_case(browser, sent.display, INFORMANT_BORN)
    assert found.status_code == 302
    assert len(redis.keys(keys.WEB_SESSION_PREFIX + "*")) == 1
    assert browser.get(found.location).status_code == 200


def test_row_18_starting_a_journey_creates_a_session(app: Flask, redis: Redis) -> None:
    from router import keys

    browser = app.test_client()
    assert browser.get("/report/moving_house").status_code == 302
    assert len(redis.keys(keys.WEB_SESSION_PREFIX + "*")) == 1
