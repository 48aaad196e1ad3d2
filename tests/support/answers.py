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

TODAY = date(2026, 11, 29)

# One valid answer set per event, as the examples in examples/events/*.json. Dates that
# must be recent are relative ({"days_ago": N}, negative for the future).
VALID: dict[str, dict[str, Any]] = {
    "moving_house": {
        "full_name": "Siân O'Brien-Évans",
        "date_of_birth": "1984-07-12",
        "nino": "SX 12 34 56 C",
        "address_line_1": "14 Heol y Castell",
        "town": "Cardiff",
        "postcode": "cf10 1bh",
        "previous_postcode": "SW1A 2AA",
        "move_date": {"days_ago": -7},
        "has_driving_licence": "yes",
        "driving_licence_number": "OBRIE757124S99AB",
    },
    "death": {
        "deceased_full_name": "Arthur Pendleton",
        "deceased_date_of_birth": "1941-02-03",
        "date_of_death": {"days_ago": 9},
        "deceased_nino": "AB 12 34 56 A",
        "address_line_1": "3 Mill Lane",
        "town": "Leeds",
        "postcode": "LS1 4AP",
        "informant_full_name": "Margaret Pendleton",
        "informant_relationship": "spouse_or_partner",
        "had_driving_licence": "yes",
        "driving_licence_number": "PENDL402031A99XY",
    },
    "birth": {
        "child_full_name": "Zoë Okafor",
        "child_date_of_birth": {"days_ago": 14},
        "parent_full_name": "Chidi Okafor",
        "parent_date_of_birth": "1990-05-21",
        "parent_nino": "JK 98 76 54 B",
        "address_line_1": "27 Rose Street",
        "town": "Edinburgh",
        "postcode": "EH2 2PR",
        "claim_child_benefit": "yes",
    },
    "new_job": {
        "full_name": "Priya Sharma",
        "date_of_birth": "1995-09-30",
        "nino": "ZY 11 22 33 D",
        "employer_name": "Northern Rail Works Ltd",
        "employer_paye_reference": "123/AB456",
        "job_start_date": {"days_ago": -10},
        "claiming_benefits": "yes",
        "postcode": "M1 1AE",
    },
    "retiring": {
        "full_name": "Gareth Llewellyn",
        "date_of_birth": "1960-03-14",
        "nino": "CE 55 66 77 A",
        "retirement_date": {"days_ago": -30},
        "address_line_1": "8 Bryn Road",
        "town": "Swansea",
        "postcode": "SA1 1NW",
        "has_bank_account": "yes",
        "sort_code": "30-94-98",
        "account_number": "00733445",
    },
    "change_of_name": {
        "previous_full_name": "Emily Carter",
        "full_name": "Emily D'Souza",
        "date_of_birth": "1992-04-08",
        "nino": "PR 24 68 10 C",
        "date_of_change": {"days_ago": 50},
        "reason": "marriage",
        "address_line_1": "5 Quay Street",
        "town": "Bristol",
        "postcode": "BS1 4DJ",
        "driving_licence": "photocard",
        "driving_licence_number": "CARTE854082E99KL",
    },
}


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
