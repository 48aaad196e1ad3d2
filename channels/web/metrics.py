"""``/metrics``: the Prometheus text exposition, for Prometheus to scrape.

With ``METRICS_TOKEN`` set, only a request carrying ``Authorization: Bearer <token>``
is answered (compared in constant time); without one, only a client on this machine
(a loopback address, as the client's address is seen: behind ``ROUTER_PROXY_HOPS``
proxies, the address they forwarded). The figures name no person, but the queues and
the traffic of a public service are not for everyone. No session, no cache.
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, current_app, jsonify, request

from channels.context import core
from router.metrics import CONTENT_TYPE

bp = Blueprint("metrics", __name__)

PATH = "/metrics"
ENDPOINT = "metrics.exposition"


@bp.get(PATH)
def exposition() -> Response:
    token = str(current_app.config.get("METRICS_TOKEN") or "")
    if token:
        if not _bearer_is(token):
            refused = jsonify({"status": "unauthorized"})
            refused.status_code = 401
            refused.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return refused
    elif not _from_loopback():
        refused = jsonify({"status": "forbidden"})
        refused.status_code = 403
        return refused
    return Response(core().metrics(), content_type=CONTENT_TYPE)


def _bearer_is(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _from_loopback() -> bool:
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False  # a unix socket, or no address: not known to be this machine
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
