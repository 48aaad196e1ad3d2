"""Every Redis key the router uses, and how long each lives: nothing else.

Other modules name a key through this module and never spell it themselves (as arq's
``constants.py``), so the whole layout of the data can be read here, and a test or an
operator's ``redis-cli`` session can find what it looks for. The mock departments keep
their own records under ``mock:<name>:`` (router.adapters.mocks): those are the
departments' keys, not the router's.
"""

from __future__ import annotations

# --- cases ------------------------------------------------------------------------------


def case(ref: str) -> str:
    """The case hash: each answer sealed in ``a:<field>`` (router.sealing), the plan,
    channel, and each delivery's ``d:<dept>:<attr>``."""
    return f"case:{ref}"


def answer_field(name: str) -> str:
    """The field of the case hash that holds one answer, sealed."""
    return f"a:{name}"


ANSWER_PREFIX = "a:"


def history(ref: str) -> str:
    """The case's history: a list of JSON entries, oldest first (router.cases)."""
    return f"case:{ref}:history"


def delivery_field(department: str, attribute: str) -> str:
    """The field of the case hash that holds one attribute of one delivery."""
    return f"d:{department}:{attribute}"


def submission(key: str) -> str:
    """A submission key's claim: the reference of the case it made."""
    return f"submission:{key}"


SUBMISSION_SECONDS = 7 * 24 * 3600  # how long a submission key is remembered


def submission_digest(key: str) -> str:
    """A digest of what was first submitted with a submission key (API clients' keys
    only), so a second, different submission under the same key is refused."""
    return f"submission:{key}:digest"


# Cases flagged for a person (reference -> when flagged, epoch seconds).
FLAGGED = "cases:flagged"

# --- delivery ---------------------------------------------------------------------------


def pending(department: str) -> str:
    """Deliveries waiting for a worker: case reference -> when due (epoch seconds: now,
    or the end of a retry's backoff)."""
    return f"pending:{department}"


# Deliveries a worker has claimed and not yet settled (``<ref>-<dept>`` -> when the
# lease runs out, epoch ms). The worker renews every lease it holds every 0.5 s
# (router.delivery.recovery); six missed renewals and the delivery is an orphan.
SENDING = "deliveries:sending"
LEASE_MS = 3000

# Deliveries that exhausted their retries: delivery id -> JSON (case, reason, when).
DEAD_LETTERS = "deliveries:dead"

# Worker processes that are alive: "<host>:<pid>" -> when it last beat (epoch seconds).
# Each beats about once a second (router.delivery.health); one that stops is pruned
# after WORKER_GONE_SECONDS.
WORKERS = "deliveries:workers"
WORKER_GONE_SECONDS = 3600


def outcomes(department: str, minute: int) -> str:
    """Hash: the deliveries to ``department`` settled in one minute (Unix time // 60):
    ``delivered``, ``failed``, and how many were told within each bound of
    router.delivery.health.TELL_BOUNDS (``t0`` ... ``t15``). Counts only; kept 2 hours."""
    return f"outcomes:{department}:{minute}"


OUTCOMES_SECONDS = 2 * 3600


def outcomes_day(department: str, day: str) -> str:
    """Hash: the same counts as ``outcomes`` for one whole day (UTC, ``YYYY-MM-DD``),
    written beside the minute's record, so the published time to tell reads 30 days in
    30 reads. Kept STATS_SECONDS."""
    return f"outcomes:{department}:day:{day}"


# Cases whose registration the register could not confirm yet: reference -> when to ask
# again (epoch seconds). A worker's beat claims due ones by pushing their time on by
# VERIFY_LEASE_SECONDS, so a worker that dies mid-question leaves them to be asked again.
VERIFYING = "registrations:verifying"
VERIFY_LEASE_SECONDS = 30


def wake(department: str) -> str:
    """Set while a drain of the department is queued or running (router.delivery.fanout)."""
    return f"wake:{department}"


# Renewed every 0.5 s by the process draining the department. Short, because until it
# runs out nobody else drains the department (a 5 s key let a backlog build for 5 s
# after every kill in the chaos test); a job that waits longer than this in its queue
# only costs a spare wake-up.
WAKE_MS = 1500


def breaker(department: str) -> str:
    """The department's circuit breaker: failures in a row, opens, open until."""
    return f"breaker:{department}"


