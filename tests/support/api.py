"""The JSON API as a partner service uses it: a key of its own, and every answer checked
against the API's OpenAPI document (channels/web/openapi.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from redis import Redis
from werkzeug.test import TestResponse

from channels.web import openapi
from router.catalogue import EVENTS
from router.clients import ApiClients

# Plenty for any test that is not about the rate.
GENEROUS = "100000/minute"


def api_key(
    redis: Redis,
    name: str = "partner",
    events: Iterable[str] = tuple(EVENTS),
    vouches: Iterable[str] = (),
    rate: str = GENEROUS,
) -> str:
    """A new API client's key (as `router api-clients add` makes one)."""
    _client, key = ApiClients(redis).add(name, events, vouches, rate)
    return key


def bearer(key: str, **more: str) -> dict[str, str]:
    """Headers that present ``key`` (and any ``more``: Idempotency-Key=...)."""
    return {"Authorization": f"Bearer {key}", **{k.replace("_", "-"): v for k, v in more.items()}}


def _template(path: str) -> str:
    """The document's path that ``path`` (as requested, without its query) matches."""
    for template in openapi.document()["paths"]:
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return template
    raise AssertionError(f"{path} is not in the OpenAPI document")


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def conforms(response: TestResponse) -> Any:
    """Assert that ``response`` is what the OpenAPI document says its operation answers
    with that status (the status is listed, the body matches its schema, and the
    required headers are there); return its JSON body."""
    document = openapi.document()
    request = response.request
    template = _template(request.path)
    operation = document["paths"][template][request.method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{request.method} {template} never answers {status}"
    described = operation["responses"][status]
    assert response.mimetype == "application/json"
    body = response.get_json()
    pointer = _pointer("paths", template, request.method.lower(), "responses", status)
    schema = {**document, "$ref": pointer + "/content/application~1json/schema"}
    Draft202012Validator(schema).validate(body)
    for header, spec in described.get("headers", {}).items():
        if spec.get("required"):
            assert header in response.headers, f"{status} without its {header} header"
    return body
