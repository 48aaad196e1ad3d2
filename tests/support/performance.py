"""A crafted day of performance records (router.stats, the ledger, the daily outcome
histograms) whose figures are known: tests/core/test_performance.py works them out."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from redis import Redis

from router import ledger, stats
from router.delivery import health

BRANCH = "cardiff-queen-street"


def at(day: str, hour: int) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


def day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def craft(redis: Redis, day: str) -> None:
    """On ``day``: 6 reports online, 2 through an API client, 2 at a counter, 1 from the
    command line; 8 journeys started online; ratings 3 very satisfied, 1 satisfied, 1
    dissatisfied; dwp told 4 times (45p each), a photo at a branch paid by dvla (350p),
    help paid by the operator and a register check (not the departments'); 22 told at
    dwp, 10 within 0.1 s, 10 in 1-2.5 s, 2 in 10-30 s, and 1 failed. The day before:
    1 report at a counter, and dvla told once (40p)."""
    before = day_before(day)
    with redis.pipeline(transaction=True) as pipe:
        for channel, n in (("web", 6), ("api:partner", 2), ("counter", 2), ("cli", 1)):
            for _ in range(n):
                stats.count_report(pipe, channel, "moving_house", day=day)
        stats.count_journey(pipe, "moving_house", day=day, by=5)
        stats.count_journey(pipe, "birth", day=day, by=3)
        for rating, n in (("very_satisfied", 3), ("satisfied", 1), ("dissatisfied", 1)):
            for _ in range(n):
                stats.count_rating(pipe, rating, day=day)
        stats.count_report(pipe, "counter", "birth", day=before)
        entries = [ledger.delivery_entry(f"R{i}", "dwp", at=at(day, 9 + i)) for i in range(4)]
        entries += ledger.task_entries("R1", "photo", BRANCH, ["dvla"], at=at(day, 15))
        entries += ledger.task_entries("R2", "help", BRANCH, [], at=at(day, 16))
        entries.append(ledger.registration_entry("R3", "gro", at=at(day, 9)))
        entries.append(ledger.delivery_entry("R5", "dvla", at=at(before, 23)))
        ledger.post(pipe, entries)
        health.record_day(pipe, "dwp", day, [0.05] * 10 + [2.0] * 10 + [20.0] * 2, failed=1)
        pipe.execute()
