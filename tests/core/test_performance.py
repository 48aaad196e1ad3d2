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
from router.delivery import health
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


NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)  # the page's last day is 2026-12-03
DAY, BEFORE = "2026-12-03", "2026-12-02"


def _at(day: str, hour: int) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


def _craft(redis: Redis) -> None:
    """2026-12-03: 6 reports online, 2 through an API client, 2 at a counter, 1 from
    the command line; 8 journeys started online; ratings 3 very satisfied, 1 satisfied,
    1 dissatisfied; dwp told 4 times (45p each), a photo at a branch paid by dvla
    (350p), help paid by the operator and a register check (not the departments');
    22 told at dwp, 10 of them within 0.1 s, 10 in 1-2.5 s, 2 in 10-30 s."""
    with redis.pipeline(transaction=True) as pipe:
        for channel, n in (("web", 6), ("api:partner", 2), ("counter", 2), ("cli", 1)):
            for _ in range(n):
                stats.count_report(pipe, channel, "moving_house", day=DAY)
        stats.count_journey(pipe, "moving_house", day=DAY, by=5)
        stats.count_journey(pipe, "birth", day=DAY, by=3)
        for rating, n in (("very_satisfied", 3), ("satisfied", 1), ("dissatisfied", 1)):
            for _ in range(n):
                stats.count_rating(pipe, rating, day=DAY)
        stats.count_report(pipe, "counter", "birth", day=BEFORE)
        entries = [ledger.delivery_entry(f"R{i}", "dwp", at=_at(DAY, 9 + i)) for i in range(4)]
        entries += ledger.task_entries(
            "R1", "photo", "cardiff-queen-street", ["dvla"], at=_at(DAY, 15)
        )
        entries += ledger.task_entries("R2", "help", "cardiff-queen-street", [], at=_at(DAY, 16))
        entries.append(ledger.registration_entry("R3", "gro", at=_at(DAY, 9)))
        entries.append(ledger.delivery_entry("R5", "dvla", at=_at(BEFORE, 23)))
        ledger.post(pipe, entries)
        health.record_day(pipe, "dwp", DAY, [0.05] * 10 + [2.0] * 10 + [20.0] * 2, failed=1)
        pipe.execute()


def test_the_four_figures_and_the_time_to_tell_come_from_the_days_records(
    core: LifeEventRouter, redis: Redis
) -> None:
    _craft(redis)
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
    _craft(redis)
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
        ledger.post(pipe, [ledger.delivery_entry("R9", "dwp", at=_at(DAY, 23))])
        pipe.execute()
    assert core.performance(now=NOW).days[-1].paid.total == 530
