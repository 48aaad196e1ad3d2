"""The invariant every chaos scenario ends with, the time from each kill to the
deliveries it caught running again, and the summary line. (A scenario's own Redis and
workers, and its submitter, are in world.py; the workload in workload.py.)

The invariant, for every case whose submission returned a reference:

* every planned ``digital`` delivery whose department's need the case's evidence meets
  is ``delivered``, and every other one is ``waiting`` and never told (``waiting``
  counts them: the trust rule holds under chaos too); ``assisted`` ones stay
  ``assisted``; nothing is left ``queued``, ``sending`` or ``retrying``;
* the department's mock log (``mock:<name>:log``, one entry per applied change) holds
  exactly one entry for each delivered delivery: ``duplicates`` counts entries beyond
  the first (must be 0), ``lost`` counts digital deliveries not delivered or with no
  entry (must be 0);
* no log entry names a delivery that is in no stored case's plan (``stray``), and the
  ``changes`` counters of each department's records add up to its log's length;
* the ledger (router.ledger, every month's) holds exactly one delivery entry for each
  delivered delivery, none for one not delivered, none doubled (``ledger_doubled``
  counts entries beyond the first for one delivery id, across months) and none for a
  delivery in no stored case's plan.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from redis import Redis

from router import keys, tariff
from router.cases import PENDING_STATES, CaseStore, DeliveryState, delivery_id
from router.delivery.queues import queue_for
from router.delivery.recovery import RECOVERED_DETAIL
from router.exceptions import UnknownCase
from router.ledger import Ledger
from tests.chaos.workload import DEPARTMENTS
from tests.chaos.world import RQ_QUEUE_KEY, Kill, as_text, case_refs
from tests.support.redis_dump import mock_log

# --- the invariant --------------------------------------------------------------------------


@dataclass
class Report:
    cases: int = 0  # accepted: a reference came back
    deliveries: int = 0  # planned digital deliveries of accepted cases
    assisted: int = 0
    waiting: int = 0  # digital deliveries whose need is not met: never told
    delivered: int = 0
    duplicates: int = 0
    lost: int = 0
    stray: int = 0
    stuck: int = 0  # still queued, sending or retrying
    failed: int = 0
    unacknowledged: int = 0  # stored cases whose submission never returned a reference
    retries: int = 0  # "retrying" entries in accepted cases' histories
    ledger_entries: int = 0  # delivery entries in the ledger
    ledger_doubled: int = 0  # delivery entries beyond the first for one delivery id
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def describe(self, limit: int = 25) -> str:
        more = len(self.problems) - limit
        lines = self.problems[:limit] + ([f"... and {more} more"] if more > 0 else [])
        return "\n".join(lines)


def record_changes(redis: Redis, department: str) -> int:
    """The sum of the ``changes`` counters of a mock department's records."""
    keys = list(redis.scan_iter(match=f"mock:{department}:*", count=1000))
    with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.type(key)
        types = pipe.execute()
    hashes = [k for k, t in zip(keys, types, strict=True) if as_text(t) == "hash"]
    with redis.pipeline(transaction=False) as pipe:
        for key in hashes:
            pipe.hget(key, "changes")
        return sum(int(v) for v in pipe.execute() if v is not None)


