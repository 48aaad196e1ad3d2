"""Evidence arriving on a case releases the deliveries that waited for it, exactly once.

A delivery whose department's need (router.trust.Need) is not met by the case's evidence
is stored "waiting" instead of "queued" and is in no pending set, so no worker can send
it. When a proof arrives (the reporter signs in, a clerk checks their identity, the
register confirms the registration), ``Release.add`` appends it to the case and, in the
same WATCHed transaction, moves every waiting delivery whose need is now met to
"queued" and into its department's pending set. Two proofs arriving at once cannot
release a delivery twice: the second transaction sees the first one's change and
retries on the new state, where nothing waits any more.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from redis import Redis
from redis.client import Pipeline

from router import keys
from router.cases import Case, CaseStore, DeliveryState, history_entry
from router.delivery.fanout import FanOut
from router.trust import Evidence, Proof


class Release:
    """Adds proofs to cases and releases what waited for them."""

    def __init__(self, redis: Redis, fanout: FanOut) -> None:
        self.redis = redis
        self.fanout = fanout
        self.store = CaseStore(redis)

    def add(
        self, ref: str, proof: Proof, also: Callable[[Pipeline, Case], None] | None = None
    ) -> list[str]:
        """Add ``proof`` to case ``ref`` and release what it makes ready; return the
        departments released. ``also(pipe, case)`` adds writes to the same transaction
        (an audit entry). Raises ``UnknownCase``."""
        released: list[str] = []
        key = keys.case(ref)

        def attempt(pipe: Pipeline) -> None:
            case = self.store.load(ref)
            pipe.multi()
            released[:] = self.add_in(pipe, case, proof)
            if also is not None:
                also(pipe, case)

        self.redis.transaction(attempt, key)
        if released:
            self.fanout.wake_quietly(released)
        return released

    def add_in(self, pipe: Pipeline, case: Case, proof: Proof) -> list[str]:
        """``add`` inside the caller's transaction, which WATCHes the case and loaded
        it as ``case``; the caller wakes the departments released afterwards."""
        evidence = case.evidence.with_proof(proof)
        pipe.hset(keys.case(case.ref), "evidence", json.dumps(evidence.to_list()))
        pipe.rpush(keys.history(case.ref), history_entry("", "evidence", proof.kind))
        released = self.release_in(pipe, case, evidence, f"evidence: {proof.kind}")
        if case.branch and not _still_at_counter(case, evidence, released):
            pipe.zrem(keys.branch_queue(case.branch), case.ref)
        return released

    def release_in(self, pipe: Pipeline, case: Case, evidence: Evidence, why: str) -> list[str]:
        """Queue each waiting delivery of ``case`` whose need ``evidence`` meets; keep
        the detail of those still waiting true (what they still wait for)."""
        released = []
        for name, delivery in case.deliveries.items():
            if delivery.state != DeliveryState.WAITING:
                continue
            missing = case.plan.decision(name).missing(evidence)
            if not missing:
                self.store.mark(case.ref, name, DeliveryState.QUEUED, why, pipeline=pipe)
                released.append(name)
            elif ",".join(missing) != delivery.detail:
                self.store.mark(
                    case.ref, name, DeliveryState.WAITING, ",".join(missing), pipeline=pipe
                )
        if released:
            self.fanout.enqueue(pipe, case.ref, released)
        return released


def _still_at_counter(case: Case, evidence: Evidence, released: list[str]) -> bool:
    """Whether the case still waits for a counter once ``evidence`` is in."""
    for name, d in case.deliveries.items():
        if d.state == DeliveryState.ASSISTED:
            return True
        if (
            d.state == DeliveryState.WAITING
            and name not in released
            and "identity" in case.plan.decision(name).missing(evidence)
        ):
            return True
    return case.help_requested and "help" not in case.tasks_done
