"""Issue 16, item 6: the published performance figures, from what the service counts
(never personal data): reports by channel, journeys started against reports sent,
satisfaction ratings, what the departments pay per report, and the time to tell."""

from __future__ import annotations

from datetime import UTC, datetime

from redis import Redis

from router import keys, stats
from router.service import LifeEventRouter
from tests.support.samples import answers_for, sample, submit_to_core


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_a_report_is_counted_by_channel_in_its_own_write_and_once(
    core: LifeEventRouter, redis: Redis
) -> None:
    submit_to_core(core, "moving_house")
    submit_to_core(core, "change_of_name", channel="counter")
    submit_to_core(core, "change_of_name", channel="api:partner")
    submit_to_core(core, "change_of_name", channel="cli")
    moving = sample("moving_house")
    for _ in range(2):  # the same submission twice is one report
        core.submit(
            "moving_house", answers_for("moving_house"), moving["consent"], submission_key="k-1"
        )
    (day,) = stats.read(redis, [_today()])
    assert day.reports == {"web": 2, "counter": 1, "api": 1, "other": 1}
    # Only reports sent online count towards the web journey's completion.
    assert day.sent == {"moving_house": 2}
    assert day.started == {} and day.ratings == {}
    assert redis.ttl(keys.stats_day(_today())) > 360 * 86400
    # Counts only: no reference, channel name or answer is a field of the record.
    fields = {f.decode() for f in redis.hkeys(keys.stats_day(_today()))}
    assert fields == {
        "report:web",
        "report:counter",
        "report:api",
        "report:other",
        "sent:moving_house",
    }
