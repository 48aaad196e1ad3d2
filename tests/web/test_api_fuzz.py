"""schemathesis fuzzes the JSON API from its own OpenAPI document, with a partner's key:
whatever it is sent, it never answers with a server error, and every answer is one the
document describes (status, content type, headers, body)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from redis import Redis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from channels.web import openapi
from tests.support.api import api_key, bearer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


@pytest.fixture
def partner_key(redis: Redis) -> str:
    return api_key(redis, "fuzzer")


# Loaded from the module the app serves it from (schemathesis's lazy loading from a
# fixture does not work with pytest 9); the test below checks it is what is served.
schema = schemathesis.openapi.from_dict(openapi.document())


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_the_api_answers_every_request_as_its_document_says(
    case: Any, app: Flask, partner_key: str
) -> None:
    # This test's app (on this test's Redis): what from_wsgi would set, had it loaded it.
    case.operation.schema.app = case.operation.app = app
    case.call_and_validate(headers=bearer(partner_key), checks=CHECKS)


def test_the_document_fuzzed_is_the_one_served(client: FlaskClient) -> None:
    assert client.get("/api/v1/openapi.json").get_json() == openapi.document()


def test_the_document_is_valid_openapi_3_1() -> None:
    # The OpenAPI 3.1 meta-schema schemathesis bundles (the OAI's schema.yaml), and
    # JSON Schema 2020-12 (the 3.1 dialect) for each schema in it.
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    document = openapi.document()
    Draft202012Validator(OPENAPI_31).validate(document)
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
