"""Format checks for the answers people give: postcodes, NI numbers, names, dates.

Each ``parse_*`` function takes what a person typed and returns the value in one
canonical form, or raises ``Invalid`` with the key of the message to show. The
catalogue maps that key to wording for the question at hand, so a person reads
"Enter your postcode in the correct format", not "invalid input".
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from confusable_homoglyphs import categories


class Invalid(ValueError):
    """An answer failed a check; ``key`` names which message explains the fix."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def clean(value: object) -> str:
    """Collapse runs of whitespace and strip the ends; None becomes ''."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    return " ".join(value.split())


# --- UK postcodes -----------------------------------------------------------------
# The outward code forms A9, A99, AA9, AA99, A9A, AA9A and the inward code 9AA, with
# the letters each position may hold (Royal Mail's rules), plus the special GIR 0AA.
_POSTCODE = re.compile(
    r"^(?:GIR ?0AA|"
    r"(?:[A-PR-UWYZ](?:[0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRVWXY]))"
    r" ?[0-9][ABD-HJLNP-UW-Z]{2})$"
)


def parse_postcode(value: object) -> str:
    """Return a UK postcode in upper case with one space before the inward code."""
    text = clean(value).upper().replace(" ", "")
    if not text:
        raise Invalid("required")
    if len(text) < 5 or len(text) > 7 or not _POSTCODE.match(text):
        raise Invalid("format")
    return f"{text[:-3]} {text[-3:]}"


# --- National Insurance numbers ----------------------------------------------------
# HMRC: the first letter is never D, F, I, Q, U or V; the second never D, F, I, O, Q,
# U or V; the prefixes BG, GB, KN, NK, NT, TN and ZZ are never issued; the suffix is
# A, B, C or D.
_NINO = re.compile(r"^([A-CEGHJ-PR-TW-Z])([A-CEGHJ-NPR-TW-Z])([0-9]{6})([A-D])$")
_NINO_NEVER_ISSUED = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def parse_nino(value: object) -> str:
    """Return a National Insurance number as 9 characters, like QQ123456C."""
    text = clean(value).upper().replace(" ", "").replace("-", "")
    if not text:
        raise Invalid("required")
    if not re.fullmatch(r"[A-Z]{2}[0-9]{6}[A-Z]", text):
        raise Invalid("format")
    if text[-1] not in "ABCD":
        raise Invalid("format")
    match = _NINO.match(text)
    if not match or text[:2] in _NINO_NEVER_ISSUED:
        raise Invalid("never_issued")
    return text


# --- Names -------------------------------------------------------------------------
# Letters from any alphabet (so Siân, Zoë, Ó Súilleabháin, Ἀλέξανδρος, प्रिया), with
# spaces, hyphens, apostrophes (straight or curly) and full stops between them; but
# all from one writing system, so "Еmily Cаrter" with a Cyrillic Е and а (which look
# the same as the Latin letters and would be another person's name to a department) is
# refused. Scripts come from the Unicode data of confusable-homoglyphs.
_NAME_MAX = 100
# Writing systems that mix scripts as a matter of course: Japanese (kanji and kana) and
# Korean (hangul with hanja). Any other name must keep to one script.
_WRITING_SYSTEMS = (
    frozenset({"HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"HANGUL", "HAN"}),
)
# Letters and marks that print nothing: the Hangul fillers (letters to Unicode, so a
# name "Jo\u3164hn" passes a letters-only rule), the combining grapheme joiner, the
# Khmer inherent vowels, Mongolian and other variation selectors.
_INVISIBLE = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0]
    + list(range(0x180B, 0x1810))
    + list(range(0xFE00, 0xFE10))
    + list(range(0xE0100, 0xE01F0))
)
# Combining marks in a row on one letter. Real names need at most 3 (Hebrew with a
# dagesh, a vowel and a shin dot); a taller stack hides what the name says.
_MARKS_MAX = 3


def parse_name(value: object) -> str:
    """Return a person's name, tidied, keeping accents, apostrophes and hyphens."""
    text = unicodedata.normalize("NFC", clean(value)).replace("\u2019", "'")
    if not text:
        raise Invalid("required")
    if len(text) > _NAME_MAX:
        raise Invalid("too_long")
    allowed_marks = {" ", "-", "'", "."}
    for char in text:
        if char in allowed_marks:
            continue
        category = unicodedata.category(char)
        # Letters, and the marks that join them (accents, and the vowel signs of
        # Indic scripts such as प्रिया or முருகன்).
        if not (category.startswith("L") or category in ("Mn", "Mc")):
            raise Invalid("characters")
    if not any(unicodedata.category(c).startswith("L") for c in text):
        raise Invalid("characters")
    if text[0] in "-'" or re.search(r"[-']{2,}", text):
        raise Invalid("characters")
    if any(ord(c) in _INVISIBLE for c in text):
        raise Invalid("invisible")
    if _longest_run_of_marks(text) > _MARKS_MAX:
        raise Invalid("marks")
    scripts = categories.unique_aliases(text) - {"COMMON", "INHERITED"}
    if len(scripts) > 1 and not any(scripts <= system for system in _WRITING_SYSTEMS):
        raise Invalid("mixed_scripts")
    return text


