"""The operators' console (/ops): each department's queue and what it settled in the last
hour (the figures `router queues` prints), the workers alive, the webhook departments,
and the failed deliveries with buttons to send them again: one, a department's, or all.

Behind the staff guard (channels.counter.views.guard): operators only. The live part
is refreshed by htmx every few seconds; without JavaScript the page says to refresh it.
Sending again is a POST with the CSRF token, audited (router.assisted.backoffice).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext

from channels.context import core, staff
from channels.counter.forms import TaskForm
from channels.presenters import adapter_titles, staff_audit, when
from router import reference

bp = Blueprint("ops", __name__, url_prefix="/ops")

POLL_SECONDS = 5
BREAKER_WORDS = {
    "closed": ("Working", "govuk-tag--green"),
    "open": ("Paused after repeated failures", "govuk-tag--red"),
    "half-open": ("Trying one delivery", "govuk-tag--yellow"),
}


def _seconds(value: float | None) -> str:
    """A time in seconds as an operator reads it; a dash for none."""
    if value is None:
        return "–"
    if value < 60:
        return gettext("%(s)s s", s=f"{value:.2f}".rstrip("0").rstrip(".") if value else "0")
    if value < 3600:
        return gettext("%(m)d min", m=round(value / 60))
    if value < 86400:
        return gettext("%(h)s h", h=f"{value / 3600:.1f}")
    return gettext("%(d)s d", d=f"{value / 86400:.1f}")


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
                "oldest": _seconds(f.oldest_seconds) if f.pending else "–",
                "p50": _seconds(f.p50_seconds),
                "p95": _seconds(f.p95_seconds),
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


@bp.get("/audit")
def audit_log() -> str:
    rows = staff_audit(core().audit_for_operations())
    return render_template("backoffice/audit.html", rows=rows)