def breaker_probe(department: str) -> str:
    """Held by the one delivery that probes a half-open breaker."""
    return f"breaker:{department}:probe"


# --- adapters ---------------------------------------------------------------------------

# Webhook departments added while running: name -> JSON config (router.adapters.webhook).
WEBHOOKS = "adapters:webhooks"

# --- the Post Office counter ------------------------------------------------------------


def branch_queue(branch: str) -> str:
    """A branch queue: the cases waiting at one Post Office (reference -> since when)."""
    return f"counter:queue:{branch}"


def staff(username: str) -> str:
    """A counter staff account: password hash, branch, role."""
    return f"staff:{username}"


def branch_audit(branch: str) -> str:
    """The append-only stream of every counter action at one branch."""
    return f"audit:branch:{branch}"


# Stream: what operators and caseworkers did (they have no branch).
OPERATIONS_AUDIT = "audit:operations"


def case_audit(ref: str) -> str:
    """The append-only stream of every counter action on one case."""
    return f"audit:case:{ref}"


# --- one person, one death -------------------------------------------------------------
# People are named in keys only by a keyed digest (HMAC-SHA256 under PEOPLE_KEY, drawn
# once and kept in Redis) of what identifies them: never an NI number or a name.

PEOPLE_KEY = "people:key"


def death(digest: str) -> str:
    """The first case reporting one death (by its registration, or by the NI number and
    date of death): its reference, or a claim while that case is being written."""
    return f"people:death:{digest}"


def person_cases(digest: str) -> str:
    """The cases about one person (by NI number) that may still have deliveries to send."""
    return f"people:cases:{digest}"


PERSON_CASES_SECONDS = 28 * 24 * 3600
DEATH_CLAIM_SECONDS = 30  # a claim whose case was never written runs out


# --- sealing personal data (router.sealing) ---------------------------------------------

# The data keys: "current" -> the id of the key new values are sealed under; "key:<id>"
# -> that data key, wrapped under the master key (which is never in Redis).
KEY_RING = "keys:ring"
# The rotation under way or last finished (router.rotation): its state and progress.
ROTATION = "keys:rotation"


# --- retention (router.retention) ------------------------------------------------------

# When the purge next looks at each case: reference -> epoch seconds. A case is listed
# from its creation until its record is deleted.
RETENTION = "retention:due"
# Held by the worker running the purge, so one runs at a time across every host.
RETENTION_LOCK = "retention:lock"
# Every erasure of a case's personal data (by the purge, an operator or the citizen):
# reference, when, by what, the departments told already. Trimmed by age.
ERASURES = "audit:erasures"
# The branch audit streams that exist (router.assisted.audit), for the purge to trim.
AUDIT_STREAMS = "audit:streams"


# --- telling the citizen how their report is going (router.delivery.notices) ----------------

# The cases whose reporter gave contact details: reference -> when to look at it next
# (epoch seconds). A delivery reaching a final state brings its case's look forward
# (CaseStore.mark, ZADD XX: only cases listed here).
NOTICES = "notices:due"


def notice_lock(ref: str) -> str:
    """Held by the worker looking at a case's notices, so two never send one twice."""
    return f"notices:lock:{ref}"


def outbox(ref: str) -> str:
    """The messages a case's reporter would have been sent, when no GOV.UK Notify key
    is set: a list of JSON, the recipient masked. Deleted when the case is erased."""
    return f"notices:outbox:{ref}"


# Every case with messages in an outbox: reference -> when the last was written.
OUTBOX_INDEX = "notices:outbox"


# --- what citizens think (router.feedback) ------------------------------------------------

# How many gave each satisfaction rating: rating -> count.
FEEDBACK = "feedback:ratings"
# The comments given with a rating, newest first: JSON (the day, the rating, the text),
# never a reference or a time finer than the day, so none can be matched to a report.
# Trimmed to FEEDBACK_COMMENTS_KEPT.
FEEDBACK_COMMENTS = "feedback:comments"
FEEDBACK_COMMENTS_KEPT = 500


# --- the published performance figures (router.stats, router.performance) ---------------


