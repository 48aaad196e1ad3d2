"""Cases at the Post Office counter: which branch a case waits at, the whole assisted
path with real workers, the identity check (the last 4 characters of the document
number only), reports a clerk sends on a citizen's behalf, and the citizen choosing
another branch. Pages are read as a person sees them, with BeautifulSoup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from router import keys, reference
from router.assisted import audit, branches
from router.assisted.desk import IDENTITY_FIRST, choose_branch, tasks_needed
from router.assisted.staff import Staff
from router.cases import DeliveryState
from router.delivery.worker import Supervisor
from router.exceptions import ValidationFailed
from router.service import LifeEventRouter
from tests.support.counter import (
    CASH,
    CF11,
    CF14,
    HOME,
    OTHER,
    PASSWORD,
    PHOTO,
    StaffClient,
    complete_task,
    nearest_offering,
    photocard_change,
    queue_refs,
    record_identity,
    sign_in,
)
from tests.support.journeys import walk
from tests.support.pages import (
    errors_of,
    field_errors,
    heading,
    post_form,
    redirected_to,
    soup,
    text,
)
from tests.support.processes import router_cli, wait_settled
from tests.support.redis_dump import keys_holding, raw_values
from tests.support.samples import sample, submit_to_core
from tests.support.sent import Sent

LAST_FOUR_MESSAGE = "Enter the last 4 characters of the document number, like 123A"


def queues_holding(redis: Redis, ref: str) -> set[str]:
    """The branches whose queue holds ``ref``."""
    prefix = keys.branch_queue("")
    return {
        key.decode().removeprefix(prefix)
        for key in redis.scan_iter(keys.branch_queue("*"))
        if redis.zscore(key, ref) is not None
    }


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
    assert case.at_counter
    # Help asked for flags the case for caseworkers too (tests/backoffice/test_casework.py).
    assert case.flagged == ("the citizen asked for help" if help_requested else "")
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
    sent = [photocard_change(core) for _ in range(3)]
    waiting = core.desk.branch_queue(HOME)
    assert [w.ref for w in waiting] == [s.ref for s in sent]
    assert waiting[0].since <= waiting[1].since <= waiting[2].since


PHOTO_TASKS = ["identity_check", "photo"]


@pytest.mark.parametrize(
    ("postcode", "welsh", "branch"),
    [
        # Whitchurch is 0.8 km away and has no Welsh speakers; Queen Street has, 4.7 km.
        pytest.param(CF14, False, OTHER, id="nearest"),
        pytest.param(CF14, True, HOME, id="welsh-speaking-not-much-further"),
        # In Newport the nearest Welsh-speaking branch (Queen Street) is 16.7 km away
        # against 0.3 km: more than 10 km further, so the nearest it is.
        pytest.param("NP20 1LP", True, "newport-commercial-street", id="welsh-too-far"),
        pytest.param("NP20 1LP", False, "newport-commercial-street", id="newport"),
        pytest.param("ZZ99 9ZZ", True, "", id="nowhere"),
    ],
)
def test_a_welsh_report_waits_where_staff_speak_welsh_when_that_is_not_much_further(
    postcode: str, welsh: bool, branch: str
) -> None:
    assert choose_branch({"postcode": postcode}, PHOTO_TASKS, welsh=welsh) == branch


def test_the_counter_says_what_is_wrong_with_each_kind_of_mistyped_reference(
    core: LifeEventRouter, staff_client: StaffClient
) -> None:
    # A clerk reading a reference back to the citizen needs to know which kind of
    # mistake to look for: too short or long, a character the references never use,
    # or a typo the check character caught.
    sent = photocard_change(core)
    clerk = staff_client("ann", HOME)
    ref = sent.ref
    typo = ref[:3] + next(c for c in reference.ALPHABET if c != ref[3]) + ref[4:]
    unknown = next(r for r in iter(reference.new_reference, None) if not core.store.exists(r))
    expected = {
        "": "Enter the reference number",
        reference.display(ref)[:9]: "A reference number has 9 characters, like ACDE-FGHJ-K",
        ref[:5]: "A reference number has 9 characters, like ACDE-FGHJ-K",
        ref + "A": "A reference number has 9 characters, like ACDE-FGHJ-K",
        ref[:8] + "0": "A reference number has only the letters and numbers shown on the "
        "confirmation: check each character with the citizen",
        reference.display(typo): "That reference number has a mistake in it: "
        "check each character with the citizen",
        reference.display(unknown): "There is no report with that reference number",
    }
    for typed, message in expected.items():
        found = post_form(clerk, "/counter/find", {"reference": typed})
        assert found.status_code == 400, typed
        assert errors_of(soup(found)) == [message], typed
        assert field_errors(soup(found)) == [message], typed
    found = post_form(clerk, "/counter/find", {"reference": reference.display(ref).lower()})
    assert redirected_to(found) == sent.page


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
    status = citizen.get(f"/status/{sent.display}?s={sent.secret}", follow_redirects=True)
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


# --- 4. reports on a citizen's behalf -----------------------------------------------------------


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
        # Nobody has checked the citizen's identity yet, and its departments need it:
        # the report waits at this counter for the clerk's identity check.
        assert case.counter_tasks == ["identity_check"]
        assert case.branch == HOME and queues_holding(redis, ref) == {HOME}
    entries = [e for e in audit.for_branch(redis, HOME) if e.action == "submitted_on_behalf"]
    assert [(e.staff, e.case, e.detail) for e in entries] == [("ann", ref, event_name)]
    assert [e.action for e in audit.for_case(redis, ref)] == ["submitted_on_behalf"]


# --- 5. the citizen chooses another branch -----------------------------------------------------


def grant_status(app: Flask, sent: Sent) -> FlaskClient:
    """The citizen's browser, after following their status link."""
    citizen = app.test_client()
    assert (
        citizen.get(f"/status/{sent.display}?s={sent.secret}", follow_redirects=True).status_code
        == 200
    )
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


