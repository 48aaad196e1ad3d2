"""The assisted channel: cases waiting at Post Office branches, and counter staff at work.

Cases are routed to the nearest branch that can do their counter tasks; clerks sign in,
find the case by its reference, record an identity check (the last 4 characters of the
document number only) and complete tasks, which releases deliveries to real workers.
Every counter page is behind the sign-in, a clerk works their own branch's cases (another
branch's only once they confirm the citizen is at their counter), and every action is
audited without personal data. Pages are read as a person sees them, with BeautifulSoup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from redis import Redis

from channels.counter import views as counter_views
from router import keys, reference
from router.assisted import audit, branches
from router.assisted.desk import tasks_needed
from router.assisted.staff import StaffStore
from router.cases import DeliveryState
from router.delivery.worker import Supervisor
from router.service import LifeEventRouter
from tests.support.counter import nearest_offering, queue_refs, sign_in
from tests.support.journeys import walk
from tests.support.pages import (
    csrf_token,
    errors_of,
    field_errors,
    heading,
    path_of,
    post_form,
    redirected_to,
    soup,
    text,
)
from tests.support.processes import router_cli, wait_settled
from tests.support.redis_dump import keys_holding, raw_values, snapshot
from tests.support.samples import sample, submit_to_core
from tests.support.sent import Sent

PASSWORD = "a long counter password"
HOME = "cardiff-queen-street"  # the clerks' branch: identity checks, photos, cash
OTHER = "cardiff-whitchurch"  # another Cardiff branch: identity checks and photos
# In CF11 the nearest branch (cardiff-canton) takes no photos; in CF14 the nearest
# (cardiff-whitchurch) pays no cash vouchers.
CF11 = "CF11 9AB"
CF14 = "CF14 2AB"
PHOTO = {"identity_check", "photo"}
CASH = {"identity_check", "cash_payments"}
SIGN_IN = "/counter/sign-in"
WRONG_SIGN_IN = "Enter a correct user name and password"
LAST_FOUR_MESSAGE = "Enter the last 4 characters of the document number, like 123A"


# --- fixtures -----------------------------------------------------------------------------


StaffClient = Callable[..., FlaskClient]


@pytest.fixture
def staff_client(app: Flask, redis: Redis) -> StaffClient:
    """A browser signed in as a new member of staff: ``staff_client("ann", HOME)``."""

    def make(username: str, branch: str = HOME, role: str = "clerk") -> FlaskClient:
        StaffStore(redis).add(username, PASSWORD, branch, role)
        browser = app.test_client()
        assert redirected_to(sign_in(browser, username, PASSWORD)) == "/counter"
        return browser

    return make


@dataclass
class Clock:
    """How far ahead of real time the counter's guard thinks it is."""

    offset: float = 0.0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Move time on for the counter views only (sessions, Redis and cookies keep real time)."""
    moved = Clock()
    real = time.time
    monkeypatch.setattr(counter_views, "time", SimpleNamespace(time=lambda: real() + moved.offset))
    return moved


# --- cases ----------------------------------------------------------------------------------


def photocard_change(core: LifeEventRouter, postcode: str = CF11) -> Sent:
    """A change of name with a photocard licence: DVLA needs an identity check and a photo."""
    return submit_to_core(core, "change_of_name", postcode=postcode, town="Cardiff")


def queues_holding(redis: Redis, ref: str) -> set[str]:
    """The branches whose queue holds ``ref``."""
    prefix = keys.branch_queue("")
    return {
        key.decode().removeprefix(prefix)
        for key in redis.scan_iter(keys.branch_queue("*"))
        if redis.zscore(key, ref) is not None
    }


def audit_rows(page: Any) -> list[tuple[str, str, str, str]]:
    """(who, what, reference, detail) of each row of the branch audit table."""
    rows = []
    for tr in page.select("table.govuk-table tbody tr"):
        cells = [text(td) for td in tr.select("td")]
        rows.append((cells[1], cells[2], cells[3], cells[4]))
    return rows


def record_identity(browser: FlaskClient, sent: Sent, last_four: str) -> Any:
    return post_form(
        browser,
        sent.page,
        {"document": "passport", "last_four": last_four},
        action=f"{sent.page}/identity",
    )


def complete_task(browser: FlaskClient, sent: Sent, task: str) -> Any:
    return post_form(browser, sent.page, {}, action=f"{sent.page}/tasks/{task}")


# --- 1. which branch a case waits at ------------------------------------------------------------


ROUTED = [
    pytest.param("change_of_name", {"postcode": CF11, "town": "Cardiff"}, False, PHOTO, id="photo"),
    pytest.param(
        "retiring",
        {
            "postcode": CF14,
            "town": "Cardiff",
            "has_bank_account": "no",
            "sort_code": None,
            "account_number": None,
        },
        False,
        CASH,
        id="cash-voucher",
    ),
    pytest.param("moving_house", {"postcode": CF11}, True, set(), id="help-asked-for"),
]


@pytest.mark.parametrize(("event_name", "changes", "help_requested", "services"), ROUTED)
def test_a_case_waits_at_the_nearest_branch_that_offers_what_its_tasks_need(
    core: LifeEventRouter,
    redis: Redis,
    event_name: str,
    changes: dict[str, Any],
    help_requested: bool,
    services: set[str],
) -> None:
    postcode = changes["postcode"]
    expected = nearest_offering(postcode, services)
    if services:
        # The data makes the services matter: the nearest branch overall cannot do it.
        assert expected != nearest_offering(postcode, set())
    before = datetime.now(UTC)

    sent = submit_to_core(core, event_name, help_requested=help_requested, **changes)

    case = core.case(sent.ref)
    needed = {branches.TASK_SERVICES[t] for t in tasks_needed(case.plan)}
    assert needed == services
    assert case.branch == expected
    assert branches.branch(expected).offers(services)
    assert case.at_counter and not case.flagged
    assert queues_holding(redis, sent.ref) == {expected}
    [waiting] = core.desk.branch_queue(expected)
    assert waiting.ref == sent.ref
    assert before.timestamp() - 1 <= waiting.since.timestamp() <= time.time() + 1
    created = datetime.fromisoformat(case.created_at)
    assert abs((waiting.since - created).total_seconds()) < 2


def test_a_case_with_nothing_for_a_counter_waits_at_no_branch(
    core: LifeEventRouter, redis: Redis
) -> None:
    sent = submit_to_core(core, "moving_house")
    case = core.case(sent.ref)
    assert tasks_needed(case.plan) == []
    assert case.branch == "" and not case.at_counter and not case.flagged
    assert queues_holding(redis, sent.ref) == set()


def test_a_case_waits_in_its_branch_queue_oldest_first(core: LifeEventRouter) -> None:
    first = photocard_change(core)
    second = photocard_change(core)
    waiting = core.desk.branch_queue(HOME)
    assert [w.ref for w in waiting] == [first.ref, second.ref]
    assert waiting[0].since <= waiting[1].since


# --- 2. the whole assisted path, with real workers ---------------------------------------------


@pytest.mark.slow
def test_a_photocard_name_change_is_finished_at_the_counter_then_told_to_dvla(
    app: Flask,
    core: LifeEventRouter,
    redis: Redis,
    workers: Supervisor,
    cli_env: dict[str, str],
) -> None:
    sent = photocard_change(core, postcode=CF11)
    case = core.case(sent.ref)
    branch = case.branch
    assert branch == nearest_offering(CF11, PHOTO) == HOME
    assert case.deliveries["dvla"].state == DeliveryState.ASSISTED
    licence = f"mock:dvla:licence:{case.answers['driving_licence_number']}"

    created = router_cli(
        "staff",
        "add",
        "ann.jones",
        "--branch",
        branch,
        env={**cli_env, "ROUTER_STAFF_PASSWORD": PASSWORD},
    )
    assert created.returncode == 0, created.stderr
    branch_name = branches.branch(branch).name
    assert created.stdout.strip() == f"Clerk ann.jones can sign in at {branch_name}."

    clerk = app.test_client()
    assert redirected_to(sign_in(clerk, "ann.jones", PASSWORD)) == "/counter"
    queue = soup(clerk.get("/counter"))
    assert heading(queue) == "Branch queue"
    assert sent.display in queue_refs(queue)

    typed = sent.display.lower().replace("-", " ")
    found = post_form(clerk, "/counter/find", {"reference": typed})
    assert redirected_to(found) == sent.page
    page = soup(clerk.get(sent.page))
    assert heading(page) == f"Report {sent.display}"

    assert redirected_to(record_identity(clerk, sent, "123A")) == sent.page
    case = core.case(sent.ref)
    assert case.identity["document"] == "passport" and case.identity["last_four"] == "123A"
    assert "identity_check" in case.tasks_done
    assert case.deliveries["dvla"].state == DeliveryState.ASSISTED  # the photo is still to do
    page = soup(clerk.get(sent.page))
    assert "Identity document seen: Passport ending 123A." in text(page.find("main"))
    assert not redis.exists(licence), "DVLA was told before the photo was taken"

    assert redirected_to(complete_task(clerk, sent, "photo")) == sent.page
    deadline = time.monotonic() + 30
    while core.case(sent.ref).deliveries["dvla"].state != DeliveryState.DELIVERED:
        assert time.monotonic() < deadline, core.case(sent.ref).deliveries["dvla"]
        time.sleep(0.1)
    raw: dict[bytes, bytes] = redis.hgetall(licence)  # type: ignore[assignment]
    record = {k.decode(): v.decode() for k, v in raw.items()}
    assert record["holder"] == case.answers["full_name"]
    assert record["status"] == "new photocard ordered"
    assert record["last_delivery"] == f"{sent.ref}-dvla"
    receipt = core.case(sent.ref).deliveries["dvla"].receipt
    assert receipt is not None and receipt.reference.startswith("DVLA-")
    wait_settled(redis, sent.ref)

    citizen = app.test_client()
    status = citizen.get(f"/status/{sent.display}?s={sent.secret}")
    assert status.status_code == 200
    page = soup(status)
    assert text(page.select_one("#status-dvla")) == "Told"
    at_post_office = next(h for h in page.select("h3") if text(h) == "At the Post Office")
    listed = at_post_office.find_next("ul")
    assert listed is not None
    visits = [text(li) for li in listed.select("li")]
    assert visits and all(branch_name in v for v in visits), visits
    assert any("your identity was checked" in v for v in visits)

    assert core.desk.branch_queue(branch) == []
    assert queues_holding(redis, sent.ref) == set()
    assert sent.display not in queue_refs(soup(clerk.get("/counter")))


# --- 3. the identity check keeps only the last 4 characters -------------------------------------


@pytest.mark.parametrize(
    "typed",
    ["925665416", "MORGA753116SM9IJ", "PA 9256 6541 6", "12345"],
    ids=["passport", "licence", "with-spaces", "five-characters"],
)
def test_a_whole_document_number_is_refused_and_never_stored(
    core: LifeEventRouter, redis: Redis, staff_client: StaffClient, typed: str
) -> None:
    sent = photocard_change(core)
    ann = staff_client("ann", HOME)

    refused = record_identity(ann, sent, typed)

    assert refused.status_code == 400
    page = soup(refused)
    assert errors_of(page) == [LAST_FOUR_MESSAGE]
    assert LAST_FOUR_MESSAGE in field_errors(page)
    case = core.case(sent.ref)
    assert case.identity == {} and "identity_check" not in case.tasks_done
    whole = "".join(typed.split()).upper()
    assert keys_holding(redis, whole) == set()

    last_four = whole[-4:]
    assert redirected_to(record_identity(ann, sent, f" {last_four.lower()} ")) == sent.page
    identity = core.case(sent.ref).identity
    assert identity["last_four"] == last_four
    assert set(identity) == {"document", "last_four", "at", "by", "branch"}
    assert keys_holding(redis, whole) == set()
    # Nothing beyond the last 4 characters, in the case, its history or either audit stream.
    kept = {
        keys.case(sent.ref),
        keys.history(sent.ref),
        keys.case_audit(sent.ref),
        keys.branch_audit(HOME),
    }
    secret_hash = redis.hget(keys.case(sent.ref), "secret_hash")  # random hex: skip it
    values = [v for name, v in raw_values(redis) if name in kept and v != secret_hash]
    assert values
    tail = whole[-5:].lower().encode()
    assert not [v for v in values if tail in v.lower()]


# --- 4. access control on every counter route ---------------------------------------------------


KNOWN_ENDPOINTS = {
    "counter.sign_in",
    "counter.sign_out",
    "counter.branch_queue",
    "counter.find",
    "counter.serve",
    "counter.case",
    "counter.identity",
    "counter.complete",
    "counter.report",
    "counter.audit_log",
    "counter_journey.begin",
    "counter_journey.question",
    "counter_journey.tell",
    "counter_journey.check",
    "counter_journey.done",
}
# Everything a form on a counter page could carry, to try each route with.
EVERYTHING = {
    "username": "ann",
    "password": PASSWORD,
    "present": "y",
    "document": "passport",
    "last_four": "123A",
    "consent": "y",
    "departments": "dwp",
    "full_name": "Mallory Example",
}


@dataclass(frozen=True)
class Route:
    endpoint: str
    url: str
    methods: frozenset[str]
    arguments: frozenset[str]


def counter_routes(app: Flask, sent: Sent) -> list[Route]:
    """Every route of the counter and of the journey under /counter/report, from the
    app's URL map, with its arguments filled in."""
    arguments = {
        "ref": sent.display,
        "event_name": "change_of_name",
        "field": "full_name",
        "task": "photo",
    }
    routes = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint.partition(".")[0] not in ("counter", "counter_journey"):
                continue
            missing = set(rule.arguments) - set(arguments)
            assert not missing, f"{rule.endpoint}: say what to fill {sorted(missing)} with"
            values: dict[str, Any] = {a: arguments[a] for a in rule.arguments}
            url = url_for(rule.endpoint, **values)
            methods = frozenset((rule.methods or set()) & {"GET", "POST"})
            routes.append(Route(rule.endpoint, url, methods, frozenset(rule.arguments)))
    assert {r.endpoint for r in routes} >= KNOWN_ENDPOINTS
    return routes


