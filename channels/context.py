"""What every view reaches for, defined once: the core, the signed-in member of staff,
and the case a reference in the address names (load-or-404, as the Flask tutorial's
``get_post``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, current_app, g, url_for

from router import reference
from router.assisted.staff import Staff
from router.cases import Case
from router.exceptions import UnknownCase
from router.service import LifeEventRouter


def core() -> LifeEventRouter:
    """The router core this app was built with (``create_app`` puts it in extensions)."""
    found: LifeEventRouter = current_app.extensions["router"]
    return found


def public_url_for(endpoint: str, **values: Any) -> str:
    """An absolute link to this service, on its configured public address
    (``TUO_PUBLIC_URL``) rather than whatever Host header a request came with (issue 13,
    row 17); without one, the request's host, which ``TRUSTED_HOSTS`` limits."""
    base = str(current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    if base:
        return base + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def current_staff() -> Staff | None:
    """The member of counter staff signed in for this request, if any (set by the
    counter's guard, for counter pages and the journey under /counter/report)."""
    found: Staff | None = g.get("staff")
    return found


def staff() -> Staff:
    """The signed-in member of staff, on a page the counter's guard lets through only
    for one."""
    found: Staff = g.staff
    return found


def find_case(ref: str) -> Case | None:
    """The case ``ref`` names, however a person typed it; None if the reference is
    malformed or no case has it."""
    canonical = reference.normalise(ref)
    if canonical is None:
        return None
    try:
        return core().case(canonical)
    except UnknownCase:
        return None


def case_or_404(ref: str, may_see: Callable[[str], bool] | None = None) -> Case:
    """The case ``ref`` names; a 404 if the reference is malformed, if ``may_see``
    (given the canonical reference) refuses it, or if no case has it."""
    canonical = reference.normalise(ref)
    if canonical is None or (may_see is not None and not may_see(canonical)):
        abort(404)
    case = find_case(canonical)
    if case is None:
        abort(404)
    return case
