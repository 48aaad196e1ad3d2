"""Translatable wording for the core, without tying the core to Flask.

The core marks every string a person reads with ``N_``: the string is the message id,
Babel extracts it (keyword ``N_``), and each channel translates it at the edge with its
own ``gettext`` (Flask-Babel on the web, plain English on the command line).
"""

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


Translator = Callable[[str], str]


def identity(msgid: str) -> str:
    """The English 'translation': the message id itself."""
    return msgid


@cache
def catalogue(lang: str) -> NullTranslations:
    """The compiled translations for ``lang`` ("cy"); English ("en") is the message ids.
    For what the core itself sends a person (router.delivery.notices)."""
    if lang == "en":
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS), [lang])
