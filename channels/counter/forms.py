"""Forms for counter staff, rendered with GOV.UK Frontend widgets."""

from __future__ import annotations

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, RadioField, StringField

from channels.web.forms import (
    CheckboxInput,
    DateParts,
    PasswordInput,
    RadioInput,
    TextInput,
    TranslatedDateInput,
)


class SignInForm(FlaskForm):
    username = StringField(lazy_gettext("User name"), widget=TextInput())
    password = PasswordField(lazy_gettext("Password"), widget=PasswordInput())


class FindForm(FlaskForm):
    reference = StringField(lazy_gettext("Reference number"), widget=TextInput())


class ServeForm(FlaskForm):
    """Open another branch's case: the citizen is here, and gives a detail of the report
    (the reporter's date of birth) that the clerk could not read without opening it."""

    present = BooleanField(
        lazy_gettext("The citizen is here at my counter and I am serving them"),
        widget=CheckboxInput(),
    )
    date_of_birth = DateParts(widget=TranslatedDateInput())


class IdentityForm(FlaskForm):
    document = RadioField(
        lazy_gettext("Which identity document did you see?"),
        validate_choice=False,
        widget=RadioInput(),
    )
    last_four = StringField(
        lazy_gettext("Last 4 characters of the document number"), widget=TextInput()
    )


class TaskForm(FlaskForm):
    """A button that completes one task; the CSRF token is all it carries."""
