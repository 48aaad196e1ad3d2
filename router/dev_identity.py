"""The development identity provider: an OpenID Connect provider in the shape of GOV.UK
One Login, for `router up` and the tests when no real provider is configured. It is a
*development identity provider, not GOV.UK One Login*: anyone can sign in as anyone.

It is ``oidc-provider-mock`` served on a free 127.0.0.1 port, with a user for each
sample event's reporter (examples/events), at medium confidence. Each user's claims are
those One Login returns: ``vot`` (the vector of trust achieved, "P2.Cl.Cm") and the core
identity, ``https://vocab.account.gov.uk/v1/coreIdentityJWT``: a JWT naming the person
and their date of birth, signed with a key made for this run, whose public half the web
front door is given (``TUO_OIDC_CORE_IDENTITY_KEY``) to verify it, as it would One
Login's. The provider keeps everything in memory and stops with the process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from joserfc import jwt
from joserfc.jwk import ECKey
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from router.catalogue import EVENTS

log = logging.getLogger(__name__)

CORE_IDENTITY_CLAIM = "https://vocab.account.gov.uk/v1/coreIdentityJWT"
CLIENT_ID = "tell-us-once-development"
# How the provider is named wherever we show it.
LABEL = "development identity provider, not GOV.UK One Login"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "events"


@dataclass(frozen=True)
class Person:
    """Someone who can sign in with the development provider."""

    sub: str
    full_name: str
    birthdate: str  # ISO date
    vot: str = "P2.Cl.Cm"  # the vector of trust One Login says it achieved


def sample_reporters(folder: Path = EXAMPLES) -> list[Person]:
    """The reporter of each sample event, at medium confidence (P2), as ``sample-<event>``;
    and ``no-identity``, who signs in without proving an identity ("Cl.Cm": P0)."""
    people = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        event = EVENTS.get(data.get("event", path.stem))
        if event is None:
            continue
        answers = data.get("answers", {})
        names = event.reporter.names(answers)
        born = event.reporter.date_of_birth(answers)
        if names and born:
            people.append(Person(f"sample-{event.name}", names[0], born))
    people.append(Person("no-identity", "", "", vot="Cl.Cm"))
    return people


def name_parts(full_name: str) -> list[dict[str, str]]:
    """A full name as One Login's core identity gives it: given names, then the family
    name (the last word)."""
    words = full_name.split()
    parts = [{"type": "GivenName", "value": w} for w in words[:-1]]
    if words:
        parts.append({"type": "FamilyName", "value": words[-1]})
    return parts


def core_identity_jwt(
    key: ECKey, *, issuer: str, sub: str, audience: str, full_name: str, birthdate: str
) -> str:
    """A core identity credential as One Login's userinfo carries it, signed (ES256)."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": sub,
        "aud": audience,
        "nbf": now,
        "iat": now,
        "exp": now + 3600,
        "vot": "P2",
        "vc": {
            "type": ["VerifiableCredential", "IdentityCheckCredential"],
            "credentialSubject": {
                "name": [{"nameParts": name_parts(full_name)}],
                "birthDate": [{"value": birthdate}],
            },
        },
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # request lines name users (subs); nothing here needs logging


class DevelopmentProvider:
    """oidc-provider-mock on a free 127.0.0.1 port, in a thread of this process."""

    def __init__(self, people: list[Person] | None = None, client_id: str = CLIENT_ID):
        self.people = sample_reporters() if people is None else people
        self.client_id = client_id
        # Signs the core identity credentials (One Login signs them with its own key).
        self.identity_key = ECKey.generate_key("P-256", parameters={"kid": "development"})
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def issuer(self) -> str:
        assert self._server is not None, "the provider is not running"
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> DevelopmentProvider:
        from oidc_provider_mock import app

        server = make_server(
            "127.0.0.1",
            0,
            app(require_nonce=True, issue_refresh_token=False),
            threaded=True,
            request_handler=_Quiet,
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="development-identity-provider", daemon=True
        )
        self._thread.start()
        for person in self.people:
            self.add(person)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DevelopmentProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def claims(self, person: Person) -> dict[str, Any]:
        found: dict[str, Any] = {"vot": person.vot, "vtm": f"{self.issuer}/trustmark"}
        if person.full_name and person.birthdate:
            found[CORE_IDENTITY_CLAIM] = core_identity_jwt(
                self.identity_key,
                issuer=self.issuer,
                sub=person.sub,
                audience=self.client_id,
                full_name=person.full_name,
                birthdate=person.birthdate,
            )
        return found

    def add(self, person: Person, claims: dict[str, Any] | None = None) -> None:
        """Let ``person`` sign in (through the provider's own API), with their One Login
        claims, or ``claims`` instead."""
        response = requests.put(
            f"{self.issuer}/users/{person.sub}",
            json=self.claims(person) if claims is None else claims,
            timeout=10,
        )
        response.raise_for_status()

    def settings(self) -> dict[str, str]:
        """The web front door's settings for this provider, as its environment
        (``TUO_``) would give them."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": self.client_id,
            "OIDC_DEVELOPMENT": "true",
            "OIDC_CORE_IDENTITY_KEY": json.dumps(self.identity_key.as_dict(private=False)),
        }

    def environment(self) -> dict[str, str]:
        return {f"TUO_{name}": value for name, value in self.settings().items()}
