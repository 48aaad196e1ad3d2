"""The core's front: submit a life event once; read back its case.

Every channel (web, counter, command line, API) calls ``LifeEventRouter.submit``, which
validates, plans, stores the case and its pending deliveries in one atomic Redis write,
wakes the departments concerned, and only then returns the reference to show the
citizen.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline

from router import (
    catalogue,
    i18n,
    keys,
    logs,
    metrics,
    redis_server,
    routing,
    sealing,
    settings,
    stats,
    tariff,
)
from router.adapters import register
from router.adapters.registry import Registry
from router.adapters.webhook import WebhookConfig, load_webhooks
from router.assisted import audit, branches
from router.assisted.backoffice import Casework, Operations
from router.assisted.desk import HELP_FLAG, Desk, choose_branch, tasks_needed
from router.assisted.staff import StaffStore
from router.cases import FLAG_NO_BRANCH, Case, CaseStore
from router.catalogue import CONTACT_FIELDS
from router.clients import ApiClients
from router.delivery import health, notices
from router.delivery.evidence import Release
from router.delivery.fanout import FanOut
from router.delivery.gauges import QueueGauges
from router.delivery.registrations import Registrations
from router.exceptions import (
    NotReplicated,
    StoreUnavailable,
    SubmissionKeyReused,
    ValidationFailed,
)
from router.feedback import Feedback
from router.i18n import N_
from router.ledger import Ledger, LedgerError, Reconciliation, Statement, statement_csv
from router.people import People
from router.performance import DAYS, Figures, Performance
from router.retention import Retention
from router.settings import RetryPolicy
from router.tariff import OPERATOR, Tariff
from router.throttle import Throttle
from router.trust import Evidence, Identity, Proof

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class Submission:
    """What a channel shows after a submission: the reference and the status secret.

    ``created`` is False when the same submission key was seen before; the secret is
    then empty, because only the first answer may reveal it.
    """

    ref: str
    secret: str
    created: bool
    # Whether the identity given with it matched the reporter (None: none was given).
    identity_matched: bool | None = None
    # A death reported already: this report joined the first, and nobody is told again.
    reported_already: bool = False


class LifeEventRouter:
    """The router core, given its Redis connection and adapters explicitly."""

    def __init__(
        self,
        redis: Redis,
        adapters: Registry,
        policy: RetryPolicy | None = None,
        durability: settings.Durability | None = None,
    ):
        self.redis = redis
        # Replicas a submission must reach before its reference is shown (WAIT): unless
        # REDIS_WAIT_REPLICAS says otherwise, one through Sentinel, none on one server.
        self.durability = durability or redis_server.durability(redis)
        self.adapters = adapters
        self.store = CaseStore(redis)
        self.fanout = FanOut(redis, adapters, policy)
        self.release = Release(redis, self.fanout)
        self.registrations = Registrations(redis, register.discover(), self.release)
        self.desk = Desk(redis, self.fanout, self.release)
        self.people = People(redis, self.store)
        self.retention = Retention(redis, self.store)  # erasure on request; the purge
        self.feedback = Feedback(redis)  # the phase banner's satisfaction ratings
        self.staff: StaffStore = self.desk.staff
        self.clients = ApiClients(redis)  # the JSON API's partner channels and their keys
        self.operations = Operations(redis, self.fanout, self.store)  # the /ops console
        self.casework = Casework(redis, self.store, self.desk, self.operations)
        self.ledger = Ledger(redis)  # the money: entries, statements, reconciliation
        self._performance = Performance(redis, self.ledger)  # the published figures
        tariff.current()  # a wrong tariff file stops the service here, not mid-delivery
        self._looked_at = time.monotonic()
        self._follow_failed = ""  # why the last look for departments failed, if it did

    @classmethod
    def from_url(cls, url: str, adapters: Registry | None = None) -> LifeEventRouter:
        """A core on the Redis at ``url``, with ``adapters``, or else those installed and
        the webhook departments stored in that Redis."""
        redis = redis_server.connect(url)
        return cls(redis, adapters or Registry.discover(redis))

    def throttle(self, name: str, limit: int) -> Throttle:
        """Failed attempts of one kind (``name``), at most ``limit`` per client in a
        window; shared by every process, as the counts live in Redis."""
        return Throttle(self.redis, name, limit=limit)

    def use_adapters(self, adapters: Registry) -> None:
        """Switch to a fresh set of adapters (departments added while running)."""
        self.adapters = adapters
        self.fanout.adapters = adapters

    def follow_new_departments(self) -> None:
        """Find departments added while running (webhooks, adapters pip-installed),
        looking again at most every ``settings.FOLLOW_SECONDS``: cheap enough to call
        before every request.

        An adapter that cannot be loaded (pip midway through installing it, or a broken
        one) leaves the departments as they were, so the pages keep working; the next
        look tries again, and the reason is logged once until it changes."""
        if time.monotonic() - self._looked_at <= settings.FOLLOW_SECONDS:
            return
        self._looked_at = time.monotonic()
        try:
            found = Registry.look_again(self.redis)
        except StoreUnavailable:
            raise  # the request's own answer to an outage: not an adapter's fault
        except Exception as error:  # noqa: BLE001 - any import error of any adapter
            reason = f"{type(error).__name__}: {error}"
            if reason != self._follow_failed:
                log.warning("departments_not_followed", error=reason, keeping=self.adapters.names())
            self._follow_failed = reason
            return
        self._follow_failed = ""
        self.use_adapters(found)

    # --- what the web front door keeps in Redis -------------------------------------------

    def web_secret_key(self) -> bytes:
        """The key that signs CSRF tokens, the same for every web process on every host:
        drawn once and kept in Redis beside the data it protects."""
        self.redis.set(keys.WEB_SECRET_KEY, os.urandom(32), nx=True)
        key = self.redis.get(keys.WEB_SECRET_KEY)
        assert isinstance(key, bytes)
        return key

    def session_sealer(self) -> sealing.KeyRing:
        """What seals the web sessions kept in this Redis (they hold journey answers)."""
        return self.store.ring

    def session_store(self) -> tuple[Redis, str]:
        """Where web sessions are kept (Flask-Session's SESSION_REDIS and
        SESSION_KEY_PREFIX): this Redis, under the sessions' prefix."""
        return self.redis, keys.WEB_SESSION_PREFIX

    def validate(
        self,
        event_type: object,
        answers: object,
        consent: object,
        today: date | None = None,
    ) -> tuple[catalogue.EventType, dict[str, Any], list[str]]:
        """Check a submission's shape and answers; raise ``ValidationFailed``."""
        event = catalogue.get_event(str(event_type) if isinstance(event_type, str) else "")
        errors: dict[str, str] = {}
        if not isinstance(answers, Mapping):
            raise ValidationFailed({"answers": N_("Give the answers as a set of named fields")})
        if not isinstance(consent, list | tuple) or not all(isinstance(c, str) for c in consent):
            errors["consent"] = N_("Give the organisations to tell as a list of names")
            consent = []
        try:
            clean = event.validate(answers, today=today)
        except ValidationFailed as failed:
            errors.update(failed.errors)
            clean = {}
        if "consent" not in errors:
            try:
                routing.check_consent(event.name, list(consent), self.adapters)
            except ValidationFailed as failed:
                errors.update(failed.errors)
        if errors:
            raise ValidationFailed(errors)
        return event, clean, sorted(set(consent))

    def submit(
        self,
        event_type: object,
        answers: object,
        consent: object,
        channel: str = "web",
        submission_key: str | None = None,
        submission_digest: str | None = None,
        today: date | None = None,
        secret: str | None = None,
        help_requested: bool = False,
        branch: str | None = None,
        welsh: bool = False,
        submitted_by: str = "",
        identity: Identity | None = None,
        proofs: Sequence[Proof] = (),
    ) -> Submission:
        """Validate, plan, store durably with its jobs, and return the reference.

        A case with tasks only a counter can do, or whose citizen asked for help, waits
        at a Post Office branch: ``branch`` if given (the counter that took the report),
        else the nearest to its postcode that offers what the tasks need.
        ``submitted_by`` names the member of counter staff at ``branch`` who sent the
        report on a citizen's behalf: the branch's audit says so, written with the case.

        Trust (router.trust): ``identity`` is who the reporter signed in as; it counts
        only if it matches the reporter's name and date of birth in the answers.
        ``proofs`` are evidence the channel itself vouches for (a trusted API client).
        A death or birth is looked up in the register first: a registration it does not
        hold, or that disagrees, is a field error. A delivery whose department's need
        the evidence does not meet is stored waiting; one that needs the reporter's
        identity sends the case to a Post Office branch too, where an identity check
        gives medium confidence (P2).

        ``submission_digest`` (router.clients.submission_digest, for API clients) is
        remembered with ``submission_key``: a later submission under the same key with
        a different digest raises ``SubmissionKeyReused`` instead of answering with the
        first one's reference.
        """
        started = time.monotonic()
        if submitted_by and not branch:
            raise ValueError("a report sent by counter staff names their branch")
        event, clean, chosen = self.validate(event_type, answers, consent, today=today)
        if (
            submission_key
            and submission_digest
            and not self.store.remember_digest(submission_key, submission_digest)
        ):
            raise SubmissionKeyReused()
        plan = routing.plan(event.name, clean, chosen, self.adapters)
        evidence = Evidence(tuple(proofs))
        matched: bool | None = None
        if identity is not None:
            matched = self.identity_matches(event.name, clean, identity)
            if matched:
                evidence = evidence.with_proof(
                    Proof.signed_in(identity.issuer, identity.confidence)
                )
        verify_later = False
        registered_as = ""
        if event.registration is not None and not evidence.registration_verified:
            found = self.registrations.check(event, clean)
            if found is None:
                verify_later = True
            else:
                evidence = evidence.with_proof(found[0])
                registered_as = found[1].reference
        # A death reported already joins the first report: nobody is told twice.
        death_keys: list[str] = []
        claim = first = ""
        if event.name == "death":
            death_keys = self.people.death_keys(clean, registered_as)
            first, claim = self.people.claim_death(death_keys)
            if first:
                plan = People.joined_plan(plan)
        waiting = {
            d.department: ",".join(d.missing(evidence))
            for d in plan.deliveries
            if d.mode == "digital" and d.missing(evidence)
        }
        digital = [
            d.department
            for d in plan.deliveries
            if d.mode == "digital" and d.department not in waiting
        ]
        tasks = tasks_needed(plan)
        if first:
            verify_later = False  # nothing waits for it: the first report's case does
        if any("identity" in why for why in waiting.values()) and "identity_check" not in tasks:
            tasks.append("identity_check")
        extra = {"retry": self.fanout.policy.as_field(), "reporter": event.reporter.relation(clean)}
        if help_requested:
            extra["help"] = "yes"
        if welsh:
            extra["lang"] = "cy"  # what the reporter is sent is in Welsh too
        contact = any(clean.get(name) for name in CONTACT_FIELDS)
        if submitted_by:
            extra["submitted_by"] = submitted_by
        if first:
            extra["joined"] = first  # for caseworkers; never shown to this reporter
        if claim:
            # The death's digests go with its case's record (router.retention).
            extra["death_keys"] = json.dumps(death_keys)
        at = ""
        if tasks or help_requested:
            at = branch or choose_branch(clean, tasks, welsh=welsh)

        marks: list[tuple[int, str]] = []

        def also(pipe: Pipeline, ref: str) -> None:
            # Called again if the reference collides: only the last call's marks count.
            marks[:] = self.fanout.enqueue(pipe, ref, digital, wake=True)
            if at:
                Desk.assign(pipe, ref, at)
                if help_requested:  # caseworkers see who asked, and follow it up
                    self.store.flag(ref, HELP_FLAG, pipe)
            elif tasks or help_requested:
                self.store.flag(ref, FLAG_NO_BRANCH, pipe)
            if verify_later:
                Registrations.schedule(pipe, ref)
            if claim:
                People.settle_death(pipe, death_keys, ref)
            if clean.get("nino"):
                self.people.list_case(pipe, str(clean["nino"]), ref)
            if contact:
                notices.subscribe(pipe, ref)
            if registered_as:
                self.registrations.post_check(pipe, ref)  # the register answered
            # The published performance counts the report with it (router.stats).
            stats.count_report(pipe, channel, event.name)
            if submitted_by and branch:
                audit.record(
                    pipe,
                    "submitted_on_behalf",
                    staff=submitted_by,
                    branch=branch,
                    case=ref,
                    detail=event.name,
                )

        try:
            stored = self.store.create(
                event.name,
                clean,
                chosen,
                plan,
                channel,
                also=also,
                submission_key=submission_key,
                secret=secret,
                extra=extra,
                evidence=evidence,
                waiting=waiting,
            )
        finally:
            if claim:
                self.people.unclaim(death_keys, claim)  # a no-op once the case named them
        if stored.created:
            metrics.submitted(event.name, channel)
        log.info(
            "submission_accepted" if stored.created else "submission_repeated",
            ref=stored.ref,
            _event=event.name,  # written as "event" (router.logs)
            channel=channel,
            seconds=round(time.monotonic() - started, 3),
            departments=len(digital),
            at_counter=bool(at),
            reported_already=bool(first),
        )
        if stored.created and marks:
            self.fanout.trigger_woken(marks, stored.replies)
        if stored.created and claim and clean.get("deceased_nino"):
            self.people.hold_for_death(str(clean["deceased_nino"]), stored.ref)
        # Acknowledged means replicated, for a repeat too (the first may have been
        # refused for want of a replica): NotReplicated is the citizen's "try again".
        self.replicated()
        # A repeat of one submission (its key seen before) is answered as the first was,
        # not as a second report of the death.
        joined = bool(first) and stored.created
        return Submission(stored.ref, stored.secret, stored.created, matched, joined)

    def replicated(self) -> None:
        """Return once ``durability.replicas`` replicas hold every write made so far
        (the case this submission stored, or found again: a repeat writes nothing, and
        its first may have been refused for want of a replica); else raise
        ``NotReplicated`` after ``durability.timeout_ms``. None asked for (a single
        machine): at once."""
        if not redis_server.replicated(self.redis, self.durability):
            log.warning(
                "submission_not_replicated",
                replicas=self.durability.replicas,
                timeout_ms=self.durability.timeout_ms,
            )
            raise NotReplicated(f"fewer than {self.durability.replicas} replicas confirmed in time")

    # --- evidence after submission ---------------------------------------------------------

    def identity_matches(
        self, event_type: str, answers: Mapping[str, Any], identity: Identity
    ) -> bool:
        """Whether ``identity`` is the reporter the answers name (name and date of birth)."""
        reporter = catalogue.EVENTS[event_type].reporter
        return identity.matches(reporter.names(answers), reporter.date_of_birth(answers))

    def prove_identity(self, ref: str, identity: Identity) -> bool:
        """The reporter of case ``ref`` signed in after sending it: if the identity
        matches the report, add it as evidence and release what waited for it; return
        whether it matched (one that does not earns no confidence)."""
        case = self.store.load(ref)
        if not self.identity_matches(case.event_type, case.answers, identity):
            return False
        self.release.add(ref, Proof.signed_in(identity.issuer, identity.confidence))
        return True

    def retire_department(self, name: str) -> list[str]:
        """A department was removed (a webhook): fail its queued deliveries with a dead
        letter each, to replay if it comes back; return their ids."""
        return self.fanout.dead_letter_department(
            name, "its department was removed; replay it once the department is back"
        )

    def verify_registrations(self) -> int:
        """Ask the register again about registrations it could not confirm at first
        (every worker's beat calls this); return how many were settled."""
        return self.registrations.retry_due()

    def offers(self, event_type: str, answers: Mapping[str, Any]) -> list[routing.Decision]:
        """What each department interested in the event would be told, given the
        answers so far (blank ones left out), if the citizen agreed to tell it."""
        adapters = list(self.adapters)
        names = [a.name for a in routing.interested(event_type, adapters)]
        clean = {k: v for k, v in answers.items() if v != ""}
        return list(routing.plan(event_type, clean, names, adapters).decisions)

    def check_consent(self, event_type: str, chosen: Collection[str]) -> None:
        """Raise ``ValidationFailed`` (for "consent") unless ``chosen`` names at least
        one department, and only departments concerned with the event."""
        routing.check_consent(event_type, chosen, self.adapters)

    def case(self, ref: str) -> Case:
        return self.store.load(ref)

    def journey_started(self, event_type: str) -> None:
        """A citizen started reporting ``event_type`` online: counted for the published
        completion rate (router.stats), with nothing about them."""
        if event_type not in catalogue.EVENTS:
            raise ValueError(f"unknown life event {event_type!r}")
        with self.redis.pipeline(transaction=True) as pipe:
            stats.count_journey(pipe, event_type)
            pipe.execute()

    # --- what an operator looks at (router.delivery.health) ----------------------------

    def queues(self) -> list[health.DepartmentFigures]:
        """Each department's queue: breaker, pending, retrying, sending, oldest, failed."""
        return health.department_figures(self.redis, self.adapters.names())

    def workers_alive(self) -> dict[str, float]:
        """Each delivery worker that beat lately: its name -> seconds since."""
        return health.workers_alive(self.redis)

    def metrics(self) -> bytes:
        """The Prometheus text exposition ``/metrics`` answers with: the counters and
        the time-to-tell histogram of every process sharing ``PROMETHEUS_MULTIPROC_DIR``
        (router.metrics), and each department's queue and breaker read from Redis now,
        in one round trip (router.delivery.gauges). Names no person."""
        # A webhook department added: its gauges too. Redis down: tuo_redis_up says so,
        # and the counters are still worth reading.
        with contextlib.suppress(StoreUnavailable):
            self.follow_new_departments()
        gauges = QueueGauges(self.redis, lambda: self.adapters.names())
        return metrics.exposition([gauges])

    def readiness(self) -> dict[str, bool]:
        """What ``/readyz`` checks: Redis answers, at least one delivery worker is alive
        (else reports are taken and nobody is told), and the Welsh catalogue is compiled
        (else Welsh pages come out in English)."""
        checks = {"catalogue": i18n.compiled("cy")}
        try:
            self.redis.ping()
            checks["redis"] = True
            checks["workers"] = bool(self.workers_alive())
        except StoreUnavailable:
            checks["redis"] = checks["workers"] = False
        return checks

    def dead_letters(self) -> dict[str, dict[str, str]]:
        """Each failed delivery's id -> its case, department, reason and when."""
        return self.store.dead_letters()

    def webhooks(self) -> list[WebhookConfig]:
        """The webhook departments (their signing secrets opened: show none of them)."""
        return load_webhooks(self.redis)

    def audit_for_operations(self, count: int = 50) -> list[audit.Entry]:
        """What operators and caseworkers did lately, newest first."""
        return audit.for_operations(self.redis, count)

    def audit_for_case(self, ref: str) -> list[audit.Entry]:
        """Every counter action on one case, oldest first."""
        return audit.for_case(self.redis, ref)

    def audit_for_branch(self, branch: str) -> list[audit.Entry]:
        """A branch's latest counter actions, newest first (reading them is not audited:
        a manager's page reads through ``desk.branch_audit``)."""
        return audit.for_branch(self.redis, branch)

    # --- the published performance (router.performance) ---------------------------------

    def performance(self, days: int = DAYS, now: datetime | None = None) -> Figures:
        """The Service Standard's figures and each department's time to tell, for each of
        the ``days`` whole days (UTC) before today; counts only, nothing about anyone."""
        return self._performance.figures(self.adapters.names(), days, now)

    # --- the money that flows along the chain (router.ledger) ----------------------------

    def tariff(self) -> Tariff:
        """The tariff in force: prices in pence, who pays whom, the saved line's source."""
        return tariff.current()

    def ledger_months(self) -> list[str]:
        """The months (``YYYY-MM``) that have ledger entries, oldest first."""
        return self.ledger.months()

    def ledger_party(
        self,
        *,
        department: str = "",
        branch: str = "",
        operator: bool = False,
        register: str = "",
    ) -> str:
        """The ledger's name for one party (exactly one): a department the router knows
        (installed, or priced in the tariff), a Post Office branch, the operator, or a
        register source; ``LedgerError`` saying what is wrong otherwise."""
        if sum(map(bool, (department, branch, operator, register))) != 1:
            raise LedgerError(N_("Choose one party: a department, a branch or the operator"))
        if operator:
            return OPERATOR
        if register:
            return tariff.register(register)
        if department:
            known = set(self.adapters.names()) | set(self.tariff().delivery)
            if department not in known:
                raise LedgerError(N_("No department has that name"))
            return tariff.department(department)
        if branch not in branches.load_branches():
            raise LedgerError(N_("No Post Office branch has that id"))
        return tariff.branch(branch)

    def statement(self, month: str, party: str) -> Statement:
        """``party``'s statement for ``month`` (``YYYY-MM``): lines grouped by kind,
        counterparty and unit price, totals owed, owed to and net, in pence; the
        contacts avoided and what they saved. Empty if it had no entries."""
        return self.ledger.statement(month, party)

    def statement_csv(self, month: str, party: str) -> str:
        """The same statement as CSV, with a totals row."""
        return statement_csv(self.ledger.statement(month, party))

    def statements(self, month: str) -> list[Statement]:
        """Every party's statement for ``month``, the operator's first."""
        return self.ledger.statements(month)

    def reconcile(self, month: str) -> Reconciliation:
        """``month`` checked: every party's net adds up to 0 and each statement's totals
        are the sums of its entries."""
        return self.ledger.reconcile(month)