def test_every_counter_route_sends_strangers_to_sign_in_and_changes_nothing(
    app: Flask, client: FlaskClient, core: LifeEventRouter, redis: Redis
) -> None:
    sent = photocard_change(core)
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    token = csrf_token(soup(client.get(SIGN_IN)))
    before = snapshot(redis)
    problems = []
    for route in counter_routes(app, sent):
        if route.endpoint == "counter.sign_in":
            continue
        for method in sorted(route.methods):
            if method == "GET":
                response = client.get(route.url)
            else:
                response = client.post(route.url, data={"csrf_token": token, **EVERYTHING})
            location = urlsplit(response.location or "")
            if response.status_code != 302 or location.path != SIGN_IN:
                problems.append(f"{method} {route.url}: {response.status_code} {location.path}")
            elif method == "GET" and parse_qs(location.query).get("next") != [route.url]:
                problems.append(f"{method} {route.url}: next is {location.query!r}")
            if snapshot(redis) != before:
                problems.append(f"{method} {route.url} changed Redis")
                before = snapshot(redis)
    assert not problems, "\n".join(problems)
    assert core.case(sent.ref).identity == {} and core.case(sent.ref).tasks_done == {}


def test_strangers_are_sent_to_sign_in_even_at_unknown_counter_addresses_and_methods(
    app: Flask, client: FlaskClient, core: LifeEventRouter
) -> None:
    # The guard: "no such counter page: a 404, but not for strangers".
    sent = photocard_change(core)
    token = csrf_token(soup(client.get(SIGN_IN)))
    tries = [("GET", "/counter/no-such-page"), ("POST", f"{sent.page}/no-such-action")]
    for route in counter_routes(app, sent):
        if route.endpoint != "counter.sign_in":
            tries += [(m, route.url) for m in ("GET", "POST") if m not in route.methods]
    problems = []
    for method, url in tries:
        response = client.open(url, method=method, data={"csrf_token": token})
        if response.status_code != 302 or urlsplit(response.location).path != SIGN_IN:
            problems.append(f"{method} {url}: {response.status_code}")
    assert not problems, "\n".join(problems)


