"""Translation catalogues: extract messages, update the .po files, compile .mo files.

python -m scripts.i18n extract   # router, channels, templates -> messages.pot
python -m scripts.i18n init LANG # start LANG's .po from the .pot (once per language)
python -m scripts.i18n update    # merge the .pot into each language's .po
python -m scripts.i18n compile   # .po -> .mo (run by ./dev before up and test)
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.frontend import CommandLineInterface

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "channels" / "translations"
POT = TRANSLATIONS / "messages.pot"


# Marked for translation besides Babel's defaults (gettext, ngettext, pgettext, _ ...):
# the core's N_ and NP_ (N_ with a context, like pgettext) and Flask-Babel's lazy forms.
# tests/core/test_i18n.py checks that every translation function the code calls is here
# or among the defaults.
EXTRA_KEYWORDS = ("N_", "NP_:1c,2", "_l", "lazy_gettext", "lazy_ngettext:1,2", "lazy_pgettext:1c,2")


def pybabel(*args: str) -> None:
    CommandLineInterface().run(["pybabel", "-q", *args])


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "compile"
    if action == "extract":
        TRANSLATIONS.mkdir(parents=True, exist_ok=True)
        pybabel(
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            *(arg for keyword in EXTRA_KEYWORDS for arg in ("-k", keyword)),
            "--no-location",
            "--sort-output",
            "-o",
            str(POT),
            str(ROOT),
        )
    elif action == "init" and len(argv) == 2:
        pybabel("init", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", argv[1])
    elif action == "update":
        pybabel("update", "-i", str(POT), "-d", str(TRANSLATIONS), "--no-fuzzy-matching")
    elif action == "compile":
        if any(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")):
            pybabel("compile", "-d", str(TRANSLATIONS))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
