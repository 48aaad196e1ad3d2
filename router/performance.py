"""The published performance figures (issue 16, item 6): the GOV.UK Service Standard's
four, and the time to tell each department, for each of the last 30 whole days.

Everything is read from what the service records anyway, and none of it names anyone:

- **digital take-up**: reports made online or through a partner's API client, out of
  those and the reports made at a Post Office counter (router.stats; reports through
  the command line are listed but left out of the figure);
- **completion rate**: reports sent online, out of the journeys started online that
  day (router.stats);
- **user satisfaction**: the share of ratings "satisfied" or "very satisfied"
  (router.feedback);
- **cost per transaction**: what the departments paid that day, to the operator for
  digital deliveries and to Post Office branches for counter tasks (router.ledger),
  divided by the reports made that day through every channel. What the operator pays
  out of it (help at a counter, checks with the register) is not added again;
- **time to tell**: each department's median and 95th percentile time from a report to
  its department being told, from the daily outcome histograms
  (router.delivery.health).

Days are UTC days, and only whole days are published: today is not, until it is over.
A finished day's money is read from the ledger once and kept (``keys.STATS_MONEY``).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from redis import Redis

from router import keys, stats
from router.delivery.health import DayOutcomes, daily_outcomes
from router.feedback import RATINGS, satisfaction
from router.ledger import Ledger
from router.tariff import OPERATOR

DAYS = 30
# The bar the government calls "great" for take-up, completion and satisfaction.
GREAT = 0.8
# A day's ledger is read for good once this long after the day ended: a batch that
# stamped its entries just before midnight has committed them by then.
SETTLED = timedelta(minutes=10)


@dataclass(frozen=True)
class Money:
    """Pence the departments paid in a day: to the operator, to Post Office branches."""

    to_operator: int = 0
    to_branches: int = 0

    @property
    def total(self) -> int:
        return self.to_operator + self.to_branches

    def __add__(self, other: Money) -> Money:
        return Money(self.to_operator + other.to_operator, self.to_branches + other.to_branches)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Day:
    """One day's figures (or a period's, summed: ``day`` is then the period's last)."""

    day: str
    reports: Mapping[str, int]  # every channel of stats.CHANNELS -> reports
    started: int  # journeys started online
    sent_online: int  # reports sent online
    ratings: Mapping[str, int]  # every rating of RATINGS -> how many gave it
    paid: Money
    tell: Mapping[str, DayOutcomes] = field(default_factory=dict)  # department ->

    @property
    def reports_total(self) -> int:
        return sum(self.reports.values())

    @property
    def digital(self) -> int:
        return sum(self.reports[c] for c in stats.DIGITAL)

    @property
    def digital_take_up(self) -> float | None:
        return _share(self.digital, self.digital + self.reports[stats.COUNTER])

    @property
    def completion_rate(self) -> float | None:
        return _share(self.sent_online, self.started)

    @property
    def rated(self) -> int:
        return sum(self.ratings.values())

    @property
    def satisfaction(self) -> float | None:
        return satisfaction(dict(self.ratings))

    @property
    def cost_per_transaction_pence(self) -> int | None:
        """What the departments paid per report, to the nearest penny."""
        share = _share(self.paid.total, self.reports_total)
        return None if share is None else round(share)


def summed(days: Sequence[Day]) -> Day:
    """The days' counts added up; each figure of it is the period's, not an average of
    daily figures."""
    departments = sorted({d for day in days for d in day.tell})
    return Day(
        day=days[-1].day if days else "",
        reports={c: sum(d.reports[c] for d in days) for c in stats.CHANNELS},
        started=sum(d.started for d in days),
        sent_online=sum(d.sent_online for d in days),
        ratings={r: sum(d.ratings[r] for d in days) for r in RATINGS},
        paid=sum((d.paid for d in days), Money()),
        tell={
            name: DayOutcomes.summed([d.tell[name] for d in days if name in d.tell])
            for name in departments
        },
    )


