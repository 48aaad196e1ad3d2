"""Issue 16, item 6: the published performance page (/performance), its downloads, and
what the web front door counts for it: journeys started, and the satisfaction question
on the confirmation page."""

from __future__ import annotations

import csv
import io
import logging
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from babel.dates import format_date
from babel.support import Translations
from bs4 import BeautifulSoup
from click.testing import CliRunner
from flask.testing import FlaskClient
from redis import Redis

from router import keys, reference, stats
from router.adapters import mock_gro
from router.cases import DeliveryState
from router.cli import main
from router.delivery.worker import Supervisor
from router.redis_server import RedisServer
from router.service import LifeEventRouter
from tests.support.counter import StaffClient
from tests.support.journeys import REF_SHAPE, submit_sample
from tests.support.pages import csrf_token, errors_of, heading, path_of, soup, text
from tests.support.performance import craft
from tests.support.processes import wait_settled
from tests.support.redis_dump import case_keys, keys_holding, written_keys

QUESTION = "Overall, how did you feel about the service you received today?"
TRANSLATIONS = Path(__file__).resolve().parents[2] / "channels" / "translations"


def translate(lang: str, msgid: str) -> str:
    """The catalogue's own wording (it must have one), so the test follows the translators."""
    if lang == "en":
        return msgid
    found = Translations.load(str(TRANSLATIONS), [lang]).gettext(msgid)
    assert found != msgid, f"{msgid!r} has no {lang} translation"
    return found


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


# --- the satisfaction question on the confirmation page ----------------------------------

DONE = "/report/moving_house/done"