def check_invariant(redis: Redis, accepted: Iterable[str]) -> Report:
    """Check the invariant (see the module docstring) for the accepted cases."""
    report = Report()
    store = CaseStore(redis)
    accepted = list(dict.fromkeys(accepted))
    stored = {}
    for ref in case_refs(redis):
        # UnknownCase: a reference claimed by a submission that failed or lost a race.
        with contextlib.suppress(UnknownCase):
            stored[ref] = store.load(ref)
    planned = {
        (name, case.delivery_id(name))
        for case in stored.values()
        for name, d in case.deliveries.items()
        if d.mode == "digital"
    }
    logs = {name: mock_log(redis, name) for name in DEPARTMENTS}
    entries: Counter[tuple[str, str]] = Counter()
    receipts: dict[tuple[str, str], str] = {}
    for name, log in logs.items():
        for entry in log:
            key = (name, entry["delivery_id"])
            entries[key] += 1
            receipts.setdefault(key, entry["receipt"])
        changes = record_changes(redis, name)
        if changes != len(log):
            report.problem(f"{name}: records changed {changes} times for {len(log)} log entries")
    for key, count in entries.items():
        if count > 1:
            report.duplicates += count - 1
            report.problem(f"{key[1]}: applied {count} times")
        if key not in planned:
            report.stray += count
            report.problem(f"{key[1]}: in the {key[0]} log but in no case's plan")

    posted: Counter[str] = Counter()
    for month in Ledger(redis).months():
        for posting in Ledger(redis).entries(month):
            if posting.kind == tariff.DELIVERY:
                posted[posting.id] += 1
    report.ledger_entries = sum(posted.values())
    planned_ids = {delivery for _, delivery in planned}
    for delivery, count in posted.items():
        if count > 1:
            report.ledger_doubled += count - 1
            report.problem(f"{delivery}: {count} ledger entries")
        if delivery not in planned_ids:
            report.problem(f"{delivery}: a ledger entry but in no case's plan")

    report.cases = len(accepted)
    report.unacknowledged = len(set(stored) - set(accepted))
    with redis.pipeline(transaction=False) as pipe:
        for ref in accepted:
            pipe.lrange(keys.history(ref), 0, -1)
        histories = pipe.execute()
    for ref, history in zip(accepted, histories, strict=True):
        report.retries += sum(json.loads(h)["state"] == "retrying" for h in history)
        case = stored.get(ref)
        if case is None:
            report.lost += 1
            report.problem(f"{ref}: accepted, but no such case in Redis")
            continue
        for name, d in case.deliveries.items():
            key = (name, case.delivery_id(name))
            if d.state != DeliveryState.DELIVERED and posted[key[1]]:
                report.problem(f"{key[1]}: {d.state}, but {posted[key[1]]} ledger entries")
            if d.state == DeliveryState.DELIVERED and posted[key[1]] != 1:
                report.problem(f"{key[1]}: delivered, with {posted[key[1]]} ledger entries")
            if d.mode == "assisted":
                report.assisted += 1
                if d.state != DeliveryState.ASSISTED or entries[key]:
                    report.problem(f"{key[1]}: assisted, but {d.state} with {entries[key]} entries")
                continue
            if case.plan.decision(name).missing(case.evidence):
                report.waiting += 1
                if d.state != DeliveryState.WAITING or entries[key]:
                    report.problem(
                        f"{key[1]}: its need is not met, but {d.state} with {entries[key]} entries"
                    )
                continue
            report.deliveries += 1
            if d.state in PENDING_STATES:
                report.stuck += 1
            if d.state == DeliveryState.FAILED:
                report.failed += 1
            if d.state == DeliveryState.DELIVERED and entries[key] >= 1:
                report.delivered += 1
                if d.receipt is None or d.receipt.reference != receipts[key]:
                    report.problem(f"{key[1]}: receipt {d.receipt} is not the department's")
            else:
                report.lost += 1
                report.problem(
                    f"{key[1]}: {d.state} ({d.detail or 'no detail'}) after {d.attempts} "
                    f"attempts, {entries[key]} log entries; job {job_whereabouts(redis, key[1])}"
                )
    return report


def job_whereabouts(redis: Redis, delivery: str) -> str:
    """Where a delivery waits: its department's pending set (and when it is due), the
    sending set (and when its lease runs out), the dead letters. For diagnosing a
    lost one."""
    ref, _, department = delivery.partition("-")
    found = []
    due = redis.zscore(keys.pending(department), ref)
    if due is not None:
        found.append(f"pending, due in {due - time.time():.1f}s")
    lease = redis.zscore(keys.SENDING, delivery)
    if lease is not None:
        found.append(f"sending, lease ends in {lease / 1000 - time.time():.1f}s")
    if redis.hexists(keys.DEAD_LETTERS, delivery):
        found.append("dead-lettered")
    queued = redis.llen(RQ_QUEUE_KEY.format(name=queue_for(department)))
    return ", ".join(found) or f"nowhere ({queued} drain jobs queued for {department})"