def test_a_clerk_opens_another_branchs_report_only_once_the_citizen_is_at_their_counter(
    app: Flask, core: LifeEventRouter, redis: Redis, staff_client: StaffClient
) -> None:
    elsewhere = photocard_change(core, postcode=CF14)
    assert core.case(elsewhere.ref).branch == OTHER
    ann = staff_client("ann", HOME)
    serve = f"{elsewhere.page}/serve"
    token = csrf_token(soup(ann.get("/counter")))

    def held() -> dict[str, Any]:
        held_keys = (keys.case(elsewhere.ref), keys.history(elsewhere.ref))
        return {k: redis.dump(k) for k in held_keys} | {
            "audit": audit.for_case(redis, elsewhere.ref)
        }

    before = held()
    problems = []
    for route in counter_routes(app, elsewhere):
        if "ref" not in route.arguments or route.endpoint == "counter.serve":
            continue
        for method in sorted(route.methods):
            data = {"csrf_token": token, **EVERYTHING} if method == "POST" else None
            response = ann.open(route.url, method=method, data=data)
            if response.status_code != 302 or urlsplit(response.location).path != serve:
                problems.append(f"{method} {route.url}: {response.status_code}")
    assert not problems, "\n".join(problems)
    assert held() == before

    page = soup(ann.get(serve))
    assert heading(page) == "This report is for another branch"
    assert f"It is waiting at {branches.branch(OTHER).name}." in text(page.find("main"))
    unticked = post_form(ann, serve, {})
    assert unticked.status_code == 400
    message = "Confirm the citizen is at your counter, or go back to your queue"
    assert errors_of(soup(unticked)) == [message]
    assert redirected_to(ann.get(elsewhere.page)) == serve
    assert held() == before

    assert redirected_to(post_form(ann, serve, {"present": "y"})) == elsewhere.page
    assert heading(soup(ann.get(elsewhere.page))) == f"Report {elsewhere.display}"
    assert redirected_to(record_identity(ann, elsewhere, "123A")) == elsewhere.page
    assert redirected_to(complete_task(ann, elsewhere, "photo")) == elsewhere.page
    case = core.case(elsewhere.ref)
    assert case.identity["last_four"] == "123A" and set(case.tasks_done) == PHOTO

    served = [e for e in audit.for_branch(redis, HOME) if e.action == "served_from_another_branch"]
    assert [(e.staff, e.branch, e.case, e.detail) for e in served] == [
        ("ann", HOME, elsewhere.ref, OTHER)
    ]
    assert "served_from_another_branch" in [e.action for e in audit.for_case(redis, elsewhere.ref)]
    # Serving belongs to that clerk's session: a colleague must confirm for themselves.
    bob = staff_client("bob", HOME)
    assert redirected_to(bob.get(elsewhere.page)) == serve


