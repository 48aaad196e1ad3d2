"""Who may do what at the counter: every counter page is behind the sign-in, a clerk
works their own branch's cases (another branch's only once they confirm the citizen is
at their counter), only a manager reads the branch audit, and every action is audited
without personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask, url_for
from flask.testing import FlaskClient
from redis import Redis

from router import keys, reference
from router.assisted import audit, branches
from router.assisted.staff import StaffStore
from router.service import LifeEventRouter
from tests.support.counter import (
    CF11,
    CF14,
    HOME,
    OTHER,
    PASSWORD,
    PHOTO,
    SIGN_IN,
    StaffClient,
    citizen_here,
    complete_task,
    photocard_change,
    queue_refs,
    record_identity,
    sign_in,
)
from tests.support.journeys import walk
from tests.support.pages import csrf_token, errors_of, heading, post_form, redirected_to, soup, text
from tests.support.redis_dump import keys_holding, snapshot
from tests.support.samples import sample
from tests.support.sent import Sent


def audit_rows(page: Any) -> list[tuple[str, str, str, str]]:
    """(who, what, reference, detail) of each row of the branch audit table."""
    rows = []
    for tr in page.select("table.govuk-table tbody tr"):
        cells = [text(td) for td in tr.select("td")]
        rows.append((cells[1], cells[2], cells[3], cells[4]))
    return rows


# --- 1. access control on every counter route ---------------------------------------------------


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
    assert errors_of(soup(unticked)) == [message, "Enter the date of birth the citizen gives"]
    assert redirected_to(ann.get(elsewhere.page)) == serve
    assert held() == before

    assert redirected_to(post_form(ann, serve, citizen_here(core, elsewhere))) == elsewhere.page
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


# --- 2. an audit entry for every action ------------------------------------------------------


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
    wrong = post_form(ann, f"{there.page}/serve", citizen_here(core, there, born="1950-01-01"))
    assert wrong.status_code == 400
    opened = post_form(ann, f"{there.page}/serve", citizen_here(core, there))
    assert redirected_to(opened) == there.page
    behalf = send_on_behalf(ann, "moving_house")
    meg = staff_client("meg", HOME, "manager")
    assert meg.get("/counter/audit").status_code == 200

    expected = [
        ("sign_in_refused", "ann", "", ""),
        ("signed_in", "ann", "", ""),
        ("viewed_case", "ann", here.ref, ""),
        ("identity_checked", "ann", here.ref, "passport"),
        ("task_completed", "ann", here.ref, "photo"),
        ("serve_refused", "ann", there.ref, OTHER),
        ("served_from_another_branch", "ann", there.ref, OTHER),
        ("submitted_on_behalf", "ann", behalf, "moving_house"),
        ("signed_in", "meg", "", ""),
        ("viewed_audit", "meg", "", ""),
    ]
    # Moving a case to another branch is the citizen's doing, not a member of staff's;
    # sign-in locks and unlocks are audited in tests/counter/test_hardening.py (row 3).
    others = {"branch_changed", "sign_in_locked", "sign_in_unlocked"}
    assert {e[0] for e in expected} == set(audit.COUNTER_ACTIONS) - others
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