def test_moving_a_report_says_what_is_wrong_and_keeps_its_place_in_the_new_queue(
    core: LifeEventRouter, redis: Redis
) -> None:
    sent = photocard_change(core, postcode=CF11)
    online = submit_to_core(core, "moving_house")  # nothing waits for a counter

    def refused(ref: str, branch: str) -> dict[str, str]:
        with pytest.raises(ValidationFailed) as raised:
            core.desk.move(ref, branch)
        return raised.value.errors

    assert refused(sent.ref, "atlantis") == {"branch": "Choose a branch from the list"}
    assert refused(sent.ref, "cardiff-canton") == {
        "branch": "Choose a Post Office that can do what your report needs"
    }
    assert refused(online.ref, HOME) == {
        "branch": "Nothing in this report is waiting for a Post Office"
    }
    assert queues_holding(redis, sent.ref) == {HOME}

    core.desk.move(sent.ref, OTHER)  # the citizen
    case = core.case(sent.ref)
    assert case.branch == OTHER and queues_holding(redis, sent.ref) == {OTHER}
    # In line from when the report was made, not from the move.
    since = datetime.fromisoformat(case.created_at).timestamp()
    assert redis.zscore(keys.branch_queue(OTHER), sent.ref) == pytest.approx(since, abs=1e-3)
    last = core.store.history(sent.ref)[-1]
    assert (last.department, last.state, last.detail) == ("", "branch", OTHER)
    assert [e.action for e in audit.for_branch(redis, OTHER)] == []  # not audited

    core.desk.move(sent.ref, HOME, by="ann")  # a clerk serving the citizen
    assert queues_holding(redis, sent.ref) == {HOME}
    [entry] = audit.for_branch(redis, HOME)
    assert (entry.action, entry.staff, entry.case) == ("branch_changed", "ann", sent.ref)


def test_the_photo_is_taken_only_after_the_identity_check(
    core: LifeEventRouter, staff_client: StaffClient
) -> None:
    """Issue 15, item 6: a task for the person the report is about waits for their
    identity check: no button before it, and a post of one is refused and records nothing."""
    sent = photocard_change(core)
    assert core.case(sent.ref).counter_tasks[:1] == ["identity_check"]
    clerk = staff_client("ann")
    page = soup(clerk.get(sent.page))
    buttons = [text(b) for b in page.select("#tasks ~ form button")]
    assert "Photo captured" not in buttons
    assert "Photo for a new photocard driving licence" in text(page.select_one("#after-identity"))
    refused = complete_task(clerk, sent, "photo")
    assert refused.status_code == 400
    assert "identity document first" in text(soup(refused).select_one(".govuk-error-summary"))
    assert "photo" not in core.case(sent.ref).tasks_done
    assert redirected_to(record_identity(clerk, sent, "123A")) == sent.page
    page = soup(clerk.get(sent.page))
    assert "Photo captured" in [text(b) for b in page.select("#tasks ~ form button")]
    assert page.select_one("#after-identity") is None
    assert redirected_to(complete_task(clerk, sent, "photo")) == sent.page
    assert "photo" in core.case(sent.ref).tasks_done


