"""Citizen pages. The full journeys (one question per page) come with the web issue;
for now: the start page listing life events, and a case's status page."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext

from router import reference
from router.cases import STATE_LABELS
from router.catalogue import EVENTS
from router.exceptions import UnknownCase
from router.service import LifeEventRouter

bp = Blueprint("pages", __name__)


def core() -> LifeEventRouter:
    return current_app.extensions["router"]


@bp.get("/")
def start() -> str:
    return render_template("citizen/start.html", events=EVENTS.values())


@bp.get("/status/<ref>")
def status(ref: str) -> str:
    canonical = reference.normalise(ref)
    secret = request.args.get("s", "")
    if canonical is None:
        abort(404)
    try:
        case = core().case(canonical)
    except UnknownCase:
        abort(404)
    if not secret or not reference.secret_matches(secret, case.secret_hash):
        abort(404)  # a guessed reference alone reveals nothing, not even that it exists
    titles = {a.name: a.title for a in core().adapters}
    return render_template(
        "citizen/status.html",
        case=case,
        titles=titles,
        labels={k: gettext(v) for k, v in STATE_LABELS.items()},
        event=EVENTS[case.event_type],
    )


@bp.app_errorhandler(404)
def not_found(error: Exception) -> tuple[str, int]:
    return render_template("errors/404.html"), 404


@bp.app_errorhandler(500)
def server_error(error: Exception) -> tuple[str, int]:
    return render_template("errors/500.html"), 500
