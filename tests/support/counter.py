"""Helpers for the counter tests: reading pages, filling forms, and looking at raw Redis."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from bs4 import BeautifulSoup
from flask.testing import FlaskClient
from redis import Redis
from werkzeug.test import TestResponse

from router import keys
from router.assisted import branches
from router.catalogue import EVENTS
from tests.support.pages import csrf_token, form_value, path_of, soup, text

# --- reading pages -----------------------------------------------------------------------


def heading(page: BeautifulSoup) -> str:
    return text(page.find("h1"))


def redirected_to(response: TestResponse) -> str:
    """The path (no query) a redirect points to."""
    assert response.status_code == 302, response.status_code
    return urlsplit(response.location).path


def errors_of(page: BeautifulSoup) -> list[str]:
    """The messages in the page's GOV.UK error summary."""
    return [text(a) for a in page.select(".govuk-error-summary__list a")]


def field_errors(page: BeautifulSoup) -> list[str]:
    """The messages shown by the fields, without the visually hidden "Error:"."""
    found = []
    for message in page.select(".govuk-error-message"):
        hidden = message.select_one(".govuk-visually-hidden")
        if hidden is not None:
            hidden.extract()
        found.append(text(message))
    return found


def queue_refs(page: BeautifulSoup) -> list[str]:
    """The references listed in a branch queue page's table."""
    return [text(a) for a in page.select("table.govuk-table tbody a")]


def post_form(
    client: FlaskClient, page: str, data: Mapping[str, Any], action: str | None = None
) -> TestResponse:
    """Open ``page`` for its CSRF token and post ``data`` to ``action`` (else the page)."""
    token = csrf_token(soup(client.get(page)))
    return client.post(action or page, data={"csrf_token": token, **data})


def sign_in(client: FlaskClient, username: str, password: str, query: str = "") -> TestResponse:
    return post_form(
        client, f"/counter/sign-in{query}", {"username": username, "password": password}
    )


# --- answering the journey ------------------------------------------------------------------


def walk(client: FlaskClient, prefix: str, event_name: str, answers: Mapping[str, Any]) -> str:
    """Answer each question the journey at ``prefix`` (/report or /counter/report) asks;
    return the address of the first page that is not a question."""
    event = EVENTS[event_name]
    response = client.get(f"{prefix}/{event_name}")
    for _ in range(30):
        assert response.status_code == 302, response.status_code
        url = path_of(response.location)
        field = urlsplit(url).path.rsplit("/", 1)[1]
        if field not in event.fields:
            return url
        token = csrf_token(soup(client.get(url)))
        value = form_value(event.question(field), answers[field])
        response = client.post(url, data={"csrf_token": token, field: value})
        assert response.status_code == 302, f"{url}: {errors_of(soup(response))}"
    raise AssertionError("the journey does not end")


# --- the branches, worked out from the data ----------------------------------------------------


def nearest_offering(postcode: str, services: set[str]) -> str:
    """The id of the nearest branch offering every one of ``services``, computed here
    from the branch list and the postcode centroids (not with ``branches.nearest``)."""
    origin = branches.locate(postcode)
    assert origin is not None, postcode
    able = [b for b in branches.load_branches().values() if services <= b.services]
    best = min(able, key=lambda b: (branches.haversine_km(origin, (b.lat, b.lon)), b.id))
    return best.id


# --- raw Redis -------------------------------------------------------------------------------


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def raw_values(redis: Redis) -> Iterator[tuple[str, bytes]]:
    """(key, bytes) for every key name, field and value stored in Redis, of any type."""
    for key in redis.scan_iter():
        name = _bytes(key).decode()
        values: list[Any] = [key]
        kind = _bytes(redis.type(key)).decode()
        if kind == "none":
            continue  # ran out between the scan and now (a wake key lives 1.5 s)
        if kind == "string":
            values.append(redis.get(key) or b"")
        elif kind == "hash":
            for field, value in redis.hgetall(key).items():
                values += [field, value]
        elif kind == "list":
            values += redis.lrange(key, 0, -1)
        elif kind == "set":
            values += redis.smembers(key)
        elif kind == "zset":
            values += redis.zrange(key, 0, -1)
        elif kind == "stream":
            entries: Any = redis.xrange(key)
            for _id, fields in entries:
                for field, value in fields.items():
                    values += [field, value]
        else:
            raise AssertionError(f"{name}: a Redis type these tests do not read: {kind}")
        for value in values:
            yield name, _bytes(value)


def keys_holding(redis: Redis, needle: str) -> set[str]:
    """The keys whose name or any stored value contains ``needle`` (case-insensitive)."""
    wanted = needle.lower().encode()
    return {name for name, value in raw_values(redis) if wanted in value.lower()}


def snapshot(redis: Redis) -> dict[bytes, bytes | None]:
    """Everything in Redis but web sessions (an anonymous visit may start one)."""
    return {
        key: redis.dump(key)
        for key in sorted(redis.scan_iter())
        if not key.startswith(keys.WEB_SESSION_PREFIX.encode())
    }
