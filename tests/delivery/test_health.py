"""What an operator looks at (issue 16, first part): each department's queue, the
workers alive, ``router queues``, and the front door's /healthz and /readyz."""

from __future__ import annotations

import json
import time

from flask.testing import FlaskClient
from redis import Redis

from router import keys
from router.cases import delivery_id
from router.delivery import breaker, health
from router.delivery.worker import Supervisor
from router.reference import new_reference
from tests.support.processes import router_cli

REF, OTHER, LATER, SENT, DEAD = (new_reference() for _ in range(5))


def _backlog(redis: Redis, now: float) -> None:
    """hmrc: two due (one due for 30 s), one in a retry's backoff, one being sent, one
    dead; dvla's breaker open; dwp nothing at all."""
    redis.zadd(keys.pending("hmrc"), {REF: now - 30, OTHER: now - 5, LATER: now + 60})
    redis.zadd(keys.SENDING, {delivery_id(SENT, "hmrc"): now * 1000 + 3000})
    redis.hset(keys.DEAD_LETTERS, delivery_id(DEAD, "hmrc"), json.dumps({"reason": "x"}))
    redis.hset(keys.breaker("dvla"), mapping={"failures": 0, "open_until": now + 10})


def test_each_departments_figures_come_from_what_delivery_keeps(redis: Redis) -> None:
    now = time.time()
    _backlog(redis, now)
    hmrc, dvla, dwp = health.department_figures(redis, ["hmrc", "dvla", "dwp"], now=now)
    assert hmrc == health.DepartmentFigures(
        department="hmrc",
        breaker="closed",
        pending=2,
        retrying=1,
        sending=1,
        oldest_seconds=30.0,
        failed=1,
    )
    assert dvla.breaker == "open" and dvla.pending == dvla.failed == 0
    assert breaker.state(redis, "dvla") == "open"
    assert dwp == health.DepartmentFigures("dwp", "closed", 0, 0, 0, 0.0, 0)


