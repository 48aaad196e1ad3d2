"""Translatable wording for the core, without tying the core to Flask.

The core marks every string a person reads with ``N_``: the string is the message id,
Babel extracts it (keyword ``N_``), and each channel translates it at the edge with its
own ``gettext`` (Flask-Babel on the web, plain English on the command line).
"""

from collections.abc import Callable


def N_(msgid: str) -> str:  # noqa: N802 - the conventional name Babel looks for
    """Mark a string for translation without translating it here."""
    return msgid


Translator = Callable[[str], str]


def identity(msgid: str) -> str:
    """The English 'translation': the message id itself."""
    return msgid
