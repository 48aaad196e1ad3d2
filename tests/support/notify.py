"""A local stand-in for GOV.UK Notify's API that checks what its real client sends.

It answers POST /v2/notifications/email and /v2/notifications/sms on a free loopback
port, as Notify does, after checking each request as Notify would: a JWT signed with
HS256 by the API key's secret, whose ``iss`` is the key's service id and whose ``iat``
is within 30 seconds; a JSON body with the template id the service was given, a
recipient, personalisation and a reference. A request that fails a check is answered
400 or 403 with Notify's error shape, and kept in ``refused`` for the test to assert on.
``fail_next`` makes the next requests answer a status of the test's choosing.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

SERVICE_ID = str(uuid.UUID(int=0x1C0FFEE))
SECRET = str(uuid.UUID(int=0x5EC12E7))
API_KEY = f"tell_us_once_test-{SERVICE_ID}-{SECRET}"
EMAIL_TEMPLATE = str(uuid.UUID(int=0xE3A11))
SMS_TEMPLATE = str(uuid.UUID(int=0x5E5))


@dataclass
class Notify:
    """The stand-in's state: what it accepted and refused."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settings(self) -> dict[str, str]:
        """The environment a process needs to send through this stand-in."""
        return {
            "NOTIFY_API_KEY": API_KEY,
            "NOTIFY_BASE_URL": self.url,
            "NOTIFY_EMAIL_TEMPLATE_ID": EMAIL_TEMPLATE,
            "NOTIFY_SMS_TEMPLATE_ID": SMS_TEMPLATE,
        }

    def sent(self, reference_part: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [a for a in self.accepted if reference_part in a["body"].get("reference", "")]


def _check(handler: BaseHTTPRequestHandler, notify: Notify) -> tuple[int, dict[str, Any]]:
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return 401, {
            "error": "AuthError",
            "message": "Unauthorized: authentication token must be provided",
        }
    try:
        claims = jwt.decode(
            auth.removeprefix("Bearer "), SECRET, algorithms=["HS256"], options={"verify_iat": True}
        )
    except jwt.PyJWTError as error:
        return 403, {"error": "AuthError", "message": f"Invalid token: {type(error).__name__}"}
    if claims.get("iss") != SERVICE_ID:
        return 403, {"error": "AuthError", "message": "Invalid token: service not found"}
    if abs(time.time() - float(claims.get("iat", 0))) > 30:
        return 403, {
            "error": "AuthError",
            "message": "Error: Your system clock must be accurate to within 30 seconds",
        }
    length = int(handler.headers.get("Content-Length", "0"))
    try:
        body = json.loads(handler.rfile.read(length))
    except ValueError:
        return 400, {"error": "BadRequestError", "message": "Invalid JSON"}
    if handler.path == "/v2/notifications/email":
        template, recipient, needs = EMAIL_TEMPLATE, "email_address", {"subject", "body"}
    elif handler.path == "/v2/notifications/sms":
        template, recipient, needs = SMS_TEMPLATE, "phone_number", {"body"}
    else:
        return 404, {"error": "NotFound", "message": handler.path}
    personalisation = body.get("personalisation") or {}
    problems = []
    if body.get("template_id") != template:
        problems.append("template_id is not this service's template")
    if not body.get(recipient):
        problems.append(f"{recipient} is a required property")
    if set(personalisation) != needs or not all(personalisation.values()):
        problems.append(f"Missing personalisation: {sorted(needs - set(personalisation))}")
    if not body.get("reference"):
        problems.append("reference is missing")
    if problems:
        return 400, {"error": "BadRequestError", "message": "; ".join(problems)}
    return 201, {"body": body, "path": handler.path}


class _Handler(BaseHTTPRequestHandler):
    notify: Notify

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        notify = self.notify
        status, result = _check(self, notify)
        with notify.lock:
            forced = notify.fail_next.pop(0) if notify.fail_next and status == 201 else None
        if forced is not None:
            status, result = forced, {"error": "Forced", "message": f"told to answer {forced}"}
        if status == 201:
            with notify.lock:
                notify.accepted.append(result)
            answer: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "reference": result["body"]["reference"],
                "content": result["body"]["personalisation"],
                "uri": f"{notify.url}/v2/notifications/x",
                "template": {"id": result["body"]["template_id"], "version": 1, "uri": ""},
            }
        else:
            with notify.lock:
                notify.refused.append((status, result["message"]))
            answer = {"status_code": status, "errors": [result]}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the test's output stays clean (and never shows a recipient)


class NotifyServer:
    """Start with ``with NotifyServer() as notify:``; stopped on leaving the block."""

    def __enter__(self) -> Notify:
        self.notify = Notify()
        handler = type("Handler", (_Handler,), {"notify": self.notify})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.notify.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self.notify

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
