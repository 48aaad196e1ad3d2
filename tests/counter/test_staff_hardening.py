"""Issue 13, the counter's findings: each test is named after the row of the outside
probe it keeps closed (counter sessions, staff accounts, another branch's cases, where
signing in leads)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner
from flask import Flask
from redis import Redis

from router import cli, keys, reference
from router.assisted import audit
from router.assisted.staff import StaffStore
from router.exceptions import ValidationFailed
from router.service import LifeEventRouter
from tests.support.counter import (
    CF11,
    CF14,
    HOME,
    OTHER,
    PASSWORD,
    SIGN_IN,
    StaffClient,
    citizen_here,
    photocard_change,
    sign_in,
)
from tests.support.journeys import walk
from tests.support.pages import errors_of, field_errors, post_form, redirected_to, soup, text
from tests.support.processes import router_cli
from tests.support.redis_dump import keys_holding
from tests.support.samples import sample

# --- row 6: a counter session is cleared at sign-out and at sign-in --------------------------


def test_row_6_sign_out_clears_the_counter_session(
    app: Flask, redis: Redis, staff_client: StaffClient
) -> None:
    answers = sample("moving_house")["answers"]
    address = answers["address_line_1"]
    ann = staff_client("ann", HOME)
    walk(ann, "moving_house", answers, prefix="/counter/report", stop_at="move_date")
    with ann.session_transaction() as held:
        kept = held["journeys:counter_journey"]["moving_house"]["answers"]
        assert kept["address_line_1"] == address, "the journey keeps its answers"
    sessions = set(redis.scan_iter(keys.WEB_SESSION_PREFIX + "*"))
    assert sessions, "in the session store (sealed: router.sealing)"
    before = ann.get_cookie("tuo_session")
    assert before is not None

    assert redirected_to(post_form(ann, "/counter", {}, action="/counter/sign-out")) == SIGN_IN

    # Nothing of the citizen's is left in the session store, and the browser has a new id.
    assert not any(redis.exists(key) for key in sessions)
    assert keys_holding(redis, address) == set()
    after = ann.get_cookie("tuo_session")
    assert after is None or after.value != before.value
    StaffStore(redis).add("bob", PASSWORD, HOME, "clerk")
    assert redirected_to(sign_in(ann, "bob", PASSWORD)) == "/counter"
    for page in ("/counter/report/moving_house/full_name", "/counter/report/moving_house/check"):
        shown = ann.get(page, follow_redirects=True)
        assert address not in text(soup(shown)), page
        assert answers["full_name"] not in text(soup(shown)), page


def test_row_6_sign_in_clears_what_the_browser_held_before(
    app: Flask, redis: Redis, staff_client: StaffClient
) -> None:
    # A clerk who walks away without signing out: the next signs in over their session.
    answers = sample("moving_house")["answers"]
    ann = staff_client("ann", HOME)
    walk(ann, "moving_house", answers, prefix="/counter/report", stop_at="move_date")
    StaffStore(redis).add("bob", PASSWORD, HOME, "clerk")

    assert redirected_to(sign_in(ann, "bob", PASSWORD)) == "/counter"

    assert keys_holding(redis, answers["address_line_1"]) == set()
    shown = ann.get("/counter/report/moving_house/full_name")
    assert answers["full_name"] not in text(soup(shown))


# --- row 7: an account's change ends its sessions; disable, enable, remove, list -------------

SIGNED_OUT_CHANGED = "You were signed out because your account was changed. Sign in again."


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda store: store.add("clerk3", PASSWORD, OTHER, "manager", replace=True),
            id="replaced",
        ),
        pytest.param(lambda store: store.disable("clerk3"), id="disabled"),
        pytest.param(lambda store: store.remove("clerk3"), id="removed"),
    ],
)
def test_row_7_changing_an_account_ends_its_live_sessions_at_once(
    redis: Redis, staff_client: StaffClient, change: Callable[[StaffStore], object]
) -> None:
    clerk3 = staff_client("clerk3", HOME)
    assert clerk3.get("/counter").status_code == 200

    change(StaffStore(redis))

    assert redirected_to(clerk3.get("/counter")) == SIGN_IN
    assert SIGNED_OUT_CHANGED in text(soup(clerk3.get(SIGN_IN)))
    assert redirected_to(clerk3.get("/counter/find")) == SIGN_IN


def test_row_7_a_session_without_a_version_stamp_does_not_outlive_its_removed_account(
    redis: Redis, staff_client: StaffClient
) -> None:
    # A removed account has no stamp (None); a session that holds none must not match it.
    clerk3 = staff_client("clerk3", HOME)
    StaffStore(redis).remove("clerk3")
    with clerk3.session_transaction() as held:
        held["staff"] = {k: v for k, v in held["staff"].items() if k != "version"}
    assert redirected_to(clerk3.get("/counter")) == SIGN_IN


def test_row_7_a_disabled_account_cannot_sign_in_until_it_is_enabled(
    app: Flask, redis: Redis
) -> None:
    store = StaffStore(redis)
    store.add("ann", PASSWORD, HOME, "clerk")
    assert store.disable("ann") is True
    assert sign_in(app.test_client(), "ann", PASSWORD).status_code == 400
    assert store.enable("ann") is True
    assert redirected_to(sign_in(app.test_client(), "ANN", PASSWORD)) == "/counter"
    assert store.disable("nobody") is False and store.remove("nobody") is False


def test_row_7_staff_add_overwrites_only_with_replace_and_user_names_are_case_folded(
    cli_env: dict[str, str], redis: Redis
) -> None:
    env = {**cli_env, "ROUTER_STAFF_PASSWORD": PASSWORD}
    assert router_cli("staff", "add", "weak2", "--branch", HOME, env=env).returncode == 0

    again = router_cli("staff", "add", "Weak2", "--branch", OTHER, "--role", "manager", env=env)

    assert again.returncode == 2, again.stdout + again.stderr
    assert "username: There is already an account with that user name" in again.stderr
    assert "--replace" in again.stderr
    kept = StaffStore(redis).get("WEAK2")
    assert kept is not None and (kept.branch, kept.role) == (HOME, "clerk")

    replaced = router_cli(
        "staff", "add", "Weak2", "--branch", OTHER, "--role", "manager", "--replace", env=env
    )
    assert replaced.returncode == 0, replaced.stderr
    changed = StaffStore(redis).get("weak2")
    assert changed is not None and (changed.branch, changed.role) == (OTHER, "manager")
    assert [a.username for a in StaffStore(redis).accounts()] == ["weak2"]


def test_row_7_staff_disable_enable_remove_and_list(cli_env: dict[str, str], redis: Redis) -> None:
    env = {**cli_env, "ROUTER_STAFF_PASSWORD": PASSWORD}
    for name, role in (("ann", "clerk"), ("meg", "manager")):
        added = router_cli("staff", "add", name, "--branch", HOME, "--role", role, env=env)
        assert added.returncode == 0, added.stderr

    assert router_cli("staff", "disable", "ANN", env=cli_env).returncode == 0
    listed = router_cli("staff", "list", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["ann", "clerk", HOME],
        ["meg", "manager", HOME],
    ]
    assert "disabled" in lines[0] and lines[1].endswith("active")
    assert "scrypt" not in listed.stdout and PASSWORD not in listed.stdout
    assert StaffStore(redis).authenticate("ann", PASSWORD) is None

    assert router_cli("staff", "enable", "ann", env=cli_env).returncode == 0
    assert StaffStore(redis).authenticate("ann", PASSWORD) is not None
    assert router_cli("staff", "remove", "ann", env=cli_env).returncode == 0
    assert StaffStore(redis).get("ann") is None
    missing = router_cli("staff", "remove", "ann", env=cli_env)
    assert missing.returncode == 1 and "No staff account named ann" in missing.stderr
    assert router_cli("staff", "list", env=cli_env).stdout.split()[0] == "meg"


# --- row 8: weak passwords refused; no password on the command line --------------------------

HOW_TO_CHOOSE = "Choose a stronger password: 3 or 4 random words work well."


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaaaaaa",
        "password1234",
        " " * 12,
        "Password1234!",
        "qwertyuiop123",
        "iloveyou1234",
        "ann cardiff-queen-street",
    ],
)
def test_row_8_weak_and_common_passwords_are_refused_saying_how_to_choose_one(
    redis: Redis, password: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        StaffStore(redis).add("ann", password, HOME, "clerk")
    assert refused.value.errors["password"].startswith(HOW_TO_CHOOSE)
    assert StaffStore(redis).get("ann") is None


def test_row_8_staff_add_refuses_a_weak_password_from_the_environment(
    cli_env: dict[str, str], redis: Redis
) -> None:
    env = {**cli_env, "ROUTER_STAFF_PASSWORD": "password1234"}
    result = router_cli("staff", "add", "ann", "--branch", HOME, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"password: {HOW_TO_CHOOSE}" in result.stderr
    assert "password1234" not in result.stdout + result.stderr
    assert StaffStore(redis).get("ann") is None


def test_row_8_staff_add_takes_no_password_on_the_command_line(
    cli_env: dict[str, str], redis: Redis
) -> None:
    on_argv = router_cli(
        "staff", "add", "ann", "--branch", HOME, "--password", PASSWORD, env=cli_env
    )
    assert on_argv.returncode == 2
    assert "No such option '--password'" in on_argv.stderr
    assert StaffStore(redis).get("ann") is None
    assert "--password" not in router_cli("staff", "add", "--help", env=cli_env).stdout

    # Asked for twice when ROUTER_STAFF_PASSWORD is not set, and never echoed.
    env = {k: v for k, v in cli_env.items() if k != "ROUTER_STAFF_PASSWORD"}
    asked = CliRunner().invoke(
        cli.main,
        ["staff", "add", "ann", "--branch", HOME],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        env=env,
    )
    assert asked.exit_code == 0, asked.output
    assert PASSWORD not in asked.output
    assert StaffStore(redis).authenticate("ann", PASSWORD) is not None


# --- row 19: another branch's case opens only with a detail the citizen gives ------------------

NO_MATCH = "The date of birth does not match the report: check it with the citizen"
WRONG_BORN = "1950-01-01"


def test_row_19_another_branchs_case_opens_only_with_the_reporters_date_of_birth(
    core: LifeEventRouter, staff_client: StaffClient
) -> None:
    elsewhere = photocard_change(core, postcode=CF14)
    case = core.case(elsewhere.ref)
    assert case.branch == OTHER
    ann = staff_client("ann", HOME)
    serve = f"{elsewhere.page}/serve"
    personal = [case.answers["full_name"], case.answers["postcode"]]

    ticked_only = post_form(ann, serve, {"present": "y"})
    assert ticked_only.status_code == 400
    assert errors_of(soup(ticked_only)) == ["Enter the date of birth the citizen gives"]
    wrong = post_form(ann, serve, citizen_here(core, elsewhere, born=WRONG_BORN))
    assert wrong.status_code == 400
    page = soup(wrong)
    assert errors_of(page) == [NO_MATCH]
    assert NO_MATCH in field_errors(page)
    assert page.select_one(".govuk-error-summary a[href='#date_of_birth-day']") is not None
    for shown in (ticked_only, wrong):
        assert not [p for p in personal if p in text(soup(shown))]
    assert redirected_to(ann.get(elsewhere.page)) == serve

    opened = post_form(ann, serve, citizen_here(core, elsewhere))
    assert redirected_to(opened) == elsewhere.page
    assert case.answers["full_name"] in text(soup(ann.get(elsewhere.page)))


def test_row_19_wrong_dates_of_birth_are_throttled_per_clerk_and_per_case(
    core: LifeEventRouter, staff_client: StaffClient
) -> None:
    elsewhere = photocard_change(core, postcode=CF14)
    serve = f"{elsewhere.page}/serve"
    ann = staff_client("ann", HOME)
    for _ in range(5):
        guess = post_form(ann, serve, citizen_here(core, elsewhere, born=WRONG_BORN))
        assert guess.status_code == 400

    refused = post_form(ann, serve, citizen_here(core, elsewhere))

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert redirected_to(ann.get(elsewhere.page)) == serve
    # Colleagues guessing the same citizen's share one count for the case.
    bob = staff_client("bob", HOME)
    for _ in range(5):
        assert (
            post_form(bob, serve, citizen_here(core, elsewhere, born=WRONG_BORN)).status_code == 400
        )
    assert (
        post_form(staff_client("cat", HOME), serve, citizen_here(core, elsewhere)).status_code
        == 429
    )
    # Another branch's other case is still open to a clerk with no failures of their own.
    another = photocard_change(core, postcode=CF14)
    assert (
        redirected_to(
            post_form(
                staff_client("dan", HOME), f"{another.page}/serve", citizen_here(core, another)
            )
        )
        == another.page
    )


def test_row_19_finding_references_that_do_not_exist_is_throttled(
    staff_client: StaffClient,
) -> None:
    ann = staff_client("ann", HOME)
    for _ in range(20):
        missing = post_form(ann, "/counter/find", {"reference": reference.new_reference()})
        assert missing.status_code == 400
        assert errors_of(soup(missing)) == ["There is no report with that reference number"]

    refused = post_form(ann, "/counter/find", {"reference": reference.new_reference()})

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    # Only that member of staff is held back.
    bob = staff_client("bob", HOME)
    assert (
        post_form(bob, "/counter/find", {"reference": reference.new_reference()}).status_code == 400
    )


def test_row_19_managers_see_openings_of_another_branchs_reports_highlighted(
    core: LifeEventRouter, redis: Redis, staff_client: StaffClient
) -> None:
    elsewhere = photocard_change(core, postcode=CF14)
    here = photocard_change(core, postcode=CF11)
    serve = f"{elsewhere.page}/serve"
    ann = staff_client("ann", HOME)
    assert post_form(ann, serve, citizen_here(core, elsewhere, born=WRONG_BORN)).status_code == 400
    assert redirected_to(post_form(ann, serve, citizen_here(core, elsewhere))) == elsewhere.page
    assert ann.get(here.page).status_code == 200
    refused = [e for e in audit.for_branch(redis, HOME) if e.action == "serve_refused"]
    assert [(e.staff, e.case, e.detail) for e in refused] == [("ann", elsewhere.ref, OTHER)]
    assert WRONG_BORN not in str(audit.for_branch(redis, HOME))

    page = soup(staff_client("meg", HOME, "manager").get("/counter/audit"))
    marked = {
        (text(tr.select("td")[2]), text(tr.select("td")[3]))
        for tr in page.select("tbody tr")
        if tr.select_one(".govuk-tag")
    }
    assert marked == {
        (
            "Another branch’s report Refused another branch’s report: the date of birth did "
            "not match",
            elsewhere.display,
        ),
        (
            "Another branch’s report Served a citizen whose report was for another branch",
            elsewhere.display,
        ),
    }


# --- row 15: control characters in next= lead to the default page, never a 500 -----------------


@pytest.mark.parametrize(
    "next_page",
    [
        "/counter%0d%0aSet-Cookie:%20tuo_session=planted",
        "/counter%0aLocation:%20https://evil.example/",
        "/counter/find%09",
        "/counter%00",
        "/counter%7f",
        "/counter%c2%85",
        "/counter\\evil.example",
        "/counter/%5C%5Cevil.example",  # a backslash inside the area
    ],
)
def test_row_15_control_characters_in_next_lead_to_the_default_page(
    app: Flask, redis: Redis, next_page: str
) -> None:
    StaffStore(redis).add("ann", PASSWORD, HOME, "clerk")
    browser = app.test_client()
    assert browser.get(f"{SIGN_IN}?next={next_page}").status_code == 200

    signed_in = sign_in(browser, "ann", PASSWORD, query=f"?next={next_page}")

    assert signed_in.status_code == 302
    assert signed_in.location == "/counter"
    assert "planted" not in str(signed_in.headers)
    assert browser.get("/counter").status_code == 200
