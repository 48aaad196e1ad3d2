"""The citizen's start page and the accessibility statement.

The error pages serve every blueprint, so channels/app.py registers them
(``_register_errors``).
"""

from __future__ import annotations

from flask import Blueprint, render_template

from router.catalogue import EVENTS

bp = Blueprint("pages", __name__)


@bp.get("/")
def start() -> str:
    return render_template("citizen/start.html", events=EVENTS.values())


@bp.get("/accessibility")
def accessibility() -> str:
    return render_template("citizen/accessibility.html")
