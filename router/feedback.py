"""What citizens think of the service: GOV.UK's satisfaction question, asked on the
confirmation page after a report and on the phase banner's feedback page.

The rating (how satisfied, on GOV.UK's five-point scale) is counted, in all and per day
(router.stats): the user satisfaction figure the Service Standard asks a service to
publish. An optional comment is kept apart from any report: in a capped list
(``keys.FEEDBACK_COMMENTS``), with the day and the rating only, never a reference or a
time that could match it to one, with anything that looks like a reference, an email
address, a phone or National Insurance number or a postcode taken out. It is never
logged.
"""

from __future__ import annotations

import json
import re
from typing import Any

from redis import Redis

from router import keys, reference, stats
from router.exceptions import ValidationFailed
from router.i18n import N_

# GOV.UK's satisfaction scale, best first: value -> wording.
RATINGS: dict[str, str] = {
    "very_satisfied": N_("Very satisfied"),
    "satisfied": N_("Satisfied"),
    "neither": N_("Neither satisfied nor dissatisfied"),
    "dissatisfied": N_("Dissatisfied"),
    "very_dissatisfied": N_("Very dissatisfied"),
}
COMMENT_MAX = 1200  # characters
REMOVED = "[removed]"

# What a comment must not keep, though we ask people not to write it.
_PERSONAL = re.compile(
    r"\S+@\S+"  # an email address
    r"|\b[A-Z]{2}(?:\s?\d{2}){3}\s?[A-D]\b"  # a National Insurance number
    r"|\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b"  # a postcode
    r"|\+?\d[\d\s()-]{5,}\d",  # a phone number, or any long number
    re.IGNORECASE,
)
_MAYBE_REFERENCE = re.compile(r"\b[A-Za-z0-9]{4}[\s-]?[A-Za-z0-9]{4}[\s-]?[A-Za-z0-9]\b")


def cleaned(comment: str) -> str:
    """A comment as it is kept: spaces collapsed, and anything that looks like a report's
    reference or a person's details replaced with ``[removed]``."""
    text = " ".join(comment.split())
    text = _MAYBE_REFERENCE.sub(
        lambda m: REMOVED if reference.normalise(m.group()) else m.group(), text
    )
    return _PERSONAL.sub(REMOVED, text)


class Feedback:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def record(self, rating: str, comment: str = "", day: str | None = None) -> None:
        """Count ``rating`` (today, or on ``day``) and keep ``comment`` if one is given;
        ``ValidationFailed`` saying how to put right a missing or unknown rating or a
        comment too long."""
        errors: dict[str, str] = {}
        if rating not in RATINGS:
            errors["rating"] = N_("Select how satisfied you are with this service")
        if len(comment.strip()) > COMMENT_MAX:
            errors["comment"] = N_("Your comment must be 1,200 characters or fewer")
        if errors:
            raise ValidationFailed(errors)
        with self.redis.pipeline(transaction=True) as pipe:
            add(pipe, rating, cleaned(comment), day or stats.day_of())
            pipe.execute()

    def counts(self) -> dict[str, int]:
        """How many gave each rating, in the scale's order."""
        raw = self.redis.hgetall(keys.FEEDBACK)
        held = {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in raw.items()}
        return {rating: held.get(rating, 0) for rating in RATINGS}

    def satisfaction(self) -> float | None:
        """The share satisfied or very satisfied (None before anyone answered)."""
        return satisfaction(self.counts())

    def comments(self, count: int = 50) -> list[dict[str, Any]]:
        """The latest comments, newest first: each its day, rating and text."""
        return [json.loads(raw) for raw in self.redis.lrange(keys.FEEDBACK_COMMENTS, 0, count - 1)]


def add(pipe: Any, rating: str, comment: str, day: str) -> None:
    """The writes of one answer, in the caller's transaction: ``rating`` counted in all
    and on ``day``; ``comment`` (cleaned already), if any, kept apart."""
    pipe.hincrby(keys.FEEDBACK, rating, 1)
    stats.count_rating(pipe, rating, day)
    if comment:
        kept = {"day": day, "rating": rating, "text": comment}
        pipe.lpush(keys.FEEDBACK_COMMENTS, json.dumps(kept, ensure_ascii=False))
        pipe.ltrim(keys.FEEDBACK_COMMENTS, 0, keys.FEEDBACK_COMMENTS_KEPT - 1)


def satisfaction(counts: dict[str, int]) -> float | None:
    """The share of ``counts`` (rating -> how many) satisfied or very satisfied; None if
    nobody answered."""
    total = sum(counts.get(rating, 0) for rating in RATINGS)
    if not total:
        return None
    return (counts.get("very_satisfied", 0) + counts.get("satisfied", 0)) / total