@dataclass(frozen=True)
class Figures:
    """The published figures: each day's, oldest first, and the period's."""

    days: list[Day]
    departments: list[str]
    sample: bool  # filled by ``router demo seed``: the page says so

    @property
    def first(self) -> str:
        return self.days[0].day

    @property
    def last(self) -> str:
        return self.days[-1].day

    @property
    def period(self) -> Day:
        return summed(self.days)

    def as_dict(self) -> dict[str, Any]:
        """The figures as the JSON download gives them (rates 0 to 1, money in pence,
        times in seconds; null where there was nothing to count)."""
        return {
            "service": "Tell us once",
            "period": {"from": self.first, "to": self.last, "days": len(self.days)},
            "timezone": "UTC",
            "sample_data": self.sample,
            "great": GREAT,
            "departments": self.departments,
            "period_figures": _day_dict(self.period, self.departments),
            "days": [_day_dict(day, self.departments) for day in self.days],
        }

    def as_json(self) -> str:
        return json.dumps(self.as_dict(), indent=1)

    def as_csv(self) -> str:
        """One row a day, oldest first, then the period's row (date ``total``)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(csv_header(self.departments))
        for day in self.days:
            writer.writerow(_csv_row(day.day, day, self.departments))
        writer.writerow(_csv_row("total", self.period, self.departments))
        return out.getvalue()


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _day_dict(day: Day, departments: Sequence[str]) -> dict[str, Any]:
    return {
        "date": day.day,
        "reports": {**day.reports, "total": day.reports_total},
        "digital_take_up": _rate(day.digital_take_up),
        "journeys_started": day.started,
        "reports_sent_online": day.sent_online,
        "completion_rate": _rate(day.completion_rate),
        "ratings": dict(day.ratings),
        "satisfaction": _rate(day.satisfaction),
        "paid_pence": {
            "to_operator": day.paid.to_operator,
            "to_branches": day.paid.to_branches,
            "total": day.paid.total,
        },
        "cost_per_transaction_pence": day.cost_per_transaction_pence,
        "time_to_tell": {
            name: {
                "told": day.tell[name].delivered,
                "failed": day.tell[name].failed,
                "p50_seconds": day.tell[name].p50_seconds,
                "p95_seconds": day.tell[name].p95_seconds,
            }
            for name in departments
            if name in day.tell
        },
    }


def csv_header(departments: Sequence[str]) -> list[str]:
    return [
        "date",
        *(f"reports_{c}" for c in stats.CHANNELS),
        "reports_total",
        "digital_take_up",
        "journeys_started",
        "reports_sent_online",
        "completion_rate",
        *(f"rating_{r}" for r in RATINGS),
        "satisfaction",
        "paid_to_operator_pence",
        "paid_to_branches_pence",
        "cost_per_transaction_pence",
        *(f"{d}_{what}" for d in departments for what in ("told", "p50_seconds", "p95_seconds")),
    ]


def _cell(value: float | int | None) -> str:
    return "" if value is None else str(value)


def _csv_row(label: str, day: Day, departments: Sequence[str]) -> list[str]:
    tell = [
        _cell(v)
        for d in departments
        for v in (
            (day.tell[d].delivered, day.tell[d].p50_seconds, day.tell[d].p95_seconds)
            if d in day.tell
            else (0, None, None)
        )
    ]
    return [
        label,
        *(str(day.reports[c]) for c in stats.CHANNELS),
        str(day.reports_total),
        _cell(_rate(day.digital_take_up)),
        str(day.started),
        str(day.sent_online),
        _cell(_rate(day.completion_rate)),
        *(str(day.ratings[r]) for r in RATINGS),
        _cell(_rate(day.satisfaction)),
        str(day.paid.to_operator),
        str(day.paid.to_branches),
        _cell(day.cost_per_transaction_pence),
        *tell,
    ]


class Performance:
    """Reads the published figures from the stats records, the ledger and the daily
    outcome histograms."""

    def __init__(self, redis: Redis, ledger: Ledger | None = None) -> None:
        self.redis = redis
        self.ledger = ledger or Ledger(redis)

    def figures(
        self, departments: Sequence[str], days: int = DAYS, now: datetime | None = None
    ) -> Figures:
        """The ``days`` whole days before ``now``'s (UTC), each department's time to tell
        among them."""
        now = now or datetime.now(UTC)
        names = stats.days_to(now.astimezone(UTC).date() - timedelta(days=1), days)
        counts = stats.read(self.redis, names)
        money = self.money(names, now)
        tell = daily_outcomes(self.redis, departments, names)
        listed = [
            Day(
                day=name,
                reports={c: found.reports.get(c, 0) for c in stats.CHANNELS},
                started=sum(found.started.values()),
                sent_online=sum(found.sent.values()),
                ratings={r: found.ratings.get(r, 0) for r in RATINGS},
                paid=money[name],
                tell={d: tell[d][index] for d in departments},
            )
            for index, (name, found) in enumerate(zip(names, counts, strict=True))
        ]
        return Figures(listed, list(departments), bool(self.redis.exists(keys.STATS_DEMO)))

    def money(self, days: Sequence[str], now: datetime) -> dict[str, Money]:
        """What the departments paid on each of ``days``: kept for a finished day, else
        read from its month's ledger (each month read once) and kept if it is over."""
        cached = self.redis.hmget(keys.STATS_MONEY, list(days)) if days else []
        found: dict[str, Money] = {}
        for day, raw in zip(days, cached, strict=True):
            if raw is not None:
                found[day] = Money(**json.loads(raw))
        missing = [day for day in days if day not in found]
        totals: dict[str, Money] = defaultdict(Money)
        for month in sorted({day[:7] for day in missing}):
            for entry in self.ledger.entries(month):
                if not entry.payer.startswith("department:"):
                    continue  # the operator's own payments come out of what it is paid
                day = datetime.fromisoformat(entry.at).astimezone(UTC).date().isoformat()
                if entry.payee == OPERATOR:
                    totals[day] += Money(to_operator=entry.pence)
                elif entry.payee.startswith("branch:"):
                    totals[day] += Money(to_branches=entry.pence)
        settled: dict[Any, Any] = {}
        for day in missing:
            found[day] = totals[day]
            began = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC)
            if now >= began + timedelta(days=1) + SETTLED:
                settled[day] = json.dumps(
                    {"to_operator": totals[day].to_operator, "to_branches": totals[day].to_branches}
                )
        if settled:
            self.redis.hset(keys.STATS_MONEY, mapping=settled)
        return found
