"""Issue 16, item 6: the published performance page (/performance), its downloads, and
what the web front door counts for it: journeys started, and the satisfaction question
on the confirmation page."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient
from redis import Redis

from router import stats
from tests.support.counter import StaffClient


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