def test_a_clerk_sees_only_their_own_branchs_queue(
    core: LifeEventRouter, staff_client: StaffClient
) -> None:
    here = photocard_change(core, postcode=CF11)
    there = photocard_change(core, postcode=CF14)
    assert (core.case(here.ref).branch, core.case(there.ref).branch) == (HOME, OTHER)

    ann_page = soup(staff_client("ann", HOME).get("/counter"))
    assert queue_refs(ann_page) == [here.display]
    assert there.display not in text(ann_page)
    olly_page = soup(staff_client("olly", OTHER).get("/counter"))
    assert queue_refs(olly_page) == [there.display]
    assert here.display not in text(olly_page)


def test_only_a_manager_reads_the_branch_audit_and_only_for_their_branch(
    core: LifeEventRouter, redis: Redis, staff_client: StaffClient
) -> None:
    sent = photocard_change(core)
    ann = staff_client("ann", HOME)
    staff_client("olly", OTHER)
    assert ann.get(sent.page).status_code == 200

    refused = ann.get("/counter/audit")
    assert refused.status_code == 403
    page = soup(refused)
    assert heading(page) == "You cannot see this page"
    assert page.select("table") == [] and sent.display not in text(page)
    assert "Branch audit" not in [text(a) for a in soup(ann.get("/counter")).select("nav a")]
    assert "viewed_audit" not in [e.action for e in audit.for_branch(redis, HOME)]

    meg = staff_client("meg", HOME, "manager")
    assert "Branch audit" in [text(a) for a in soup(meg.get("/counter")).select("nav a")]
    shown = meg.get("/counter/audit")
    assert shown.status_code == 200
    rows = audit_rows(soup(shown))
    assert ("ann", "Viewed a report", sent.display, "") in rows
    assert ("ann", "Signed in", "", "") in rows
    assert ("meg", "Signed in", "", "") in rows
    assert not [row for row in rows if row[0] == "olly"]
    assert audit.for_branch(redis, HOME)[0].action == "viewed_audit"


