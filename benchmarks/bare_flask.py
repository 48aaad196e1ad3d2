"""The front door's yardstick: a bare Flask endpoint at the same path, served by the
same gunicorn settings as `router up` (router.cli.gunicorn_command). It parses the
JSON body and answers 201 with a JSON body of the same shape, and does nothing else:
no validation, no routing, no Redis.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/api/v1/submissions")
def submit() -> Any:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify({"message": "Send one JSON object"}), 400
    return jsonify({"reference": secrets.token_hex(5), "created": True}), 201
