"""WTForms for the citizen journeys, rendered with GOV.UK Frontend widgets.

WTForms renders the fields and Flask-WTF checks the CSRF token; what an answer means
and whether it is right is the catalogue's job (``Question.parse``), so the fields
here carry no validators of their own and every message comes from the catalogue.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovCheckboxInput,
    GovDateInput,
    GovPasswordInput,
    GovRadioInput,
    GovTextInput,
)
from wtforms import BooleanField, Field, RadioField, SelectChoice, SelectMultipleField, StringField

from channels.presenters import translated
from router import validators
from router.catalogue import Kind, Question

# Sizes and browser hints per kind of answer (GOV.UK: size a field to its answer).
_INPUTS: dict[Kind, dict[str, Any]] = {
    Kind.NAME: {"classes": "govuk-!-width-two-thirds", "spellcheck": False},
    Kind.TEXT: {"classes": "govuk-!-width-two-thirds"},
    Kind.POSTCODE: {"classes": "govuk-input--width-10", "spellcheck": False},
    Kind.NINO: {"classes": "govuk-input--width-10", "spellcheck": False},
    Kind.DRIVING_LICENCE: {"classes": "govuk-input--width-20", "spellcheck": False},
    Kind.SORT_CODE: {"classes": "govuk-input--width-5", "inputmode": "numeric"},
    Kind.ACCOUNT_NUMBER: {"classes": "govuk-input--width-10", "inputmode": "numeric"},
    Kind.PAYE_REFERENCE: {"classes": "govuk-input--width-10", "spellcheck": False},
    # GOV.UK's email address and telephone number patterns: their types, no spellcheck.
    Kind.EMAIL: {"type": "email", "spellcheck": False},
    Kind.MOBILE: {"classes": "govuk-input--width-20", "type": "tel"},
}

# What a browser may fill in for the person reporting (WCAG 1.3.5, identify input
# purpose). Only the reporter's own details: never offer them for someone else.
_AUTOCOMPLETE = {
    "full_name": "name",
    "parent_full_name": "name",
    "informant_full_name": "name",
    "date_of_birth": "bday",
    "parent_date_of_birth": "bday",
    "postcode": "postal-code",
    "contact_email": "email",
    "contact_mobile": "tel",
}
_ADDRESS_OF_REPORTER = {"address_line_1": "address-line1", "town": "address-level2"}


class _Translated:
    """Mixin: the visually hidden "Error:" before a field's message, in the page's language."""

    def map_gov_params(self, field: Any, **kwargs: Any) -> dict[str, Any]:
        params: dict[str, Any] = super().map_gov_params(field, **kwargs)  # type: ignore[misc]
        if "errorMessage" in params:
            params["errorMessage"]["visuallyHiddenText"] = gettext("Error")
        return params


class TextInput(_Translated, GovTextInput):
    pass


class RadioInput(_Translated, GovRadioInput):
    pass


class CheckboxesInput(_Translated, GovCheckboxesInput):
    pass


class CheckboxInput(_Translated, GovCheckboxInput):
    """One checkbox (a BooleanField), such as a confirmation."""


class PasswordInput(_Translated, GovPasswordInput):
    pass


class DateParts(Field):
    """Day, month and year boxes; ``data`` is the mapping the catalogue parses."""

    widget = None  # set per instance by the form builder

    def process_formdata(self, valuelist: list[Any]) -> None:
        parts = [*valuelist, "", "", ""][:3]
        self.raw_data = parts
        self.data = dict(zip(("day", "month", "year"), parts, strict=True))

    def _value(self) -> str:
        return ""


class TranslatedDateInput(_Translated, GovDateInput):
    """GOV.UK date input whose Day, Month and Year labels are translated."""

    def __init__(self, autocomplete: str = "") -> None:
        super().__init__()
        self.autocomplete = autocomplete

    def map_gov_params(self, field: Any, **kwargs: Any) -> dict[str, Any]:
        if field.raw_data is None and isinstance(field.data, dict):
            field.raw_data = [field.data.get(p, "") for p in ("day", "month", "year")]
        params: dict[str, Any] = super().map_gov_params(field, **kwargs)
        labels = (gettext("Day"), gettext("Month"), gettext("Year"))
        parts = ("day", "month", "year")
        for item, label, part in zip(params["items"], labels, parts, strict=True):
            item["label"] = label
            if self.autocomplete:
                item["autocomplete"] = f"{self.autocomplete}-{part}"
        return params


def date_parts(iso: str) -> dict[str, str]:
    """Split a stored ISO date back into the boxes a person typed it in."""
    value = date.fromisoformat(iso)
    return {"day": str(value.day), "month": str(value.month), "year": str(value.year)}


def question_form(question: Question, event_name: str, answer: Any = None) -> FlaskForm:
    """A form with one field, named after the question, filled with ``answer``."""
    label = gettext(question.label)
    hint = gettext(question.hint) if question.hint else ""
    kind = question.kind
    field: Field
    if kind is Kind.DATE:
        autocomplete = _AUTOCOMPLETE.get(question.field, "")
        field = DateParts(label, description=hint, widget=TranslatedDateInput(autocomplete))
    elif kind in (Kind.YES_NO, Kind.CHOICE):
        choices = [SelectChoice(value, translated(text)) for value, text in question.choices()]
        field = RadioField(
            label,
            description=hint,
            choices=choices,
            validate_choice=False,
            widget=RadioInput(),
        )
    else:
        field = StringField(label, description=hint, widget=TextInput())

    form_class = type("QuestionForm", (FlaskForm,), {question.field: field})
    form: FlaskForm = form_class()
    bound = form[question.field]
    if answer is not None and not form.is_submitted():
        bound.data = date_parts(answer) if kind is Kind.DATE else answer
    return form


def render_params(question: Question, event_name: str) -> dict[str, Any]:
    """The GOV.UK macro parameters that make the question the page's heading."""
    kind = question.kind
    if kind is Kind.DATE:
        legend = {
            "text": gettext(question.label),
            "isPageHeading": True,
            "classes": "govuk-fieldset__legend--l",
        }
        return {"fieldset": {"legend": legend}}
    if kind in (Kind.YES_NO, Kind.CHOICE):
        params: dict[str, Any] = {
            "fieldset": {
                "legend": {
                    "text": gettext(question.label),
                    "isPageHeading": True,
                    "classes": "govuk-fieldset__legend--l",
                }
            }
        }
        if kind is Kind.YES_NO:
            params["classes"] = "govuk-radios--inline"
        return params
    settings = dict(_INPUTS.get(kind, {}))
    params = {
        "label": {"isPageHeading": True, "classes": "govuk-label--l"},
        "classes": settings.pop("classes", ""),
    }
    autocomplete = _AUTOCOMPLETE.get(question.field)
    if autocomplete is None and event_name != "death":
        autocomplete = _ADDRESS_OF_REPORTER.get(question.field)
    if autocomplete:
        params["autocomplete"] = autocomplete
    if settings.get("spellcheck") is False:
        params["spellcheck"] = False
    if "inputmode" in settings:
        params["inputmode"] = settings["inputmode"]
    if "type" in settings:
        params["type"] = settings["type"]
    return params


