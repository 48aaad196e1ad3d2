"""The assisted channel's core: cases waiting at Post Office branches, and what counter
staff do with them.

A case waits at a branch when its routing plan has tasks only a counter can do (an
identity check, a photo, a cash voucher) or when the citizen asked for help. Counter
staff record an identity check (the document seen and its last four characters, never
the whole number) and complete tasks; when every task a delivery waits for is done, the
delivery is released to its department's pending set, as if it had just been submitted.
Every change is one WATCHed transaction on the case, with its audit entry and the
task's ledger entry (router.ledger), so two clerks at once cannot release a delivery
twice nor post a task twice.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline

from router import keys, ledger, metrics
from router.assisted import audit, branches
from router.assisted.staff import Staff, StaffStore
from router.cases import FLAG_HELP, Case, CaseStore, DeliveryState, history_entry, now_iso
from router.catalogue import EVENTS
from router.delivery.evidence import Release
from router.delivery.fanout import FanOut
from router.exceptions import ValidationFailed
from router.i18n import N_
from router.routing import RoutingPlan
from router.throttle import BackOff
from router.trust import Proof

# Identity documents a clerk may record, and how a person reads each.
DOCUMENTS: dict[str, str] = {
    "passport": N_("Passport"),
    "driving_licence": N_("Photocard driving licence"),
    "identity_card": N_("National identity card (EU, EEA or Swiss)"),
    "residence_permit": N_("Biometric residence permit or card"),
    "citizen_card": N_("PASS card (such as CitizenCard)"),
}

# Tasks a clerk completes with a button. The identity check is done by recording it.
# (How each reads once done is channels.presenters.TASK_DONE_WORDS.)
BUTTON_TASKS = ("photo", "cash_voucher", "help")
# The flag (router.cases) of a case whose citizen asked for help, until a counter gives it.
HELP_FLAG = FLAG_HELP
# Tasks done for the person the report is about, so only once their identity is checked
# when the report needs it (help can be given to anyone).
AFTER_IDENTITY = frozenset({"photo", "cash_voucher"})
IDENTITY_FIRST = N_(
    "Check the citizen’s identity document first: the photo and the cash voucher are "
    "only for the person the report is about"
)


@dataclass(frozen=True)
class Waiting:
    """A case in a branch's queue."""

    ref: str
    since: datetime


def tasks_needed(plan: RoutingPlan) -> list[str]:
    """Every counter task the plan's assisted deliveries need, in order, once each."""
    tasks: list[str] = []
    for d in plan.deliveries:
        if d.mode == "assisted":
            tasks += [t for t in d.tasks if t not in tasks]
    return tasks


def choose_branch(answers: Mapping[str, Any], tasks: Iterable[str], welsh: bool = False) -> str:
    """The nearest branch to the case's postcode that offers what its tasks need
    (Welsh-speaking staff first for a Welsh report, when one is near); "" if none."""
    postcode = str(answers.get("postcode", ""))
    tasks = list(tasks)
    if welsh:
        found = branches.nearest(postcode, tasks, welsh=True, limit=1)
        plain = branches.nearest(postcode, tasks, limit=1)
        # A Welsh-speaking branch if it is not much further than the nearest.
        if found and plain and found[0][1] <= plain[0][1] + 10:
            return found[0][0].id
    found = branches.nearest(postcode, tasks, limit=1)
    return found[0][0].id if found else ""