def test_the_desk_refuses_a_task_or_an_identity_check_saying_what_is_wrong(
    core: LifeEventRouter,
) -> None:
    sent = photocard_change(core)
    ann = Staff("ann", HOME, "clerk")

    def refused(action: Callable[[], None]) -> dict[str, str]:
        with pytest.raises(ValidationFailed) as raised:
            action()
        return raised.value.errors

    not_waiting = {"task": "That task is not waiting on this report"}
    assert refused(lambda: core.desk.complete(sent.ref, "tea", ann)) == {
        "task": "Choose a task from the list"
    }
    assert refused(lambda: core.desk.complete(sent.ref, "cash_voucher", ann)) == not_waiting
    assert refused(lambda: core.desk.complete(sent.ref, "help", ann)) == not_waiting
    assert refused(lambda: core.desk.complete(sent.ref, "photo", ann)) == {"task": IDENTITY_FIRST}
    document = {"document": "Select the identity document you saw"}
    last_four = {"last_four": LAST_FOUR_MESSAGE}
    record = core.desk.record_identity
    assert refused(lambda: record(sent.ref, "library_card", "123A", ann)) == document
    assert refused(lambda: record(sent.ref, "passport", "1-3A", ann)) == last_four
    assert refused(lambda: record(sent.ref, "passport", "123", ann)) == last_four
    assert refused(lambda: record(sent.ref, "library_card", "12345", ann)) == {
        **document,
        **last_four,
    }
    assert core.case(sent.ref).tasks_done == {}

    record(sent.ref, "passport", " 12 3a ", ann)
    case = core.case(sent.ref)
    assert (case.identity["document"], case.identity["last_four"]) == ("passport", "123A")
    assert case.tasks_done["identity_check"]["by"] == "ann"
    assert case.tasks_done["identity_check"]["branch"] == HOME
    assert case.deliveries["dvla"].state == DeliveryState.ASSISTED  # the photo waits
    assert [w.ref for w in core.desk.branch_queue(HOME)] == [sent.ref]
    core.desk.complete(sent.ref, "photo", ann)
    # Every task done: released to DVLA, and out of the branch's queue.
    assert core.case(sent.ref).deliveries["dvla"].state == DeliveryState.QUEUED
    assert core.desk.branch_queue(HOME) == []


# --- 6. the pages speak to the clerk (issue 15, item 7) ---------------------------------------


def on_behalf(staff_client: StaffClient, event_name: str) -> tuple[FlaskClient, Sent, str]:
    """A clerk at HOME sends the sample on a citizen's behalf; the confirmation's text."""
    ann = staff_client("ann", HOME)
    data = sample(event_name)
    prefix = f"/counter/report/{event_name}"
    walk(ann, event_name, data["answers"], prefix="/counter/report")
    post_form(ann, f"{prefix}/tell", {"departments": data["consent"]})
    assert redirected_to(post_form(ann, f"{prefix}/check", {"consent": "y"})) == f"{prefix}/done"
    done = soup(ann.get(f"{prefix}/done"))
    ref = reference.normalise(text(done.select_one(".govuk-panel strong")))
    assert ref is not None
    return ann, Sent(ref, "", HOME), text(done.select_one("main"))


def test_the_confirmation_of_a_report_on_a_citizens_behalf_speaks_to_the_clerk(
    staff_client: StaffClient,
) -> None:
    _, _, words = on_behalf(staff_client, "change_of_name")
    for to_the_citizen in (
        "Your reference number",
        "Go to this Post Office by",
        "Visit a Post Office",
    ):
        assert to_the_citizen not in words
    assert "Reference number" in words
    assert "The citizen is at your counter: do these now" in words
    assert "Photo for a new photocard driving licence" in words


