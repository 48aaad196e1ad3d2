"""The example events in examples/events: one valid submission per life event, and
that submission sent through the core as a channel would."""

from __future__ import annotations

import json
from typing import Any

from router.service import LifeEventRouter
from router.trust import Confidence
from tests.support.identities import reporter_identity
from tests.support.paths import EXAMPLES
from tests.support.sent import Sent


def sample(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def samples() -> list[str]:
    return sorted(p.stem for p in EXAMPLES.glob("*.json"))


def answers_for(event_name: str, **changes: Any) -> dict[str, Any]:
    """The sample's answers with ``changes`` (None drops an answer)."""
    answers = dict(sample(event_name)["answers"])
    for name, value in changes.items():
        if value is None:
            answers.pop(name, None)
        else:
            answers[name] = value
    return answers


def submit_to_core(
    core: LifeEventRouter,
    event_name: str,
    *,
    channel: str = "web",
    help_requested: bool = False,
    confidence: Confidence | None = Confidence.P2,
    **changes: Any,
) -> Sent:
    """Submit the sample (its answers with ``changes``) with its consent through the core,
    as a channel does; see tests.support.journeys.submit_sample for the web journey.
    The reporter signed in at ``confidence`` first (None: they did not sign in)."""
    answers = answers_for(event_name, **changes)
    result = core.submit(
        event_name,
        answers,
        sample(event_name)["consent"],
        channel=channel,
        help_requested=help_requested,
        identity=reporter_identity(event_name, answers, confidence) if confidence else None,
    )
    return Sent(result.ref, result.secret)
