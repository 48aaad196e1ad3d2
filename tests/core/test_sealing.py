"""router.sealing: the key ring in Redis, and what a case store does when the data key
it holds is no longer the ring's current one."""

from __future__ import annotations

import os
import threading

import pytest
from redis import Redis

from router import keys, sealing
from router.redis_server import RedisServer
from router.service import LifeEventRouter
from tests.support.identities import reporter_identity
from tests.support.samples import sample


def _submit(core: LifeEventRouter) -> str:
    data = sample("moving_house")
    identity = reporter_identity(data["event"], data["answers"])
    return core.submit(data["event"], data["answers"], data["consent"], identity=identity).ref


def test_a_case_is_never_sealed_under_a_key_the_ring_no_longer_holds(
    core: LifeEventRouter, redis: Redis, redis_server: RedisServer
) -> None:
    _submit(core)  # the store now holds the ring's first data key
    redis.delete(keys.KEY_RING)  # the ring lost (a flushed database), the key still held
    ref = _submit(core)
    # A fresh reader (another process) opens every answer of the new case.
    fresh = Redis.from_url(redis_server.url)
    answers = LifeEventRouter(fresh, core.adapters).case(ref).answers
    assert dict(answers) == dict(core.case(ref).answers)
    fresh.close()


def test_a_value_sealed_under_one_master_key_does_not_open_under_another(redis: Redis) -> None:
    mine = sealing.KeyRing(redis)
    token = mine.seal(b"SX123456C", "case:X/a:nino")
    assert mine.open(token, "case:X/a:nino") == b"SX123456C"
    with pytest.raises(sealing.KeyProblem):
        mine.open(token, "case:Y/a:nino")  # bound to its case and field
    with pytest.raises(sealing.KeyProblem):
        sealing.KeyRing(redis, master=os.urandom(32)).open(token, "case:X/a:nino")


def test_threads_seal_and_open_while_another_refreshes_the_ring(redis: Redis) -> None:
    """A web process's request threads share one ring; a refresh (a rotation seen, a
    create refused for a stale key) empties its keys while others are mid-seal. None
    of them may fail for it (a KeyError there was a citizen's 500)."""
    ring = sealing.KeyRing(redis)
    stop = threading.Event()
    errors: list[BaseException] = []

    def refresher() -> None:
        while not stop.is_set():
            ring.refresh()

    def sealer() -> None:
        try:
            for n in range(1500):
                token = ring.seal(b"AB123456A", f"case:X:{n}")
                assert ring.open(token, f"case:X:{n}") == b"AB123456A"
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=sealer) for _ in range(3)]
    other = threading.Thread(target=refresher)
    other.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    other.join()
    assert not errors, errors[:3]


def test_a_seal_whose_current_key_left_the_ring_under_it_seals_under_the_ring_s_current(
    redis: Redis,
) -> None:
    """A thread read the current key's id just before another's refresh emptied the
    ring's keys, and that key is no longer in Redis (the ring was flushed, or the key
    retired by another process after a rotation): the seal must not fail (a citizen's
    500 in the benchmark, UnknownKey) but use the key that is current now. A key asked
    for by id (a reseal under a given key) still fails loudly."""
    ring = sealing.KeyRing(redis)
    old = ring.current()
    redis.delete(keys.KEY_RING)  # gone from Redis
    ring._keys.clear()  # the other thread's refresh, after this one read ring._current

    token = ring.seal(b"AB123456A", "case:X/a:nino")

    new = ring.current()
    assert new != old and sealing.key_id_of(token) == new
    assert ring.open(token, "case:X/a:nino") == b"AB123456A"
    with pytest.raises(sealing.UnknownKey):
        ring.seal(b"AB123456A", "case:X/a:nino", kid=old)


def test_a_case_whose_current_key_left_the_ring_under_it_is_stored_under_the_ring_s_current(
    core: LifeEventRouter, redis: Redis
) -> None:
    """The same for a submission, which seals every answer under the key it read as
    current: stored (not a 500) under the key current now, and its answers open."""
    ring = core.store.ring
    old = ring.current()
    redis.delete(keys.KEY_RING)
    ring._keys.clear()
    data = sample("death")

    ref = core.submit(data["event"], data["answers"], data["consent"]).ref

    sealed = redis.hget(keys.case(ref), keys.answer_field("deceased_nino"))
    assert isinstance(sealed, bytes) and sealing.key_id_of(sealed) not in ("", old)
    nino = "".join(data["answers"]["deceased_nino"].split())
    assert core.case(ref).answers["deceased_nino"] == nino
