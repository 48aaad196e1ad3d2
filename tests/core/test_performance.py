"""Issue 16, item 6: the published performance figures, from what the service counts
(never personal data): reports by channel, journeys started against reports sent,
satisfaction ratings, what the departments pay per report, and the time to tell."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from redis import Redis

from router import keys, ledger, stats
from router.service import LifeEventRouter
from tests.support.performance import at, craft
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


NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)  # the page's last day is 2026-12-03
DAY = "2026-12-03"


def test_the_four_figures_and_the_time_to_tell_come_from_the_days_records(
    core: LifeEventRouter, redis: Redis
) -> None:
    craft(redis, DAY)
    figures = core.performance(now=NOW)
    assert len(figures.days) == 30 and (figures.first, figures.last) == ("2026-11-04", DAY)
    assert figures.sample is False
    day, before = figures.days[-1], figures.days[-2]
    assert day.reports == {"web": 6, "counter": 2, "api": 2, "other": 1}
    assert day.digital_take_up == 0.8  # (6 + 2) of (6 + 2 + 2): the command line is left out
    assert day.completion_rate == 6 / 8
    assert day.satisfaction == 0.8
    # The departments paid 4 x 45p to the operator and 350p to the branch: 530p for
    # 11 reports, 48p each. The operator's payments (help, the register) are not added.
    assert (day.paid.to_operator, day.paid.to_branches) == (180, 350)
    assert day.cost_per_transaction_pence == 48
    dwp = day.tell["dwp"]
    assert (dwp.delivered, dwp.failed, dwp.p50_seconds, dwp.p95_seconds) == (22, 1, 1.15, 19.0)
    assert day.tell["hmrc"].delivered == 0 and day.tell["hmrc"].p50_seconds is None
    assert before.reports["counter"] == 1 and before.digital_take_up == 0.0
    assert before.paid.to_operator == 40 and before.cost_per_transaction_pence == 40
    assert before.completion_rate is None and before.satisfaction is None
    empty = figures.days[0]
    assert empty.reports_total == 0 and empty.cost_per_transaction_pence is None

    period = figures.period
    assert period.reports_total == 12 and period.digital_take_up == 8 / 11
    assert period.paid.total == 570 and period.cost_per_transaction_pence == 48
    assert period.tell["dwp"].delivered == 22

    # The downloads say the same, a row a day and the period's last.
    data = figures.as_dict()
    assert data["period"] == {"from": "2026-11-04", "to": DAY, "days": 30}
    assert data["days"][-1]["digital_take_up"] == 0.8
    assert data["days"][-1]["time_to_tell"]["dwp"]["p95_seconds"] == 19.0
    rows = list(csv.DictReader(io.StringIO(figures.as_csv())))
    assert [r["date"] for r in rows[-2:]] == [DAY, "total"]
    assert rows[-2]["cost_per_transaction_pence"] == "48" and rows[-2]["completion_rate"] == "0.75"
    assert rows[0]["digital_take_up"] == "" and rows[-1]["reports_total"] == "12"


def test_a_finished_days_money_is_read_from_the_ledger_once(
    core: LifeEventRouter, redis: Redis
) -> None:
    craft(redis, DAY)
    just_after = datetime(2026, 12, 4, 0, 5, tzinfo=UTC)  # a late batch may still commit
    assert core.performance(now=just_after).days[-1].paid.total == 530
    assert not redis.hexists(keys.STATS_MONEY, DAY)
    assert core.performance(now=NOW).days[-1].paid.total == 530
    assert json.loads(redis.hget(keys.STATS_MONEY, DAY) or "") == {
        "to_operator": 180,
        "to_branches": 350,
    }
    # Read from what was kept, not the ledger (no entry is stamped in a day that is over).
    with redis.pipeline(transaction=True) as pipe:
        ledger.post(pipe, [ledger.delivery_entry("R9", "dwp", at=at(DAY, 23))])
        pipe.execute()
    assert core.performance(now=NOW).days[-1].paid.total == 530
