"""Translatable wording for the core, without tying the core to Flask.

The core marks every string a person reads with ``N_``: the string is the message id,
Babel extracts it (keyword ``N_``), and each channel translates it at the edge with its
own ``gettext`` (Flask-Babel on the web, plain English on the command line).

Where the same English needs different words in another language, ``NP_`` marks it
with a context (keyword ``NP_:1c,2``, like ``pgettext``): Welsh answers "Yes" with the
question's verb, "Oes" to "Do you have a driving licence?" but "Ydw" to "Do you want
to claim Child Benefit?", so each question's "Yes" has a context of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations

# The catalogues the channels compile (channels/translations/<lang>/LC_MESSAGES), found
# by path so that the core can translate without importing a channel.
TRANSLATIONS = Path(__file__).resolve().parent.parent / "channels" / "translations"


def N_(msgid: str) -> str:  # noqa: N802 - the conventional name Babel looks for
    """Mark a string for translation without translating it here."""
    return msgid


class Contextual(str):
    """A message id with the context that tells it apart from the same English elsewhere.

    It is the English itself (a ``str``), so code that shows or compares English needs
    nothing more; a channel that translates it looks it up in ``context``.
    """

    context: str

    def __new__(cls, context: str, msgid: str) -> Contextual:
        message = super().__new__(cls, msgid)
        message.context = context
        return message


def NP_(context: str, msgid: str) -> Contextual:  # noqa: N802 - named like N_, for Babel
    """Mark a string for translation in ``context`` without translating it here."""
    return Contextual(context, msgid)


Translator = Callable[[str], str]


def identity(msgid: str) -> str:
    """The English 'translation': the message id itself."""
    return msgid


def compiled(lang: str) -> bool:
    """Whether ``lang``'s catalogue is compiled (a .mo file Babel can load)."""
    return isinstance(catalogue(lang), Translations) if lang != "en" else True


@cache
def catalogue(lang: str) -> NullTranslations:
    """The compiled translations for ``lang`` ("cy"); English ("en") is the message ids.
    For what the core itself sends a person (router.delivery.notices)."""
    if lang == "en":
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS), [lang])
