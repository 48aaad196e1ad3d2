"""Proving your identity online through the real flow: the status page's button, the
development identity provider's own authorization form (over HTTP, as a browser would
post it), and the callback, with the Flask test client for our side."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests
from bs4 import BeautifulSoup
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.pages import csrf_token, path_of, soup
from tests.support.sent import Sent


@dataclass(frozen=True)
class Authorization:
    """Where the button sent the browser: the provider's authorization request."""

    url: str

    @property
    def params(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}


def start_sign_in(client: FlaskClient, sent: Sent) -> Authorization:
    """Press "Prove your identity online" on the status page (the session may see it)."""
    page = soup(client.get(f"/status/{sent.display}"))
    form = page.select_one(f'form[action="/status/{sent.display}/prove-identity"]')
    assert form is not None, "no button to prove your identity online"
    response = client.post(str(form["action"]), data={"csrf_token": csrf_token(page)})
    assert response.status_code == 303, response.status_code
    return Authorization(response.location)


def sign_in_at_provider(authorization: Authorization, sub: str) -> str:
    """Sign in as ``sub`` on the provider's form; return the callback's path and query."""
    form = requests.get(authorization.url, timeout=10)
    assert form.status_code == 200 and 'name="sub"' in form.text, form.text[:500]
    done = requests.post(authorization.url, data={"sub": sub}, allow_redirects=False, timeout=10)
    assert done.status_code == 302, (done.status_code, done.text[:500])
    return path_of(done.headers["Location"])


def prove_online(client: FlaskClient, sent: Sent, sub: str) -> BeautifulSoup:
    """The whole round trip as ``sub``; return the status page it ends on."""
    back = finish(client, sign_in_at_provider(start_sign_in(client, sent), sub))
    assert back.status_code == 303, back.status_code
    assert path_of(back.location) == f"/status/{sent.display}", back.location
    return soup(client.get(path_of(back.location)))


def finish(client: FlaskClient, callback: str) -> TestResponse:
    return client.get(callback)
