"""Answers the core accepts: one valid answer set per life event, the day their relative
dates count from, the catalogue's message ids, and the mock departments they are routed to."""

from __future__ import annotations

import ast
import copy
from datetime import date
from pathlib import Path
from typing import Any

import router.catalogue
from router.adapters.mocks import (
    DvlaLicences,
    DwpBenefits,
    GovernmentPayments,
    HmrcTax,
    LocalCouncil,
)
from tests.support.samples import sample, samples

TODAY = date(2026, 11, 29)

# One valid answer set per event: the examples in examples/events/*.json (one source, so
# the samples a newcomer sends are the answers the tests check). Dates that must be
# recent are relative ({"days_ago": N}, negative for the future).
VALID: dict[str, dict[str, Any]] = {name: sample(name)["answers"] for name in samples()}


def valid_answers(event_type: str, **changes: Any) -> dict[str, Any]:
    """A fresh, valid raw answer set for ``event_type``, with ``changes`` applied.

    A change to ``None`` removes the answer.
    """
    answers = copy.deepcopy(VALID[event_type])
    for name, value in changes.items():
        if value is None:
            answers.pop(name, None)
        else:
            answers[name] = value
    return answers


def _message_ids() -> frozenset[str]:
    """Every string marked with N_ in router/catalogue.py: the sentences a person reads."""
    tree = ast.parse(Path(router.catalogue.__file__).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "N_"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(node.args[0].value)
    return frozenset(found)


MESSAGE_IDS = _message_ids()

# The built-in mock departments, as the routing plan is given them.
ADAPTERS = (DwpBenefits, DvlaLicences, GovernmentPayments, HmrcTax, LocalCouncil)
BY_NAME = {a.name: a for a in ADAPTERS}