class TellForm(FlaskForm):
    """Which of the interested organisations the citizen agrees to tell, and whether
    they want help from Post Office counter staff to finish."""

    departments = SelectMultipleField(widget=CheckboxesInput(), validate_choice=False)
    help = BooleanField(
        lazy_gettext("I would like help from Post Office counter staff to finish this"),
        widget=CheckboxInput(),
    )


class OnBehalfForm(FlaskForm):
    """Counter staff confirm the citizen agrees, before sending on their behalf."""

    consent = BooleanField(
        lazy_gettext(
            "The citizen has checked these answers and agrees to us telling these organisations"
        ),
        widget=CheckboxInput(),
    )


class FindCaseForm(FlaskForm):
    """Find a case by its reference and the reporter's own date of birth and postcode."""

    reference = StringField(widget=TextInput())
    date_of_birth = DateParts(widget=TranslatedDateInput())
    postcode = StringField(widget=TextInput())


class SignOutOfReportForm(FlaskForm):
    """Sign out of a report on the status page (only the CSRF token is checked)."""


class FeedbackForm(FlaskForm):
    """The feedback page (only the CSRF token is checked here; the rating in the view)."""


class DeleteDetailsForm(FlaskForm):
    """Delete my details now, from the status page (only the CSRF token is checked)."""


class ChooseBranchForm(FlaskForm):
    """Choose a Post Office branch from the finder's list (the CSRF token is checked)."""


def checked_date_of_birth(field: Field, required: str) -> str | None:
    """A date of birth typed in ``field`` (day, month, year boxes), as an ISO date; or
    None, with the field's error set (``required`` when it was left blank)."""
    try:
        return validators.parse_date(field.data or {}).isoformat()
    except validators.Invalid as problem:
        messages = {
            "required": required,
            "incomplete": gettext("Date of birth must include a day, month and year"),
        }
        field.errors = [messages.get(problem.key) or gettext("Date of birth must be a real date")]
        return None
