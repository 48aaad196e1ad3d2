"""One person, one death: a death reported twice is told once, and a death holds what
was still to be sent about that person.

A death is known by its registration (the register's reference for it, or the entry it
was given as) and by the NI number and date of death. The first report of a death claims
those identifiers (``people:death:<digest>``) while its case is written, and the case's
own write sets them to its reference. A second report that finds them joins the first:
its own case tells nobody (every department "not needed: reported already") and keeps
the first's reference for caseworkers, never for the reporter, who is told only that it
was reported already.

Every case about a person with an NI number is listed under that number
(``people:cases:<digest>``). A death reported for that person holds the deliveries of
those cases that were not sent yet ("held": out of the pending sets, so no worker sends
them) and flags each case for a person to look at: a change of address for someone who
has died should not go out unchecked.

Keys never hold an NI number or a registration: only a keyed digest (HMAC-SHA256 under
a key drawn once and kept in Redis).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from typing import Any

from redis import Redis
from redis.client import Pipeline

from router import keys
from router.cases import FLAG_DEATH_REPORTED, Case, CaseStore, DeliveryState
from router.exceptions import UnknownCase
from router.i18n import N_
from router.routing import Decision, RoutingPlan

REPORTED_ALREADY = N_(
    "This death was reported to us already, so they have been told: each organisation is told once"
)
HELD_DETAIL = "held: a death was reported for the person this case is about"
# States a delivery is held from: those not sent yet.
HOLDABLE = frozenset({DeliveryState.QUEUED, DeliveryState.RETRYING, DeliveryState.WAITING})
_CLAIM = "claim:"


class People:
    """Who a case is about, by keyed digest only."""

    def __init__(self, redis: Redis, store: CaseStore) -> None:
        self.redis = redis
        self.store = store
        self._secret: bytes | None = None

    def _digest(self, *parts: str) -> str:
        if self._secret is None:
            self.redis.set(keys.PEOPLE_KEY, os.urandom(32), nx=True)
            secret = self.redis.get(keys.PEOPLE_KEY)
            assert isinstance(secret, bytes)
            self._secret = secret
        message = "\x1f".join(" ".join(p.split()).casefold() for p in parts).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:40]

    # --- deaths --------------------------------------------------------------------------

    def death_keys(self, answers: Mapping[str, Any], registered_as: str = "") -> list[str]:
        """The keys a death is known by: its registration (``registered_as``, the
        register's reference, when the register confirmed it; else as the report gives
        it) and its NI number with the date of death."""
        registration: tuple[str, ...]
        if registered_as:
            registration = ("reference", registered_as)
        elif answers.get("registration_how") == "reference":
            registration = ("reference", str(answers.get("registrar_reference", "")))
        else:
            registration = (
                "entry",
                str(answers.get("registration_district", "")),
                str(answers.get("entry_number", "")),
                str(answers.get("registration_date", "")),
            )
        found = [keys.death(self._digest("death", *registration))]
        nino, died = answers.get("deceased_nino"), answers.get("date_of_death")
        if nino and died:
            found.append(keys.death(self._digest("death-nino", str(nino), str(died))))
        return found

    def claim_death(self, death_keys: list[str], wait_seconds: float = 5.0) -> tuple[str, str]:
        """Claim a death's keys for a report about to be written: return ("", token)
        to write it (pass the token to ``unclaim`` if writing fails), or (first, "")
        when it was reported already, as case ``first``. A claim held by a report still
        being written is waited for."""
        token = _CLAIM + secrets.token_hex(8)
        deadline = time.monotonic() + wait_seconds
        taken: list[str] = []
        while True:
            for key in death_keys:
                if key in taken:
                    continue
                if self.redis.set(key, token, nx=True, ex=keys.DEATH_CLAIM_SECONDS):
                    taken.append(key)
                    continue
                held = _text(self.redis.get(key))
                if held and not held.startswith(_CLAIM) and self.store.exists(held):
                    self.unclaim(taken, token)
                    return held, ""
                if held and held.startswith(_CLAIM) and time.monotonic() < deadline:
                    break  # another report of it is being written: wait for it
                # A claim that ran out, or a case that is gone: take the key over.
                self.redis.set(key, token, ex=keys.DEATH_CLAIM_SECONDS)
                taken.append(key)
            else:
                return "", token
            time.sleep(0.02)

    def unclaim(self, death_keys: list[str], token: str) -> None:
        for key in death_keys:
            if _text(self.redis.get(key)) == token:
                self.redis.delete(key)

    @staticmethod
    def settle_death(pipe: Pipeline, death_keys: list[str], ref: str) -> None:
        """In the case's own write: the death's keys now name its case."""
        for key in death_keys:
            pipe.set(key, ref)

    @staticmethod
    def joined_plan(plan: RoutingPlan) -> RoutingPlan:
        """The plan of a second report of a death: nobody is told again."""
        return RoutingPlan(
            plan.event_type,
            tuple(Decision(d.department, "not_needed", REPORTED_ALREADY) for d in plan.decisions),
        )

    # --- cases about a person ---------------------------------------------------------------

    def person_key(self, nino: str) -> str:
        return keys.person_cases(self._digest("person", nino))

    def list_case(self, pipe: Pipeline, nino: str, ref: str) -> None:
        """In the case's own write: list it under its person's NI number."""
        key = self.person_key(nino)
        pipe.sadd(key, ref)
        pipe.expire(key, keys.PERSON_CASES_SECONDS)

    def hold_for_death(self, nino: str, death_ref: str) -> list[str]:
        """Hold what was not sent yet of every other case about the person who died, and
        flag those cases; return the references held."""
        held = []
        key = self.person_key(nino)
        for raw in self.redis.smembers(key):
            ref = _text(raw)
            if ref == death_ref:
                continue
            try:
                if self._hold(ref):
                    held.append(ref)
            except UnknownCase:
                self.redis.srem(key, ref)
        return sorted(held)

    def _hold(self, ref: str) -> bool:
        held = False

        def attempt(pipe: Pipeline) -> None:
            nonlocal held
            case: Case = self.store.parse(ref, pipe.hgetall(keys.case(ref)))
            waiting = [n for n, d in case.deliveries.items() if d.state in HOLDABLE]
            held = bool(waiting)
            pipe.multi()
            for name in waiting:
                pipe.zrem(keys.pending(name), ref)
                self.store.mark(ref, name, DeliveryState.HELD, HELD_DETAIL, pipeline=pipe)
            if waiting:
                self.store.flag(ref, FLAG_DEATH_REPORTED, pipe)

        self.redis.transaction(attempt, keys.case(ref))
        return held


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
