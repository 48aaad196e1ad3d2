"""Issue 15, item 3: the citizen who leaves an email address or a mobile number is told
how their report is going, through GOV.UK Notify's own client (against a local server
that checks what it sends, tests.support.notify), or into the outbox when no key is set.
Messages hold the reference and the organisations' names, never the report's personal
data, and go once each."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis import Redis

from router import keys
from router.adapters.mocks import Faults, configure_faults
from router.adapters.registry import Registry
from router.cases import CaseStore, DeliveryState
from router.delivery.notices import Notices, NotifyNotifier, Outbox
from router.delivery.worker import Supervisor
from router.retention import BY_REQUEST, Retention
from router.service import LifeEventRouter
from router.settings import NotifySettings
from tests.support.notify import Notify, NotifyServer
from tests.support.processes import router_cli, wait_settled
from tests.support.samples import answers_for, submit_to_core

EMAIL = "sian.obrien@example.com"
MOBILE = "07700 900 982"


@pytest.fixture
def notify() -> Iterator[Notify]:
    with NotifyServer() as server:
        yield server


def notices(redis: Redis, registry: Registry, notify: Notify, **kwargs: Any) -> Notices:
    settings = NotifySettings(
        api_key=notify.settings()["NOTIFY_API_KEY"],
        base_url=notify.url,
        email_template_id=notify.settings()["NOTIFY_EMAIL_TEMPLATE_ID"],
        sms_template_id=notify.settings()["NOTIFY_SMS_TEMPLATE_ID"],
        public_url="https://tell-us-once.example",
    )
    return Notices(
        redis,
        titles=lambda n: registry.get(n).title,
        notifier=NotifyNotifier(settings),
        settings=settings,
        **kwargs,
    )


def personal_values(answers: dict[str, Any]) -> list[str]:
    """What of the report must never be in a message (its dates as given, too)."""
    return [
        str(v)
        for k, v in answers.items()
        if isinstance(v, str)
        and k not in ("contact_email", "contact_mobile")
        and len(v) > 3
        and v not in ("yes", "no", "photocard", "marriage")
    ]


def test_a_report_with_contact_details_is_confirmed_by_email_and_text_through_notify(
    core: LifeEventRouter, redis: Redis, registry: Registry, notify: Notify
) -> None:
    sent = submit_to_core(core, "change_of_name", contact_email=EMAIL, contact_mobile=MOBILE)
    assert notices(redis, registry, notify).send_due() == 2
    assert notify.refused == []
    email, sms = sorted(notify.sent("confirmation"), key=lambda a: a["path"])
    assert email["path"] == "/v2/notifications/email" and sms["path"] == "/v2/notifications/sms"
    assert email["body"]["email_address"] == EMAIL
    assert sms["body"]["phone_number"] == "07700900982"
    subject = email["body"]["personalisation"]["subject"]
    body = email["body"]["personalisation"]["body"]
    assert sent.display in subject and sent.display in body
    assert "Driver and Vehicle Licensing Agency (driving licences)" in body
    assert "visit a Post Office by" in body  # a photo and an identity check are due
    assert "https://tell-us-once.example/status" in body
    assert sms["body"]["personalisation"]["body"] == body
    case = CaseStore(redis).load(sent.ref)
    for value in personal_values(dict(case.answers)):
        assert value not in json.dumps(notify.accepted), value
    assert email["body"]["reference"] == f"{sent.ref}-confirmation-email"
    # Nothing new is due: a second look sends nothing.
    assert notices(redis, registry, notify).send_due() == 0
    assert len(notify.accepted) == 2


def test_no_contact_details_no_message(
    core: LifeEventRouter, redis: Redis, registry: Registry, notify: Notify
) -> None:
    sent = submit_to_core(core, "moving_house")
    assert redis.zscore(keys.NOTICES, sent.ref) is None
    assert notices(redis, registry, notify).send_due() == 0
    assert notify.accepted == []


def test_a_welsh_report_is_told_in_welsh(
    core: LifeEventRouter, redis: Redis, registry: Registry, notify: Notify
) -> None:
    result = core.submit(
        "moving_house",
        answers_for("moving_house", contact_email=EMAIL),
        ["council"],
        welsh=True,
    )
    notices(redis, registry, notify).send_due()
    (email,) = notify.sent("confirmation")
    body = email["body"]["personalisation"]["body"]
    assert "Eich cyfeirnod yw" in body, body
    assert "Rhagfyr" in body or "Ionawr" in body or "Chwefror" in body, "a date in Welsh"
    assert "Your reference number" not in body
    assert result.ref in email["body"]["reference"]


def outbox_until(redis: Redis, ref: str, name: str, timeout: float = 15.0) -> list[dict[str, str]]:
    """The case's outbox, once the real workers' notice threads have put ``name`` in it."""
    deadline = time.monotonic() + timeout
    while True:
        messages = Outbox(redis).read(ref)
        if any(m["name"] == name for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.1)


def test_everyone_told_then_one_message_saying_so(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    # No Notify key in the workers' environment: their messages go to the outbox.
    sent = submit_to_core(core, "death", contact_email=EMAIL)
    messages = outbox_until(redis, sent.ref, "all_told")
    assert [m["name"] for m in messages] == ["confirmation", "all_told"]
    assert {m["to"] for m in messages} == {"s***@example.com"}
    assert "You do not need to do anything else" in messages[1]["body"]
    deadline = time.monotonic() + 5
    while redis.zscore(keys.NOTICES, sent.ref) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert redis.zscore(keys.NOTICES, sent.ref) is None, "all is said: off the schedule"


def test_a_department_that_could_not_be_told_is_named_in_a_message(
    core: LifeEventRouter, redis: Redis, workers: Supervisor
) -> None:
    configure_faults(redis, "hmrc", Faults(permanent_rate=1.0))
    sent = submit_to_core(core, "retiring", contact_mobile=MOBILE)
    case = wait_settled(redis, sent.ref)
    assert case.deliveries["hmrc"].state == DeliveryState.FAILED
    messages = outbox_until(redis, sent.ref, "not_told:hmrc")
    (failed,) = [m for m in messages if m["name"] == "not_told:hmrc"]
    assert failed["channel"] == "sms" and failed["to"] == "*******0982"
    assert "We could not tell HM Revenue and Customs (tax and Child Benefit)" in failed["body"]
    time.sleep(1.5)  # a look or two more: still nothing says everyone was told
    assert "all_told" not in [m["name"] for m in Outbox(redis).read(sent.ref)]


def test_a_visit_still_due_a_week_before_its_date_is_reminded_once(
    core: LifeEventRouter, redis: Redis, registry: Registry, notify: Notify
) -> None:
    sent = submit_to_core(core, "change_of_name", contact_email=EMAIL)
    case = CaseStore(redis).load(sent.ref)
    due = datetime.combine(case.counter_valid_until, datetime.min.time(), UTC)
    notices(redis, registry, notify).send_due()
    assert notify.sent("visit_due") == []
    # The next look is the reminder's time, not sooner.
    assert redis.zscore(keys.NOTICES, sent.ref) == pytest.approx(
        min((due - timedelta(days=7)).timestamp(), time.time() + 86400), abs=5
    )
    later = (due - timedelta(days=6)).timestamp()
    assert notices(redis, registry, notify, clock=lambda: later).send_due() == 1
    (reminder,) = notify.sent("visit_due")
    assert (
        case.counter_valid_until.strftime("%-d %B %Y")
        in reminder["body"]["personalisation"]["subject"]
    )
    assert notices(redis, registry, notify, clock=lambda: later + 60).send_due() == 0


def test_notify_down_is_tried_again_and_a_refusal_is_not(
    core: LifeEventRouter, redis: Redis, registry: Registry, notify: Notify
) -> None:
    sent = submit_to_core(core, "moving_house", contact_email=EMAIL, contact_mobile=MOBILE)
    notify.fail_next = [500, 400]  # email: Notify is down; text: refused for good
    now = time.time()
    assert notices(redis, registry, notify, clock=lambda: now).send_due() == 0
    noted = json.loads(CaseStore(redis).load(sent.ref).notices)
    assert noted == {"confirmation|email": 1, "confirmation|sms": "refused"}
    assert notices(redis, registry, notify, clock=lambda: now + 1).send_due() == 0, "not due yet"
    assert notices(redis, registry, notify, clock=lambda: now + 301).send_due() == 1
    assert [a["path"] for a in notify.accepted] == ["/v2/notifications/email"]


def test_without_a_notify_key_messages_go_to_the_outbox_which_an_operator_reads(
    core: LifeEventRouter, redis: Redis, registry: Registry, cli_env: dict[str, str]
) -> None:
    sent = submit_to_core(core, "moving_house", contact_email=EMAIL)
    look = Notices(redis, titles=lambda n: registry.get(n).title, settings=NotifySettings())
    assert isinstance(look.notifier, Outbox)
    assert look.send_due() == 1
    raw = redis.lrange(keys.outbox(sent.ref), 0, -1)
    assert raw and EMAIL.encode() not in b"".join(raw), "only part of the recipient is kept"
    shown = router_cli("outbox", env=cli_env)
    assert shown.returncode == 0, shown.stderr
    assert sent.display in shown.stdout and "s***@example.com" in shown.stdout
    assert EMAIL not in shown.stdout
    one = router_cli("outbox", "--case", sent.display, env=cli_env)
    assert "We have your report" in one.stdout


def test_erasing_a_case_takes_it_off_the_schedule_and_empties_its_outbox(
    core: LifeEventRouter, redis: Redis, registry: Registry, workers: Supervisor
) -> None:
    sent = submit_to_core(core, "death", contact_email=EMAIL)
    Notices(redis, titles=lambda n: registry.get(n).title, settings=NotifySettings()).send_due()
    wait_settled(redis, sent.ref)
    assert redis.exists(keys.outbox(sent.ref))
    Retention(redis).erase(sent.ref, BY_REQUEST)
    assert not redis.exists(keys.outbox(sent.ref))
    assert redis.zscore(keys.NOTICES, sent.ref) is None
    assert sent.ref.encode() not in redis.zrange(keys.OUTBOX_INDEX, 0, -1)


def test_real_workers_send_the_messages_through_notify(
    core: LifeEventRouter,
    redis: Redis,
    registry: Registry,
    notify: Notify,
    redis_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in notify.settings().items():
        monkeypatch.setenv(name, value)
    pool = Supervisor(redis_server.url_as("worker"), registry.names())
    pool.start()
    try:
        sent = submit_to_core(core, "death", contact_email=EMAIL, contact_mobile=MOBILE)
        deadline = time.monotonic() + 20
        while len(notify.sent(sent.ref)) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        pool.stop()
    names = sorted(a["body"]["reference"] for a in notify.sent(sent.ref))
    assert names == [
        f"{sent.ref}-all_told-email",
        f"{sent.ref}-all_told-sms",
        f"{sent.ref}-confirmation-email",
        f"{sent.ref}-confirmation-sms",
    ]
    assert notify.refused == []
    assert os.environ["NOTIFY_BASE_URL"] == notify.url


def test_an_outcome_marked_while_a_message_is_sent_is_not_put_off_a_day(
    core: LifeEventRouter, redis: Redis, registry: Registry
) -> None:
    """The last department told while the confirmation is on its way: the outcome brings
    the case's next look forward (ZADD XX), and the look that sent the confirmation must
    not then push it back a day, or 'everyone has been told' comes a day late."""
    sent = submit_to_core(core, "death", contact_email=EMAIL)
    outbox = Outbox(redis)
    marked: list[float] = []

    class MarkedMeanwhile:
        def send(self, message: Any) -> str:
            marked.append(time.time())  # what CaseStore.mark does with a final state
            redis.zadd(keys.NOTICES, {sent.ref: marked[-1]}, xx=True)
            return outbox.send(message)

    look = Notices(
        redis,
        titles=lambda n: registry.get(n).title,
        notifier=MarkedMeanwhile(),
        settings=NotifySettings(),
    )
    assert look.send_due() == 1  # the confirmation
    score = redis.zscore(keys.NOTICES, sent.ref)
    assert score is not None and score <= marked[-1] + 1, "put off until the next day"