def send_on_behalf(browser: FlaskClient, event_name: str) -> str:
    """Go through the journey at the counter with the sample's answers; the reference."""
    data = sample(event_name)
    prefix = f"/counter/report/{event_name}"
    walk(browser, event_name, data["answers"], prefix="/counter/report")
    post_form(browser, f"{prefix}/tell", {"departments": data["consent"]})
    sent = post_form(browser, f"{prefix}/check", {"consent": "y"})
    assert redirected_to(sent) == f"{prefix}/done"
    panel = soup(browser.get(f"{prefix}/done")).select_one(".govuk-panel strong")
    ref = reference.normalise(text(panel))
    assert ref is not None
    return ref


# --- 5. an audit entry for every action ------------------------------------------------------


PERSONAL_FIELDS = (
    "full_name",
    "nino",
    "date_of_birth",
    "postcode",
    "address_line_1",
    "driving_licence_number",
)


def personal_data(core: LifeEventRouter, *refs: str) -> set[str]:
    """Names, NI numbers, dates of birth, postcodes... the cases hold."""
    found = set()
    for ref in refs:
        for name, value in core.case(ref).answers.items():
            if name.endswith(PERSONAL_FIELDS) and value:
                found |= {str(value), str(value).replace(" ", "")}
    return found


def test_every_counter_action_is_audited_for_the_branch_and_the_case_without_personal_data(
    app: Flask, core: LifeEventRouter, redis: Redis, staff_client: StaffClient
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    assert sign_in(app.test_client(), "ann", "not the password").status_code == 400
    assert sign_in(app.test_client(), "nobody", "not the password").status_code == 400
    ann = staff_client("ann", HOME)
    here = photocard_change(core, postcode=CF11)
    there = photocard_change(core, postcode=CF14)

    assert ann.get(here.page).status_code == 200
    assert redirected_to(record_identity(ann, here, "123A")) == here.page
    assert redirected_to(complete_task(ann, here, "photo")) == here.page
    assert redirected_to(post_form(ann, f"{there.page}/serve", {"present": "y"})) == there.page
    behalf = send_on_behalf(ann, "moving_house")
    meg = staff_client("meg", HOME, "manager")
    assert meg.get("/counter/audit").status_code == 200

    expected = [
        ("sign_in_refused", "ann", "", ""),
        ("signed_in", "ann", "", ""),
        ("viewed_case", "ann", here.ref, ""),
        ("identity_checked", "ann", here.ref, "passport"),
        ("task_completed", "ann", here.ref, "photo"),
        ("served_from_another_branch", "ann", there.ref, OTHER),
        ("submitted_on_behalf", "ann", behalf, "moving_house"),
        ("signed_in", "meg", "", ""),
        ("viewed_audit", "meg", "", ""),
    ]
    # Moving a case to another branch is the citizen's doing, not a member of staff's.
    assert {e[0] for e in expected} == set(audit.ACTIONS) - {"branch_changed"}
    branch_entries = audit.for_branch(redis, HOME)
    recorded = {(e.action, e.staff, e.case, e.detail) for e in branch_entries}
    assert [e for e in expected if e not in recorded] == []
    assert {e.branch for e in branch_entries} == {HOME}
    assert all(e.at for e in branch_entries)
    for action, staff, ref, detail in expected:
        if ref:
            in_case = {(e.action, e.staff, e.branch, e.detail) for e in audit.for_case(redis, ref)}
            assert (action, staff, HOME, detail) in in_case, (action, ref)
    # An unknown user name leaves no trace to attribute.
    audit_prefixes = (keys.branch_audit(""), keys.case_audit(""))
    assert not [k for k in keys_holding(redis, "nobody") if k.startswith(audit_prefixes)]

    audit_keys = {k.decode() for prefix in audit_prefixes for k in redis.scan_iter(prefix + "*")}
    assert audit_keys >= {keys.branch_audit(HOME), keys.case_audit(here.ref)}
    for value in personal_data(core, here.ref, there.ref, behalf):
        assert keys_holding(redis, value) & audit_keys == set(), value


# --- 6. signing in and out -------------------------------------------------------------------


def test_a_wrong_password_and_an_unknown_user_name_get_the_same_answer(
    app: Flask, redis: Redis
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    wrong_password = sign_in(app.test_client(), "ann", "not the password")
    unknown_name = sign_in(app.test_client(), "nobody", PASSWORD)
    for response in (wrong_password, unknown_name):
        assert response.status_code == 400
        page = soup(response)
        assert heading(page) == "Sign in to the counter service"
        assert errors_of(page) == [WRONG_SIGN_IN]
        assert WRONG_SIGN_IN in field_errors(page)
    assert text(soup(wrong_password).find("main")) == text(soup(unknown_name).find("main"))


def test_after_five_failures_even_the_right_password_is_refused_for_a_while(
    app: Flask, redis: Redis
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    StaffStore(redis).add("bob", PASSWORD, HOME, "clerk")
    browser = app.test_client()
    for _ in range(5):
        assert sign_in(browser, "ann", "not the password").status_code == 400

    refused = sign_in(browser, "ANN ", PASSWORD)

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert redirected_to(browser.get("/counter")) == SIGN_IN
    # Only that user name is held back.
    assert redirected_to(sign_in(app.test_client(), "bob", PASSWORD)) == "/counter"


def test_signing_in_starts_a_new_session_so_a_planted_one_is_worthless(
    app: Flask, client: FlaskClient, redis: Redis
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    client.get(SIGN_IN)
    planted = client.get_cookie("tuo_session")
    assert planted is not None

    assert redirected_to(sign_in(client, "ann", PASSWORD)) == "/counter"

    issued = client.get_cookie("tuo_session")
    assert issued is not None and issued.value != planted.value
    assert client.get("/counter").status_code == 200
    attacker = app.test_client()
    attacker.set_cookie("tuo_session", planted.value)
    assert redirected_to(attacker.get("/counter")) == SIGN_IN


def test_signing_out_ends_access(app: Flask, staff_client: StaffClient) -> None:
    ann = staff_client("ann", HOME)
    cookie = ann.get_cookie("tuo_session")
    assert cookie is not None
    assert ann.get("/counter").status_code == 200

    signed_out = post_form(ann, "/counter", {}, action="/counter/sign-out")

    assert redirected_to(signed_out) == SIGN_IN
    assert "You have signed out." in text(soup(ann.get(SIGN_IN)))
    assert redirected_to(ann.get("/counter")) == SIGN_IN
    copy = app.test_client()
    copy.set_cookie("tuo_session", cookie.value)
    assert redirected_to(copy.get("/counter")) == SIGN_IN


def test_a_session_left_idle_ends_and_says_why(staff_client: StaffClient, clock: Clock) -> None:
    ann = staff_client("ann", HOME)
    clock.offset = counter_views.IDLE_SECONDS - 60
    assert ann.get("/counter").status_code == 200  # in use: the idle time starts again

    clock.offset += counter_views.IDLE_SECONDS + 1
    expired = ann.get("/counter/find")

    assert redirected_to(expired) == SIGN_IN
    assert parse_qs(urlsplit(expired.location).query)["next"] == ["/counter/find"]
    page = text(soup(ann.get(SIGN_IN)))
    assert "You were signed out because you had not used the service for a while." in page
    clock.offset = 0
    assert redirected_to(ann.get("/counter")) == SIGN_IN


def test_a_session_in_constant_use_still_ends_after_the_longest_time(
    staff_client: StaffClient, clock: Clock
) -> None:
    ann = staff_client("ann", HOME)
    step = counter_views.IDLE_SECONDS - 60
    while clock.offset + step <= counter_views.LONGEST_SECONDS:
        clock.offset += step
        assert ann.get("/counter").status_code == 200, clock.offset
    clock.offset = counter_views.LONGEST_SECONDS + 1
    assert redirected_to(ann.get("/counter")) == SIGN_IN


@pytest.mark.parametrize(
    ("next_page", "lands_on"),
    [
        ("/counter/find", "/counter/find"),
        ("https://evil.example/counter", "/counter"),
        ("//evil.example/counter", "/counter"),
        ("/status", "/counter"),
        ("javascript:alert(1)", "/counter"),
    ],
)
def test_after_sign_in_next_only_leads_inside_the_counter(
    app: Flask, redis: Redis, next_page: str, lands_on: str
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    browser = app.test_client()
    signed_in = sign_in(browser, "ann", PASSWORD, query=f"?next={quote(next_page, safe='')}")
    assert signed_in.status_code == 302
    location = urlsplit(signed_in.location)
    assert location.netloc in ("", "localhost")
    assert path_of(signed_in.location) == lands_on


def test_a_stranger_signing_in_lands_on_the_page_they_asked_for(
    client: FlaskClient, redis: Redis
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    asked = client.get("/counter/report")
    assert redirected_to(asked) == SIGN_IN
    landed = sign_in(client, "ann", PASSWORD, query=f"?{urlsplit(asked.location).query}")
    assert path_of(landed.location) == "/counter/report"
    assert heading(soup(client.get("/counter/report"))) == "Start a report on a citizen’s behalf"


# --- 7. reports on a citizen's behalf -----------------------------------------------------------


@pytest.mark.parametrize("event_name", ["moving_house", "change_of_name"])
def test_a_clerk_sends_a_report_on_a_citizens_behalf_only_once_they_agree(
    core: LifeEventRouter, redis: Redis, staff_client: StaffClient, event_name: str
) -> None:
    ann = staff_client("ann", HOME)
    data = sample(event_name)
    prefix = f"/counter/report/{event_name}"
    assert walk(ann, event_name, data["answers"], prefix="/counter/report").end == f"{prefix}/tell"
    chosen = post_form(ann, f"{prefix}/tell", {"departments": data["consent"]})
    assert redirected_to(chosen) == f"{prefix}/check"

    unticked = post_form(ann, f"{prefix}/check", {})

    assert unticked.status_code == 400
    message = "Confirm the citizen agrees to us telling these organisations"
    assert errors_of(soup(unticked)) == [message]
    assert message in field_errors(soup(unticked))
    assert list(redis.scan_iter(keys.case("*"))) == []

    sent = post_form(ann, f"{prefix}/check", {"consent": "y"})

    assert redirected_to(sent) == f"{prefix}/done"
    done = soup(ann.get(f"{prefix}/done"))
    panel = done.select_one(".govuk-panel")
    assert panel is not None and "Report sent" in text(panel)
    ref = reference.normalise(text(panel.select_one("strong")))
    assert ref is not None
    links = [str(a["href"]) for a in done.select("main a")]
    assert f"/counter/cases/{reference.display(ref)}" in links
    assert not [link for link in links if "/status/" in link], "the status secret is the citizen's"

    case = core.case(ref)
    assert case.channel == "counter" and case.submitted_by == "ann"
    tasks = tasks_needed(case.plan)
    if event_name == "change_of_name":
        assert tasks == ["identity_check", "photo"]
        # The counter that took the report, not the one nearest the citizen's postcode.
        assert nearest_offering(case.answers["postcode"], PHOTO) != HOME
        assert case.branch == HOME and queues_holding(redis, ref) == {HOME}
    else:
        assert tasks == []
        assert case.branch == "" and queues_holding(redis, ref) == set()
    entries = [e for e in audit.for_branch(redis, HOME) if e.action == "submitted_on_behalf"]
    assert [(e.staff, e.case, e.detail) for e in entries] == [("ann", ref, event_name)]
    assert [e.action for e in audit.for_case(redis, ref)] == ["submitted_on_behalf"]


# --- 8. staff accounts from the command line -----------------------------------------------------


BAD_STAFF = [
    pytest.param(
        ["ann", "--branch", HOME, "--password", "too short"],
        "password: Password must be 12 characters or more",
        id="short-password",
    ),
    pytest.param(
        ["ann", "--branch", "atlantis", "--password", PASSWORD],
        "branch: Enter the id of a branch in the branch list",
        id="unknown-branch",
    ),
    pytest.param(
        ["ann", "--branch", HOME, "--role", "boss", "--password", PASSWORD],
        "Invalid value for '--role'",
        id="bad-role",
    ),
    pytest.param(
        ["Ann Jones!", "--branch", HOME, "--password", PASSWORD],
        "username: User name must be 3 to 40 characters",
        id="bad-user-name",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_STAFF)
def test_staff_add_refuses_bad_input_with_a_message_and_exit_code_2(
    cli_env: dict[str, str], redis: Redis, args: list[str], message: str
) -> None:
    result = router_cli("staff", "add", *args, env=cli_env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert list(redis.scan_iter(keys.staff("*"))) == []


def test_staff_passwords_are_stored_only_as_salted_scrypt_hashes(
    cli_env: dict[str, str], redis: Redis
) -> None:
    env = {**cli_env, "ROUTER_STAFF_PASSWORD": PASSWORD}
    for username in ("meg", "bob"):
        result = router_cli(
            "staff", "add", username, "--branch", HOME, "--role", "manager", env=env
        )
        assert result.returncode == 0, result.stderr
        assert PASSWORD not in result.stdout + result.stderr
    assert result.stdout.strip() == f"Manager bob can sign in at {branches.branch(HOME).name}."

    hashes = [redis.hget(keys.staff(u), "password_hash") for u in ("meg", "bob")]
    assert all(isinstance(h, bytes) and h.startswith(b"scrypt:") for h in hashes), hashes
    assert hashes[0] != hashes[1]  # salted
    assert keys_holding(redis, PASSWORD) == set()
    assert StaffStore(redis).authenticate("meg", PASSWORD) is not None
    assert StaffStore(redis).authenticate("meg", PASSWORD + "x") is None


# --- 9. the citizen chooses another branch -----------------------------------------------------


def grant_status(app: Flask, sent: Sent) -> FlaskClient:
    """The citizen's browser, after following their status link."""
    citizen = app.test_client()
    assert citizen.get(f"/status/{sent.display}?s={sent.secret}").status_code == 200
    return citizen


def test_the_citizen_can_move_their_report_to_another_post_office_that_can_do_it(
    app: Flask, core: LifeEventRouter, redis: Redis
) -> None:
    sent = photocard_change(core, postcode=CF11)
    choose = f"/status/{sent.display}/branch"
    assert app.test_client().get(choose).status_code == 404  # the secret link first
    citizen = grant_status(app, sent)
    status = soup(citizen.get(f"/status/{sent.display}"))
    assert choose in [a["href"] for a in status.select("a")]

    page = soup(citizen.get(choose))
    offered = [str(radio["value"]) for radio in page.select("input[name=branch]")]
    assert offered and offered[0] == HOME == nearest_offering(CF11, PHOTO)
    assert all(branches.branch(b).offers(PHOTO) for b in offered)
    assert "cardiff-canton" not in offered  # the nearest, but it takes no photos
    checked = page.select_one("input[name=branch][checked]")
    assert checked is not None and checked["value"] == HOME
    new = offered[1]

    moved = post_form(citizen, choose, {"branch": new, "postcode": CF11})

    assert moved.status_code == 302
    assert urlsplit(moved.location).path == f"/status/{sent.display}"
    assert urlsplit(moved.location).fragment == "post-office"
    assert core.case(sent.ref).branch == new
    assert queues_holding(redis, sent.ref) == {new}
    assert [w.ref for w in core.desk.branch_queue(new)] == [sent.ref]
    assert core.desk.branch_queue(HOME) == []
    visit = soup(citizen.get(f"/status/{sent.display}")).select_one(".govuk-inset-text")
    assert branches.branch(new).name in text(visit)


def test_a_post_office_that_cannot_do_the_tasks_cannot_be_chosen(
    app: Flask, core: LifeEventRouter, redis: Redis
) -> None:
    sent = photocard_change(core, postcode=CF11)
    citizen = grant_status(app, sent)
    choose = f"/status/{sent.display}/branch"

    refused = post_form(citizen, choose, {"branch": "cardiff-canton", "postcode": CF11})

    assert refused.status_code == 400
    assert errors_of(soup(refused))
    assert core.case(sent.ref).branch == HOME
    assert queues_holding(redis, sent.ref) == {HOME}