# --- kill to running again ---------------------------------------------------------------------


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@dataclass
class Reruns:
    gaps: dict[str, float]  # delivery id -> seconds from the kill to its next "sending"
    never: list[str]  # interrupted deliveries that never ran again
    # delivery id -> seconds from the kill to its next history entry of any kind (the
    # sweeper putting it back as "queued"): how long the orphan went unnoticed.
    noticed: dict[str, float] = field(default_factory=dict)

    @property
    def longest(self) -> float | None:
        if self.never:
            return float("inf")
        return max(self.gaps.values()) if self.gaps else None

    @property
    def longest_unnoticed(self) -> float | None:
        return max(self.noticed.values()) if self.noticed else None


def reruns(store: CaseStore, refs: Sequence[str], kills: Sequence[Kill]) -> Reruns:
    """For every delivery a kill caught mid-call, the time from the kill to it running again.

    Every worker process serves every department, so a delivery "sending" at a kill
    was in the killed process or in one that lived on. It was caught by the kill when
    its last history entry at or before the kill is "sending" and the next is the
    sweeper putting it back ("queued": its worker stopped), or there is no next entry
    at all (never sent again); one that a live process finished is not. A delivery
    already orphaned by an earlier kill counts from that first kill. Running again is
    the first "sending" entry after the kill.
    """
    histories: dict[tuple[str, str], list[tuple[float, str, str, str]]] = defaultdict(list)
    for ref in refs:
        for h in store.history(ref):
            if h.department:
                histories[(ref, h.department)].append((_timestamp(h.at), h.at, h.state, h.detail))
    orphaned: dict[tuple[str, str, str], float] = {}
    for kill in sorted(kills, key=lambda k: k.at):
        for (ref, department), entries in histories.items():
            if department not in kill.departments:
                continue
            before = [e for e in entries if e[0] <= kill.at]
            if not before or before[-1][2] != "sending":
                continue
            after = [e for e in entries if e[0] > kill.at]
            if after and not (after[0][2] == "queued" and after[0][3] == RECOVERED_DETAIL):
                continue  # a live worker finished it
            orphaned.setdefault((ref, department, before[-1][1]), kill.at)
    result = Reruns({}, [])
    for (ref, department, _), killed_at in orphaned.items():
        after = [e for e in histories[(ref, department)] if e[0] > killed_at]
        again = [e[0] for e in after if e[2] == "sending"]
        delivery = delivery_id(ref, department)
        if after:
            noticed = after[0][0] - killed_at
            result.noticed[delivery] = max(result.noticed.get(delivery, 0.0), noticed)
        if again:
            result.gaps[delivery] = max(result.gaps.get(delivery, 0.0), again[0] - killed_at)
        else:
            result.never.append(delivery)
    return result


# --- timings and the summary ----------------------------------------------------------------


def completion_times(redis: Redis, since: float) -> dict[str, float]:
    """Per department: seconds from ``since`` to its last applied change."""
    times = {}
    for name in DEPARTMENTS:
        log = mock_log(redis, name)
        if log:
            times[name] = max(float(e["at"]) for e in log) - since
    return times


def seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == float("inf"):
        return "never"
    return f"{value:.1f}s"


def summary(name: str, report: Report, elapsed: float, **extra: object) -> str:
    """One line, e.g. ``chaos[worker-kills]: cases=213 deliveries=687 kills=22 restarts=22
    duplicates=0 lost=0 longest_kill_to_rerun=3.4s elapsed=41.2s``."""
    first = ("kills", "restarts")
    parts = [
        f"cases={report.cases}",
        f"deliveries={report.deliveries}",
        *(f"{k}={extra[k]}" for k in first if k in extra),
        f"duplicates={report.duplicates}",
        f"lost={report.lost}",
        f"waiting={report.waiting}",
        f"ledger={report.ledger_entries}",
        f"ledger_doubled={report.ledger_doubled}",
        *(f"{k}={v}" for k, v in extra.items() if k not in first),
        f"elapsed={elapsed:.1f}s",
    ]
    return f"chaos[{name}]: " + " ".join(parts)
