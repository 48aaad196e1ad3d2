"""Registrations checked against the register before anything about a death or birth is
sent (router.adapters.register).

At submission the register is asked at once (``check``): a registration that is not
there, or disagrees with the report, is a field error and nothing is stored; one that
agrees becomes a "register" proof on the new case. A register that cannot answer
(down, too slow) is no reason to turn the citizen away: the case is accepted, the
deliveries that need the registration wait for it, and the reference goes in the
``registrations:verifying`` set. Every worker's beat asks again for the due ones
(``retry_due``), with backoff: when the register confirms, the proof releases the
waiting deliveries exactly once (router.delivery.evidence); when it says no, the case
is flagged for a person and nothing is sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from redis import Redis
from redis.client import Pipeline

from router import keys, ledger
from router.adapters import register
from router.adapters.contract import RetryableError
from router.adapters.register import Entry, RegisterSource
from router.cases import FLAG_REFUSED_BY_REGISTER, Case, CaseStore
from router.catalogue import EVENTS, EventType
from router.delivery.evidence import Release
from router.exceptions import UnknownCase, ValidationFailed
from router.trust import Proof

log = logging.getLogger(__name__)

# The register is asked on these threads, so a slow one is given up on at its timeout
# (a citizen's submission waits no longer; the question is asked again later).
_ASKING = ThreadPoolExecutor(max_workers=8, thread_name_prefix="register")

# Asking again: 2 s, 4 s, 8 s... at most 5 minutes apart, for as long as it takes.
FIRST_RETRY_SECONDS = 2.0
LONGEST_RETRY_SECONDS = 300.0

# KEYS: the verifying set. ARGV: now, lease end, how many.
# Claims up to ARGV[3] due references by pushing their time on to the lease's end.
CLAIM_SCRIPT = """
local refs = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, ref in ipairs(refs) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ref)
end
return refs
"""


class Unavailable(Exception):
    """The register could not answer now."""


class Registrations:
    """Checks registrations with the register source, now or again later."""

    def __init__(self, redis: Redis, source: type[RegisterSource] | None, release: Release) -> None:
        self.redis = redis
        self.source = source
        self.release = release
        self.store = CaseStore(redis)
        self._claim = redis.register_script(CLAIM_SCRIPT)

    def find(self, event: EventType, answers: Mapping[str, object]) -> Entry | None:
        """Ask the register, waiting no longer than its declared ``timeout``; raise
        ``Unavailable`` when it cannot answer (down, too slow, or it failed)."""
        assert event.registration is not None
        if self.source is None:
            raise Unavailable("no register source is installed")
        source = self.source(self.redis)
        kind, query = event.registration.kind, event.registration.query(answers)
        call = _ASKING.submit(source.find, kind, query)
        try:
            return call.result(timeout=self.source.timeout)
        except FutureTimeout:
            raise Unavailable(f"no answer within {self.source.timeout:g}s") from None
        except RetryableError as error:
            raise Unavailable(error.reason) from None
        except Exception as error:  # noqa: BLE001 - a register's bug is not the citizen's
            log.error("register source %s failed: %s", self.source.name, type(error).__name__)
            raise Unavailable(type(error).__name__) from None

    def check(self, event: EventType, answers: dict[str, object]) -> tuple[Proof, Entry] | None:
        """At submission: the proof the register gives and the entry it found, None if
        it cannot answer now; raise ``ValidationFailed`` (field errors) if it holds no
        such registration or disagrees with the report."""
        assert event.registration is not None
        try:
            entry = self.find(event, answers)
        except Unavailable as why:
            log.warning("register could not answer at submission (%s); will ask again", why)
            return None
        if entry is None:
            raise ValidationFailed(register.not_found(answers))
        errors = register.compare(event.registration, answers, entry)
        if errors:
            raise ValidationFailed(errors)
        return self._proof(answers), entry

    def _proof(self, answers: Mapping[str, object]) -> Proof:
        assert self.source is not None
        how = "reference" if answers.get("registration_how") == "reference" else "entry"
        return Proof.registered(self.source.name, how)

    def post_check(self, pipe: Pipeline, ref: str) -> None:
        """Post the ledger entry of a check the register answered for case ``ref``, in
        the caller's transaction (once per case: router.ledger)."""
        assert self.source is not None
        ledger.post(pipe, [ledger.registration_entry(ref, self.source.name)])

    @staticmethod
    def schedule(pipe: object, ref: str, delay: float = FIRST_RETRY_SECONDS) -> None:
        """Ask again about ``ref``'s registration in ``delay`` seconds (in ``pipe``)."""
        pipe.zadd(keys.VERIFYING, {ref: time.time() + delay})  # type: ignore[attr-defined]
        pipe.hset(keys.case(ref), "verifying", "yes")  # type: ignore[attr-defined]

    def retry_due(self, limit: int = 20) -> int:
        """Ask the register again about due cases (a worker's beat calls this); return
        how many it settled (confirmed or refused)."""
        now = time.time()
        raw = self._claim(keys=[keys.VERIFYING], args=[now, now + keys.VERIFY_LEASE_SECONDS, limit])
        settled = 0
        for item in raw:
            ref = item.decode() if isinstance(item, bytes) else str(item)
            try:
                settled += self._retry(ref)
            except UnknownCase:
                self.redis.zrem(keys.VERIFYING, ref)
        return settled

    def _retry(self, ref: str) -> int:
        case = self.store.load(ref)
        event = EVENTS[case.event_type]
        if case.evidence.registration_verified or event.registration is None:
            self._done(ref)
            return 1
        try:
            entry = self.find(event, case.answers)
        except Unavailable:
            self._again(case)
            return 0
        errors = (
            register.compare(event.registration, case.answers, entry)
            if entry is not None
            else register.not_found(case.answers)
        )
        if errors:
            # Nothing is sent; a person looks at it (which answers, not what they are).
            with self.redis.pipeline(transaction=True) as pipe:
                self.post_check(pipe, ref)  # it answered: the check is paid for
                self.store.flag(
                    ref,
                    FLAG_REFUSED_BY_REGISTER % {"field": sorted(errors)[0]},
                    pipe,
                )
                pipe.zrem(keys.VERIFYING, ref)
                pipe.hdel(keys.case(ref), "verifying")
                pipe.execute()
            log.warning("case %s: the register did not confirm its registration", ref)
            return 1

        def also(pipe: Pipeline, _case: Case) -> None:
            pipe.zrem(keys.VERIFYING, ref)
            pipe.hdel(keys.case(ref), "verifying")
            self.post_check(pipe, ref)

        self.release.add(ref, self._proof(case.answers), also=also)
        return 1

    def _again(self, case: Case) -> None:
        tries = int(self.redis.hincrby(keys.case(case.ref), "verify_tries", 1))
        delay = min(LONGEST_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** min(tries, 20))
        self.redis.zadd(keys.VERIFYING, {case.ref: time.time() + delay}, xx=True)

    def _done(self, ref: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.VERIFYING, ref)
            pipe.hdel(keys.case(ref), "verifying")
            pipe.execute()


def verifying(redis: Redis) -> dict[str, float]:
    """Every case whose registration is still to be confirmed, with when it is asked."""
    raw: list[tuple[bytes, float]] = redis.zrange(  # type: ignore[assignment]
        keys.VERIFYING, 0, -1, withscores=True
    )
    return {ref.decode(): float(score) for ref, score in raw}
