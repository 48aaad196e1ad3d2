"""Counter staff accounts: one branch each, a role, and a password kept only as a hash.

Passwords are hashed with scrypt (werkzeug.security), salted per account; the plain
password is never stored or logged. ``router staff add`` creates accounts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from werkzeug.security import check_password_hash, generate_password_hash

from router import keys
from router.assisted.branches import load_branches
from router.exceptions import ValidationFailed
from router.i18n import N_

ROLES = ("clerk", "manager")
MIN_PASSWORD = 12
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,39}")

# Checked against when the user name is unknown, so a wrong name takes as long as a
# wrong password and the time taken does not tell which names exist.
_DUMMY_HASH = generate_password_hash("not a real password", method="scrypt")


@dataclass(frozen=True)
class Staff:
    username: str
    branch: str
    role: str

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"


class StaffStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def add(self, username: str, password: str, branch: str, role: str) -> Staff:
        """Create (or replace the password, branch and role of) an account."""
        errors: dict[str, str] = {}
        username = username.strip().lower()
        if not USERNAME.fullmatch(username):
            errors["username"] = N_(
                "User name must be 3 to 40 characters: lower case letters, numbers, "
                "full stops, hyphens and underscores"
            )
        if len(password) < MIN_PASSWORD:
            errors["password"] = N_("Password must be 12 characters or more")
        if branch not in load_branches():
            errors["branch"] = N_("Enter the id of a branch in the branch list")
        if role not in ROLES:
            errors["role"] = N_("Role must be clerk or manager")
        if errors:
            raise ValidationFailed(errors)
        self.redis.hset(
            keys.staff(username),
            mapping={
                "password_hash": generate_password_hash(password, method="scrypt"),
                "branch": branch,
                "role": role,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        return Staff(username, branch, role)

    def get(self, username: str) -> Staff | None:
        raw = self.redis.hgetall(keys.staff(username.strip().lower()))
        if not raw:
            return None
        data = {_text(k): _text(v) for k, v in raw.items()}
        return Staff(username.strip().lower(), data["branch"], data["role"])

    def authenticate(self, username: str, password: str) -> Staff | None:
        """The account if the password is right; None otherwise (and for unknown names)."""
        key = keys.staff(username.strip().lower())
        stored = self.redis.hget(key, "password_hash")
        if stored is None:
            check_password_hash(_DUMMY_HASH, password)
            return None
        if not check_password_hash(_text(stored), password):
            return None
        return self.get(username)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
