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
            "-k",
            "N_",
            "-k",
            "_l",
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
