"""Signing in with an identity provider in the shape of GOV.UK One Login (OpenID Connect).

Authlib is the client: the authorization code flow with PKCE (S256), ``state`` and
``nonce``, One Login's ``vtr`` parameter asking for the vector of trust needed
(``["Cl.Cm.P2"]``: medium confidence) and its ``claims`` parameter asking for the core
identity; the ID token is verified against the provider's keys (JWKS, found through
``/.well-known/openid-configuration``), then userinfo is read.

What the provider returned becomes a ``router.trust.Identity``: the issuer and ``sub``;
the confidence from the ID token's ``vot`` claim ("P2.Cl.Cm" -> P2, "Cl.Cm" -> P0); the
name and date of birth from the core identity, the signed JWT in userinfo's
``https://vocab.account.gov.uk/v1/coreIdentityJWT``, verified with the key configured
for it. The development provider (router.dev_identity) signs the same credential with a
key of its own; with it, plain ``name`` and ``birthdate`` claims are read too. Nothing of
it is stored or logged: the core compares it with the report, then keeps only a proof.

Settings (``app.config``, or the environment with the ``TUO_`` prefix):

* ``OIDC_ISSUER``: the provider (discovery at ``<issuer>/.well-known/openid-configuration``);
  none: nobody is offered to sign in, and identity is proved at a Post Office only;
* ``OIDC_CLIENT_ID``;
* ``OIDC_PRIVATE_KEY`` (PEM) or ``OIDC_PRIVATE_KEY_FILE``: the client's key, for
  ``private_key_jwt`` client authentication (One Login's);
* ``OIDC_CORE_IDENTITY_KEY``: the public key (PEM, JWK or JWK set) the core identity
  JWT is signed with; ``OIDC_CORE_IDENTITY_ISSUER``: its ``iss``, checked when given;
* ``OIDC_VTR``: the vector of trust asked for, default ``Cl.Cm.P2``;
* ``OIDC_REDIRECT_URI``: the callback's address as registered with the provider
  (default: this service's own ``/sign-in/callback``);
* ``OIDC_DEVELOPMENT``: true for the development provider, which is named as such on
  every page that mentions it, and takes any client secret instead of a signed assertion.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.flask_client import OAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from flask import Flask, current_app
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from router.trust import Confidence, Identity

CORE_IDENTITY_CLAIM = "https://vocab.account.gov.uk/v1/coreIdentityJWT"
EXTENSION = "identity_provider"
CLIENT = "identity"


def init_app(app: Flask) -> None:
    """Register the provider's client, if one is configured."""
    issuer = str(app.config.get("OIDC_ISSUER") or "").rstrip("/")
    if not issuer:
        return
    development = bool(app.config.get("OIDC_DEVELOPMENT"))
    client_kwargs: dict[str, Any] = {
        "scope": "openid",
        "code_challenge_method": "S256",
        "default_timeout": 10,
    }
    options: dict[str, Any] = {}
    if development:
        # oidc-provider-mock takes any secret and cannot check a signed assertion; it
        # gives plain name and birthdate claims only for the profile scope.
        client_kwargs["scope"] = "openid profile"
        client_kwargs["token_endpoint_auth_method"] = "client_secret_basic"
        secret: Any = "development"
    else:
        client_kwargs["token_endpoint_auth_method"] = "private_key_jwt"
        options["client_auth_methods"] = [PrivateKeyJWT()]
        secret = _private_key(app)
    oauth = OAuth(app)
    oauth.register(
        CLIENT,
        client_id=app.config.get("OIDC_CLIENT_ID", ""),
        client_secret=secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs=client_kwargs,
        **options,
    )
    app.extensions[EXTENSION] = oauth


def _private_key(app: Flask) -> RSAKey | ECKey:
    text = app.config.get("OIDC_PRIVATE_KEY") or ""
    path = app.config.get("OIDC_PRIVATE_KEY_FILE")
    if not text and path:
        text = Path(path).read_text(encoding="utf-8")
    if not text:
        raise RuntimeError(
            "OIDC_ISSUER is set but no client key: set TUO_OIDC_PRIVATE_KEY (PEM) or "
            "TUO_OIDC_PRIVATE_KEY_FILE, or TUO_OIDC_DEVELOPMENT=true for a development provider"
        )
    if "EC PRIVATE" in text or _is_ec(text):
        return ECKey.import_key(text)
    return RSAKey.import_key(text)


def _is_ec(text: str) -> bool:
    try:
        ECKey.import_key(text)
    except (ValueError, JoseError):
        return False
    return True


def configured() -> bool:
    return EXTENSION in current_app.extensions


def client() -> Any:
    """Authlib's client for the configured provider."""
    return getattr(current_app.extensions[EXTENSION], CLIENT)


