"""Proving your identity online after sending a report: sign in with the identity
provider (GOV.UK One Login, or the development provider), come back, and the deliveries
that waited for your identity go.

Only a browser that may already see the case's status page (channels.web.access) can
start it, with a POST form carrying its CSRF token. The sign-in is bound to that case and
that session: the ``state`` sent to the provider is remembered in the server-side
session beside the case's reference, used once, and the callback accepts no other.
Which way it ended (released, not strong enough, no match...) is remembered for the
status page to say once. No name or date of birth is kept or logged.
"""

from __future__ import annotations

import logging
from typing import Any

from authlib.integrations.base_client import OAuthError
from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from requests import RequestException
from werkzeug.wrappers import Response

from channels.context import case_or_404, core
from channels.web import identity
from channels.web.access import allowed
from router.exceptions import UnknownCase

bp = Blueprint("sign_in", __name__)
log = logging.getLogger(__name__)

PENDING = "sign_in"  # session: state -> reference of the case being proved
OUTCOME = "identity_outcome"  # session: reference -> how the last sign-in ended
# What the status page says afterwards (channels.presenters.IDENTITY_OUTCOMES).
OUTCOMES = ("released", "not_enough", "no_match", "no_identity", "cancelled", "failed")


def redirect_uri() -> str:
    return str(
        current_app.config.get("OIDC_REDIRECT_URI") or url_for("sign_in.callback", _external=True)
    )


@bp.post("/status/<ref>/prove-identity")
def start(ref: str) -> Response:
    """Send the citizen to the provider to prove who they are, for case ``ref``."""
    if not identity.configured():
        abort(404)
    case = case_or_404(ref, may_see=allowed)
    if not case.waiting_for("identity"):
        return redirect(url_for("status.show", ref=case.display_ref), 303)
    provider = identity.client()
    try:
        found = provider.create_authorization_url(
            redirect_uri(), **identity.authorization_params(g.get("lang", "en"))
        )
    except RequestException:
        log.warning("identity provider unreachable for case %s", case.ref)
        _remember(case.ref, "failed")
        return redirect(url_for("status.show", ref=case.display_ref), 303)
    provider.save_authorize_data(redirect_uri=redirect_uri(), **found)
    pending: dict[str, str] = session.setdefault(PENDING, {})
    pending[found["state"]] = case.ref
    while len(pending) > 5:  # a session needs only its latest few sign-ins
        pending.pop(next(iter(pending)))
    session.modified = True
    return redirect(found["url"], 303)


@bp.get("/sign-in/callback")
def callback() -> Any:
    """Where the provider sends the citizen back, with a code, or an error."""
    state = request.args.get("state", "")
    pending: dict[str, str] = session.get(PENDING, {})
    ref = pending.pop(state, None) if state else None
    if ref is None and request.args.get("error") and pending and not state:
        # An error answer that left out the state (the development provider's "Deny"
        # does): it changes nothing, so take the citizen back to their latest sign-in's
        # report, and forget that sign-in.
        ref = pending.pop(list(pending)[-1])
    if ref is None or not identity.configured():
        # Not a sign-in this browser started, or one already used.
        return render_template("citizen/sign_in_problem.html"), 400
    session.modified = True
    if not allowed(ref):
        abort(404)
    try:
        case = core().case(ref)
    except UnknownCase:
        abort(404)
    provider = identity.client()
    try:
        token = provider.authorize_access_token()
        claims = token.get("userinfo") or {}
        info = provider.userinfo(token=token)
        who = identity.identity_from(dict(claims), dict(info))
    except OAuthError as error:
        outcome = "cancelled" if error.error == "access_denied" else "failed"
        log.info("sign-in for case %s ended: %s", ref, error.error or "refused")
        return _back(case.display_ref, ref, outcome)
    except RequestException:
        log.warning("identity provider unreachable finishing sign-in for case %s", ref)
        return _back(case.display_ref, ref, "failed")
    except identity.NoIdentity as why:
        log.info("sign-in for case %s returned no usable identity: %s", ref, why)
        return _back(case.display_ref, ref, "no_identity")
    if not core().prove_identity(ref, who):
        log.info("sign-in for case %s: the identity does not match the report", ref)
        return _back(case.display_ref, ref, "no_match")
    still = core().case(ref).waiting_for("identity")
    log.info("sign-in for case %s matched at %s", ref, who.confidence.name)
    return _back(case.display_ref, ref, "not_enough" if still else "released")


def _remember(ref: str, outcome: str) -> None:
    outcomes: dict[str, str] = session.setdefault(OUTCOME, {})
    outcomes[ref] = outcome
    session.modified = True


def _back(display_ref: str, ref: str, outcome: str) -> Response:
    _remember(ref, outcome)
    return redirect(url_for("status.show", ref=display_ref) + "#identity", 303)


def take_outcome(ref: str) -> str:
    """How the last sign-in for case ``ref`` ended, once ("" if none)."""
    outcomes: dict[str, str] = session.get(OUTCOME, {})
    found = outcomes.pop(ref, "")
    if found:
        session.modified = True
    return found