def test_the_case_page_speaks_of_the_counter_and_stops_saying_waiting_once_all_is_done(
    staff_client: StaffClient, core: LifeEventRouter
) -> None:
    ann, sent, _ = on_behalf(staff_client, "change_of_name")
    page = soup(ann.get(sent.page))
    tags = [text(t) for t in page.select(".govuk-task-list .govuk-tag")]
    assert "Visit a Post Office" not in tags and "To do at the counter" in tags
    assert "Waiting at:" in text(page.select_one("main"))

    assert record_identity(ann, sent, "1234").status_code == 302
    assert complete_task(ann, sent, "photo").status_code == 302
    assert not core.case(sent.ref).at_counter
    words = text(soup(ann.get(sent.page)).select_one("main"))
    assert "Waiting at:" not in words
    assert "The reference can be used at a counter until" not in words
    assert "Nothing is waiting for the counter on this report." in words


# --- 7. Welsh pages name a branch in Welsh (issue 15, item 12) ------------------------------


def test_welsh_pages_give_a_branch_its_welsh_name_and_town(
    app: Flask, core: LifeEventRouter, staff_client: StaffClient
) -> None:
    sent = photocard_change(core, postcode=CF11)
    home = branches.branch(HOME)
    assert (home.name_cy, home.town_cy) == ("Swyddfa’r Post Heol y Frenhines, Caerdydd", "Caerdydd")
    staff_client("ann").get(sent.page)  # counter staff opened the report, at HOME
    citizen = grant_status(app, sent)

    def visit_box(lang: str) -> str:
        page = soup(citizen.get(f"/status/{sent.display}?lang={lang}"))
        return text(page.select_one("#post-office ~ .govuk-inset-text"))

    def at_the_post_office(lang: str) -> str:
        page = soup(citizen.get(f"/status/{sent.display}?lang={lang}"))
        return text(page.select_one("#deliveries ul:last-of-type"))

    welsh = visit_box("cy")
    assert welsh.startswith(home.name_cy) and f" {home.town_cy} {home.postcode}" in welsh
    assert "Post Office" not in welsh and "Cardiff" not in welsh
    assert home.name_cy in at_the_post_office("cy")
    english = visit_box("en")
    assert english.startswith(home.name) and f" {home.town} {home.postcode}" in english
    assert home.name in at_the_post_office("en")

    def offered(lang: str) -> tuple[list[str], list[str]]:
        page = soup(citizen.get(f"/status/{sent.display}/branch?lang={lang}"))
        ids = [str(radio["value"]) for radio in page.select("input[name=branch]")]
        labels = [text(page.select_one(f'label[for="branch-{b}"]')) for b in ids]
        hints = [text(page.select_one(f"#branch-{b}-hint")) for b in ids]
        return ids, [f"{label}: {hint}" for label, hint in zip(labels, hints, strict=True)]

    ids, shown = offered("cy")
    near = [branches.branch(b) for b in ids]
    assert any(b.name_cy for b in near)  # and any in England (Bristol) stays in English
    for b, words in zip(near, shown, strict=True):
        assert words.startswith(f"{b.name_cy or b.name}: ") and (b.town_cy or b.town) in words
    ids, shown = offered("en")
    assert [w.split(": ")[0] for w in shown] == [branches.branch(b).name for b in ids]


def test_the_counter_in_welsh_names_branches_in_welsh(
    core: LifeEventRouter, staff_client: StaffClient
) -> None:
    here = photocard_change(core, postcode=CF11)
    elsewhere = photocard_change(core, postcode=CF14)  # waits at OTHER, Whitchurch
    home, other = branches.branch(HOME), branches.branch(OTHER)
    meg = staff_client("meg", HOME, "manager")

    queue = soup(meg.get("/counter?lang=cy"))
    assert text(queue.select_one(".govuk-caption-l")) == home.name_cy
    case = text(soup(meg.get(here.page)).find("main"))
    assert home.name_cy in case and home.name not in case
    serve = text(soup(meg.get(f"{elsewhere.page}/serve")).find("main"))
    assert other.name_cy == "Swyddfa’r Post yr Eglwys Newydd"
    assert other.name_cy in serve and other.name not in serve
    assert text(soup(meg.get("/counter/audit")).select_one(".govuk-caption-l")) == home.name_cy

    queue = soup(meg.get("/counter?lang=en"))
    assert text(queue.select_one(".govuk-caption-l")) == home.name
