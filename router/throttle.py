"""Slow down guessing: count failed attempts in Redis and refuse for a while after too many.

Used where a wrong guess must cost something: finding a case by reference and date of
birth, a status link with the wrong secret, and (for counter staff) signing in. Counts
live in Redis so every web process behind a load balancer shares them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis import Redis

from router import keys


@dataclass(frozen=True)
class Throttle:
    """At most ``limit`` failures per ``who`` in ``window_seconds``; then refuse until
    the window (which starts at the first failure) runs out."""

    redis: Redis
    name: str
    limit: int
    window_seconds: int = 15 * 60

    def _key(self, who: str) -> str:
        # Hashed, so a key never holds a reference number or an address in clear.
        digest = hashlib.sha256(who.encode()).hexdigest()[:32]
        return keys.throttle(self.name, digest)

    def wait_seconds(self, *whos: str) -> int:
        """Seconds until ``whos`` may try again (0: they may try now)."""
        longest = 0
        for who in whos:
            key = self._key(who)
            count = int(self.redis.get(key) or 0)
            if count >= self.limit:
                longest = max(longest, max(int(self.redis.ttl(key)), 1))
        return longest

    def failed(self, *whos: str) -> None:
        """Count one failed attempt against each of ``whos``."""
        pipe = self.redis.pipeline(transaction=True)
        for who in whos:
            key = self._key(who)
            pipe.incr(key)
            pipe.expire(key, self.window_seconds, nx=True)
        pipe.execute()

    def forget(self, *whos: str) -> None:
        """A success clears the count."""
        self.redis.delete(*(self._key(who) for who in whos))