def development() -> bool:
    return configured() and bool(current_app.config.get("OIDC_DEVELOPMENT"))


def issuer() -> str:
    return str(current_app.config.get("OIDC_ISSUER") or "").rstrip("/")


def origin(app: Flask) -> str:
    """Where the browser is sent to sign in (the provider's origin), or ""."""
    found = urlsplit(str(app.config.get("OIDC_ISSUER") or ""))
    return f"{found.scheme}://{found.netloc}" if found.scheme and found.netloc else ""


def authorization_params(lang: str) -> dict[str, str]:
    """One Login's extra authorization request parameters: the vector of trust asked
    for, the core identity claim, and the language of its pages."""
    vtr = str(current_app.config.get("OIDC_VTR") or "Cl.Cm.P2")
    params = {"vtr": json.dumps([vtr]), "ui_locales": lang}
    if Confidence.parse(vtr) > Confidence.P0:
        params["claims"] = json.dumps({"userinfo": {CORE_IDENTITY_CLAIM: None}})
    return params


# --- what the provider returned, as an Identity ---------------------------------------------


class NoIdentity(Exception):
    """The provider signed someone in but returned no identity we can use."""


def identity_from(id_token: dict[str, Any], userinfo: dict[str, Any]) -> Identity:
    """The ``Identity`` the verified ID token's claims and userinfo describe; raise
    ``NoIdentity`` if they hold no usable name and date of birth."""
    subject = str(id_token.get("sub") or "")
    if not subject or str(userinfo.get("sub") or "") != subject:
        raise NoIdentity("userinfo is about someone else")
    confidence = Confidence.parse(id_token.get("vot"))
    full_name, birthdate = "", ""
    credential = userinfo.get(CORE_IDENTITY_CLAIM)
    if isinstance(credential, str) and credential:
        full_name, birthdate, vouched = _core_identity(credential, subject)
        confidence = min(confidence, vouched)
    elif development():
        full_name = str(userinfo.get("name") or id_token.get("name") or "")
        birthdate = str(userinfo.get("birthdate") or id_token.get("birthdate") or "")
    if not full_name or not birthdate:
        raise NoIdentity("no core identity")
    return Identity(
        issuer=str(id_token.get("iss") or issuer()),
        subject=subject,
        confidence=confidence,
        full_name=full_name,
        birthdate=birthdate,
    )


def _core_identity(credential: str, subject: str) -> tuple[str, str, Confidence]:
    """The name, date of birth and confidence of a core identity JWT, verified."""
    key = _core_identity_key()
    if key is None:
        raise NoIdentity("no key configured to verify the core identity")
    try:
        token = jwt.decode(credential, key, algorithms=["ES256", "RS256"])
        expected: dict[str, Any] = {
            "sub": {"essential": True, "value": subject},
            "exp": {"essential": True},
        }
        if current_app.config.get("OIDC_CLIENT_ID"):
            expected["aud"] = {"value": current_app.config["OIDC_CLIENT_ID"]}
        if current_app.config.get("OIDC_CORE_IDENTITY_ISSUER"):
            expected["iss"] = {
                "essential": True,
                "value": current_app.config["OIDC_CORE_IDENTITY_ISSUER"],
            }
        jwt.JWTClaimsRegistry(leeway=60, **expected).validate(token.claims)
    except (JoseError, ValueError) as problem:
        raise NoIdentity(f"core identity refused: {type(problem).__name__}") from problem
    subject_claims = (token.claims.get("vc") or {}).get("credentialSubject") or {}
    names = subject_claims.get("name") or []
    births = subject_claims.get("birthDate") or []
    parts = names[0].get("nameParts", []) if names and isinstance(names[0], dict) else []
    given = [str(p.get("value", "")) for p in parts if p.get("type") == "GivenName"]
    family = [str(p.get("value", "")) for p in parts if p.get("type") == "FamilyName"]
    full_name = " ".join([*given, *family])
    born = str(births[0].get("value", "")) if births and isinstance(births[0], dict) else ""
    vouched = Confidence.parse(token.claims.get("vot") or "P2")
    return full_name, born, vouched


def _core_identity_key() -> Any:
    # From the environment a JWK arrives parsed already (Flask reads TUO_* as JSON).
    value = current_app.config.get("OIDC_CORE_IDENTITY_KEY") or ""
    text = value.strip() if isinstance(value, str) else ""
    if not value:
        return None
    if isinstance(value, dict) or text.startswith("{"):
        data = value if isinstance(value, dict) else json.loads(text)
        if "keys" in data:
            return KeySet.import_key_set(data)  # type: ignore[arg-type]
        return ECKey.import_key(data) if data.get("kty") == "EC" else RSAKey.import_key(data)
    return ECKey.import_key(text) if _is_ec(text) else RSAKey.import_key(text)
