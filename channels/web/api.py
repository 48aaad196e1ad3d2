"""A JSON API for partner services: submissions and their status, described by an
OpenAPI document at /api/v1/openapi.json.

Every call but the document's needs an API client's key (router.clients), sent as
``Authorization: Bearer <key>``: no key, a wrong one or a revoked one is a 401; a life
event the client may not send is a 403; over its rate, a 429 with Retry-After. A client
sees only the cases it sent (they are stored with the channel ``api:<name>``), and only
with each case's secret. Its Idempotency-Keys are its own.

Errors are JSON with one message per field, in the language the request asks for
(``?lang=cy`` or Accept-Language).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask_babel import get_locale, gettext
from werkzeug.exceptions import HTTPException

from channels.context import core, find_case, public_url_for
from channels.web import openapi
from router import reference
from router.clients import ApiClient, submission_digest
from router.exceptions import SubmissionKeyReused, ValidationFailed
from router.throttle import Throttle

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)

# RFC 6750's challenge: a missing key is told the scheme; a wrong one, that it is wrong.
REALM = 'Bearer realm="tell-us-once"'
# The query parameters the document gives (openapi.LANG); any other is refused.
QUERY_PARAMETERS = frozenset({"lang"})


def _problem(status: int, message: str, errors: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"message": message}
    if errors:
        body["errors"] = errors
    return jsonify(body), status


@bp.before_request
def _admit() -> Any:
    """Let in only a client with a valid key, within its rate (not for the document)."""
    if request.endpoint in ("api.document", None):
        return None
    scheme, _, key = request.headers.get("Authorization", "").strip().partition(" ")
    key = key.strip()
    admission = core().clients.admit(key) if scheme.lower() == "bearer" and key else None
    if admission is None or admission.client is None:
        response, status = _problem(
            401, gettext("Send a valid API key, as Authorization: Bearer followed by the key")
        )
        challenge = REALM + (', error="invalid_token"' if admission is not None else "")
        response.headers["WWW-Authenticate"] = challenge
        return response, status
    if admission.retry_after:
        log.warning("API client %s is over its rate", admission.client.name)
        response, status = _problem(
            429,
            gettext(
                "This API key has made too many requests. Wait for the seconds in the "
                "Retry-After header, then try again"
            ),
        )
        response.headers["Retry-After"] = str(admission.retry_after)
        return response, status
    g.api_client = admission.client
    unknown = sorted(set(request.args) - QUERY_PARAMETERS)
    if unknown:
        # A misspelt parameter (?lnag=cy) would otherwise be ignored without a word.
        return _problem(
            400,
            gettext(
                "Remove %(names)s from the address: the only query parameter this API "
                "takes is lang",
                names=", ".join(repr(name) for name in unknown),
            ),
        )
    return None


def _client() -> ApiClient:
    client: ApiClient = g.api_client
    return client


@bp.get("/openapi.json")
def document() -> Any:
    """The OpenAPI 3.1 document of this API (no key needed)."""
    return jsonify(openapi.document())


@bp.post("/submissions")
def submit() -> Any:
    client = _client()
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        # "[[[[..." nested deeper than the parser goes: not an object either.
        data = None
    if not isinstance(data, dict):
        return _problem(400, gettext("Send one JSON object with event, answers and consent"))
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key is not None and (len(key) > 200 or not key.isprintable()):
        return _problem(
            400, gettext("The Idempotency-Key header must be up to 200 printable characters")
        )
    event = data.get("event")
    if client.refuses(event):
        log.warning("API client %s may not send %s reports", client.name, event)
        return _problem(403, gettext("This API key may not send reports of that life event"))
    answers, consent = data.get("answers"), data.get("consent")
    try:
        result = core().submit(
            event,
            answers,
            consent,
            channel=client.channel,
            submission_key=client.submission_key(key) if key else None,
            submission_digest=submission_digest(event, answers, consent) if key else None,
            proofs=client.proofs_for(event),
            welsh=str(get_locale()) == "cy",  # the reporter's messages: ?lang=cy too
        )
    except ValidationFailed as failed:
        return _problem(
            422,
            gettext("There is a problem with the answers"),
            {field: gettext(message) for field, message in failed.errors.items()},
        )
    except SubmissionKeyReused:
        return _problem(
            422,
            gettext(
                "This Idempotency-Key was already used for a different submission. "
                "Send each new submission with a new key"
            ),
        )
    body: dict[str, Any] = {"reference": reference.display(result.ref), "created": result.created}
    if result.reported_already:
        body["reported_already"] = True
    if result.secret:
        body["secret"] = result.secret
        body["status_url"] = public_url_for(
            "status.show", ref=reference.display(result.ref), s=result.secret
        )
    return jsonify(body), 201 if result.created else 200


# Compared against when there is no case (or it is another client's), so a miss costs
# the same compare as a wrong secret (issue 13, row 14).
_NO_CASE_SECRET_HASH = reference.hash_secret("there is no case with this secret")


def secret_throttle() -> Throttle:
    """Wrong case secrets (and unknown references) per API client."""
    return core().throttle("api-case-secret", limit=20)


@bp.get("/cases/<ref>")
def case_status(ref: str) -> Any:
    canonical = reference.normalise(ref)
    secret = request.headers.get("X-Case-Secret", "")
    client = _client()
    case = find_case(canonical) if canonical is not None and secret else None
    # Another client's case is answered as no case at all: it learns nothing of it.
    mine = case is not None and client.sent(case.channel)
    stored = case.secret_hash if case is not None and mine else _NO_CASE_SECRET_HASH
    matches = reference.secret_matches(secret, stored)  # always one compare, hit or miss
    if case is None or not mine or not matches:
        # A right secret is never slowed; wrong ones are counted, and past the limit
        # refused for a while.
        wait = secret_throttle().attempt(client.name)
        if wait:
            response, status = _problem(
                429,
                gettext(
                    "This API key has sent too many wrong references or secrets. Wait "
                    "for the seconds in the Retry-After header, then try again"
                ),
            )
            response.headers["Retry-After"] = str(wait)
            return response, status
        return _problem(404, gettext("No report was found with that reference and secret"))
    return jsonify(
        {
            "reference": case.display_ref,
            "event": case.event_type,
            "deliveries": {
                name: {
                    "state": d.state.value,
                    "mode": d.mode,
                    "updated_at": d.updated_at,
                    "fields_sent": list(d.fields) if d.sent_at else [],
                    "sent_at": d.sent_at,
                }
                for name, d in case.deliveries.items()
            },
        }
    )


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Any:
    if error.code == 413:
        kib = int(current_app.config["MAX_CONTENT_LENGTH"]) // 1024
        return _problem(413, gettext("The request is too large: send at most %(kib)s KiB", kib=kib))
    return _problem(error.code or 500, error.description or error.name)
