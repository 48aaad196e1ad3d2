"""The operators' console (/ops): each department's queue and what it settled in the last
hour (the figures `router queues` prints), the workers alive, the webhook departments,
and the failed deliveries with buttons to send them again: one, a department's, or all.

Behind the staff guard (channels.counter.views.guard): operators only. The live part
is refreshed by htmx every few seconds; without JavaScript the page says to refresh it.
Sending again is a POST with the CSRF token, audited (router.assisted.backoffice).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from werkzeug.wrappers import Response

from channels.context import core, staff
from channels.counter.forms import TaskForm
from channels.presenters import (
    adapter_titles,
    money,
    seconds_words,
    staff_audit,
    statement_view,
    when,
)
from router import reference
from router.exceptions import RouterError

bp = Blueprint("ops", __name__, url_prefix="/ops")

POLL_SECONDS = 5
BREAKER_WORDS = {
    "closed": ("Working", "govuk-tag--green"),
    "open": ("Paused after repeated failures", "govuk-tag--red"),
    "half-open": ("Trying one delivery", "govuk-tag--yellow"),
}


def _live() -> dict[str, Any]:
    titles = adapter_titles(core().adapters)
    departments = []
    for f in core().queues():
        words, colour = BREAKER_WORDS.get(f.breaker, (f.breaker, "govuk-tag--grey"))
        departments.append(
            {
                "name": f.department,
                "title": titles.get(f.department, f.department),
                "breaker": gettext(words),
                "colour": colour,
                "figures": f,
                "oldest": seconds_words(f.oldest_seconds) if f.pending else "–",
                "p50": seconds_words(f.p50_seconds),
                "p95": seconds_words(f.p95_seconds),
            }
        )
    dead = [
        {
            "id": delivery,
            "case": reference.display(entry.get("case", "")) if entry.get("case") else "",
            "department": entry.get("department", ""),
            "title": titles.get(entry.get("department", ""), entry.get("department", "")),
            "reason": entry.get("reason", ""),
            "at": when(entry.get("at", "")),
        }
        for delivery, entry in core().dead_letters().items()
    ]
    return {
        "departments": departments,
        "workers": sorted(core().workers_alive().items()),
        "dead": dead,
        "failed_departments": sorted({d["department"] for d in dead}),
        "form": TaskForm(),
        "poll_seconds": POLL_SECONDS,
        "titles": titles,
    }


@bp.get("")
def console() -> str:
    webhooks = [
        {"name": w.name, "title": w.title or w.name, "url": w.url, "timeout": w.timeout}
        for w in core().webhooks()
    ]
    return render_template("backoffice/console.html", webhooks=webhooks, **_live())


@bp.get("/live")
def live() -> str:
    """The part of the console htmx refreshes; a full page without JavaScript."""
    if request.headers.get("HX-Request") != "true":
        return console()
    return render_template("backoffice/console_live.html", **_live())


@bp.post("/replay")
def replay() -> Any:
    """Send failed deliveries again: ``delivery`` (one), ``department`` (its every
    failed one), or ``all``."""
    form = TaskForm()
    if not form.validate_on_submit():
        return redirect(url_for(".console"))
    operations = core().operations
    if request.form.get("all"):
        targets = operations.failed()
    elif request.form.get("department"):
        targets = operations.failed(request.form["department"])
    else:
        wanted = request.form.get("delivery", "")
        targets = [wanted] if wanted in core().dead_letters() else []
    replayed, refused = operations.replay(targets, staff())
    if replayed:
        flash(
            ngettext(
                "%(num)d failed delivery is being sent again.",
                "%(num)d failed deliveries are being sent again.",
                len(replayed),
            )
        )
    if refused or not targets:
        flash(gettext("Nothing to send again: those deliveries are no longer failed."))
    return redirect(url_for(".console") + "#failed")


def _month(default: str | None = None) -> tuple[str, list[dict[str, str]]]:
    """The month asked for (``?month=YYYY-MM``), or the latest with entries, or this
    one; and an error for the page if what was asked for is not a month."""
    months = core().ledger_months()
    asked = request.args.get("month", "").strip()
    if not asked:
        return (months[-1] if months else default or _this_month()), []
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", asked):
        message = gettext("Enter a month as a year and a month, like 2026-12")
        return (months[-1] if months else _this_month()), [{"text": message, "href": "#month"}]
    return asked, []


def _this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


@bp.get("/statements")
def statements() -> Any:
    """Every party's statement for a month, and whether the month reconciles."""
    month, errors = _month()
    check = core().reconcile(month)
    rows = [statement_view(s) for s in check.statements]
    return render_template(
        "backoffice/statements.html",
        month=month,
        months=core().ledger_months(),
        rows=rows,
        balanced=check.balanced,
        ledger_total=money(check.ledger_pence),
        net_sum=money(check.net_sum_pence),
        entries=check.entries,
        tariff=core().tariff(),
        errors=errors,
    ), (400 if errors else 200)


def _statement_or_404(month: str, party: str) -> Any:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        abort(404)
    try:
        return core().statement(month, party)
    except RouterError:
        abort(404)


@bp.get("/statements/<month>/<party>")
def statement(month: str, party: str) -> Any:
    found = _statement_or_404(month, party)
    return render_template(
        "backoffice/statement.html",
        statement=statement_view(found),
        csv_url=url_for(".statement_csv", month=month, party=party),
        tariff=core().tariff(),
        each=money(core().tariff().saved.pence_per_contact),
    )


@bp.get("/statements/<month>/<party>.csv")
def statement_csv(month: str, party: str) -> Response:
    _statement_or_404(month, party)
    body = core().statement_csv(month, party)
    name = f"statement-{month}-{party.replace(':', '-')}.csv"
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/audit")
def audit_log() -> str:
    rows = staff_audit(core().audit_for_operations())
    return render_template("backoffice/audit.html", rows=rows)