class Desk:
    """What counter staff and the citizen's branch choice do to cases."""

    def __init__(self, redis: Redis, fanout: FanOut, release: Release | None = None) -> None:
        self.redis = redis
        self.fanout = fanout
        self.release = release or Release(redis, fanout)
        self.store = CaseStore(redis)
        self.staff = StaffStore(redis)
        # Wrong passwords per (user name, client), locking for 1, 2, 4... minutes.
        self.sign_ins = BackOff(redis, "counter-sign-in", limit=5)

    # --- signing in, and what staff look at ------------------------------------------------

    def sign_in(self, username: str, password: str) -> Staff | None:
        """The account if the password is right, audited as signed in; None if not, and
        a wrong password for an account that exists is audited at its branch."""
        account = self.staff.authenticate(username, password)
        if account is None:
            known = self.staff.get(username)
            if known is not None:
                audit.record(
                    self.redis, "sign_in_refused", staff=known.username, branch=known.branch
                )
            return None
        audit.record(self.redis, "signed_in", staff=account.username, branch=account.branch)
        return account

    def sign_in_wait(self, username: str, client: str) -> int:
        """Count a sign-in attempt for ``username`` from ``client``: 0 if it may go
        ahead, else the seconds its lock has left (issue 13, rows 3 and 4)."""
        return self.sign_ins.attempt(username.strip().lower(), client)

    def sign_in_failed(self, username: str, client: str) -> None:
        """The attempt was wrong; a lock it begins is audited at the account's branch."""
        seconds = self.sign_ins.failed(username.strip().lower(), client)
        known = self.staff.get(username) if seconds else None
        if known is not None:
            minutes = str(max(1, seconds // 60))
            audit.record(
                self.redis,
                "sign_in_locked",
                staff=known.username,
                branch=known.branch,
                detail=minutes,
            )

    def sign_in_succeeded(self, username: str, client: str) -> None:
        self.sign_ins.succeeded(username.strip().lower(), client)

    def unlock(self, username: str, by: str) -> Staff | None:
        """Clear an account's sign-in locks at every client, audited with who did it;
        None if there is no such account."""
        known = self.staff.get(username)
        if known is None:
            return None
        self.sign_ins.unlock(known.username)
        audit.record(
            self.redis, "sign_in_unlocked", staff=known.username, branch=known.branch, detail=by
        )
        return known

    def viewed_case(self, ref: str, staff: Staff) -> None:
        """Audit a clerk opening a case."""
        audit.record(self.redis, "viewed_case", staff=staff.username, branch=staff.branch, case=ref)

    def serve_from_another_branch(self, case: Case, staff: Staff) -> None:
        """Audit a clerk opening a case that waits at another branch, to serve the
        citizen at their counter (the detail names the branch it waits at)."""
        audit.record(
            self.redis,
            "served_from_another_branch",
            staff=staff.username,
            branch=staff.branch,
            case=case.ref,
            detail=case.branch,
        )

    def serve_refused(self, case: Case, staff: Staff) -> None:
        """Audit a wrong date of birth given to open another branch's case (never the
        date itself); the branch's manager sees it highlighted."""
        audit.record(
            self.redis,
            "serve_refused",
            staff=staff.username,
            branch=staff.branch,
            case=case.ref,
            detail=case.branch,
        )

    @staticmethod
    def reporter_born_on(case: Case, born: str) -> bool:
        """Whether ``born`` (ISO) is the date of birth of the person who made the report,
        as the citizen at a counter gives it before another branch's case opens."""
        given = EVENTS[case.event_type].reporter.date_of_birth(case.answers)
        return bool(given) and hmac.compare_digest(given.encode(), born.encode())

    def branch_audit(self, staff: Staff) -> list[audit.Entry]:
        """The latest entries of the staff member's branch audit, newest first; the
        reading is audited in turn (after the read, so it is not among them)."""
        entries = audit.for_branch(self.redis, staff.branch)
        audit.record(self.redis, "viewed_audit", staff=staff.username, branch=staff.branch)
        return entries

    # --- the branch queue --------------------------------------------------------------

    @staticmethod
    def assign(pipe: Pipeline, ref: str, branch: str, since: datetime | None = None) -> None:
        """Put a case in a branch's queue (inside the caller's transaction)."""
        when = (since or datetime.now(UTC)).timestamp()
        pipe.hset(keys.case(ref), "branch", branch)
        pipe.zadd(keys.branch_queue(branch), {ref: when})

    def branch_queue(self, branch: str) -> list[Waiting]:
        """Cases waiting at ``branch``, oldest first."""
        raw: list[tuple[bytes, float]] = self.redis.zrange(  # type: ignore[assignment]
            keys.branch_queue(branch), 0, -1, withscores=True
        )
        return [Waiting(ref.decode(), _at(score)) for ref, score in raw]

    def move(self, ref: str, branch: str, by: str = "citizen") -> None:
        """The citizen (or a clerk serving them) chose another branch."""
        if branch not in branches.load_branches():
            raise ValidationFailed({"branch": N_("Choose a branch from the list")})

        def change(pipe: Pipeline, case: Case) -> None:
            if not case.at_counter:
                raise ValidationFailed(
                    {"branch": N_("Nothing in this report is waiting for a Post Office")}
                )
            needed = branches.services_for(case.counter_tasks)
            if not branches.branch(branch).offers(needed):
                raise ValidationFailed(
                    {"branch": N_("Choose a Post Office that can do what your report needs")}
                )
            since = datetime.fromisoformat(case.created_at)
            if case.branch:
                pipe.zrem(keys.branch_queue(case.branch), ref)
            self.assign(pipe, ref, branch, since)
            pipe.rpush(keys.history(ref), history_entry("", "branch", branch))
            if by != "citizen":
                audit.record(pipe, "branch_changed", staff=by, branch=branch, case=ref)

        self._change(ref, change)

    # --- counter actions -------------------------------------------------------------------

    def record_identity(self, ref: str, document: str, last_four: str, staff: Staff) -> None:
        """Record an identity check: which document, and only its last 4 characters.
        It is evidence of medium confidence (P2) at the clerk's branch, and releases the
        deliveries that waited for the reporter's identity."""
        errors: dict[str, str] = {}
        if document not in DOCUMENTS:
            errors["document"] = N_("Select the identity document you saw")
        tail = "".join(last_four.split()).upper()
        if len(tail) != 4 or not tail.isalnum():
            errors["last_four"] = N_(
                "Enter the last 4 characters of the document number, like 123A"
            )
        if errors:
            raise ValidationFailed(errors)

        def change(pipe: Pipeline, case: Case) -> None:
            # The departments that need the check pay for it (router.tariff): known
            # before the proof releases them.
            needing = _needing_identity(case)
            record = {"document": document, "last_four": tail, **_by(staff)}
            pipe.hset(
                keys.case(ref), "identity", self.store.seal(ref, "identity", json.dumps(record))
            )
            done = {**case.tasks_done}
            if "identity_check" in case.counter_tasks:
                done["identity_check"] = _by(staff)
                # Posted in this transaction, so a retried one posts it once.
                ledger.post(pipe, ledger.task_entries(ref, "identity_check", staff.branch, needing))
            proof = Proof.counter_check(staff.branch, document)
            self.release.add_in(pipe, case, proof)
            case.evidence = case.evidence.with_proof(proof)
            audit.record(
                pipe,
                "identity_checked",
                staff=staff.username,
                branch=staff.branch,
                case=ref,
                detail=document,  # the kind of document only: never its number
            )
            self._finish(pipe, case, done, staff)

        self._change(ref, change)
        metrics.task_completed("identity_check")
        self.fanout.wake_quietly()

    def complete(self, ref: str, task: str, staff: Staff) -> None:
        """Mark a task done at the counter (photo, cash voucher, help given)."""
        if task not in BUTTON_TASKS:
            raise ValidationFailed({"task": N_("Choose a task from the list")})

        def change(pipe: Pipeline, case: Case) -> None:
            wanted = case.counter_tasks + (
                ["help"] if case.help_requested and "help" not in case.tasks_done else []
            )
            if task not in wanted:
                raise ValidationFailed({"task": N_("That task is not waiting on this report")})
            if task in AFTER_IDENTITY and "identity_check" in case.counter_tasks:
                raise ValidationFailed({"task": IDENTITY_FIRST})
            done = {**case.tasks_done, task: _by(staff)}
            needing = [n for n, d in case.deliveries.items() if task in d.tasks]
            ledger.post(pipe, ledger.task_entries(ref, task, staff.branch, needing))
            audit.record(
                pipe,
                "task_completed",
                staff=staff.username,
                branch=staff.branch,
                case=ref,
                detail=task,
            )
            self._finish(pipe, case, done, staff)

        self._change(ref, change)
        metrics.task_completed(task)

    def _finish(self, pipe: Pipeline, case: Case, done: dict[str, Any], staff: Staff) -> None:
        """Store the tasks done; release each delivery whose tasks are all done; leave
        the branch queue when nothing more waits for a counter."""
        key = keys.case(case.ref)
        pipe.hset(key, "counter_tasks", json.dumps(done))
        released, still_waiting = [], False
        for name, d in case.deliveries.items():
            if d.state == DeliveryState.ASSISTED and all(t in done for t in d.tasks):
                missing = case.plan.decision(name).missing(case.evidence)
                if missing:
                    # Its counter tasks are done, but its department needs more
                    # evidence (a registration still to be confirmed): it waits for it.
                    self.store.mark(
                        case.ref, name, DeliveryState.WAITING, ",".join(missing), pipeline=pipe
                    )
                    still_waiting = still_waiting or "identity" in missing
                    continue
                self.store.mark(
                    case.ref,
                    name,
                    DeliveryState.QUEUED,
                    f"counter tasks done at {staff.branch}",
                    pipeline=pipe,
                )
                released.append(name)
            elif d.state == DeliveryState.WAITING:
                missing = case.plan.decision(name).missing(case.evidence)
                still_waiting = still_waiting or "identity" in missing
        if released:
            self.fanout.enqueue(pipe, case.ref, released)
        still_assisted = any(
            d.state == DeliveryState.ASSISTED and not all(t in done for t in d.tasks)
            for d in case.deliveries.values()
        )
        help_waiting = case.help_requested and "help" not in done
        if case.branch and not still_assisted and not still_waiting and not help_waiting:
            pipe.zrem(keys.branch_queue(case.branch), case.ref)
        if case.flagged == HELP_FLAG and not help_waiting:
            self.store.unflag(case.ref, pipeline=pipe)  # the help was given at a counter

    def _change(self, ref: str, change: Any) -> None:
        """Run ``change(pipe, case)`` in a transaction that WATCHes the case."""
        key = keys.case(ref)

        def attempt(pipe: Pipeline) -> None:
            case = self.store.load(ref)
            pipe.multi()
            change(pipe, case)

        self.redis.transaction(attempt, key)


def _needing_identity(case: Case) -> list[str]:
    """The departments an identity check at the counter is done for: those whose
    counter tasks include it, and those waiting for the reporter's identity."""
    needing = [
        name
        for name, d in case.deliveries.items()
        if d.state == DeliveryState.ASSISTED and "identity_check" in d.tasks
    ]
    return needing + [n for n in case.waiting_for("identity") if n not in needing]


def _by(staff: Staff) -> dict[str, str]:
    return {"at": now_iso(), "by": staff.username, "branch": staff.branch}


def _at(score: float) -> datetime:
    return datetime.fromtimestamp(score, UTC)
