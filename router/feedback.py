"""What citizens think of the service: the phase banner's feedback page.

Only the rating is kept (how satisfied, on GOV.UK's five-point scale), counted per
rating, with no comment and nothing that could name anyone: the user satisfaction
figure the Service Standard asks a service to publish.
"""

from __future__ import annotations

from redis import Redis

from router import keys
from router.i18n import N_

# GOV.UK's satisfaction scale, best first: value -> wording.
RATINGS: dict[str, str] = {
    "very_satisfied": N_("Very satisfied"),
    "satisfied": N_("Satisfied"),
    "neither": N_("Neither satisfied nor dissatisfied"),
    "dissatisfied": N_("Dissatisfied"),
    "very_dissatisfied": N_("Very dissatisfied"),
}


class Feedback:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def record(self, rating: str) -> None:
        if rating not in RATINGS:
            raise ValueError(f"unknown rating {rating!r}")
        self.redis.hincrby(keys.FEEDBACK, rating, 1)

    def counts(self) -> dict[str, int]:
        """How many gave each rating, in the scale's order."""
        raw = self.redis.hgetall(keys.FEEDBACK)
        held = {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in raw.items()}
        return {rating: held.get(rating, 0) for rating in RATINGS}

    def satisfaction(self) -> float | None:
        """The share satisfied or very satisfied (None before anyone answered)."""
        counts = self.counts()
        total = sum(counts.values())
        if not total:
            return None
        return (counts["very_satisfied"] + counts["satisfied"]) / total
