"""The front door's yardsticks, served by the same gunicorn settings as `router up`
(router.cli.gunicorn_command), at the same path:

* ``app``: a bare Flask endpoint. It parses the JSON body and answers 201 with a JSON
  body of the same shape, and does nothing else: no validation, no routing, no Redis.
* ``durable``: the same, plus the one durable write a submission cannot do without:
  one EVAL that stores a case-sized value (``CASE_BYTES``, about what one case takes in
  Redis: 3,065 B measured by the memory part) in a hash and indexes it, on the
  benchmark's Redis (``BENCH_REDIS_URL``, ``appendfsync always``): the front door's
  real floor (issue 18).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from typing import Any

from flask import Flask, jsonify, request
from redis import Redis
from redis.commands.core import Script

app = Flask(__name__)


@app.post("/api/v1/submissions")
def submit() -> Any:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify({"message": "Send one JSON object"}), 400
    return jsonify({"reference": secrets.token_hex(5), "created": True}), 201


CASE_BYTES = 3000
# KEYS: the case's hash, the index. ARGV: the case's value, now.
STORE_SCRIPT = """
redis.call('HSET', KEYS[1], 'case', ARGV[1], 'created_at', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], KEYS[1])
return 1
"""

durable = Flask("durable")
_lock = threading.Lock()
_store: Script | None = None


def _script() -> Script:
    global _store
    with _lock:
        if _store is None:
            from router.redis_server import connect

            client: Redis = connect(os.environ["BENCH_REDIS_URL"])
            _store = client.register_script(STORE_SCRIPT)
        return _store


@durable.post("/api/v1/submissions")
def submit_durably() -> Any:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify({"message": "Send one JSON object"}), 400
    ref = secrets.token_hex(5)
    value = json.dumps(data).ljust(CASE_BYTES)
    _script()(keys=[f"floor:{ref}", "floor:index"], args=[value, time.time()])
    return jsonify({"reference": ref, "created": True}), 201