def stats_day(day: str) -> str:
    """Hash: what the service counted on one day (UTC, ``YYYY-MM-DD``), counts only:
    ``report:<channel>`` (web, counter, api, other), ``sent:<event>`` (reports sent
    online), ``started:<event>`` (journeys started online), ``rating:<rating>``.
    Written by the web front door and the ``router`` command, never by a worker."""
    return f"stats:day:{day}"


STATS_SECONDS = 400 * 86400  # a year of daily figures, and a month to spare
# What the departments paid on each finished day, read once from the ledger: day ->
# JSON (pence to the operator, pence to branches). A cache: deleting it loses nothing.
STATS_MONEY = "stats:money"
# The days filled with sample figures by ``router demo seed``: day -> when. While it
# holds any, the performance page says its figures are sample data.
STATS_DEMO = "stats:demo"


# --- the JSON API's clients (router.clients) --------------------------------------------

# Every API client: name -> JSON (events, trust, rate, when created and revoked, the
# SHA-256 digest of its key; never the key).
API_CLIENTS = "api-clients"
# The keys that let a client in: SHA-256 digest of the key -> the client's JSON. A
# revoked client's key is removed from here, so it lets nobody in.
API_CLIENT_KEYS = "api-clients:keys"


def api_rate(client: str, window: int) -> str:
    """Requests by one API client in one rate window (numbered from the epoch)."""
    return f"api-rate:{client}:{window}"


# --- the web front door -----------------------------------------------------------------


def throttle(name: str, digest: str) -> str:
    """Failed attempts of one kind (``name``) by one client, whose identity is hashed."""
    return f"throttle:{name}:{digest}"


# Written just before WAIT (router.redis_server.replicated): its place in the
# replication stream comes after the case a submission stored, or found again, and
# after the batch a worker claimed, so a replica that has it has those.
REPLICATION_MARK = "replication:mark"

# The key that signs the web front door's CSRF tokens, shared by every web process.
WEB_SECRET_KEY = "web:secret-key"
# Flask-Session keeps a journey's answers under this prefix, for two hours.
WEB_SESSION_PREFIX = "web:session:"


# --- the money that flows along the chain (router.ledger) -------------------------------


def ledger(month: str) -> str:
    """One month's ledger (``YYYY-MM``, UTC): entry id -> JSON (payer, payee, kind,
    department, branch, case reference, pence, tariff version, when). Written with
    HSETNX, so an entry id is posted once; no personal data. Kept: it is the accounts."""
    return f"ledger:{month}"


# --- who may touch what -------------------------------------------------------------------

# RQ's own keys and pub/sub channels (its queues, jobs, registries, workers).
RQ_PATTERN = "rq:*"
# The mock departments' and the mock register's records (router.adapters.mocks), and an
# installed adapter's own state, if it keeps any in Redis (docs/adapters.md).
MOCK_PATTERN = "mock:*"
ADAPTER_PATTERN = "adapter:*"

# Every key a delivery worker touches: the Redis user workers run as may touch these and
# no other (router.redis_server), so a worker never reads a web session, the CSRF key, a
# staff account, an API client or the people key.
WORKER_KEY_PATTERNS = (
    case("*"),  # the case and its history
    FLAGGED,
    pending("*"),
    SENDING,
    DEAD_LETTERS,
    WORKERS,
    REPLICATION_MARK,  # a batch is sent only once a replica has its cases
    "outcomes:*",  # what each batch settled, per department and minute, and per day
    VERIFYING,
    wake("*"),
    breaker("*"),  # and its probe
    WEBHOOKS,  # the webhook departments, with their signing secrets (sealed)
    KEY_RING,  # the data keys that open the answers it sends (router.sealing)
    RETENTION,  # the purge runs in the workers' beat (router.retention)
    RETENTION_LOCK,
    "notices:*",  # the citizen's notifications are sent from the workers' beat
    "audit:*",  # the purge trims the audit streams and deletes a case's with its record
    death("*"),  # and the death digests that go with a case's record
    branch_queue("*"),  # evidence that arrives takes a case off its branch's queue
    ledger("*"),  # a delivered delivery posts its entry in the transaction that records it
    RQ_PATTERN,
    MOCK_PATTERN,
    ADAPTER_PATTERN,
)
# Not among them: ``stats:*`` and ``feedback:*``. Reports, journeys and ratings are
# counted where they happen (the web front door, the ``router`` command), not by workers.
