"""Issue 16, item 6: the published performance page (/performance), its downloads, and
what the web front door counts for it: journeys started, and the satisfaction question
on the confirmation page."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from redis import Redis

from router import keys, stats
from router.service import LifeEventRouter
from tests.support.counter import StaffClient
from tests.support.journeys import REF_SHAPE, submit_sample
from tests.support.pages import csrf_token, errors_of, path_of, soup, text
from tests.support.redis_dump import keys_holding

QUESTION = "Overall, how did you feel about the service you received today?"


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_a_journey_started_online_is_counted_once_and_not_one_at_the_counter(
    client: FlaskClient, redis: Redis, staff_client: StaffClient
) -> None:
    client.get("/report/moving_house/start")  # the page before the journey: not a start
    assert client.get("/report/moving_house").status_code == 302  # started
    client.get("/report/moving_house")  # carried on: the same journey
    client.get("/report/birth")
    clerk = staff_client("ann")
    assert clerk.get("/counter/report/moving_house").status_code == 302
    (day,) = stats.read(redis, [_today()])
    assert day.started == {"moving_house": 1, "birth": 1}


# --- the satisfaction question on the confirmation page ----------------------------------

DONE = "/report/moving_house/done"


def test_the_confirmation_page_asks_how_they_felt_and_keeps_a_comment_apart_from_the_report(
    client: FlaskClient, core: LifeEventRouter, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sent = submit_sample(client, "moving_house")
    page = soup(client.get(DONE))
    form = page.select_one("form#feedback")
    assert form is not None and form["action"] == DONE
    assert text(form.select_one("legend")) == QUESTION
    assert len(form.select("input[name=rating]")) == 5
    assert form.select_one("textarea[name=comment]") is not None
    case_before = redis.hgetall(keys.case(sent.ref))
    history_before = redis.lrange(keys.history(sent.ref), 0, -1)

    said = f"Quick and clear. My reference is {sent.display}, write to me at ann@example.com"
    token = csrf_token(page)
    answer = client.post(DONE, data={"csrf_token": token, "rating": "satisfied", "comment": said})
    assert answer.status_code == 302 and path_of(answer.location) == DONE
    thanked = soup(client.get(DONE))
    assert thanked.select_one("form#feedback") is None
    assert text(thanked.select_one("#feedback")).startswith("Thank you for your feedback")
    assert REF_SHAPE.match(text(thanked.select_one(".govuk-panel strong")))

    # The comment is kept on its own, with the day and the rating: no reference, no
    # time, no contact; the report is as it was.
    assert core.feedback.comments() == [
        {
            "day": _today(),
            "rating": "satisfied",
            "text": "Quick and clear. My reference is [removed], write to me at [removed]",
        }
    ]
    assert keys_holding(redis, "Quick and clear") == {keys.FEEDBACK_COMMENTS}
    assert redis.hgetall(keys.case(sent.ref)) == case_before
    assert redis.lrange(keys.history(sent.ref), 0, -1) == history_before
    assert "Quick and clear" not in caplog.text
    (day,) = stats.read(redis, [_today()])
    assert day.ratings == {"satisfied": 1}
    assert core.feedback.counts()["satisfied"] == 1


def test_a_wrong_satisfaction_answer_gets_the_error_summary_on_the_confirmation_page(
    client: FlaskClient, core: LifeEventRouter, redis: Redis
) -> None:
    submit_sample(client, "moving_house")
    token = csrf_token(soup(client.get(DONE)))
    for data, message, where in (
        ({}, "Select how satisfied you are with this service", "#rating"),
        ({"rating": "ecstatic"}, "Select how satisfied you are with this service", "#rating"),
        (
            {"rating": "satisfied", "comment": "x" * 1201},
            "Your comment must be 1,200 characters or fewer",
            "#comment",
        ),
    ):
        page = soup(client.post(DONE, data={"csrf_token": token, **data}))
        assert errors_of(page) == [message], data
        assert page.select_one(".govuk-error-summary a")["href"] == where
        assert page.select_one(".govuk-panel strong") is not None  # still the confirmation
    assert client.post(DONE, data={"csrf_token": token}).status_code == 400
    assert sum(core.feedback.counts().values()) == 0 and core.feedback.comments() == []
    assert stats.read(redis, [_today()])[0].ratings == {}
