"""The citizen's start page, the accessibility statement and the feedback page (whose
satisfaction question the confirmation page asks too).

The error pages serve every blueprint, so channels/app.py registers them
(``_register_errors``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext

from channels.context import core
from channels.web.forms import FeedbackForm
from router.catalogue import EVENTS
from router.exceptions import ValidationFailed
from router.feedback import RATINGS

bp = Blueprint("pages", __name__)


@bp.get("/")
def start() -> str:
    return render_template("citizen/start.html", events=EVENTS.values())


@bp.get("/accessibility")
def accessibility() -> str:
    return render_template("citizen/accessibility.html")


@bp.route("/feedback", methods=["GET", "POST"])
def feedback() -> Any:
    """The phase banner's feedback: how satisfied, and what could be better."""
    form = FeedbackForm()
    problems: dict[str, str] = {}
    if form.validate_on_submit():
        problems = take_feedback()
        if not problems:
            return render_template("citizen/feedback_done.html")
    view = satisfaction_form(url_for(".feedback"), problems, page=True)
    return render_template("citizen/feedback.html", **view), (400 if problems else 200)


def take_feedback() -> dict[str, str]:
    """Keep the satisfaction answer just posted (a rating and an optional comment,
    router.feedback); return what to put right in each field, nothing when it was kept."""
    try:
        core().feedback.record(request.form.get("rating", ""), request.form.get("comment", ""))
    except ValidationFailed as failed:
        return {name: gettext(message) for name, message in failed.errors.items()}
    return {}


def satisfaction_form(action: str, problems: dict[str, str], *, page: bool) -> dict[str, Any]:
    """What partials/satisfaction.html shows (posting to ``action``; ``page``: the
    question is the page's heading), and the page's error summary."""
    posted = request.form if problems else {}
    return {
        "satisfaction": {
            "action": action,
            "page": page,
            "errors": problems,
            "rating": posted.get("rating", ""),
            "comment": posted.get("comment", ""),
            "ratings": [(value, gettext(words)) for value, words in RATINGS.items()],
        },
        "errors": [{"text": message, "href": f"#{name}"} for name, message in problems.items()],
    }
