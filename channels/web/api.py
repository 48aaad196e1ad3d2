"""A JSON API for submissions and status, for other services and the load tests.

Errors are JSON with one message per field, in the language the request asks for.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request, url_for
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from channels.context import core, find_case
from router import reference
from router.exceptions import ValidationFailed

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _problem(status: int, message: str, errors: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"message": message}
    if errors:
        body["errors"] = errors
    return jsonify(body), status


@bp.post("/submissions")
def submit() -> Any:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _problem(400, gettext("Send one JSON object with event, answers and consent"))
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key is not None and (len(key) > 200 or not key.isprintable()):
        return _problem(
            400, gettext("The Idempotency-Key header must be up to 200 printable characters")
        )
    try:
        result = core().submit(
            data.get("event"),
            data.get("answers"),
            data.get("consent"),
            channel="api",
            submission_key=key,
        )
    except ValidationFailed as failed:
        return _problem(
            422,
            gettext("There is a problem with the answers"),
            {field: gettext(message) for field, message in failed.errors.items()},
        )
    body: dict[str, Any] = {"reference": reference.display(result.ref), "created": result.created}
    if result.secret:
        body["secret"] = result.secret
        body["status_url"] = url_for(
            "status.show", ref=reference.display(result.ref), s=result.secret, _external=True
        )
    return jsonify(body), 201 if result.created else 200


@bp.get("/cases/<ref>")
def case_status(ref: str) -> Any:
    canonical = reference.normalise(ref)
    secret = request.headers.get("X-Case-Secret", "")
    not_found = _problem(404, gettext("No case was found with that reference and secret"))
    case = find_case(canonical) if canonical is not None and secret else None
    if case is None:
        return not_found
    if not reference.secret_matches(secret, case.secret_hash):
        return not_found
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
    return _problem(error.code or 500, error.description or error.name)