def _longest_run_of_marks(text: str) -> int:
    """The most combining marks on one letter, counted decomposed (é is e and ´)."""
    longest = run = 0
    for char in unicodedata.normalize("NFD", text):
        run = run + 1 if unicodedata.category(char) in ("Mn", "Me") else 0
        longest = max(longest, run)
    return longest


def parse_text(value: object, max_length: int = 100) -> str:
    """Return free text, tidied, refusing control characters and overlong answers."""
    text = clean(value)
    if not text:
        raise Invalid("required")
    if len(text) > max_length:
        raise Invalid("too_long")
    if any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co"} for c in text):
        raise Invalid("characters")
    return text


# --- Dates -------------------------------------------------------------------------


def parse_date(value: object) -> date:
    """Return a date from ISO text (2024-03-31), a date, or a day/month/year mapping."""
    if isinstance(value, date):
        return value
    if isinstance(value, dict):
        parts = {k: clean(value.get(k)) for k in ("day", "month", "year")}
        if not any(parts.values()):
            raise Invalid("required")
        if not all(parts.values()):
            raise Invalid("incomplete")
        if not all(p.isdigit() for p in parts.values()) or len(parts["year"]) != 4:
            raise Invalid("real")
        try:
            return date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
        except (ValueError, OverflowError):
            raise Invalid("real") from None
    text = clean(value)
    if not text:
        raise Invalid("required")
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise Invalid("real")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid("real") from None


# --- Contact details ---------------------------------------------------------------
# Only for telling the citizen how their report is going (router.notifications): never
# sent to a department.

# GOV.UK Notify's own test of an address, in the shape of its rules: a local part of
# the characters it allows, and a domain of dot-separated labels with a top level of
# letters (or punycode). A stricter test refuses real addresses; a looser one lets
# Notify refuse them later, when the citizen is no longer there to fix it.
_EMAIL_LOCAL = re.compile(r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~\-]+$")
_EMAIL_LABEL = re.compile(r"^(xn|[a-z0-9]+)(-?-[a-z0-9]+)*$", re.IGNORECASE)
_EMAIL_TLD = re.compile(r"^([a-z]{2,63}|xn--([a-z0-9]+-)*[a-z0-9]+)$", re.IGNORECASE)


def parse_email(value: object) -> str:
    """Return an email address with its domain in lower case, like name@example.com."""
    text = clean(value).strip(".,;")
    if not text:
        raise Invalid("required")
    if len(text) > 320 or text.count("@") != 1 or " " in text:
        raise Invalid("format")
    local, domain = text.split("@")
    labels = domain.lower().split(".")
    if (
        not _EMAIL_LOCAL.match(local)
        or ".." in local
        or len(labels) < 2
        or not all(label and len(label) <= 63 and _EMAIL_LABEL.match(label) for label in labels)
        or not _EMAIL_TLD.match(labels[-1])
    ):
        raise Invalid("format")
    return f"{local}@{domain.lower()}"


