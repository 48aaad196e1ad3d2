"""The JSON API's OpenAPI 3.1 document, served at /api/v1/openapi.json.

Written by hand beside the views it describes (channels.web.api), from the same
catalogue of life events and delivery states; the tests validate every answer the API
gives them against it, and schemathesis fuzzes the API from it (tests/web).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from router import reference
from router.cases import DeliveryState
from router.catalogue import EVENTS

JSON = "application/json"
REFERENCE = f"^[{reference.ALPHABET}]{{4}}-[{reference.ALPHABET}]{{4}}-[{reference.ALPHABET}]$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(
    description: str, schema: str = "Problem", headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": _ref(schema)}},
    }
    if headers:
        response["headers"] = headers
    return response


UNAUTHORISED = _answer(
    "No API key, or one that is wrong or revoked.",
    headers={
        "WWW-Authenticate": {
            "description": 'The scheme to use: Bearer realm="tell-us-once"',
            "required": True,
            "schema": {"type": "string", "pattern": "^Bearer "},
        }
    },
)
TOO_MANY = _answer(
    "The client made more requests than its rate allows.",
    headers={
        "Retry-After": {
            "description": "Seconds until the client may make requests again.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
)
LANG = {
    "name": "lang",
    "in": "query",
    "required": False,
    "description": "The language of messages: en or cy (Welsh). Else Accept-Language. "
    "On a submission, also the language of what the reporter is sent.",
    "schema": {"type": "string"},
}


# A report of moving house, as the web journey would send it (dates may be given as
# days from today).
MOVING_HOUSE = {
    "event": "moving_house",
    "answers": {
        "full_name": "Siân O'Brien-Évans",
        "date_of_birth": "1984-07-12",
        "nino": "SX 12 34 56 C",
        "address_line_1": "14 Heol y Castell",
        "town": "Cardiff",
        "postcode": "CF10 1BH",
        "previous_postcode": "SW1A 2AA",
        "move_date": {"days_ago": 7},
        "has_driving_licence": "no",
    },
    "consent": ["council", "dwp", "hmrc"],
}


@cache
def document() -> dict[str, Any]:
    """The document (the same object every time: do not change it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tell us once: the JSON API for partner services",
            "version": "1.0.0",
            "description": (
                "Report a life event once for a person, and every organisation they agree "
                "to tell is told. Each partner service has its own key, from the service's "
                "operators (`router api-clients add`), scoped to the life events it may "
                "send and limited to a rate. Messages are in English, or in Welsh with "
                "`?lang=cy` or `Accept-Language: cy`."
            ),
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/api/v1/submissions": {
                "post": {
                    "operationId": "submit",
                    "summary": "Report a life event",
                    "description": (
                        "Validates and stores the report, and queues a delivery to each "
                        "organisation in `consent`; answers with the case's reference and, "
                        "the first time only, the secret that shows its status. The same "
                        "`Idempotency-Key` with the same body answers with the first "
                        "reference (200, `created: false`); with a different body, 422."
                    ),
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "Up to 200 printable characters, chosen by the "
                            "client; remembered for 7 days, for this client only.",
                            "schema": {"type": "string", "maxLength": 200},
                        },
                        LANG,
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            JSON: {
                                "schema": _ref("Submission"),
                                "examples": {"moving_house": {"value": MOVING_HOUSE}},
                            }
                        },
                    },
                    "responses": {
                        "201": _answer("The case was made.", "Submitted"),
                        "200": _answer(
                            "The Idempotency-Key was used before with this body: the first "
                            "case's reference, without its secret.",
                            "Submitted",
                        ),
                        "400": _answer(
                            "The body is not one JSON object, a header is bad, or a query "
                            "parameter other than lang was sent."
                        ),
                        "401": UNAUTHORISED,
                        "403": _answer("This client may not send reports of that life event."),
                        "413": _answer("The body is larger than 64 KiB: nothing was read."),
                        "422": _answer(
                            "The answers have problems (one message per field), or the "
                            "Idempotency-Key was used for a different submission."
                        ),
                        "429": TOO_MANY,
                    },
                }
            },
            "/api/v1/cases/{ref}": {
                "get": {
                    "operationId": "caseStatus",
                    "summary": "Where a case has got to, organisation by organisation",
                    "description": "Only for a case this client sent, with its secret.",
                    "parameters": [
                        {
                            "name": "ref",
                            "in": "path",
                            "required": True,
                            "description": "The case's reference, like ACDE-FGHJ-K.",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "X-Case-Secret",
                            "in": "header",
                            "required": True,
                            "description": "The secret the submission answered with.",
                            "schema": {"type": "string"},
                        },
                        LANG,
                    ],
                    "responses": {
                        "200": _answer("The case's status.", "CaseStatus"),
                        "400": _answer("A query parameter other than lang was sent."),
                        "401": UNAUTHORISED,
                        "404": _answer("No case this client sent has that reference and secret."),
                        "429": TOO_MANY,
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "document",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {JSON: {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The client's API key: Authorization: Bearer <key>.",
                }
            },
            "schemas": {
                "Submission": {
                    "type": "object",
                    "required": ["event", "answers", "consent"],
                    "properties": {
                        "event": {"type": "string", "enum": sorted(EVENTS)},
                        "answers": {
                            "type": "object",
                            "description": "The answers to the event's questions, by "
                            "field name (as the web form asks them).",
                        },
                        "consent": {
                            "type": "array",
                            "description": "The organisations the person agrees to tell.",
                            "items": {"type": "string"},
                        },
                    },
                },
                "Submitted": {
                    "type": "object",
                    "required": ["reference", "created"],
                    "additionalProperties": False,
                    "properties": {
                        "reference": {"type": "string", "pattern": REFERENCE},
                        "created": {"type": "boolean"},
                        "reported_already": {
                            "type": "boolean",
                            "description": (
                                "True for a death reported to us already: this report has "
                                "its own reference, and nobody is told again."
                            ),
                        },
                        "secret": {
                            "type": "string",
                            "description": "Shows the case's status; only in a 201.",
                        },
                        "status_url": {
                            "type": "string",
                            "format": "uri",
                            "description": "The status page, for the person.",
                        },
                    },
                },
                "CaseStatus": {
                    "type": "object",
                    "required": ["reference", "event", "deliveries"],
                    "additionalProperties": False,
                    "properties": {
                        "reference": {"type": "string", "pattern": REFERENCE},
                        "event": {"type": "string", "enum": sorted(EVENTS)},
                        "deliveries": {
                            "type": "object",
                            "additionalProperties": _ref("Delivery"),
                        },
                    },
                },
                "Delivery": {
                    "type": "object",
                    "required": ["state", "mode", "updated_at", "fields_sent", "sent_at"],
                    "additionalProperties": False,
                    "properties": {
                        "state": {"type": "string", "enum": [s.value for s in DeliveryState]},
                        "mode": {"type": "string", "enum": ["digital", "assisted"]},
                        "updated_at": {"type": "string"},
                        "fields_sent": {"type": "array", "items": {"type": "string"}},
                        "sent_at": {"type": "string", "description": "Empty until sent."},
                    },
                },
                "Problem": {
                    "type": "object",
                    "required": ["message"],
                    "additionalProperties": False,
                    "properties": {
                        "message": {"type": "string", "minLength": 1},
                        "documentation": {
                            "type": "string",
                            "description": "Where this document is, when the request "
                            "does not match it.",
                        },
                        "errors": {
                            "type": "object",
                            "description": "One message per field that has a problem.",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                },
            },
        },
    }
