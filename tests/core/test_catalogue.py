"""Tests of the life-event catalogue: which answers each event accepts, and the words
a person reads when an answer needs fixing."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from router.catalogue import EVENTS, Kind, get_event
from router.exceptions import ValidationFailed
from tests.support.answers import MESSAGE_IDS, TODAY, VALID, valid_answers

VALIDATOR_KEYS = frozenset(
    {"required", "format", "never_issued", "too_long", "characters", "incomplete", "real"}
    | {"choice", "future", "past"}
)


def assert_readable(message: str) -> None:
    """A message tells a person how to fix an answer: a marked sentence, not a key."""
    assert isinstance(message, str)
    assert message.strip()
    assert message not in VALIDATOR_KEYS
    assert message in MESSAGE_IDS, f"not a message id in the catalogue: {message!r}"
    assert " " in message and message[0].isupper()


def errors_of(event_type: str, answers: dict[str, Any], today: date = TODAY) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as info:
        EVENTS[event_type].validate(answers, today=today)
    for message in info.value.errors.values():
        assert_readable(message)
    return info.value.errors


def test_message_ids_were_found():
    # Guards the helper itself: if parsing found nothing, every check would be vacuous.
    assert "Enter your full name" in MESSAGE_IDS
    assert "Enter a real postcode, like SW1A 1AA" in MESSAGE_IDS
    assert len(MESSAGE_IDS) > 50


def test_six_event_types():
    assert set(EVENTS) == {
        "moving_house",
        "death",
        "birth",
        "new_job",
        "retiring",
        "change_of_name",
    }
    assert set(VALID) == set(EVENTS)


# --- Declarations ---------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_every_question_is_worded(event_type):
    event = EVENTS[event_type]
    assert event.title in MESSAGE_IDS and event.title.strip()
    assert event.description in MESSAGE_IDS and event.description.strip()
    fields = [q.field for q in event.questions]
    assert len(fields) == len(set(fields)), "a field is asked twice"
    required_errors = [q.required_error for q in event.questions]
    assert len(required_errors) == len(set(required_errors)), "two questions share a message"
    for q in event.questions:
        assert q.label.strip(), q.field
        assert q.label in MESSAGE_IDS, q.field
        assert_readable(q.required_error)
        for value, label in q.choices():
            assert value and label.strip(), q.field
        if q.kind in (Kind.CHOICE, Kind.YES_NO):
            assert q.choices(), q.field
        if q.show_if is not None:
            other, values = q.show_if
            controlling = event.question(other)
            assert fields.index(other) < fields.index(q.field), "condition asked after"
            assert set(values) <= {v for v, _ in controlling.choices()}


def test_each_yes_or_no_question_has_its_own_answers_and_messages():
    """Issue 15, item 9: Welsh answers a yes or no question with its verb ("Oes" to "Oes
    gennych chi...?", "Ydw" to "Ydych chi...?"), so each question's "Yes" and "No" are
    messages of its own (marked in a context named after it), and so is the message for
    an answer that is neither. The answers stored stay "yes" and "no"."""
    questions = [q for e in EVENTS.values() for q in e.questions if q.kind is Kind.YES_NO]
    assert len(questions) == 5
    for q in questions:
        assert [value for value, _ in q.choices()] == ["yes", "no"], q.field
        labels = [(getattr(label, "context", None), label) for _, label in q.choices()]
        assert labels == [(q.field, "Yes"), (q.field, "No")], q.field
        assert q.error("choice") != q.required_error, q.field
        assert_readable(q.error("choice"))
    assert len({q.error("choice") for q in questions}) == len(questions)


def test_get_event_refuses_an_unknown_event():
    for bad in ("moving", "", None, ["death"]):
        with pytest.raises(ValidationFailed) as info:
            get_event(bad)
        assert set(info.value.errors) == {"event"}
        assert_readable(info.value.errors["event"])
    assert get_event("death") is EVENTS["death"]


# --- Valid answers ------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_valid_answer_set_validates(event_type):
    answers = valid_answers(event_type)
    clean = EVENTS[event_type].validate(answers, today=TODAY)
    assert set(clean) == set(answers)
    assert set(clean) <= set(EVENTS[event_type].fields)
    for q in EVENTS[event_type].questions:
        if q.kind is Kind.DATE and q.field in clean:
            assert clean[q.field] == date.fromisoformat(clean[q.field]).isoformat()


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_validate_does_not_change_the_answers_given(event_type):
    answers = valid_answers(event_type)
    before = copy.deepcopy(answers)
    EVENTS[event_type].validate(answers, today=TODAY)
    assert answers == before


def test_answers_are_stored_in_canonical_form():
    clean = EVENTS["moving_house"].validate(valid_answers("moving_house"), today=TODAY)
    assert clean["postcode"] == "CF10 1BH"
    assert clean["nino"] == "SX123456C"
    assert clean["move_date"] == "2026-12-06"  # 7 days after TODAY
    assert clean["full_name"] == "Siân O'Brien-Évans"

    clean = EVENTS["retiring"].validate(
        valid_answers(
            "retiring",
            sort_code="30 94 98",
            account_number="733445",
            has_bank_account=" YES ",
            retirement_date={"day": "1", "month": "3", "year": "2027"},
        ),
        today=TODAY,
    )
    assert clean["sort_code"] == "309498"
    assert clean["account_number"] == "00733445"
    assert clean["has_bank_account"] == "yes"
    assert clean["retirement_date"] == "2027-03-01"


def test_optional_answer_may_be_left_out():
    for blank in (None, "", "   "):
        answers = valid_answers("new_job", employer_paye_reference=blank)
        clean = EVENTS["new_job"].validate(answers, today=TODAY)
        assert "employer_paye_reference" not in clean


def test_optional_answer_is_still_checked_when_given():
    errors = errors_of("new_job", valid_answers("new_job", employer_paye_reference="AB456"))
    assert errors == {
        "employer_paye_reference": (
            "Enter the employer PAYE reference as it is on your payslip, like 123/AB456"
        )
    }


# --- Required answers ---------------------------------------------------------------------


def _required_fields() -> list[tuple[str, str, object]]:
    """(event, field, blank answer) for every required question the valid set answers."""
    cases = []
    for name, event in EVENTS.items():
        answers = valid_answers(name)
        for q in event.questions:
            if q.required and q.field in answers:
                blanks: list[object] = ["missing", None, "", "  "]
                if q.kind is Kind.DATE:
                    blanks += [{}, {"day": "", "month": "", "year": ""}]
                cases += [(name, q.field, blank) for blank in blanks]
    return cases


@pytest.mark.parametrize(("event_type", "field", "blank"), _required_fields())
def test_missing_required_answer_gives_its_own_message(event_type, field, blank):
    answers = valid_answers(event_type)
    if blank == "missing":
        del answers[field]
    else:
        answers[field] = blank
    question = EVENTS[event_type].question(field)
    errors = errors_of(event_type, answers)
    assert errors == {field: question.required_error}


def test_shown_conditional_question_is_required():
    errors = errors_of("moving_house", valid_answers("moving_house", driving_licence_number=None))
    assert errors == {"driving_licence_number": "Enter the driving licence number"}
    errors = errors_of("retiring", valid_answers("retiring", sort_code=None, account_number=None))
    assert errors == {
        "sort_code": "Enter the sort code",
        "account_number": "Enter the account number",
    }
    errors = errors_of(
        "change_of_name",
        valid_answers("change_of_name", driving_licence="paper", driving_licence_number=""),
    )
    assert errors == {"driving_licence_number": "Enter the driving licence number"}


def test_every_error_reported_at_once():
    errors = errors_of("birth", {})
    # Every question asked of everyone: those that depend on an answer are not asked yet.
    assert set(errors) == {
        q.field for q in EVENTS["birth"].questions if q.show_if is None and q.required
    }
    for field, message in errors.items():
        assert message == EVENTS["birth"].question(field).required_error


# --- Unknown answers ------------------------------------------------------------------------

UNKNOWN = "Remove this answer: it is not a question for this life event"


@pytest.mark.parametrize(
    ("event_type", "extra"),
    [
        (name, extra)
        for name in sorted(EVENTS)
        for extra in ("favourite_colour", "deceased_nino", "FULL_NAME", "", "nino ")
        if extra not in EVENTS[name].fields
    ],
)
def test_unknown_answer_is_refused(event_type, extra):
    errors = errors_of(event_type, valid_answers(event_type, **{extra: "something"}))
    assert errors == {extra: UNKNOWN}


def test_unknown_answer_refused_even_when_blank():
    errors = errors_of("birth", valid_answers("birth", notes=""))
    assert errors == {"notes": UNKNOWN}


# --- Conditional answers that do not apply are dropped ----------------------------------


@pytest.mark.parametrize(
    ("event_type", "changes", "dropped"),
    [
        ("moving_house", {"has_driving_licence": "no"}, {"driving_licence_number"}),
        ("death", {"had_driving_licence": "no"}, {"driving_licence_number"}),
        ("change_of_name", {"driving_licence": "none"}, {"driving_licence_number"}),
        ("retiring", {"has_bank_account": "no"}, {"sort_code", "account_number"}),
    ],
)
@pytest.mark.parametrize("hidden_value", ["as given", "not even valid"])
def test_hidden_conditional_answers_are_dropped(event_type, changes, dropped, hidden_value):
    answers = valid_answers(event_type, **changes)
    if hidden_value != "as given":
        for name in dropped:
            answers[name] = hidden_value
    assert dropped <= set(answers)
    clean = EVENTS[event_type].validate(answers, today=TODAY)
    assert not dropped & set(clean), "an answer to a question not asked was kept"
    assert set(clean) == set(answers) - dropped


# --- Format errors through the catalogue -------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "field", "value", "message"),
    [
        ("moving_house", "postcode", "XX1 1AA", "Enter a real postcode, like SW1A 1AA"),
        ("moving_house", "previous_postcode", "SW1A", "Enter a real postcode, like SW1A 1AA"),
        (
            "moving_house",
            "nino",
            "QQ 12 34 56 C",
            "Enter a real National Insurance number: the first 2 letters you entered "
            "are never used at the start of one",
        ),
        (
            "death",
            "deceased_nino",
            "AB 12 34",
            "Enter a National Insurance number in the correct format, like QQ 12 34 56 C",
        ),
        (
            "birth",
            "child_full_name",
            "<script>",
            "Name must only include letters, spaces, hyphens, apostrophes and full stops",
        ),
        ("birth", "parent_full_name", "A" * 101, "Name must be 100 characters or fewer"),
        ("new_job", "employer_name", "x" * 101, "Answer must be 100 characters or fewer"),
        (
            "new_job",
            "claiming_benefits",
            "maybe",
            "Select yes if you get any benefits, or no if you do not",
        ),
        ("death", "informant_relationship", "cousin", "Select one of the options"),
        ("change_of_name", "reason", "yes", "Select one of the options"),
        (
            "moving_house",
            "date_of_birth",
            {"day": "12", "month": "7"},
            "Date must include a day, month and year",
        ),
        (
            "moving_house",
            "date_of_birth",
            "1984-02-30",
            "Date must be a real date",
        ),
        (
            "moving_house",
            "move_date",
            {"days_ago": "7"},
            "Date must be a real date",
        ),
        (
            "moving_house",
            "move_date",
            {"days_ago": True},
            "Date must be a real date",
        ),
        (
            "moving_house",
            "driving_licence_number",
            "MORGA713116SM9IJ",
            "Enter the driving licence number as it is shown on the licence: "
            "16 characters, like MORGA753116SM9IJ",
        ),
        ("retiring", "sort_code", "3094", "Enter a valid sort code, like 30 94 98"),
        (
            "retiring",
            "account_number",
            "12345",
            "Enter a valid account number, like 00733445: 6 to 8 digits",
        ),
    ],
)
def test_format_error_tells_how_to_fix_it(event_type, field, value, message):
    errors = errors_of(event_type, valid_answers(event_type, **{field: value}))
    assert errors == {field: message}


# --- Date limits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "changes", "field", "message"),
    [
        (
            "death",
            {"date_of_death": {"days_ago": -1}},
            "date_of_death",
            "Date of death must be today or in the past",
        ),
        (
            "death",
            {"date_of_death": "2026-11-30"},
            "date_of_death",
            "Date of death must be today or in the past",
        ),
        (
            "death",
            {"date_of_death": "2020-01-01"},
            "date_of_death",
            "Date of death must be within the last 5 years",
        ),
        (
            "death",
            {"deceased_date_of_birth": "2026-06-01", "date_of_death": "2026-05-31"},
            "date_of_death",
            "Date of death must be the same as or after their date of birth",
        ),
        (
            "death",
            {"deceased_date_of_birth": "2027-01-01"},
            "deceased_date_of_birth",
            "Date of birth must be in the past",
        ),
        (
            "birth",
            {"child_date_of_birth": {"days_ago": -1}},
            "child_date_of_birth",
            "The baby’s date of birth must be today or in the past",
        ),
        (
            "birth",
            {"child_date_of_birth": "2025-10-01"},
            "child_date_of_birth",
            "The baby’s date of birth must be within the last 12 months",
        ),
        (
            "birth",
            {"parent_date_of_birth": "2026-11-20", "child_date_of_birth": "2026-11-15"},
            "child_date_of_birth",
            "The baby’s date of birth must be after your date of birth",
        ),
        (
            "moving_house",
            {"move_date": {"days_ago": 400}},
            "move_date",
            "Moving date must be within the last 12 months",
        ),
        (
            "moving_house",
            {"move_date": "2025-11-01"},
            "move_date",
            "Moving date must be within the last 12 months",
        ),
        (
            "moving_house",
            {"move_date": "2027-04-01"},
            "move_date",
            "Moving date must be within the next 3 months",
        ),
        (
            "moving_house",
            {"date_of_birth": "1890-01-01"},
            "date_of_birth",
            "Date of birth must be within the last 130 years",
        ),
        (
            "moving_house",
            {"date_of_birth": {"days_ago": -1}},
            "date_of_birth",
            "Date of birth must be in the past",
        ),
        (
            "new_job",
            {"job_start_date": "2027-07-01"},
            "job_start_date",
            "Start date must be within the next 6 months",
        ),
        (
            "retiring",
            {"retirement_date": "2028-01-01"},
            "retirement_date",
            "Retirement date must be within the next 12 months",
        ),
        (
            "change_of_name",
            {"date_of_change": "2026-12-01"},
            "date_of_change",
            "Date of the name change must be today or in the past",
        ),
        (
            "change_of_name",
            {"date_of_birth": "2026-01-01", "date_of_change": "2025-12-01"},
            "date_of_change",
            "Date of the name change must be after your date of birth",
        ),
    ],
)
def test_date_limits(event_type, changes, field, message):
    errors = errors_of(event_type, valid_answers(event_type, **changes))
    assert errors == {field: message}


@pytest.mark.parametrize(
    ("event_type", "changes"),
    [
        ("death", {"date_of_death": "2026-11-29"}),  # today
        ("death", {"deceased_date_of_birth": "2024-05-01", "date_of_death": "2024-05-01"}),
        ("death", {"date_of_death": "2022-01-01"}),  # under 5 years
        ("birth", {"child_date_of_birth": "2026-11-29", "registration_date": "2026-11-29"}),
        ("birth", {"child_date_of_birth": "2025-12-15"}),
        ("moving_house", {"move_date": "2025-12-01"}),
        ("moving_house", {"move_date": "2027-02-27"}),
        ("new_job", {"job_start_date": "2027-05-01"}),
        ("retiring", {"retirement_date": "2027-11-01"}),
        ("change_of_name", {"date_of_change": "2026-11-29"}),
    ],
)
def test_dates_within_limits_accepted(event_type, changes):
    clean = EVENTS[event_type].validate(valid_answers(event_type, **changes), today=TODAY)
    for field, value in changes.items():
        assert clean[field] == value


def test_limits_follow_the_day_given():
    # The same answer is fine on one day and too late on a later one.
    answers = valid_answers(
        "birth", child_date_of_birth="2026-01-15", registration_date="2026-01-20"
    )
    EVENTS["birth"].validate(answers, today=TODAY)
    errors = errors_of("birth", answers, today=date(2027, 6, 1))
    # Both the birth and its registration are now more than 12 months ago.
    assert set(errors) == {"child_date_of_birth", "registration_date"}
