"""Issue 13, row 13: removing a webhook department while the service runs (the documented
live flow) must not stop every other department: workers skip a department nobody can
deliver to, the supervisor stops serving it, and its queued deliveries are dead-lettered
with a reason an operator can replay."""

from __future__ import annotations

import time

from redis import Redis

from router import keys
from router.adapters.registry import Registry
from router.adapters.webhook import add_webhook, remove_webhook
from router.cases import DeliveryState
from router.delivery.worker import Supervisor, WorkerProcess
from router.redis_server import RedisServer
from router.service import LifeEventRouter
from tests.support.samples import answers_for

DEATH_FIELDS = ("deceased_full_name", "date_of_death")


def test_row_13_a_worker_asked_for_a_removed_department_serves_the_others(
    redis: Redis, redis_server: RedisServer
) -> None:
    worker = WorkerProcess(redis_server.url_as("worker"), ["coroners", "dwp", "hmrc"])
    assert worker.departments == ["dwp", "hmrc"]


def test_row_13_the_supervisor_stops_serving_a_removed_department(
    redis: Redis, redis_server: RedisServer
) -> None:
    supervisor = Supervisor(redis_server.url_as("worker"), ["coroners", "dwp"], processes=1)
    supervisor.start()
    try:
        assert supervisor.ensure(["dwp", "hmrc"]) == ["hmrc"]
        assert supervisor.departments == ["dwp", "hmrc"]
        assert supervisor.ensure(["dwp", "hmrc"]) == []
        # The new worker serves the others: none has exited.
        time.sleep(1.0)
        assert all(child.poll() is None for child in supervisor.children.values())
    finally:
        supervisor.stop()


def test_row_13_queued_deliveries_of_a_removed_department_are_dead_lettered(
    redis: Redis,
) -> None:
    add_webhook(
        redis,
        "coroners",
        "https://coroners.example/tell-us-once",
        {"death": DEATH_FIELDS},
        needs={"death": "P0+registration"},
    )
    core = LifeEventRouter(redis, Registry.discover(redis))
    ref = core.submit("death", answers_for("death"), ["coroners", "dwp"]).ref
    assert redis.zscore(keys.pending("coroners"), ref) is not None

    assert remove_webhook(redis, "coroners")
    core = LifeEventRouter(redis, Registry.discover(redis))
    assert core.retire_department("coroners") == [f"{ref}-coroners"]

    case = core.case(ref)
    assert case.deliveries["coroners"].state == DeliveryState.FAILED
    assert "removed" in case.deliveries["coroners"].detail
    assert case.deliveries["dwp"].state == DeliveryState.QUEUED
    assert redis.zcard(keys.pending("coroners")) == 0
    assert f"{ref}-coroners" in core.store.dead_letters()
    assert case.flagged


def test_row_13_the_cli_dead_letters_them_when_it_removes_the_webhook(
    cli_env: dict[str, str], redis: Redis
) -> None:
    from tests.support.processes import router_cli

    added = router_cli(
        "adapters",
        "add-webhook",
        "coroners",
        "--url",
        "https://coroners.example/x",
        "--events",
        "death",
        "--fields",
        "death=deceased_full_name,date_of_death",
        env=cli_env,
    )
    assert added.returncode == 0, added.stderr
    core = LifeEventRouter(redis, Registry.discover(redis))
    core.submit("death", answers_for("death"), ["coroners"])
    removed = router_cli("adapters", "remove-webhook", "coroners", env=cli_env)
    assert removed.returncode == 0, removed.stderr
    assert "1 deliveries to it were still queued" in removed.stdout
    assert redis.hlen(keys.DEAD_LETTERS) == 1