def test_the_last_hours_outcomes_and_time_to_tell_come_from_each_batchs_record(
    redis: Redis,
) -> None:
    now = 1_800_000_000.0  # a minute's start: the records below fall where intended
    with redis.pipeline(transaction=True) as pipe:
        # 10 told within 0.1 s, 10 between 1 and 2.5 s, one failed, this minute
        health.record_outcomes(pipe, "hmrc", [0.05] * 10 + [2.0] * 10, 1, now)
        # 59 minutes ago: still in the hour. 61 minutes ago: not.
        health.record_outcomes(pipe, "hmrc", [20.0] * 2, 2, now - 59 * 60)
        health.record_outcomes(pipe, "hmrc", [0.05] * 50, 5, now - 61 * 60)
        health.record_outcomes(pipe, "dvla", [], 0, now)  # nothing settled: no record
        pipe.execute()
    assert redis.ttl(keys.outcomes("hmrc", int(now // 60))) > 3600
    assert not redis.exists(keys.outcomes("dvla", int(now // 60)))
    hmrc, dvla = health.department_figures(redis, ["hmrc", "dvla"], now=now)
    assert (hmrc.delivered_last_hour, hmrc.failed_last_hour) == (22, 3)
    # 22 told: the median (rank 11) is the first of ten in the 1-2.5 s bucket, 1.15 s
    # by linear interpolation; the 95th (rank 20.9) is in the 10-30 s bucket, 19 s.
    assert (hmrc.p50_seconds, hmrc.p95_seconds) == (1.15, 19.0)
    assert (dvla.delivered_last_hour, dvla.p50_seconds, dvla.p95_seconds) == (0, None, None)


def test_each_batchs_outcomes_are_kept_for_its_day_too_for_the_published_time_to_tell(
    redis: Redis,
) -> None:
    now = 1_800_000_000.0  # 2027-01-15 08:00 UTC
    with redis.pipeline(transaction=True) as pipe:
        health.record_outcomes(pipe, "hmrc", [0.05] * 10 + [2.0] * 10, 1, now)
        health.record_outcomes(pipe, "hmrc", [20.0] * 2, 2, now - 7 * 3600)  # same day
        health.record_outcomes(pipe, "hmrc", [0.05] * 50, 5, now - 86400)  # the day before
        pipe.execute()
    assert redis.ttl(keys.outcomes_day("hmrc", "2027-01-15")) > 360 * 86400
    days = ["2027-01-14", "2027-01-15", "2027-01-16"]
    found = health.daily_outcomes(redis, ["hmrc", "dvla"], days)
    before, day, after = found["hmrc"]
    assert (day.delivered, day.failed, day.p50_seconds, day.p95_seconds) == (22, 3, 1.15, 19.0)
    assert (before.delivered, before.failed, before.p50_seconds) == (50, 5, 0.05)
    assert (after.delivered, after.p50_seconds) == (0, None)
    assert [d.delivered for d in found["dvla"]] == [0, 0, 0]
    # The days add up: their buckets summed, as the page's 30-day figure does.
    assert health.DayOutcomes.summed(found["hmrc"]).delivered == 72


def test_quantile_reads_a_histogram_as_prometheus_does() -> None:
    buckets = [0] * (len(health.TELL_BOUNDS) + 1)
    assert health.quantile(buckets, 0.5) is None
    buckets[0] = 4  # four told within 0.1 s
    assert health.quantile(buckets, 0.5) == 0.05
    buckets[-1] = 100  # past a week: the last bound is all that can be said
    assert health.quantile(buckets, 0.95) == float(health.TELL_BOUNDS[-1])


def test_router_queues_prints_every_department_and_says_when_no_worker_is_alive(
    redis: Redis, cli_env: dict[str, str]
) -> None:
    _backlog(redis, time.time())
    printed = router_cli("queues", env=cli_env)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines[0].split() == [
        "department",
        "breaker",
        "pending",
        "retrying",
        "sending",
        "oldest",
        "failed",
        "told/h",
        "failed/h",
        "p50",
        "p95",
    ]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:6]}
    assert set(rows) == {"dwp", "dvla", "payments", "hmrc", "council"}
    assert rows["hmrc"][:4] == ["closed", "2", "1", "1"] and rows["hmrc"][5] == "1"
    assert rows["hmrc"][6:] == ["0", "0", "-", "-"]
    assert rows["dvla"][0] == "open"
    assert "Workers alive: none. Nothing is being delivered" in printed.stdout
    as_json = json.loads(router_cli("queues", "--json", env=cli_env).stdout)
    assert {d["department"]: d["pending"] for d in as_json["departments"]}["hmrc"] == 2
    assert as_json["workers"] == {}


def test_real_workers_beat_and_say_so_when_they_stop(
    redis: Redis, workers: Supervisor, cli_env: dict[str, str]
) -> None:
    deadline = time.monotonic() + 20
    while len(health.workers_alive(redis)) < len(workers.pids()) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = health.workers_alive(redis)
    assert sorted(int(name.rpartition(":")[2]) for name in alive) == sorted(workers.pids())
    assert all(seconds < health.ALIVE_SECONDS for seconds in alive.values())
    printed = router_cli("queues", env=cli_env).stdout
    assert f"Workers alive: {len(alive)}: " in printed
    workers.stop()
    assert health.workers_alive(redis) == {}  # each said so as it stopped


def test_a_worker_silent_too_long_is_not_alive_and_is_forgotten_after_an_hour(
    redis: Redis,
) -> None:
    now = time.time()
    health.beat(redis, "host-a:1", now=now - health.ALIVE_SECONDS - 1)
    health.beat(redis, "host-b:2", now=now)
    assert health.workers_alive(redis, now=now) == {"host-b:2": 0.0}
    health.beat(redis, "host-b:2", now=now + keys.WORKER_GONE_SECONDS)
    assert redis.zrange(keys.WORKERS, 0, -1) == [b"host-b:2"]


def test_healthz_answers_while_redis_does_not(client: FlaskClient, redis: Redis) -> None:
    ok = client.get("/healthz")
    assert ok.status_code == 200 and ok.get_json() == {"status": "ok"}
    assert "Set-Cookie" not in ok.headers


def test_readyz_is_not_ready_without_a_worker_and_ready_with_one(
    client: FlaskClient, redis: Redis, workers: Supervisor
) -> None:
    redis.delete(keys.WORKERS)  # as before any worker beat
    deadline = time.monotonic() + 20
    missing = client.get("/readyz")
    assert missing.status_code == 503
    assert missing.get_json() == {
        "status": "not ready",
        "checks": {"catalogue": True, "redis": True, "workers": False},
    }
    while not health.workers_alive(redis) and time.monotonic() < deadline:
        time.sleep(0.2)
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["checks"] == {"catalogue": True, "redis": True, "workers": True}
    assert ready.headers["Cache-Control"] == "no-store"


# --- the breaker, step by step in this process (issue 19: its mutants ran in workers only) ---


def test_the_breaker_opens_after_the_threshold_and_doubles_its_pause(redis: Redis) -> None:
    assert breaker.before_batch(redis, "dwp", 5.0) == (0.0, True, False)
    assert breaker.state(redis, "dwp") == "closed"
    # Failures short of the threshold, in a row: still closed, no pause.
    assert breaker.record(redis, "dwp", answered=0, failed=breaker.THRESHOLD - 1, clean=True) == 0
    assert breaker.state(redis, "dwp") == "closed"
    assert breaker.before_batch(redis, "dwp", 5.0) == (0.0, False, False)  # not clean
    before = time.time()
    assert breaker.record(redis, "dwp", 0, 1, clean=False) == breaker.BASE_PAUSE_SECONDS
    assert breaker.state(redis, "dwp") == "open"
    wait, clean, probe = breaker.before_batch(redis, "dwp", 5.0)
    assert 0 < wait <= breaker.BASE_PAUSE_SECONDS and not clean and not probe
    open_until = float(redis.hget(keys.breaker("dwp"), "open_until"))  # type: ignore[arg-type]
    assert before + breaker.BASE_PAUSE_SECONDS <= open_until <= time.time() + 2
    assert breaker.state(redis, "hmrc") == "closed"  # each department its own

    # The pause over: half-open, and one batch only is the probe.
    redis.hset(keys.breaker("dwp"), "open_until", time.time() - 1)
    assert breaker.state(redis, "dwp") == "half-open"
    assert breaker.before_batch(redis, "dwp", 5.0) == (0.0, False, True)
    assert breaker.before_batch(redis, "dwp", 5.0) == (1.0, False, False)
    ttl = redis.pttl(keys.breaker_probe("dwp"))
    assert 5000 < ttl <= 6000
    # A failed probe reopens at once, for twice as long.
    assert breaker.record(redis, "dwp", 0, 1, clean=False) == 2 * breaker.BASE_PAUSE_SECONDS
    assert not redis.exists(keys.breaker_probe("dwp"))
    # An answer closes it, probe and all.
    redis.hset(keys.breaker("dwp"), "open_until", time.time() - 1)
    assert breaker.before_batch(redis, "dwp", 5.0)[2]
    assert breaker.record(redis, "dwp", answered=1, failed=3, clean=False) == 0
    assert not redis.exists(keys.breaker("dwp"), keys.breaker_probe("dwp"))
    assert breaker.state(redis, "dwp") == "closed"


def test_the_breakers_pause_is_capped(redis: Redis) -> None:
    redis.hset(keys.breaker("dwp"), mapping={"opens": 20, "open_until": 1})
    assert breaker.failed_many(redis, "dwp", 1) == breaker.MAX_PAUSE_SECONDS


def test_a_batch_with_no_failures_and_no_answers_leaves_the_breaker_alone(redis: Redis) -> None:
    assert breaker.record(redis, "dwp", answered=0, failed=0, clean=True) == 0
    assert breaker.record(redis, "dwp", answered=2, failed=0, clean=True) == 0
    assert not redis.exists(keys.breaker("dwp"))


def test_the_breakers_state_from_its_open_until() -> None:
    assert breaker.state_of(None) == "closed"
    assert breaker.state_of(b"") == "closed"
    assert breaker.state_of(b"100.5", now=100.0) == "open"
    assert breaker.state_of("100.0", now=100.0) == "half-open"
    assert breaker.state_of(str(time.time() + 60)) == "open"
    assert breaker.state_of(str(time.time() - 60)) == "half-open"
