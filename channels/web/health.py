"""Health for load balancers and orchestrators: ``/healthz`` and ``/readyz``.

``/healthz`` says only that this process answers (restart it if not); it touches
nothing else, so an outage of Redis does not get every web process restarted.
``/readyz`` says whether it is worth sending this process traffic: Redis answers, at
least one delivery worker is alive, and the Welsh catalogue is compiled. JSON, no
session, no personal data.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from channels.context import core

bp = Blueprint("health", __name__)

# Endpoints that must answer without the follow of new departments (which asks Redis).
ENDPOINTS = frozenset({"health.healthz", "health.readyz"})


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Any:
    checks = core().readiness()
    ready = all(checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response
