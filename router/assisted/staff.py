"""Counter staff accounts: one branch each, a role, and a password kept only as a hash.

Passwords are hashed with scrypt (werkzeug.security), salted per account; the plain
password is never stored or logged. ``router staff add`` creates accounts (``--replace``
to change one), ``disable``, ``enable`` and ``remove`` end them, ``list`` shows them.

User names are compared case-folded: ``Weak2`` and ``weak2`` are one account. Each account
has a session version, a random stamp made anew whenever the account changes (replaced,
disabled, enabled or removed). A counter session keeps the stamp it signed in with, and
the counter's guard compares it on every request, so a change ends live sessions at once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from router import keys
from router.assisted.branches import load_branches
from router.exceptions import ValidationFailed
from router.i18n import N_

# Counter staff work at one branch; operators (the /ops console) and caseworkers (the
# flagged cases) work for the service as a whole and need no branch.
COUNTER_ROLES = ("clerk", "manager")
BACK_OFFICE_ROLES = ("operator", "caseworker")
ROLES = COUNTER_ROLES + BACK_OFFICE_ROLES
MIN_PASSWORD = 12
# zxcvbn's estimate of how hard a password is to guess, 0 to 4: 3 is "safely
# unguessable" against an online attack, which is what a counter sign-in faces.
MIN_STRENGTH = 3
# The deny-list: the 30,000 most common passwords of the leaks zxcvbn learned from, as
# typed and with the digits and symbols people tack on the end taken off.
COMMON_PASSWORDS = frozenset(FREQUENCY_LISTS["passwords"])
# Words anyone who knows the service would try first: a password made of them is weaker.
SERVICE_WORDS = ("tell us once", "tellusonce", "post office", "postoffice", "counter", "router")
WEAK_PASSWORD = N_(
    "Choose a stronger password: 3 or 4 random words work well. Do not use a common "
    "password, a repeated character, a keyboard pattern, or your user name or branch"
)
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,39}")

# Checked against when the user name is unknown, so a wrong name takes as long as a
# wrong password and the time taken does not tell which names exist.
_DUMMY_HASH = generate_password_hash("not a real password", method="scrypt")


def canonical(username: str) -> str:
    """The one spelling of a user name that accounts are kept and compared under."""
    return username.strip().casefold()


@dataclass(frozen=True)
class Staff:
    username: str
    branch: str
    role: str
    # The account's session version when this was read (see the module's docstring).
    session_version: str = ""

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    @property
    def at_counter(self) -> bool:
        return self.role in COUNTER_ROLES


@dataclass(frozen=True)
class Account:
    """An account as `router staff list` shows it: never its password hash."""

    username: str
    branch: str
    role: str
    created_at: str
    disabled_at: str

    @property
    def active(self) -> bool:
        return not self.disabled_at


class StaffStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def add(
        self, username: str, password: str, branch: str, role: str, *, replace: bool = False
    ) -> Staff:
        """Create an account; with ``replace``, set the password, branch and role of one
        that exists (which ends its live sessions). Without it, an existing account (in
        any case) is refused, never silently overwritten."""
        errors: dict[str, str] = {}
        username = canonical(username)
        if not USERNAME.fullmatch(username):
            errors["username"] = N_(
                "User name must be 3 to 40 characters: lower case letters, numbers, "
                "full stops, hyphens and underscores"
            )
        if len(password) < MIN_PASSWORD:
            errors["password"] = N_("Password must be 12 characters or more")
        elif too_weak(password, username, branch):
            errors["password"] = WEAK_PASSWORD
        if role not in ROLES:
            errors["role"] = N_("Role must be clerk, manager, operator or caseworker")
        elif branch not in load_branches() and (branch or role in COUNTER_ROLES):
            # A back-office account may have no branch; one it names must exist.
            errors["branch"] = N_("Enter the id of a branch in the branch list")
        if errors:
            raise ValidationFailed(errors)
        key = keys.staff(username)
        version = _new_version()
        password_hash = generate_password_hash(password, method="scrypt")

        def write(pipe: Pipeline) -> None:
            if pipe.exists(key) and not replace:
                raise ValidationFailed(
                    {
                        "username": N_(
                            "There is already an account with that user name (user names "
                            "are the same in capitals or small letters): give --replace to "
                            "change it"
                        )
                    }
                )
            pipe.multi()
            pipe.delete(key)  # a replaced account is enabled again, as new
            pipe.hset(
                key,
                mapping={
                    "password_hash": password_hash,
                    "branch": branch,
                    "role": role,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "session_version": version,
                },
            )

        self.redis.transaction(write, key)
        return Staff(username, branch, role, version)

    def get(self, username: str) -> Staff | None:
        """The account (enabled or not); None if there is none."""
        username = canonical(username)
        raw = self.redis.hgetall(keys.staff(username))
        if not raw:
            return None
        data = {_text(k): _text(v) for k, v in raw.items()}
        return Staff(username, data["branch"], data["role"], data.get("session_version", ""))

    def authenticate(self, username: str, password: str) -> Staff | None:
        """The account if the password is right and the account is enabled; None
        otherwise (and for unknown names)."""
        key = keys.staff(canonical(username))
        stored, disabled = self.redis.hmget(key, ["password_hash", "disabled_at"])
        if stored is None:
            check_password_hash(_DUMMY_HASH, password)
            return None
        if not check_password_hash(_text(stored), password) or disabled:
            return None
        return self.get(username)

    def session_version(self, username: str) -> str | None:
        """The stamp a live session must hold to go on; None if the account was removed
        or is disabled (then no session goes on). Read on every counter request."""
        version, disabled, exists = self.redis.hmget(
            keys.staff(canonical(username)), ["session_version", "disabled_at", "branch"]
        )
        if exists is None or disabled:
            return None
        return _text(version) if version is not None else ""

    def disable(self, username: str) -> bool:
        """Refuse the account's sign-in and end its sessions; False if there is none."""
        return self._change(
            username,
            {"disabled_at": datetime.now(UTC).isoformat(timespec="seconds")},
        )

    def enable(self, username: str) -> bool:
        """Let a disabled account sign in again; False if there is none."""
        return self._change(username, {}, drop=("disabled_at",))

    def remove(self, username: str) -> bool:
        """Delete the account (its sessions end); False if there was none."""
        return bool(self.redis.delete(keys.staff(canonical(username))))

    def accounts(self) -> list[Account]:
        """Every account, by user name."""
        found = []
        for key in self.redis.scan_iter(keys.staff("*"), count=1000, _type="hash"):
            raw = self.redis.hgetall(key)
            if not raw:
                continue  # removed between the scan and now
            data = {_text(k): _text(v) for k, v in raw.items()}
            found.append(
                Account(
                    username=_text(key).removeprefix(keys.staff("")),
                    branch=data.get("branch", ""),
                    role=data.get("role", ""),
                    created_at=data.get("created_at", ""),
                    disabled_at=data.get("disabled_at", ""),
                )
            )
        return sorted(found, key=lambda a: a.username)

    def _change(self, username: str, fields: dict[str, str], drop: tuple[str, ...] = ()) -> bool:
        key = keys.staff(canonical(username))
        changed = False

        def write(pipe: Pipeline) -> None:
            nonlocal changed
            changed = bool(pipe.exists(key))
            if not changed:
                return
            pipe.multi()
            mapping: dict[Any, Any] = {**fields, "session_version": _new_version()}
            pipe.hset(key, mapping=mapping)
            if drop:
                pipe.hdel(key, *drop)

        self.redis.transaction(write, key)
        return changed


def too_weak(password: str, *personal: str) -> bool:
    """True for a common password (the deny-list) or one zxcvbn scores below
    MIN_STRENGTH, counting ``personal`` words (the user name, the branch) against it."""
    squashed = "".join(password.split()).casefold()
    if not squashed:
        return True
    if squashed in COMMON_PASSWORDS or squashed.rstrip("0123456789!?.*#@$%&_-") in COMMON_PASSWORDS:
        return True
    guess = zxcvbn(password[:100], user_inputs=[*SERVICE_WORDS, *(p for p in personal if p)])
    return int(guess["score"]) < MIN_STRENGTH


def _new_version() -> str:
    return secrets.token_urlsafe(12)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
