"""The published performance page (/performance): public, in English and Welsh, whole
without JavaScript. The Service Standard's four figures (digital take-up, completion
rate, user satisfaction, cost per transaction) and the time to tell each organisation,
for the last 30 whole days: each a chart (an SVG image drawn by pygal,
channels.web.charts) with a table beside it, and the same figures as CSV and JSON.

The figures come from the core (``LifeEventRouter.performance``, router.performance):
counts only, nothing about anyone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import Blueprint, Response, abort, g, render_template, url_for
from flask_babel import format_date, gettext

from channels.context import core
from channels.presenters import adapter_titles, money, seconds_words
from channels.web import charts
from router.feedback import RATINGS
from router.performance import GREAT, Day, Figures

bp = Blueprint("performance", __name__)

CHARTS = (
    "digital-take-up",
    "completion-rate",
    "user-satisfaction",
    "cost-per-transaction",
    "time-to-tell",
)
# The chart image's own policy, for when it is opened on its own: nothing to run or
# fetch, only its own styles.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"


def percent(share: float | None) -> str:
    """A share (0 to 1) as a whole percentage; a dash where there was nothing to count."""
    return "–" if share is None else f"{share * 100:.0f}%"


def pence_money(pence: int | None) -> str:
    return "–" if pence is None else money(pence)


def _date(day: str, pattern: str = "d MMMM yyyy") -> str:
    return str(format_date(date.fromisoformat(day), pattern))


def _period(figures: Figures) -> dict[str, str]:
    return {
        "first": _date(figures.first),
        "last": _date(figures.last),
        "days": str(len(figures.days)),
    }


@bp.get("/performance")
def page() -> str:
    """The figures, their charts and tables, and the downloads."""
    figures = core().performance()
    titles = adapter_titles(core().adapters)
    period = figures.period
    lang = g.get("lang", "en")
    return render_template(
        "citizen/performance.html",
        figures=figures,
        period=period,
        when=_period(figures),
        great=percent(GREAT),
        days=[(_date(d.day), d) for d in figures.days],
        titles=titles,
        ratings=[(value, gettext(words)) for value, words in RATINGS.items()],
        charts={name: url_for(".chart", name=name, lang=lang) for name in CHARTS},
        alt=_alternatives(figures, period, titles),
        percent=percent,
        money=pence_money,
        seconds=seconds_words,
    )


def _alternatives(figures: Figures, period: Day, titles: dict[str, str]) -> dict[str, str]:
    """Each chart's text alternative: what it shows and the period's figure; the table
    beside it gives each day's."""
    when = _period(figures)
    great = percent(GREAT)
    slowest = [
        titles.get(name, name)
        for name, told in sorted(period.tell.items(), key=lambda item: -(item[1].p95_seconds or 0))
        if told.p95_seconds is not None
    ]
    return {
        "digital-take-up": gettext(
            "Line chart of the digital take-up each day from %(first)s to %(last)s, with "
            "the government’s ‘great’ bar of %(great)s. Over the %(days)s days it was "
            "%(value)s. The table after the chart gives each day’s figures.",
            value=percent(period.digital_take_up),
            great=great,
            **when,
        ),
        "completion-rate": gettext(
            "Line chart of the completion rate each day from %(first)s to %(last)s, with "
            "the government’s ‘great’ bar of %(great)s. Over the %(days)s days it was "
            "%(value)s. The table after the chart gives each day’s figures.",
            value=percent(period.completion_rate),
            great=great,
            **when,
        ),
        "user-satisfaction": gettext(
            "Line chart of user satisfaction each day from %(first)s to %(last)s, with "
            "the government’s ‘great’ bar of %(great)s. Over the %(days)s days it was "
            "%(value)s. The table after the chart gives each day’s figures.",
            value=percent(period.satisfaction),
            great=great,
            **when,
        ),
        "cost-per-transaction": gettext(
            "Bar chart of the cost per transaction each day from %(first)s to %(last)s. "
            "Over the %(days)s days it was %(value)s. The table after the chart gives "
            "each day’s figures.",
            value=pence_money(period.cost_per_transaction_pence),
            **when,
        ),
        "time-to-tell": gettext(
            "Line chart of the 95th percentile time to tell each organisation, each day "
            "from %(first)s to %(last)s, on a logarithmic scale. Slowest first over the "
            "%(days)s days: %(names)s. The tables after the chart give the figures.",
            names=", ".join(slowest) or "–",
            **when,
        ),
    }


@bp.get("/performance/<name>.svg")
def chart(name: str) -> Response:
    """One chart as an SVG image, its words in the page's language (``?lang=``)."""
    if name not in CHARTS:
        abort(404)
    figures = core().performance()
    labels = [_date(d.day, "d MMM") for d in figures.days]
    no_data = gettext("No figures for these days")
    great = (gettext("The ‘great’ bar: %(great)s", great=percent(GREAT)), GREAT)
    share: dict[str, tuple[str, Callable[[Day], float | None]]] = {
        "digital-take-up": (gettext("Digital take-up"), lambda d: d.digital_take_up),
        "completion-rate": (gettext("Completion rate"), lambda d: d.completion_rate),
        "user-satisfaction": (gettext("User satisfaction"), lambda d: d.satisfaction),
    }
    if name in share:
        title, figure = share[name]
        svg = charts.share_chart(
            title, labels, (title, [figure(d) for d in figures.days]), great, no_data
        )
    elif name == "cost-per-transaction":
        title = gettext("Cost per transaction")
        costs = [
            None if d.cost_per_transaction_pence is None else d.cost_per_transaction_pence / 100
            for d in figures.days
        ]
        svg = charts.bar_chart(
            title, labels, (title, costs), lambda pounds: money(round(pounds * 100)), no_data
        )
    else:
        title = gettext("Time to tell each organisation, 95th percentile")
        titles = adapter_titles(core().adapters)
        lines = [
            (titles.get(dept, dept), [d.tell[dept].p95_seconds for d in figures.days])
            for dept in figures.departments
        ]
        svg = charts.lines_chart(title, labels, lines, seconds_words, no_data)
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = SVG_POLICY
    return response


def _download_name(figures: Figures, ext: str) -> str:
    return f"tell-us-once-performance-{figures.first}-to-{figures.last}.{ext}"


@bp.get("/performance.csv")
def as_csv() -> Response:
    """The figures as CSV: a row a day, then the period's (see docs/performance.md)."""
    figures = core().performance()
    response = Response(figures.as_csv(), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{_download_name(figures, "csv")}"'
    )
    return response


@bp.get("/performance.json")
def as_json() -> Response:
    """The figures as JSON (rates 0 to 1, money in pence, times in seconds)."""
    figures = core().performance()
    response = Response(figures.as_json(), mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'inline; filename="{_download_name(figures, "json")}"'
    )
    return response
