"""The citizen's start page, the accessibility statement and the feedback page.

The error pages serve every blueprint, so channels/app.py registers them
(``_register_errors``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext

from channels.context import core
from channels.web.forms import FeedbackForm
from router.catalogue import EVENTS
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
    """The phase banner's feedback: how satisfied, and nothing else."""
    form = FeedbackForm()
    errors: list[dict[str, str]] = []
    if form.validate_on_submit():
        rating = request.form.get("rating", "")
        if rating in RATINGS:
            core().feedback.record(rating)
            return render_template("citizen/feedback_done.html")
        errors.append(
            {"text": gettext("Select how satisfied you are with this service"), "href": "#rating"}
        )
    ratings = [(value, gettext(words)) for value, words in RATINGS.items()]
    page = render_template("citizen/feedback.html", form=form, ratings=ratings, errors=errors)
    return page, (400 if errors else 200)
