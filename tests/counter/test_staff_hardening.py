"""Issue 13, the counter's findings: each test is named after the row of the outside
probe it keeps closed (counter sessions, staff accounts, another branch's cases, where
signing in leads)."""

from __future__ import annotations

from flask import Flask
from redis import Redis

from router.assisted.staff import StaffStore
from tests.support.counter import HOME, PASSWORD, SIGN_IN, StaffClient, sign_in
from tests.support.journeys import walk
from tests.support.pages import post_form, redirected_to, soup, text
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
    assert keys_holding(redis, address), "the journey keeps its answers in the session"
    before = ann.get_cookie("tuo_session")
    assert before is not None

    assert redirected_to(post_form(ann, "/counter", {}, action="/counter/sign-out")) == SIGN_IN

    # Nothing of the citizen's is left in the session store, and the browser has a new id.
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