def test_the_confirmation_page_asks_how_they_felt_and_keeps_a_comment_apart_from_the_report(
    client: FlaskClient, core: LifeEventRouter, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sent = submit_sample(client, "moving_house")
    page = soup(client.get(DONE))
    form = page.select_one("form#feedback")
    assert form is not None and form["action"] == DONE
    assert text(form.select_one("legend")) == QUESTION
    assert len(form.select("input[name=rating]")) == 5
    assert form.select_one("textarea[name=comment]") is not None
    case_before = redis.hgetall(keys.case(sent.ref))
    history_before = redis.lrange(keys.history(sent.ref), 0, -1)

    said = f"Quick and clear. My reference is {sent.display}, write to me at ann@example.com"
    token = csrf_token(page)
    answer = client.post(DONE, data={"csrf_token": token, "rating": "satisfied", "comment": said})
    assert answer.status_code == 302 and path_of(answer.location) == DONE
    thanked = soup(client.get(DONE))
    assert thanked.select_one("form#feedback") is None
    assert text(thanked.select_one("#feedback")).startswith("Thank you for your feedback")
    assert REF_SHAPE.match(text(thanked.select_one(".govuk-panel strong")))

    # The comment is kept on its own, with the day and the rating: no reference, no
    # time, no contact; the report is as it was.
    assert core.feedback.comments() == [
        {
            "day": _today(),
            "rating": "satisfied",
            "text": "Quick and clear. My reference is [removed], write to me at [removed]",
        }
    ]
    assert keys_holding(redis, "Quick and clear") == {keys.FEEDBACK_COMMENTS}
    assert redis.hgetall(keys.case(sent.ref)) == case_before
    assert redis.lrange(keys.history(sent.ref), 0, -1) == history_before
    assert "Quick and clear" not in caplog.text
    (day,) = stats.read(redis, [_today()])
    assert day.ratings == {"satisfied": 1}
    assert core.feedback.counts()["satisfied"] == 1


def test_a_wrong_satisfaction_answer_gets_the_error_summary_on_the_confirmation_page(
    client: FlaskClient, core: LifeEventRouter, redis: Redis
) -> None:
    submit_sample(client, "moving_house")
    token = csrf_token(soup(client.get(DONE)))
    for data, message, where in (
        ({}, "Select how satisfied you are with this service", "#rating"),
        ({"rating": "ecstatic"}, "Select how satisfied you are with this service", "#rating"),
        (
            {"rating": "satisfied", "comment": "x" * 1201},
            "Your comment must be 1,200 characters or fewer",
            "#comment",
        ),
    ):
        page = soup(client.post(DONE, data={"csrf_token": token, **data}))
        assert errors_of(page) == [message], data
        assert page.select_one(".govuk-error-summary a")["href"] == where
        assert page.select_one(".govuk-panel strong") is not None  # still the confirmation
    assert client.post(DONE, data={"csrf_token": token}).status_code == 400
    assert sum(core.feedback.counts().values()) == 0 and core.feedback.comments() == []
    assert stats.read(redis, [_today()])[0].ratings == {}


# --- the page and its downloads ----------------------------------------------------------------

FIGURES = ("digital-take-up", "completion-rate", "user-satisfaction", "cost-per-transaction")
CHARTS = (*FIGURES, "time-to-tell")


def _yesterday() -> str:
    return (datetime.now(UTC).date() - timedelta(days=1)).isoformat()


def _cell(page: BeautifulSoup, day: str, figure: str) -> str:
    return text(page.select_one(f"tr[data-day='{day}'] td[data-figure='{figure}']"))


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_the_performance_page_shows_each_figure_as_a_chart_and_a_table(
    client: FlaskClient, redis: Redis, lang: str
) -> None:
    yesterday = _yesterday()
    craft(redis, yesterday)
    page = soup(client.get(f"/performance?lang={lang}"))  # nobody signed in
    assert page.html["lang"] == lang
    assert heading(page) == translate(lang, "Service performance")
    assert page.select_one("#sample-data") is None
    # The period's figures: yesterday's and the day before's counts added up.
    summary = [[text(td) for td in tr.select("td")] for tr in page.select("#summary tbody tr")]
    assert summary == [
        ["73%", translate(lang, "about %(great)s") % {"great": "80%"}],
        ["75%", translate(lang, "about %(great)s") % {"great": "80%"}],
        ["80%", translate(lang, "about %(great)s") % {"great": "80%"}],
        ["£0.48", "–"],
    ]
    for figure, shown in zip(
        ("digital_take_up", "completion_rate", "satisfaction", "cost_per_transaction_pence"),
        ("80%", "75%", "80%", "£0.48"),
        strict=True,
    ):
        assert _cell(page, yesterday, figure) == shown
    dwp = page.select_one("#time-to-tell-period tr[data-department='dwp']")
    assert [text(td) for td in dwp.select("td")] == [
        "22",
        *(seconds(lang, s) for s in ("1.15", "19")),
    ]
    # Each chart an image of our own address, with words in the page's language.
    images = {img.find_parent("figure")["id"]: img for img in page.select("figure img")}
    assert sorted(images) == sorted(f"chart-{name}" for name in CHARTS)
    for name in CHARTS:
        img = images[f"chart-{name}"]
        assert img["src"] == f"/performance/{name}.svg?lang={lang}"
        assert len(img["alt"]) > 80, img["alt"]
        svg = client.get(img["src"])
        assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
        body = svg.get_data(as_text=True)
        assert (
            "<script" not in body and "default-src 'none'" in svg.headers["Content-Security-Policy"]
        )
    take_up = client.get(f"/performance/digital-take-up.svg?lang={lang}").get_data(as_text=True)
    assert f"<title>{translate(lang, 'Digital take-up')}</title>" in take_up
    month = format_date(date.fromisoformat(yesterday), "MMM", locale=lang)
    assert month in take_up
    assert client.get("/performance/nothing.svg").status_code == 404


def test_with_nothing_counted_yet_the_page_and_its_charts_say_so(client: FlaskClient) -> None:
    page = soup(client.get("/performance"))
    assert [text(td) for td in page.select("#summary tbody td")][::2] == ["–"] * 4
    for name in CHARTS:
        svg = client.get(f"/performance/{name}.svg?lang=cy").get_data(as_text=True)
        assert translate("cy", "No figures for these days") in svg, name
    assert client.get("/performance.json").get_json()["period_figures"]["satisfaction"] is None


def seconds(lang: str, value: str) -> str:
    return translate(lang, "%(s)s s") % {"s": value}


def test_the_downloads_say_what_the_page_says(client: FlaskClient, redis: Redis) -> None:
    yesterday = _yesterday()
    craft(redis, yesterday)
    page = soup(client.get("/performance"))
    links = [a["href"] for a in page.select("#downloads a")]
    assert links == ["/performance.csv", "/performance.json"]
    as_csv = client.get(links[0])
    assert as_csv.mimetype == "text/csv" and "attachment" in as_csv.headers["Content-Disposition"]
    rows = {row["date"]: row for row in csv.DictReader(io.StringIO(as_csv.get_data(as_text=True)))}
    as_json = client.get(links[1]).get_json()
    days = {day["date"]: day for day in as_json["days"]}
    assert len(rows) == 31 and len(days) == 30 and as_json["sample_data"] is False
    for day in days:
        row, data = rows[day], days[day]
        for figure in ("digital_take_up", "completion_rate", "satisfaction"):
            share = None if row[figure] == "" else float(row[figure])
            assert share == data[figure]
            assert _cell(page, day, figure) == ("–" if share is None else f"{share * 100:.0f}%")
        cost = row["cost_per_transaction_pence"]
        assert (int(cost) if cost else None) == data["cost_per_transaction_pence"]
        assert _cell(page, day, "cost_per_transaction_pence") == (
            f"£0.{int(cost):02d}" if cost else "–"
        )
    assert (
        rows["total"]["reports_total"] == "12" == str(as_json["period_figures"]["reports"]["total"])
    )


def test_router_demo_seed_fills_the_page_with_sample_figures_and_nothing_about_anyone(
    client: FlaskClient, core: LifeEventRouter, redis: Redis, redis_server: RedisServer
) -> None:
    runner = CliRunner(env={"REDIS_URL": redis_server.url_as("cli")})
    seeded = runner.invoke(main, ["demo", "seed", "--days", "30"])
    assert seeded.exit_code == 0, seeded.output
    assert "Sample figures for 30 days" in seeded.output
    first = core.performance()
    again = runner.invoke(main, ["demo", "seed", "--days", "30"])
    assert "had them already" in again.output
    assert core.performance().as_dict() == first.as_dict()  # seeding twice changes nothing

    page = soup(client.get("/performance"))
    assert text(page.select_one("#sample-data")).endswith(
        "They were made up to show how this page works, by the command router demo seed. "
        "They are not how the service performed."
    )
    assert first.sample and all(day.reports_total > 0 for day in first.days)
    period = first.period
    for share in (period.digital_take_up, period.completion_rate, period.satisfaction):
        assert share is not None and 0.5 < share < 1
    assert period.cost_per_transaction_pence and period.cost_per_transaction_pence > 40
    assert all(told.delivered and told.p95_seconds for told in period.tell.values())
    assert core.feedback.comments()  # a few comments, kept as the page keeps them
    # The money went through the ledger: each month's statements reconcile.
    for month in sorted({day.day[:7] for day in first.days}):
        assert core.reconcile(month).balanced and core.reconcile(month).entries
    # Counts and made-up references only: no case, no history, no answer.
    assert written_keys(redis) and case_keys(redis) == []
    prefixes = ("stats:", "outcomes:", "ledger:", "feedback:")
    assert [k for k in written_keys(redis) if not k.startswith(prefixes)] == []


def test_drawing_charts_leaves_no_import_hook_without_find_spec() -> None:
    """pygal's map-plugin hook on sys.meta_path made every later import of a missing
    module warn (ImportWarning: the API fuzz test failed on it): charts takes it off."""
    import channels.web.charts  # noqa: F401 - imported for what importing it does

    assert all(hasattr(finder, "find_spec") for finder in sys.meta_path)
    with pytest.raises(ImportError):
        __import__("no_such_module_anywhere")  # no ImportWarning on the way


def test_router_demo_reports_sends_sample_reports_whose_organisations_are_told(
    redis: Redis, redis_server: RedisServer, workers: Supervisor
) -> None:
    """Traffic for a demonstration (an outage on /ops, say): each report comes from its
    sample reporter signed in, so it does not wait for a proof of identity."""
    runner = CliRunner(env={"REDIS_URL": redis_server.url_as("cli")})
    sent = runner.invoke(main, ["demo", "reports", "--count", "2", "--event", "retiring"])
    assert sent.exit_code == 0, sent.output
    lines = sent.output.splitlines()
    assert len(lines) == 2 and all(line.endswith("retiring") for line in lines)
    displays = [line.split()[0] for line in lines]
    for display in displays:
        case = wait_settled(redis, reference.normalise(display) or display)
        assert {d.state for d in case.deliveries.values()} == {DeliveryState.DELIVERED}
        assert case.channel == "web"
    wrong = runner.invoke(main, ["demo", "reports", "--event", "no_such_event"])
    assert wrong.exit_code == 2 and "no_such_event" in wrong.output
    # A register that does not hold the sample death: said in one line, not a traceback.
    redis.delete(mock_gro.ENTRIES, mock_gro.BY_ENTRY)
    refused = runner.invoke(main, ["demo", "reports", "--event", "death"])
    assert refused.exit_code == 1 and "as `router up` seeds it" in refused.output
    assert "Traceback" not in refused.output
