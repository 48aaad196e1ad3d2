"""Forms of the caseworkers' case page, rendered with GOV.UK Frontend widgets."""

from __future__ import annotations

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovCharacterCount, GovSelect
from wtforms import RadioField, SelectField, TextAreaField

from channels.web.forms import RadioInput, _Translated


class Select(_Translated, GovSelect):
    pass


class CharacterCount(_Translated, GovCharacterCount):
    pass


class ContactForm(FlaskForm):
    kind = RadioField(
        lazy_gettext("Which message should the citizen be sent?"),
        validate_choice=True,
        widget=RadioInput(),
    )


class ReassignForm(FlaskForm):
    branch = SelectField(lazy_gettext("Post Office branch"), validate_choice=True, widget=Select())


class CloseForm(FlaskForm):
    note = TextAreaField(lazy_gettext("What was done"), widget=CharacterCount())
