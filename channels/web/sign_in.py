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

import hashlib
import hmac
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

from channels.context import case_or_404, core, public_url_for
from channels.web import identity
from channels.web.access import allowed
from router.catalogue import EVENTS
from router.exceptions import UnknownCase
from router.trust import Confidence, Identity, same_name_key

bp = Blueprint("sign_in", __name__)
log = logging.getLogger(__name__)

PENDING = "sign_in"  # session: state -> reference of the case being proved
OUTCOME = "identity_outcome"  # session: reference -> how the last sign-in ended
# What the status page says afterwards (channels.presenters.IDENTITY_OUTCOMES).
OUTCOMES = (
    "released",
    "not_enough",
    "proved_before",
    "no_match",
    "no_identity",
    "cancelled",
    "failed",
)


def redirect_uri() -> str:
    return str(current_app.config.get("OIDC_REDIRECT_URI") or public_url_for("sign_in.callback"))


def begin(target: str) -> Response | None:
    """Send the browser to the provider, the sign-in bound to ``target`` ("case:<ref>"
    or "report:<event>") and to this session; None if the provider cannot be reached."""
    provider = identity.client()
    try:
        found = provider.create_authorization_url(
            redirect_uri(), **identity.authorization_params(g.get("lang", "en"))
        )
    except RequestException:
        log.warning("identity provider unreachable")
        return None
    provider.save_authorize_data(redirect_uri=redirect_uri(), **found)
    pending: dict[str, str] = session.setdefault(PENDING, {})
    pending[found["state"]] = target
    while len(pending) > 5:  # a session needs only its latest few sign-ins
        pending.pop(next(iter(pending)))
    session.modified = True
    return redirect(found["url"], 303)


@bp.post("/status/<ref>/prove-identity")
def start(ref: str) -> Response:
    """Send the citizen to the provider to prove who they are, for case ``ref``."""
    if not identity.configured():
        abort(404)
    case = case_or_404(ref, may_see=allowed)
    if not case.waiting_for("identity"):
        return redirect(url_for("status.show", ref=case.display_ref), 303)
    away = begin(f"case:{case.ref}")
    if away is None:
        _remember(case.ref, "failed")
        return redirect(url_for("status.show", ref=case.display_ref), 303)
    return away


@bp.get("/sign-in/callback")
def callback() -> Any:
    """Where the provider sends the citizen back, with a code, or an error."""
    state = request.args.get("state", "")
    pending: dict[str, str] = session.get(PENDING, {})
    target = pending.pop(state, None) if state else None
    if target is None and request.args.get("error") and pending and not state:
        # An error answer that left out the state (the development provider's "Deny"
        # does): it changes nothing, so take the citizen back to where their latest
        # sign-in started, and forget that sign-in.
        target = pending.pop(list(pending)[-1])
    if target is None or not identity.configured():
        # Not a sign-in this browser started, or one already used.
        return render_template("citizen/sign_in_problem.html"), 400
    session.modified = True
    kind, _, ref = target.partition(":")
    if kind == "report":
        return _before_sending(ref)
    if not allowed(ref):
        abort(404)
    try:
        case = core().case(ref)
    except UnknownCase:
        abort(404)
    who = _identity(identity.client())
    if isinstance(who, str):
        return _back(case.display_ref, ref, who)
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


# --- before sending: proving your identity from "check your answers" ------------------------

JOURNEYS = "journeys:journey"  # the online journeys in the session (channels.web.journey)


def _fingerprint(name: str, birthdate: str) -> str:
    """What the session keeps of the identity proved: a keyed hash of the name and date
    of birth (as compared), enough to tell whether the answers still match it."""
    key = current_app.secret_key
    secret = key if isinstance(key, bytes) else str(key).encode()
    data = f"{same_name_key(name)}|{birthdate}".encode()
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def _identity(provider: Any) -> Identity | str:
    """The identity the provider returned for this callback (the code exchanged, the ID
    token verified, userinfo read), or the outcome to show when there is none."""
    try:
        token = provider.authorize_access_token()
        info = provider.userinfo(token=token)
        return identity.identity_from(dict(token.get("userinfo") or {}), dict(info))
    except OAuthError as error:
        log.info("sign-in ended: %s", error.error or "refused")
        return "cancelled" if error.error == "access_denied" else "failed"
    except RequestException:
        log.warning("identity provider unreachable finishing a sign-in")
        return "failed"
    except identity.NoIdentity as why:
        log.info("sign-in returned no usable identity: %s", why)
        return "no_identity"


def _before_sending(event_name: str) -> Response:
    """A sign-in started from "check your answers": keep, for sending with the report,
    that the reporter proved their identity, if it matches the answers."""
    journey = session.get(JOURNEYS, {}).get(event_name)
    if event_name not in EVENTS or journey is None or journey.get("ref"):
        return redirect(url_for("pages.start"), 303)
    who = _identity(identity.client())
    if isinstance(who, str):
        outcome = who
    else:
        answers = {k: v for k, v in journey["answers"].items() if v != ""}
        if core().identity_matches(event_name, answers, who):
            journey["identity"] = {
                "issuer": who.issuer,
                "subject": who.subject,
                "confidence": who.confidence.name,
                "fingerprint": _fingerprint(who.full_name, who.birthdate),
            }
            outcome = "proved_before"
        else:
            journey.pop("identity", None)
            outcome = "no_match"
    journey["identity_outcome"] = outcome
    session.modified = True
    return redirect(url_for("journey.check", event_name=event_name), 303)


def journey_identity(event_name: str, journey: dict[str, Any]) -> Identity | None:
    """The identity proved from "check your answers", to send with the report, while
    the answers still name the person it matched (a changed name or date of birth
    drops it)."""
    held = journey.get("identity")
    if not held:
        return None
    reporter = EVENTS[event_name].reporter
    answers = journey["answers"]
    born = reporter.date_of_birth(answers)
    for name in reporter.names(answers):
        if hmac.compare_digest(_fingerprint(name, born), held["fingerprint"]):
            return Identity(
                issuer=held["issuer"],
                subject=held["subject"],
                confidence=Confidence[held["confidence"]],
                full_name=name,
                birthdate=born,
            )
    return None
