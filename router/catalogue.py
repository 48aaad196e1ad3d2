"""The life events a citizen can report: their questions, checks and wording.

Each event type declares its questions in order (one question per page on the web).
``EventType.validate`` turns raw answers into clean ones or raises ``ValidationFailed``
with one message per field saying how to fix it. Every string a person reads is a
message id marked with ``N_`` and translated by the channel that shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from router import validators as v
from router.exceptions import ValidationFailed
from router.i18n import N_, NP_


class Kind(StrEnum):
    """What sort of answer a question takes; each kind has its own format check."""

    NAME = "name"
    TEXT = "text"
    DATE = "date"
    POSTCODE = "postcode"
    NINO = "nino"
    YES_NO = "yes_no"
    CHOICE = "choice"
    DRIVING_LICENCE = "driving_licence"
    SORT_CODE = "sort_code"
    ACCOUNT_NUMBER = "account_number"
    PAYE_REFERENCE = "paye_reference"
    REGISTRAR_REFERENCE = "registrar_reference"
    ENTRY_NUMBER = "entry_number"
    EMAIL = "email"
    MOBILE = "mobile"


class Role(StrEnum):
    """What an answer tells about who a report is about, for the channels that need to
    know: a counter clerk is shown only these, to check the person in front of them,
    and a citizen finds their case by a date of birth given in it."""

    NAME = "name"
    DATE_OF_BIRTH = "date_of_birth"
    POSTCODE = "postcode"


# Format messages shared by every question of a kind. Messages that name the thing
# asked about (required, date limits) are given by each question.
_KIND_ERRORS: dict[Kind, dict[str, str]] = {
    Kind.NAME: {
        "too_long": N_("Name must be 100 characters or fewer"),
        "characters": N_(
            "Name must only include letters, spaces, hyphens, apostrophes and full stops"
        ),
        "mixed_scripts": N_(
            "Name must use letters from one alphabet: type it again yourself rather than "
            "copying it, as some letters from other alphabets look the same"
        ),
        "invisible": N_(
            "Name must not include invisible characters: type it again yourself rather "
            "than copying it"
        ),
        "marks": N_("Name must not have more than 3 accents or marks on one letter"),
    },
    Kind.TEXT: {
        "too_long": N_("Answer must be 100 characters or fewer"),
        "characters": N_("Answer must only include letters, numbers and punctuation"),
    },
    Kind.DATE: {
        "incomplete": N_("Date must include a day, month and year"),
        "real": N_("Date must be a real date"),
    },
    Kind.POSTCODE: {"format": N_("Enter a real postcode, like SW1A 1AA")},
    Kind.NINO: {
        "format": N_("Enter a National Insurance number in the correct format, like QQ 12 34 56 C"),
        "never_issued": N_(
            "Enter a real National Insurance number: the first 2 letters you entered "
            "are never used at the start of one"
        ),
    },
    Kind.CHOICE: {"choice": N_("Select one of the options")},
    Kind.DRIVING_LICENCE: {
        "format": N_(
            "Enter the driving licence number as it is shown on the licence: "
            "16 characters, like MORGA753116SM9IJ"
        )
    },
    Kind.SORT_CODE: {"format": N_("Enter a valid sort code, like 30 94 98")},
    Kind.ACCOUNT_NUMBER: {
        "format": N_("Enter a valid account number, like 00733445: 6 to 8 digits")
    },
    Kind.PAYE_REFERENCE: {
        "format": N_("Enter the employer PAYE reference as it is on your payslip, like 123/AB456")
    },
    Kind.REGISTRAR_REFERENCE: {
        "format": N_(
            "Enter the reference as it is on the registrar’s letter: 12 letters and numbers, "
            "like DX7Q 4K2M 9PLA"
        )
    },
    Kind.ENTRY_NUMBER: {
        "format": N_("Enter the entry number as it is on the certificate, like 123: digits only")
    },
    Kind.EMAIL: {
        "format": N_("Enter an email address in the correct format, like name@example.com")
    },
    Kind.MOBILE: {
        "format": N_("Enter a UK mobile phone number, like 07700 900 982, or leave it blank")
    },
}

_PARSERS: dict[Kind, Callable[[object], Any]] = {
    Kind.NAME: v.parse_name,
    Kind.TEXT: v.parse_text,
    Kind.DATE: v.parse_date,
    Kind.POSTCODE: v.parse_postcode,
    Kind.NINO: v.parse_nino,
    Kind.DRIVING_LICENCE: v.parse_driving_licence,
    Kind.SORT_CODE: v.parse_sort_code,
    Kind.ACCOUNT_NUMBER: v.parse_account_number,
    Kind.PAYE_REFERENCE: v.parse_paye_reference,
    Kind.REGISTRAR_REFERENCE: v.parse_registrar_reference,
    Kind.ENTRY_NUMBER: v.parse_entry_number,
    Kind.EMAIL: v.parse_email,
    Kind.MOBILE: v.parse_uk_mobile,
}


@dataclass(frozen=True)
class DateLimits:
    """How far back and forward a date may be, in days from today (None: no limit)."""

    past_days: int | None = None
    future_days: int | None = 0


@dataclass(frozen=True)
class Question:
    """One question: the field it fills, the kind of answer, its wording and errors."""

    field: str
    kind: Kind
    label: str
    required_error: str
    hint: str = ""
    required: bool = True
    options: tuple[tuple[str, str], ...] = ()
    show_if: tuple[str, tuple[str, ...]] | None = None
    limits: DateLimits = DateLimits()
    errors: Mapping[str, str] = dc_field(default_factory=dict)
    role: Role | None = None

    def error(self, key: str) -> str:
        """The message for a failed check, most specific wording first."""
        if key == "required":
            return self.required_error
        kind_errors = _KIND_ERRORS.get(self.kind, {})
        return self.errors.get(key) or kind_errors.get(key) or self.required_error

    def applies(self, answers: Mapping[str, Any]) -> bool:
        """Whether this question is asked, given the answers so far."""
        if self.show_if is None:
            return True
        other, values = self.show_if
        return answers.get(other) in values

    def choices(self) -> tuple[tuple[str, str], ...]:
        """The (stored value, message id) of each option, in the order they are offered."""
        return self.options

    def parse(self, raw: object, today: date) -> Any:
        """Check one answer and return it in canonical form; raise ``v.Invalid``."""
        if self.kind in (Kind.YES_NO, Kind.CHOICE):
            text = v.clean(raw).lower()
            if not text:
                raise v.Invalid("required")
            if text not in {value for value, _ in self.choices()}:
                raise v.Invalid("choice")
            return text
        if self.kind is Kind.DATE and isinstance(raw, dict) and "days_ago" in raw:
            # Relative dates keep sample and test events valid whatever day they run.
            days = raw["days_ago"]
            if not isinstance(days, int) or isinstance(days, bool) or abs(days) > 100_000:
                raise v.Invalid("real")
            raw = today - timedelta(days=days)
        value = _PARSERS[self.kind](raw)
        if self.kind is Kind.DATE:
            if self.limits.future_days is not None and value > today + timedelta(
                days=self.limits.future_days
            ):
                raise v.Invalid("future")
            if self.limits.past_days is not None and value < today - timedelta(
                days=self.limits.past_days
            ):
                raise v.Invalid("past")
            return value.isoformat()
        return value


CrossCheck = Callable[[Mapping[str, Any]], dict[str, str]]


# Short names for answers, used where answers are listed rather than asked: check your
# answers, "who should we tell" and "what we shared". An event may override one.
FIELD_LABELS: dict[str, str] = {
    "full_name": N_("Full name"),
    "date_of_birth": N_("Date of birth"),
    "nino": N_("National Insurance number"),
    "address_line_1": N_("Building and street"),
    "town": N_("Town or city"),
    "postcode": N_("Postcode"),
    "previous_postcode": N_("Postcode of old address"),
    "move_date": N_("Moving date"),
    "has_driving_licence": N_("Whether you have a driving licence"),
    "driving_licence_number": N_("Driving licence number"),
    "deceased_full_name": N_("Full name of the person who died"),
    "deceased_date_of_birth": N_("Their date of birth"),
    "date_of_death": N_("Date of death"),
    "deceased_nino": N_("Their National Insurance number"),
    "informant_full_name": N_("Your full name"),
    "informant_date_of_birth": N_("Your date of birth"),
    "registration_how": N_("Registration given as"),
    "registrar_reference": N_("Registrar’s reference"),
    "registration_district": N_("Registration district"),
    "entry_number": N_("Register entry number"),
    "registration_date": N_("Date of registration"),
    "informant_relationship": N_("Your relationship to them"),
    "had_driving_licence": N_("Whether they had a driving licence"),
    "child_full_name": N_("Baby’s full name"),
    "child_date_of_birth": N_("Baby’s date of birth"),
    "parent_full_name": N_("Your full name"),
    "parent_date_of_birth": N_("Your date of birth"),
    "parent_nino": N_("Your National Insurance number"),
    "claim_child_benefit": N_("Whether you want to claim Child Benefit"),
    "employer_name": N_("Employer"),
    "employer_paye_reference": N_("Employer’s PAYE reference"),
    "job_start_date": N_("Start date"),
    "claiming_benefits": N_("Whether you get benefits"),
    "retirement_date": N_("Retirement date"),
    "has_bank_account": N_("Whether you have a bank or building society account"),
    "sort_code": N_("Sort code"),
    "account_number": N_("Account number"),
    "previous_full_name": N_("Full name before the change"),
    "date_of_change": N_("Date of the name change"),
    "reason": N_("Reason for the change"),
    "driving_licence": N_("Kind of driving licence"),
    "contact_email": N_("Email address for updates"),
    "contact_mobile": N_("Mobile number for updates"),
}

# Where the citizen is told how their report is going (router.notifications). Every
# event asks them last, both optional; no department is ever sent them.
CONTACT_FIELDS = ("contact_email", "contact_mobile")


@dataclass(frozen=True)
class Reporter:
    """Who reports an event, as its answers say: the fields holding the reporter's name
    (a change of name gives the former one too) and date of birth, and their relation
    to the person the event is about: an answer (``relationship_field``) or fixed."""

    name_fields: tuple[str, ...]
    date_of_birth_field: str
    relationship: str = "self"
    relationship_field: str = ""

    def names(self, answers: Mapping[str, Any]) -> list[str]:
        return [str(answers[f]) for f in self.name_fields if answers.get(f)]

    def date_of_birth(self, answers: Mapping[str, Any]) -> str:
        return str(answers.get(self.date_of_birth_field, ""))

    def relation(self, answers: Mapping[str, Any]) -> str:
        if self.relationship_field:
            return str(answers.get(self.relationship_field, "")) or "other"
        return self.relationship


@dataclass(frozen=True)
class Registration:
    """An event a General Register Office records (a birth, a death): the answers that
    name its register entry, and those the register must agree with."""

    kind: str  # "death" or "birth": the register it is in
    name_field: str  # the person registered
    date_field: str  # the date of the death or birth

    def query(self, answers: Mapping[str, Any]) -> dict[str, str]:
        """How the report names its registration: the registrar's reference, or the
        entry (district, number, date of registration)."""
        if answers.get("registration_how") == "reference":
            return {"reference": str(answers.get("registrar_reference", ""))}
        return {
            "district": str(answers.get("registration_district", "")),
            "entry_number": str(answers.get("entry_number", "")),
            "registration_date": str(answers.get("registration_date", "")),
        }


@dataclass(frozen=True)
class EventType:
    """A life event: its questions in order and checks that span several answers."""

    name: str
    title: str
    description: str
    questions: tuple[Question, ...]
    reporter: Reporter
    cross_checks: tuple[CrossCheck, ...] = ()
    labels: Mapping[str, str] = dc_field(default_factory=dict)
    registration: Registration | None = None
    # What to have to hand before starting (the event's "before you start" page).
    you_will_need: tuple[str, ...] = ()

    def label(self, field_name: str) -> str:
        """The short name of an answer (message id), for lists of answers."""
        return self.labels.get(field_name) or FIELD_LABELS[field_name]

    def check_key(self, field_name: str) -> str:
        """The key of an answer's row on check your answers (message id): the question
        itself for a choice ("Do you have a driving licence?"), which a short name
        would word like a database field; the short name for the rest ("Full name")."""
        question = self.question(field_name)
        if question.kind in (Kind.YES_NO, Kind.CHOICE):
            return question.label
        return self.label(field_name)

    def question(self, field_name: str) -> Question:
        for q in self.questions:
            if q.field == field_name:
                return q
        raise KeyError(field_name)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(q.field for q in self.questions)

    def check_answer(
        self,
        field_name: str,
        raw: object,
        answers: Mapping[str, Any] | None = None,
        today: date | None = None,
    ) -> Any:
        """Check the answer to one question: return it in canonical form ("" for an
        optional question left blank), or raise ``ValidationFailed`` with one message,
        for ``field_name``, saying how to fix it.

        Given ``answers`` (those so far), the checks across answers run too, and a
        problem they find is put on this question, whichever of its two answers it
        names: a journey that asks one question a page shows it where the citizen has
        just answered (a date of death before the birth, on either date's page).
        """
        q = self.question(field_name)
        if not q.required and _blank(raw):
            return ""
        try:
            value = q.parse(raw, today or date.today())
        except v.Invalid as problem:
            raise ValidationFailed({field_name: q.error(problem.key)}) from None
        if answers is not None:
            merged = {**answers, field_name: value}
            for check in self.cross_checks:
                problems = check(merged)
                if field_name in problems:
                    raise ValidationFailed({field_name: problems[field_name]})
                if problems and set(problems) <= set(answers):
                    raise ValidationFailed({field_name: next(iter(problems.values()))})
        return value

    def validate(self, answers: Mapping[str, Any], today: date | None = None) -> dict[str, Any]:
        """Return clean answers for every question asked, or raise ``ValidationFailed``.

        Answers to questions that do not apply (a licence number from someone who said
        they have no licence) are dropped rather than stored: we keep only what we need.
        """
        today = today or date.today()
        errors: dict[str, str] = {}
        clean: dict[str, Any] = {}
        known = set(self.fields)
        for name in answers:
            if name not in known:
                errors[name] = N_("Remove this answer: it is not a question for this life event")
        for q in self.questions:
            if not q.applies(clean):
                continue
            raw = answers.get(q.field)
            if not q.required and _blank(raw):
                continue
            try:
                clean[q.field] = self.check_answer(q.field, raw, today=today)
            except ValidationFailed as failed:
                errors.update(failed.errors)
        if not errors:
            for check in self.cross_checks:
                errors.update(check(clean))
        if errors:
            raise ValidationFailed(errors)
        return clean


def _blank(raw: object) -> bool:
    """An answer left out or blank (a date's boxes, as a dict, are never taken as blank)."""
    return v.clean(raw) == "" and not isinstance(raw, dict)


# --- Shared questions ------------------------------------------------------------------

_HUNDRED_AND_THIRTY_YEARS = 130 * 366


def _date_errors(future: str, past: str | None = None) -> dict[str, str]:
    errors = {"future": future}
    if past:
        errors["past"] = past
    return errors


def _name(field_name: str, label: str, required_error: str, hint: str = "") -> Question:
    return Question(field_name, Kind.NAME, label, required_error, hint=hint, role=Role.NAME)


def _date_of_birth(field_name: str, label: str, required_error: str, future: str) -> Question:
    return Question(
        field_name,
        Kind.DATE,
        label,
        required_error,
        hint=N_("For example, 27 3 1980"),
        limits=DateLimits(past_days=_HUNDRED_AND_THIRTY_YEARS, future_days=0),
        errors=_date_errors(future, N_("Date of birth must be within the last 130 years")),
        role=Role.DATE_OF_BIRTH,
    )


def _nino(field_name: str, label: str, required_error: str) -> Question:
    return Question(
        field_name,
        Kind.NINO,
        label,
        required_error,
        hint=N_("It’s on a National Insurance card, payslip or P60. For example, QQ 12 34 56 C"),
    )


def _you() -> tuple[Question, ...]:
    """Full name, date of birth and NI number of the person reporting their own event."""
    return (
        _name("full_name", N_("What is your full name?"), N_("Enter your full name")),
        _date_of_birth(
            "date_of_birth",
            N_("What is your date of birth?"),
            N_("Enter your date of birth"),
            N_("Date of birth must be in the past"),
        ),
        _nino(
            "nino",
            N_("What is your National Insurance number?"),
            N_("Enter your National Insurance number"),
        ),
    )


def _address(line: str, town: str, postcode: str) -> tuple[Question, ...]:
    """An address, a part per page: each page's heading says whose address it is (a
    bare "Town or city" or "Postcode" as a page's heading says nothing)."""
    return (
        Question(
            "address_line_1",
            Kind.TEXT,
            line,
            N_("Enter the building and street of the address"),
        ),
        Question("town", Kind.TEXT, town, N_("Enter the town or city")),
        Question(
            "postcode",
            Kind.POSTCODE,
            postcode,
            N_("Enter the postcode"),
            hint=N_("For example, SW1A 1AA"),
            role=Role.POSTCODE,
        ),
    )


def _your_address() -> tuple[Question, ...]:
    return _address(
        N_("Building and street of your address"),
        N_("Town or city of your address"),
        N_("Postcode of your address"),
    )


def _yes_no(yes: str, no: str) -> tuple[tuple[str, str], ...]:
    """The options of a yes or no question: the answers stored are always "yes" and "no"
    (departments and the API read them), the words shown are the question's own, each
    marked with ``NP_`` in a context named after the question. Welsh answers with the
    question's verb: "Oes / Nac oes" to "Oes gennych chi...?", "Ydw / Nac ydw" to
    "Ydych chi...?", so no one pair of words can serve every question."""
    return (("yes", yes), ("no", no))


def _licence_number(show_if: tuple[str, tuple[str, ...]]) -> Question:
    return Question(
        "driving_licence_number",
        Kind.DRIVING_LICENCE,
        N_("What is the driving licence number?"),
        N_("Enter the driving licence number"),
        hint=N_("It’s 16 characters, in section 5 of the licence. For example, MORGA753116SM9IJ"),
        show_if=show_if,
    )


def _registration(what: str, past_days: int) -> tuple[Question, ...]:
    """How a death or birth report names its registration: the reference the registrar
    gave, or the register entry from the certificate."""
    show_entry = ("registration_how", ("entry",))
    return (
        Question(
            "registration_how",
            Kind.CHOICE,
            N_("How do you want to tell us about the registration?"),
            N_("Select how you want to tell us about the registration"),
            hint=what,
            options=(
                ("reference", N_("With the reference the registrar gave me")),
                ("entry", N_("With the register entry on the certificate")),
            ),
        ),
        Question(
            "registrar_reference",
            Kind.REGISTRAR_REFERENCE,
            N_("What is the registrar’s reference?"),
            N_("Enter the registrar’s reference"),
            hint=N_("It is on the letter the registrar gave you. For example, DX7Q 4K2M 9PLA"),
            show_if=("registration_how", ("reference",)),
        ),
        Question(
            "registration_district",
            Kind.TEXT,
            N_("Which registration district was it registered in?"),
            N_("Enter the registration district"),
            hint=N_("It is at the top of the certificate. For example, Leeds"),
            show_if=show_entry,
        ),
        Question(
            "entry_number",
            Kind.ENTRY_NUMBER,
            N_("What is the entry number?"),
            N_("Enter the entry number"),
            hint=N_("It is in the top corner of the certificate. For example, 123"),
            show_if=show_entry,
        ),
        Question(
            "registration_date",
            Kind.DATE,
            N_("When was it registered?"),
            N_("Enter the date of registration"),
            hint=N_("It is near the registrar’s signature. For example, 27 3 2024"),
            limits=DateLimits(past_days=past_days, future_days=0),
            errors=_date_errors(
                N_("Date of registration must be today or in the past"),
                N_("Date of registration must be within the last 5 years"),
            ),
            show_if=show_entry,
        ),
    )


def _contact() -> tuple[Question, ...]:
    """How to tell the reporter how their report is going: email, text, both or neither."""
    return (
        Question(
            "contact_email",
            Kind.EMAIL,
            N_("What is your email address? (optional)"),
            N_("Enter your email address, or leave it blank"),
            hint=N_(
                "We will email you to confirm your report, when everyone has been told, "
                "and if we could not tell someone. We use it for nothing else. Leave it "
                "blank if you do not want emails."
            ),
            required=False,
        ),
        Question(
            "contact_mobile",
            Kind.MOBILE,
            N_("What is your UK mobile phone number? (optional)"),
            N_("Enter your mobile phone number, or leave it blank"),
            hint=N_(
                "We will send you the same updates by text message. Leave it blank if you "
                "do not want texts."
            ),
            required=False,
        ),
    )


def _after(earlier: str, later: str, message: str) -> CrossCheck:
    """A check that one date answer is on or after another."""

    def check(answers: Mapping[str, Any]) -> dict[str, str]:
        first, second = answers.get(earlier), answers.get(later)
        if first and second and second < first:
            return {later: message}
        return {}

    return check


# --- The events --------------------------------------------------------------------------

MOVING_HOUSE = EventType(
    name="moving_house",
    title=N_("Moving house"),
    description=N_(
        "Tell us your new address once and we update benefits, tax, your driving "
        "licence and your council"
    ),
    questions=(
        *_you(),
        *_address(
            N_("Building and street of your new address"),
            N_("Town or city of your new address"),
            N_("Postcode of your new address"),
        ),
        Question(
            "previous_postcode",
            Kind.POSTCODE,
            N_("What was the postcode of your old address?"),
            N_("Enter the postcode of your old address"),
            hint=N_("For example, SW1A 1AA"),
        ),
        Question(
            "move_date",
            Kind.DATE,
            N_("When did you move, or when will you move?"),
            N_("Enter the date you moved or will move"),
            hint=N_("It can be up to 3 months from today. For example, 27 3 2024"),
            limits=DateLimits(past_days=366, future_days=92),
            errors=_date_errors(
                N_("Moving date must be within the next 3 months"),
                N_("Moving date must be within the last 12 months"),
            ),
        ),
        Question(
            "has_driving_licence",
            Kind.YES_NO,
            N_("Do you have a driving licence?"),
            N_("Select yes if you have a driving licence"),
            options=_yes_no(NP_("has_driving_licence", "Yes"), NP_("has_driving_licence", "No")),
            errors={"choice": N_("Select yes if you have a driving licence, or no if you do not")},
        ),
        _licence_number(("has_driving_licence", ("yes",))),
        *_contact(),
    ),
    you_will_need=(
        N_("your National Insurance number"),
        N_("the postcodes of your new address and your old one"),
        N_("your driving licence, if you have one"),
    ),
    reporter=Reporter(("full_name",), "date_of_birth"),
)

DEATH = EventType(
    name="death",
    title=N_("Someone has died"),
    description=N_(
        "Tell us about a death once and we tell benefits, tax, payments, the "
        "licensing agency and the council"
    ),
    questions=(
        _name(
            "deceased_full_name",
            N_("What was the full name of the person who died?"),
            N_("Enter the full name of the person who died"),
        ),
        _date_of_birth(
            "deceased_date_of_birth",
            N_("What was their date of birth?"),
            N_("Enter their date of birth"),
            N_("Date of birth must be in the past"),
        ),
        Question(
            "date_of_death",
            Kind.DATE,
            N_("What was the date of death?"),
            N_("Enter the date of death"),
            hint=N_("For example, 27 3 2024"),
            limits=DateLimits(past_days=5 * 366, future_days=0),
            errors=_date_errors(
                N_("Date of death must be today or in the past"),
                N_("Date of death must be within the last 5 years"),
            ),
        ),
        _nino(
            "deceased_nino",
            N_("What was their National Insurance number?"),
            N_("Enter their National Insurance number"),
        ),
        *_address(
            N_("Building and street of their address"),
            N_("Town or city of their address"),
            N_("Postcode of their address"),
        ),
        _name(
            "informant_full_name",
            N_("What is your full name?"),
            N_("Enter your full name"),
            hint=N_("You are the person telling us about the death"),
        ),
        _date_of_birth(
            "informant_date_of_birth",
            N_("What is your date of birth?"),
            N_("Enter your date of birth"),
            N_("Date of birth must be in the past"),
        ),
        Question(
            "informant_relationship",
            Kind.CHOICE,
            N_("What was your relationship to the person who died?"),
            N_("Select your relationship to the person who died"),
            options=(
                ("spouse_or_partner", N_("Husband, wife or civil partner")),
                ("child", N_("Son or daughter")),
                ("parent", N_("Parent")),
                ("sibling", N_("Brother or sister")),
                ("executor", N_("Executor or administrator")),
                ("other", N_("Other")),
            ),
        ),
        Question(
            "had_driving_licence",
            Kind.YES_NO,
            N_("Did they have a driving licence?"),
            N_("Select yes if they had a driving licence"),
            options=_yes_no(NP_("had_driving_licence", "Yes"), NP_("had_driving_licence", "No")),
            errors={
                "choice": N_("Select yes if they had a driving licence, or no if they did not")
            },
        ),
        _licence_number(("had_driving_licence", ("yes",))),
        *_registration(
            N_("A death must be registered before we can tell anyone about it"), 5 * 366
        ),
        *_contact(),
    ),
    you_will_need=(
        N_("the death certificate, or the reference the registrar gave you"),
        N_("their National Insurance number, if you know it"),
        N_("their driving licence, if they had one"),
    ),
    reporter=Reporter(
        ("informant_full_name",),
        "informant_date_of_birth",
        relationship_field="informant_relationship",
    ),
    registration=Registration("death", "deceased_full_name", "date_of_death"),
    cross_checks=(
        _after(
            "deceased_date_of_birth",
            "date_of_death",
            N_("Date of death must be the same as or after their date of birth"),
        ),
        _after(
            "date_of_death",
            "registration_date",
            N_("Date of registration must be the same as or after the date of death"),
        ),
    ),
)

BIRTH = EventType(
    name="birth",
    title=N_("A baby has been born"),
    description=N_("Tell us about a new baby once, for Child Benefit and benefits"),
    questions=(
        _name(
            "child_full_name", N_("What is the baby’s full name?"), N_("Enter the baby’s full name")
        ),
        Question(
            "child_date_of_birth",
            Kind.DATE,
            N_("What is the baby’s date of birth?"),
            N_("Enter the baby’s date of birth"),
            hint=N_("For example, 27 3 2024"),
            limits=DateLimits(past_days=366, future_days=0),
            errors=_date_errors(
                N_("The baby’s date of birth must be today or in the past"),
                N_("The baby’s date of birth must be within the last 12 months"),
            ),
            role=Role.DATE_OF_BIRTH,
        ),
        _name("parent_full_name", N_("What is your full name?"), N_("Enter your full name")),
        _date_of_birth(
            "parent_date_of_birth",
            N_("What is your date of birth?"),
            N_("Enter your date of birth"),
            N_("Date of birth must be in the past"),
        ),
        _nino(
            "parent_nino",
            N_("What is your National Insurance number?"),
            N_("Enter your National Insurance number"),
        ),
        *_your_address(),
        Question(
            "claim_child_benefit",
            Kind.YES_NO,
            N_("Do you want to claim Child Benefit?"),
            N_("Select yes if you want to claim Child Benefit"),
            options=_yes_no(NP_("claim_child_benefit", "Yes"), NP_("claim_child_benefit", "No")),
            errors={
                "choice": N_("Select yes if you want to claim Child Benefit, or no if you do not")
            },
        ),
        *_registration(N_("A birth must be registered before we can tell anyone about it"), 366),
        *_contact(),
    ),
    you_will_need=(
        N_("the birth certificate, or the reference the registrar gave you"),
        N_("your National Insurance number"),
    ),
    reporter=Reporter(("parent_full_name",), "parent_date_of_birth", relationship="parent"),
    registration=Registration("birth", "child_full_name", "child_date_of_birth"),
    cross_checks=(
        _after(
            "parent_date_of_birth",
            "child_date_of_birth",
            N_("The baby’s date of birth must be after your date of birth"),
        ),
        _after(
            "child_date_of_birth",
            "registration_date",
            N_("Date of registration must be the same as or after the baby’s date of birth"),
        ),
    ),
)

NEW_JOB = EventType(
    name="new_job",
    title=N_("Starting a new job"),
    description=N_("Tell us once about a new job, for tax and benefits"),
    questions=(
        *_you(),
        Question(
            "employer_name",
            Kind.TEXT,
            N_("What is the name of your employer?"),
            N_("Enter the name of your employer"),
        ),
        Question(
            "employer_paye_reference",
            Kind.PAYE_REFERENCE,
            N_("What is your employer’s PAYE reference? (optional)"),
            N_("Enter your employer’s PAYE reference"),
            hint=N_("It’s on your payslip or P45. For example, 123/AB456"),
            required=False,
        ),
        Question(
            "job_start_date",
            Kind.DATE,
            N_("When did you start, or when will you start?"),
            N_("Enter the date you start the job"),
            hint=N_("For example, 27 3 2024"),
            limits=DateLimits(past_days=366, future_days=183),
            errors=_date_errors(
                N_("Start date must be within the next 6 months"),
                N_("Start date must be within the last 12 months"),
            ),
        ),
        Question(
            "claiming_benefits",
            Kind.YES_NO,
            N_("Do you get any benefits?"),
            N_("Select yes if you get any benefits"),
            options=_yes_no(NP_("claiming_benefits", "Yes"), NP_("claiming_benefits", "No")),
            errors={"choice": N_("Select yes if you get any benefits, or no if you do not")},
            hint=N_("For example, Universal Credit or Jobseeker’s Allowance"),
        ),
        Question(
            "postcode",
            Kind.POSTCODE,
            N_("What is your postcode?"),
            N_("Enter your postcode"),
            hint=N_("For example, SW1A 1AA"),
            role=Role.POSTCODE,
        ),
        *_contact(),
    ),
    you_will_need=(
        N_("your National Insurance number"),
        N_(
            "your employer’s name, and their PAYE reference if you have it (it is on your payslips)"
        ),
    ),
    reporter=Reporter(("full_name",), "date_of_birth"),
    cross_checks=(
        _after(
            "date_of_birth",
            "job_start_date",
            N_("Start date must be after your date of birth"),
        ),
    ),
)

RETIRING = EventType(
    name="retiring",
    title=N_("Retiring"),
    description=N_("Tell us once that you are retiring, for your State Pension, tax and payments"),
    questions=(
        *_you(),
        Question(
            "retirement_date",
            Kind.DATE,
            N_("When did you retire, or when will you retire?"),
            N_("Enter the date you retire"),
            hint=N_("For example, 27 3 2024"),
            limits=DateLimits(past_days=366, future_days=366),
            errors=_date_errors(
                N_("Retirement date must be within the next 12 months"),
                N_("Retirement date must be within the last 12 months"),
            ),
        ),
        *_your_address(),
        Question(
            "has_bank_account",
            Kind.YES_NO,
            N_("Do you have a bank or building society account for payments?"),
            N_("Select yes if you have a bank or building society account"),
            options=_yes_no(NP_("has_bank_account", "Yes"), NP_("has_bank_account", "No")),
            errors={
                "choice": N_(
                    "Select yes if you have a bank or building society account, or no if you do not"
                )
            },
        ),
        Question(
            "sort_code",
            Kind.SORT_CODE,
            N_("What is the sort code?"),
            N_("Enter the sort code"),
            hint=N_("Must be 6 digits long"),
            show_if=("has_bank_account", ("yes",)),
        ),
        Question(
            "account_number",
            Kind.ACCOUNT_NUMBER,
            N_("What is the account number?"),
            N_("Enter the account number"),
            hint=N_("Must be between 6 and 8 digits long"),
            show_if=("has_bank_account", ("yes",)),
        ),
        *_contact(),
    ),
    you_will_need=(
        N_("your National Insurance number"),
        N_(
            "the sort code and account number of the account your State Pension should be "
            "paid into, if you have one"
        ),
    ),
    reporter=Reporter(("full_name",), "date_of_birth"),
    cross_checks=(
        _after(
            "date_of_birth",
            "retirement_date",
            N_("Retirement date must be after your date of birth"),
        ),
    ),
)

CHANGE_OF_NAME = EventType(
    name="change_of_name",
    title=N_("Changing your name"),
    labels={"full_name": N_("New full name")},
    description=N_("Tell us your new name once, after marriage, civil partnership or deed poll"),
    questions=(
        _name(
            "previous_full_name",
            N_("What was your full name before the change?"),
            N_("Enter your full name before the change"),
        ),
        _name("full_name", N_("What is your new full name?"), N_("Enter your new full name")),
        *_you()[1:],
        Question(
            "date_of_change",
            Kind.DATE,
            N_("When did you change your name?"),
            N_("Enter the date you changed your name"),
            hint=N_("For example, 27 3 2024"),
            limits=DateLimits(past_days=5 * 366, future_days=0),
            errors=_date_errors(
                N_("Date of the name change must be today or in the past"),
                N_("Date of the name change must be within the last 5 years"),
            ),
        ),
        Question(
            "reason",
            Kind.CHOICE,
            N_("Why did you change your name?"),
            N_("Select why you changed your name"),
            options=(
                ("marriage", N_("Marriage")),
                ("civil_partnership", N_("Civil partnership")),
                ("divorce", N_("Divorce or dissolution")),
                ("deed_poll", N_("Deed poll")),
                ("other", N_("Another reason")),
            ),
        ),
        *_your_address(),
        Question(
            "driving_licence",
            Kind.CHOICE,
            N_("What kind of driving licence do you have?"),
            N_("Select the kind of driving licence you have, or that you have none"),
            options=(
                ("photocard", N_("Photocard licence")),
                ("paper", N_("Paper licence")),
                ("none", N_("I do not have a driving licence")),
            ),
        ),
        _licence_number(("driving_licence", ("photocard", "paper"))),
        *_contact(),
    ),
    you_will_need=(
        N_("your National Insurance number"),
        N_("the date your name changed"),
        N_("your driving licence, if you have one"),
    ),
    reporter=Reporter(("full_name", "previous_full_name"), "date_of_birth"),
    cross_checks=(
        _after(
            "date_of_birth",
            "date_of_change",
            N_("Date of the name change must be after your date of birth"),
        ),
    ),
)

EVENTS: dict[str, EventType] = {
    e.name: e for e in (MOVING_HOUSE, DEATH, BIRTH, NEW_JOB, RETIRING, CHANGE_OF_NAME)
}


def get_event(name: str) -> EventType:
    """Look up an event type by name; raise ``ValidationFailed`` for an unknown one."""
    try:
        return EVENTS[name]
    except (KeyError, TypeError):
        raise ValidationFailed(
            {
                "event": N_(
                    "Choose a life event: moving_house, death, birth, new_job, retiring "
                    "or change_of_name"
                )
            }
        ) from None