def parse_uk_mobile(value: object) -> str:
    """Return a UK mobile number as 11 digits starting 07 (given as 07700 900 123,
    +44 7700 900123, 0044 (0)7700-900123...)."""
    text = re.sub(r"[\s().-]", "", clean(value))
    if not text:
        raise Invalid("required")
    for prefix in ("+44", "0044", "44"):
        if text.startswith(prefix):
            text = "0" + text[len(prefix) :].removeprefix("0")
            break
    if not text.isascii() or not re.fullmatch(r"07[0-9]{9}", text):
        raise Invalid("format")
    return text


def mask_contact(value: str) -> str:
    """Enough of an email address or mobile number to recognise it, too little to use."""
    if "@" in value:
        local, domain = value.split("@", 1)
        return f"{local[:1]}***@{domain}"
    return f"*******{value[-4:]}"


# --- Money and licences --------------------------------------------------------------


def parse_sort_code(value: object) -> str:
    """Return a bank sort code as six digits."""
    text = re.sub(r"[\s-]", "", clean(value))
    if not text:
        raise Invalid("required")
    if not re.fullmatch(r"[0-9]{6}", text):
        raise Invalid("format")
    return text


def parse_account_number(value: object) -> str:
    """Return a UK bank account number as eight digits (six or seven are zero-padded)."""
    text = re.sub(r"[\s-]", "", clean(value))
    if not text:
        raise Invalid("required")
    if not re.fullmatch(r"[0-9]{6,8}", text):
        raise Invalid("format")
    return text.rjust(8, "0")


# A GB driving licence number: 5 characters of surname (padded with 9), a decade digit,
# the month of birth (plus 5 for women, so 01-12 or 51-62), the day, the year digit,
# two initials (padded with 9), an arbitrary digit and two check letters.
_LICENCE = re.compile(
    r"^[A-Z9]{5}[0-9]"  # surname, decade
    r"(0[1-9]|1[0-2]|5[1-9]|6[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]"  # month, day, year
    r"[A-Z9]{2}[0-9][A-Z0-9]{2}$"  # initials, arbitrary digit, check characters
)


def parse_driving_licence(value: object) -> str:
    """Return a GB driving licence number: 16 characters, like MORGA753116SM9IJ."""
    text = clean(value).upper().replace(" ", "")
    if not text:
        raise Invalid("required")
    if len(text) != 16 or not _LICENCE.match(text):
        raise Invalid("format")
    return text


_PAYE = re.compile(r"^[0-9]{3}/[A-Z0-9]{1,10}$")


def parse_paye_reference(value: object) -> str:
    """Return an employer PAYE reference, like 123/AB45678."""
    text = clean(value).upper().replace(" ", "")
    if not text:
        raise Invalid("required")
    if not _PAYE.match(text):
        raise Invalid("format")
    return text


# --- Registrations ----------------------------------------------------------------------
# The reference a registrar gives the informant after registering a birth or death (Tell
# Us Once's unique reference): 12 letters and digits, often written in groups of four.
_REGISTRAR_REFERENCE = re.compile(r"^[A-Z0-9]{12}$")


def parse_registrar_reference(value: object) -> str:
    """Return a registrar's reference in upper case without spaces or hyphens."""
    text = clean(value).upper().replace(" ", "").replace("-", "")
    if not text:
        raise Invalid("required")
    if not _REGISTRAR_REFERENCE.match(text):
        raise Invalid("format")
    return text


def parse_entry_number(value: object) -> str:
    """A register entry number: 1 to 6 digits, without leading zeros."""
    text = clean(value).replace(" ", "")
    if not text:
        raise Invalid("required")
    if not text.isdigit() or not text.isascii() or len(text) > 6 or int(text) == 0:
        raise Invalid("format")
    return str(int(text))
