"""An example external department adapter: HM Passport Office, kept in SQLite.

Copy this package to write your own department's adapter. What it shows:

* the declarations (``name``, ``title``, ``fields``, ``needs``, ``timeout``) the router
  reads to decide what this department is sent (nothing but the fields listed here) and
  when (only once the evidence it needs is in);
* idempotency: the ``delivery_id`` is the primary key of the table of applied
  deliveries, and the change and its receipt are written in ONE SQLite transaction
  that first looks the ``delivery_id`` up, so a repeated delivery returns the first
  receipt and changes nothing;
* error classification: a database that is locked or unavailable is worth retrying
  (``RetryableError``); a notification without a field this department needs never
  will succeed (``PermanentError``). Reasons name fields, never their values;
* clean-up after ``router adapters check passport``: ``conformance_cleanup`` deletes
  the kit's sample deliveries (and only those, all of case ``SAMPLE_CASE``), and
  receipt numbers come from their own table so none is ever handed out twice.

It registers through the ``tell_us_once.adapters`` entry-point group (see this
package's ``pyproject.toml``). The database is the file named by
``PASSPORT_ADAPTER_DB`` (default ``passport-adapter.sqlite3`` in the current
directory).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from datetime import UTC, datetime
from typing import Any, ClassVar

from redis import Redis

from router.adapters.conformance import SAMPLE_CASE
from router.adapters.contract import (
    Adapter,
    Notification,
    PermanentError,
    Receipt,
    RetryableError,
)
from router.trust import Confidence, Need

__all__ = ["DB_ENV", "DEFAULT_DB", "PassportOffice"]

DB_ENV = "PASSPORT_ADAPTER_DB"
DEFAULT_DB = "passport-adapter.sqlite3"

# One row per delivery applied. ``record_change`` holds the declared fields of the
# notification (JSON) and nothing else; ``receipt`` is returned again for a repeat.
# Receipt numbers are drawn from a table of their own: AUTOINCREMENT never hands a
# number out again, even after a delivery's row is deleted (the kit's samples are).
SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS applied_deliveries (
    delivery_id   TEXT PRIMARY KEY,
    receipt       TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    record_change TEXT NOT NULL,
    applied_at    TEXT NOT NULL
)
""",
    """
CREATE TABLE IF NOT EXISTS receipt_numbers (
    number      INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL
)
""",
)

# What the receipt says was done: shown on the case's status, so no personal data.
_DETAIL = {
    "change_of_name": "Name change recorded on the passport record",
    "death": "Passport cancelled: the holder has died",
}


class PassportOffice(Adapter):
    name = "passport"
    title = "HM Passport Office (example external adapter)"
    fields: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "change_of_name": ("previous_full_name", "full_name", "date_of_birth", "date_of_change"),
        "death": ("deceased_full_name", "deceased_date_of_birth", "date_of_death"),
    }
    # What it must trust before it acts: a passport follows a name change only when the
    # reporter's identity is known at medium confidence, and is cancelled only for a
    # death the register confirms.
    needs: ClassVar[Mapping[str, Need]] = {
        "change_of_name": Need(Confidence.P2),
        "death": Need(registration=True),
    }
    timeout = 5.0

    # How long to wait for another writer's lock; well below ``timeout``.
    busy_seconds: ClassVar[float] = 2.0

    def __init__(self, redis: Redis | None = None, db_path: str | None = None) -> None:
        super().__init__(redis)  # this department keeps no state in the router's Redis
        self.db_path = db_path or os.environ.get(DB_ENV) or DEFAULT_DB

    def deliver(self, notification: Notification) -> Receipt:
        change = self.record_change(notification)
        try:
            return self._apply(notification, change)
        except sqlite3.OperationalError as error:
            # Locked, unreadable or missing database: the department cannot take it now.
            code = getattr(error, "sqlite_errorname", "") or "unknown"
            raise RetryableError(
                f"passport records database unavailable ({code})", retry_after=1
            ) from error

    def record_change(self, notification: Notification) -> dict[str, Any]:
        """The declared fields of the notification; refuse one that lacks any of them.

        Only keys declared for the event are ever read from ``notification.fields``.
        """
        wanted = self.fields_for(notification.event_type)
        if not wanted:
            raise PermanentError(f"event type {notification.event_type!r} is not handled here")
        change: dict[str, Any] = {}
        missing = []
        for field in wanted:
            value = notification.fields.get(field)
            if value is None or (isinstance(value, str) and not value.strip()):
                missing.append(field)
            else:
                change[field] = value
        if missing:
            # Field names only: never the values, which are personal data.
            raise PermanentError(f"notification lacks required fields: {', '.join(missing)}")
        return change

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; we BEGIN and COMMIT ourselves.
        return sqlite3.connect(self.db_path, timeout=self.busy_seconds, isolation_level=None)

    def _apply(self, notification: Notification, change: dict[str, Any]) -> Receipt:
        with closing(self._connect()) as db:
            # BEGIN IMMEDIATE takes the write lock before the look-up, so two concurrent
            # deliveries of the same id cannot both miss it and both apply the change.
            db.execute("BEGIN IMMEDIATE")
            try:
                for table in SCHEMA:
                    db.execute(table)
                row = db.execute(
                    "SELECT receipt FROM applied_deliveries WHERE delivery_id = ?",
                    (notification.delivery_id,),
                ).fetchone()
                if row is not None:
                    encoded = row[0]  # a repeat: the first receipt, nothing changed
                else:
                    sequence = db.execute(
                        "INSERT INTO receipt_numbers (delivery_id) VALUES (?)",
                        (notification.delivery_id,),
                    ).lastrowid
                    receipt = Receipt(
                        reference=f"HMPO-{sequence:08d}",
                        detail=_DETAIL[notification.event_type],
                    )
                    encoded = json.dumps(receipt.to_dict())
                    db.execute(
                        "INSERT INTO applied_deliveries"
                        " (delivery_id, receipt, event_type, record_change, applied_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (
                            notification.delivery_id,
                            encoded,
                            notification.event_type,
                            json.dumps(change, sort_keys=True, default=str),
                            datetime.now(UTC).isoformat(timespec="milliseconds"),
                        ),
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return Receipt.from_dict(json.loads(encoded))

    def conformance_effects(self, notification: Notification) -> int:
        """How many times this notification's change was applied (for `adapters check`)."""
        try:
            with closing(self._connect()) as db:
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM applied_deliveries WHERE delivery_id = ?",
                    (notification.delivery_id,),
                ).fetchone()
        except sqlite3.OperationalError:  # no table yet: nothing applied
            return 0
        return int(count)

    def conformance_cleanup(self, notification: Notification) -> None:
        """Delete one of the kit's sample deliveries; refuse any real one."""
        if notification.case_ref != SAMPLE_CASE:
            raise ValueError("only the conformance kit's sample deliveries are cleaned up")
        try:
            with closing(self._connect()) as db:
                db.execute(
                    "DELETE FROM applied_deliveries WHERE delivery_id = ?",
                    (notification.delivery_id,),
                )
        except sqlite3.OperationalError as error:
            if "no such table" not in str(error):  # no table: nothing to delete
                raise
