"""What operators and caseworkers do, each action audited.

Operators (the /ops console) send failed deliveries again: one, every one of a
department, or all. Caseworkers (/casework) work the flagged cases: the cases a person
must look at because a department refused them or gave up, no Post Office branch was
found, the evidence contradicted the report, or the citizen asked for help. A caseworker
sends a failed delivery again, contacts the citizen through their own notifications
(router.delivery.notices: they never see an email address or a phone number), moves the
case to another branch, and closes the follow-up with a note.

Every action is written to the audit (router.assisted.audit): the operations stream,
which has no branch, and the case's own, which the citizen's status page reads. Entries
carry user names, references, departments and branch ids; a caseworker's note, which may
say anything, is sealed in the case (``casework_notes``), never in the audit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline

from router import keys
from router.assisted import audit, branches
from router.assisted.desk import Desk
from router.assisted.staff import Staff
from router.cases import Case, CaseStore, now_iso
from router.delivery import notices
from router.delivery.fanout import FanOut
from router.exceptions import UnknownDelivery, ValidationFailed
from router.i18n import N_

# What a caseworker may send the citizen (router.delivery.notices MESSAGES
# ``casework_<kind>``): fixed messages, so nothing a caseworker types reaches a citizen
# unread, and none holds personal data.
CONTACT_KINDS = ("looking", "visit", "resent")
NOTE_LONGEST = 1000
NOTES = "casework_notes"


@dataclass(frozen=True)
class Flagged:
    """A flagged case as the caseworkers' queue lists it."""

    case: Case
    since: datetime


class Operations:
    """The operators' actions."""

    def __init__(self, redis: Redis, fanout: FanOut, store: CaseStore) -> None:
        self.redis = redis
        self.fanout = fanout
        self.store = store

    def replay(self, targets: Iterable[str], staff: Staff) -> tuple[list[str], list[str]]:
        """Send each failed delivery in ``targets`` (delivery ids) again; return those
        replayed and those that were not failed any more (another operator was first)."""
        replayed, refused = [], []
        for target in targets:
            try:
                self.fanout.replay(target)
            except UnknownDelivery:
                refused.append(target)
                continue
            ref, department = target.rsplit("-", 1)
            audit.record(
                self.redis,
                "replayed_delivery",
                staff=staff.username,
                branch="",
                case=ref,
                detail=department,
            )
            replayed.append(target)
        return replayed, refused

    def failed(self, department: str | None = None) -> list[str]:
        """The failed deliveries' ids, of one department or all."""
        dead = self.store.dead_letters()
        return [d for d, entry in dead.items() if department in (None, entry.get("department"))]


class Casework:
    """The caseworkers' queue and actions."""

    def __init__(self, redis: Redis, store: CaseStore, desk: Desk, operations: Operations):
        self.redis = redis
        self.store = store
        self.desk = desk
        self.operations = operations

    def queue(self) -> list[Flagged]:
        """Every flagged case, the longest flagged first."""
        raw: list[tuple[bytes, float]] = self.redis.zrange(  # type: ignore[assignment]
            keys.FLAGGED, 0, -1, withscores=True
        )
        refs = [r.decode() for r, _ in raw]
        found = []
        for (_, score), case in zip(raw, self.store.load_many(refs), strict=True):
            if case is not None:
                found.append(Flagged(case, datetime.fromtimestamp(score, UTC)))
        return found

    def viewed(self, ref: str, staff: Staff) -> None:
        audit.record(self.redis, "viewed_flagged_case", staff=staff.username, branch="", case=ref)

    def replay(self, case: Case, department: str, staff: Staff) -> bool:
        """Send one of the case's failed deliveries again; False if it is not failed."""
        replayed, _ = self.operations.replay([case.delivery_id(department)], staff)
        return bool(replayed)

    def contact(self, ref: str, kind: str, staff: Staff) -> None:
        """Send the citizen one of the fixed messages (CONTACT_KINDS), by the email
        address and mobile number they gave: the workers send it, once."""
        if kind not in CONTACT_KINDS:
            raise ValidationFailed({"kind": N_("Choose the message to send")})

        def change(pipe: Pipeline, case: Case) -> None:
            if not contactable(case):
                raise ValidationFailed(
                    {"kind": N_("The citizen gave no email address or mobile number")}
                )
            sent = [*case.casework_messages, kind]
            pipe.hset(keys.case(ref), "casework_messages", json.dumps(sent))
            notices.subscribe(pipe, ref)  # looked at now, even if it had left the schedule
            audit.record(
                pipe, "contacted_citizen", staff=staff.username, branch="", case=ref, detail=kind
            )

        self._change(ref, change)

    def reassign(self, ref: str, branch: str, staff: Staff) -> None:
        """Move the case to another Post Office branch (one that offers what it needs)."""
        if branch not in branches.load_branches():
            raise ValidationFailed({"branch": N_("Choose a branch from the list")})

        def change(pipe: Pipeline, case: Case) -> None:
            if not case.at_counter:
                raise ValidationFailed(
                    {"branch": N_("Nothing in this report is waiting for a Post Office")}
                )
            if not branches.branch(branch).offers(branches.services_for(case.counter_tasks)):
                raise ValidationFailed(
                    {"branch": N_("Choose a Post Office that can do what the report needs")}
                )
            if case.branch:
                pipe.zrem(keys.branch_queue(case.branch), ref)
            Desk.assign(pipe, ref, branch, datetime.fromisoformat(case.created_at))
            audit.record(
                pipe,
                "reassigned_branch",
                staff=staff.username,
                branch="",
                case=ref,
                detail=branch,
            )

        self._change(ref, change)

    def close(self, ref: str, note: str, staff: Staff) -> None:
        """Close the follow-up: the case leaves the queue, with the caseworker's note
        (sealed in the case, read only on the case page)."""
        note = note.strip()
        if not note:
            raise ValidationFailed({"note": N_("Enter a note saying what was done")})
        if len(note) > NOTE_LONGEST:
            raise ValidationFailed({"note": N_("The note must be 1,000 characters or fewer")})

        def change(pipe: Pipeline, case: Case) -> None:
            if not case.flagged:
                raise ValidationFailed({"note": N_("This report is not flagged for follow-up")})
            entry = {"at": now_iso(), "by": staff.username, "note": note}
            notes = [*notes_of(self.store, case), entry]
            sealed = self.store.seal(ref, NOTES, json.dumps(notes, ensure_ascii=False))
            pipe.hset(keys.case(ref), NOTES, sealed)
            self.store.unflag(ref, pipeline=pipe)
            audit.record(pipe, "closed_follow_up", staff=staff.username, branch="", case=ref)

        self._change(ref, change)

    def _change(self, ref: str, change: Any) -> None:
        key = keys.case(ref)

        def attempt(pipe: Pipeline) -> None:
            case = self.store.parse(ref, pipe.hgetall(key))  # UnknownCase: no such case
            pipe.multi()
            change(pipe, case)

        self.redis.transaction(attempt, key)


def notes_of(store: CaseStore, case: Case) -> list[dict[str, str]]:
    """A case's caseworker notes, oldest first (opened here: they are sealed)."""
    if case.casework_notes is None:
        return []
    notes: list[dict[str, str]] = json.loads(store.open_field(case.ref, NOTES, case.casework_notes))
    return notes


def contactable(case: Case) -> bool:
    """Whether the citizen gave an email address or a mobile number (without opening
    either)."""
    return not case.erased and any(f in case.answers for f in notices.CHANNELS.values())
