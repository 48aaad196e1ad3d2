"""The operators' console (/ops): a department's outage seen, its dead letters sent again
(one, the department's, all), every replay audited, the citizen told what was done; the
live part for htmx, and the whole page without JavaScript."""

from __future__ import annotations

from flask.testing import FlaskClient
from redis import Redis

from router.adapters.mocks import Faults, configure_faults
from router.assisted import audit
from router.cases import DeliveryState
from router.delivery.worker import Supervisor
from router.service import LifeEventRouter
from tests.support.counter import StaffClient
from tests.support.pages import csrf_token, redirected_to, soup, text
from tests.support.processes import wait_settled
from tests.support.redis_dump import mock_log
from tests.support.samples import submit_to_core


def _row(page: object, department: str) -> list[str]:
    row = page.select_one(f"#department-{department}")  # type: ignore[attr-defined]
    assert row is not None, department
    return [text(cell) for cell in row.select("th, td")]


def _replay(ops: FlaskClient, **choice: str) -> str:
    token = csrf_token(soup(ops.get("/ops")))
    return redirected_to(ops.post("/ops/replay", data={"csrf_token": token, **choice}))


def test_an_operator_sees_an_outage_and_sends_its_dead_letters_again(
    core: LifeEventRouter,
    redis: Redis,
    workers: Supervisor,
    staff_client: StaffClient,
    client: FlaskClient,
) -> None:
    configure_faults(redis, "hmrc", Faults(permanent_rate=1.0))
    sent = submit_to_core(core, "retiring", channel="test")
    case = wait_settled(redis, sent.ref)
    assert case.deliveries["hmrc"].state == DeliveryState.FAILED
    told = [n for n, d in case.deliveries.items() if d.state == DeliveryState.DELIVERED]
    assert told

    ops = staff_client("olu", "", "operator")
    page = soup(ops.get("/ops"))
    hmrc = _row(page, "hmrc")
    # department, state, waiting, retrying, sending, oldest, told/h, failed/h, p50, p95
    assert hmrc[6:8] == ["0", "1"]
    for name in told:
        row = _row(page, name)
        assert row[6] == "1" and row[8] != "–" and row[9] != "–", row
    failed = page.select_one("#failed + form, #failed ~ table")
    assert failed is not None
    assert sent.display in text(page.select_one("#failed ~ table"))
    assert "refused" in text(page.select_one("#failed ~ table"))
    assert page.select_one("#workers ~ ul code") is not None  # the workers beat

    # The htmx part alone, and the same part inside the whole page.
    live = soup(ops.get("/ops/live", headers={"HX-Request": "true"}))
    assert live.select_one("div#live[hx-get='/ops/live']") is not None
    assert live.select_one("html") is None
    assert soup(ops.get("/ops/live")).select_one("html") is not None

    configure_faults(redis, "hmrc", Faults())
    assert _replay(ops, delivery=case.delivery_id("hmrc")) == "/ops"
    case = wait_settled(redis, sent.ref)
    assert case.deliveries["hmrc"].state == DeliveryState.DELIVERED
    assert len(mock_log(redis, "hmrc")) == 1
    assert core.dead_letters() == {}

    entries = [e for e in audit.for_operations(redis) if e.action == "replayed_delivery"]
    assert [(e.staff, e.case, e.detail) for e in entries] == [("olu", sent.ref, "hmrc")]
    assert [e.action for e in audit.for_case(redis, sent.ref)] == ["replayed_delivery"]
    # The citizen's status page says what was done.
    status = soup(client.get(sent.status_link, follow_redirects=True))
    assert "we tried again to tell HM Revenue and Customs" in text(
        status.select_one("#our-team + ul")
    )

    # A second press of the same button sends nothing again.
    ops.post(
        "/ops/replay",
        data={
            "csrf_token": csrf_token(soup(ops.get("/ops"))),
            "delivery": case.delivery_id("hmrc"),
        },
    )
    assert len(mock_log(redis, "hmrc")) == 1


def test_a_departments_dead_letters_and_all_of_them_are_sent_again_by_one_button(
    core: LifeEventRouter, redis: Redis, workers: Supervisor, staff_client: StaffClient
) -> None:
    configure_faults(redis, "hmrc", Faults(permanent_rate=1.0))
    configure_faults(redis, "dwp", Faults(permanent_rate=1.0))
    sent = [submit_to_core(core, "retiring", channel="test") for _ in range(3)]
    for s in sent:
        wait_settled(redis, s.ref)
    assert len(core.dead_letters()) == 6
    configure_faults(redis, "hmrc", Faults())
    configure_faults(redis, "dwp", Faults())

    ops = staff_client("olu", "", "operator")
    _replay(ops, department="hmrc")
    for s in sent:
        case = wait_settled(redis, s.ref)
        assert case.deliveries["hmrc"].state == DeliveryState.DELIVERED
        assert case.deliveries["dwp"].state == DeliveryState.FAILED
    assert {e["department"] for e in core.dead_letters().values()} == {"dwp"}

    _replay(ops, all="1")
    for s in sent:
        assert wait_settled(redis, s.ref).deliveries["dwp"].state == DeliveryState.DELIVERED
    assert core.dead_letters() == {}
    assert len(mock_log(redis, "hmrc")) == len(mock_log(redis, "dwp")) == 3
    replayed = [e for e in audit.for_operations(redis) if e.action == "replayed_delivery"]
    assert len(replayed) == 6
    assert soup(ops.get("/ops")).select_one("#failed ~ p") is not None  # "No failed deliveries."


def test_a_replay_without_the_csrf_token_sends_nothing(
    core: LifeEventRouter, redis: Redis, workers: Supervisor, staff_client: StaffClient
) -> None:
    configure_faults(redis, "hmrc", Faults(permanent_rate=1.0))
    sent = submit_to_core(core, "retiring", channel="test")
    wait_settled(redis, sent.ref)
    configure_faults(redis, "hmrc", Faults())
    ops = staff_client("olu", "", "operator")
    assert ops.post("/ops/replay", data={"all": "1"}).status_code in (302, 400)
    assert list(core.dead_letters()) == [f"{sent.ref}-hmrc"]
    assert [e.action for e in audit.for_operations(redis)] == ["signed_in"]
