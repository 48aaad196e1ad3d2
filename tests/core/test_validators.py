"""Table-driven tests of the format checks in router/validators.py.

Each refusal asserts ``Invalid.key``: the catalogue turns that key into the sentence a
person reads, so the wrong key means the wrong advice.
"""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest

from router import validators as v


def refused(parse, value) -> str:
    """The key of the ``Invalid`` that ``parse(value)`` raises (fails if it accepts)."""
    with pytest.raises(v.Invalid) as info:
        parse(value)
    return info.value.key


# --- clean ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ""),
        ("", ""),
        ("  a \t b\n c  ", "a b c"),
        (123, "123"),
    ],
)
def test_clean_collapses_whitespace(raw, expected):
    assert v.clean(raw) == expected


# --- postcodes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("M1 1AE", "M1 1AE"),  # A9 9AA
        ("B33 8TH", "B33 8TH"),  # A99 9AA
        ("CR2 6XH", "CR2 6XH"),  # AA9 9AA
        ("DN55 1PT", "DN55 1PT"),  # AA99 9AA
        ("W1A 0AX", "W1A 0AX"),  # A9A 9AA
        ("EC1A 1BB", "EC1A 1BB"),  # AA9A 9AA
        ("SW1A 1AA", "SW1A 1AA"),
        ("sw1a 1aa", "SW1A 1AA"),
        ("SW1A1AA", "SW1A 1AA"),
        ("sw1a1aa", "SW1A 1AA"),
        ("  SW1A   1AA ", "SW1A 1AA"),
        ("S W 1 A 1 A A", "SW1A 1AA"),
        ("cf10 1bh", "CF10 1BH"),
        ("GIR 0AA", "GIR 0AA"),
        ("gir0aa", "GIR 0AA"),
    ],
)
def test_postcode_accepted_and_normalised(raw, expected):
    assert v.parse_postcode(raw) == expected


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (None, "required"),
        ("", "required"),
        ("   ", "required"),
        ("QA1 1AA", "format"),  # Q never first
        ("V1 1AA", "format"),  # V never first
        ("X1 1AA", "format"),  # X never first
        ("AI1 1AA", "format"),  # I never second
        ("AJ1 1AA", "format"),  # J never second
        ("AZ1 1AA", "format"),  # Z never second
        ("W1I 0AX", "format"),  # I never third in A9A
        ("EC1C 1BB", "format"),  # C never fourth in AA9A
        ("SW1A 1CA", "format"),  # inward letters never C, I, K, M, O, V
        ("SW1A 1AI", "format"),
        ("SW1A 1KA", "format"),
        ("SW1A 1AM", "format"),
        ("SW1A 1OA", "format"),
        ("SW1A 1AV", "format"),
        ("SW1 1A", "format"),  # too short
        ("M1 1A", "format"),
        ("SW1AA 1AA", "format"),  # too long
        ("SW1A 1AAA", "format"),
        ("SW1A 11A", "format"),  # inward must be 9AA
        ("1W1A 1AA", "format"),
        ("SW1A-1AA", "format"),
        ("not a postcode", "format"),
    ],
)
def test_postcode_refused(raw, key):
    assert refused(v.parse_postcode, raw) == key


# --- National Insurance numbers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AB123456C", "AB123456C"),
        ("AB 12 34 56 C", "AB123456C"),
        ("ab 12 34 56 c", "AB123456C"),
        ("ab123456c", "AB123456C"),
        ("AB-12-34-56-C", "AB123456C"),
        ("JK 98 76 54 B", "JK987654B"),
        ("OA123456A", "OA123456A"),  # O may be first, just never second
        ("ZY112233D", "ZY112233D"),
    ],
)
def test_nino_accepted_and_normalised(raw, expected):
    assert v.parse_nino(raw) == expected


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (None, "required"),
        ("", "required"),
        ("AB12345C", "format"),  # 5 digits
        ("AB1234567C", "format"),  # 7 digits
        ("AB123456", "format"),  # no suffix
        ("A1123456C", "format"),
        ("123456789", "format"),
        ("AB12345XC", "format"),
        # First letter never D, F, I, Q, U or V.
        *[(f"{first}A123456A", "never_issued") for first in "DFIQUV"],
        # Second letter never D, F, I, O, Q, U or V.
        *[(f"A{second}123456A", "never_issued") for second in "DFIOQUV"],
        # Prefixes never issued.
        *[(f"{prefix}123456A", "never_issued") for prefix in ("BG", "GB", "KN", "NK", "NT", "TN")],
        ("ZZ123456A", "never_issued"),
        ("zz 12 34 56 a", "never_issued"),
    ],
)
def test_nino_refused(raw, key):
    assert refused(v.parse_nino, raw) == key


@pytest.mark.parametrize("suffix", "ABCD")
def test_nino_suffix_a_to_d_accepted(suffix):
    assert v.parse_nino(f"AB123456{suffix}") == f"AB123456{suffix}"


@pytest.mark.parametrize("suffix", "EXZ")
def test_nino_bad_suffix_is_a_format_error(suffix):
    # A bad suffix is a format problem: the "never issued" message would send someone
    # who typed AB123456E to check first letters that are right.
    assert refused(v.parse_nino, f"AB123456{suffix}") == "format"


@pytest.mark.parametrize("suffix", "EZ")
def test_nino_bad_suffix_refused(suffix):
    # Whatever the key, a suffix outside A-D is never accepted.
    with pytest.raises(v.Invalid):
        v.parse_nino(f"AB123456{suffix}")


# --- Names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Priya Sharma", "Priya Sharma"),
        ("Siân Evans", "Siân Evans"),
        ("Zoë Okafor", "Zoë Okafor"),
        ("Zoe\u0308", "Zoë"),  # decomposed diaeresis is composed (NFC)
        ("Ó Súilleabháin", "Ó Súilleabháin"),
        ("José María", "José María"),
        ("Nguyễn Văn An", "Nguyễn Văn An"),
        ("O'Brien", "O'Brien"),
        ("O\u2019Brien", "O'Brien"),  # curly apostrophe becomes straight
        ("Emily D'Souza", "Emily D'Souza"),
        ("Siân O'Brien-Évans", "Siân O'Brien-Évans"),
        ("Anne-Marie", "Anne-Marie"),
        ("J. R. Hartley", "J. R. Hartley"),
        ("  Mary   Jane  ", "Mary Jane"),
        ("Ἀλέξανδρος", "Ἀλέξανδρος"),
        ("Олена Коваленко", "Олена Коваленко"),
        ("李小龍", "李小龍"),
        ("A" * 100, "A" * 100),
    ],
)
def test_name_accepted(raw, expected):
    assert v.parse_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (None, "required"),
        ("", "required"),
        ("   ", "required"),
        ("A" * 101, "too_long"),
        ("R2D2", "characters"),
        ("Jane Smith 2", "characters"),
        ("Jane 😀", "characters"),
        ("<script>", "characters"),
        ("<script>alert(1)</script>", "characters"),
        ("Robert'); DROP TABLE", "characters"),
        ("-Anne", "characters"),
        ("'Anne", "characters"),
        ("Anne--Marie", "characters"),
        ("O''Brien", "characters"),
        ("Jane\u200bSmith", "characters"),  # zero-width space
        ("Jane_Smith", "characters"),
        ("Jane@Smith", "characters"),
        ("- ' .", "characters"),  # punctuation but no letters
        ("...", "characters"),
    ],
)
def test_name_refused(raw, key):
    assert refused(v.parse_name, raw) == key


@pytest.mark.parametrize("raw", ["प्रिया शर्मा", "முருகன்", "সৌরভ"])
def test_name_in_indic_scripts_accepted(raw):
    # Devanagari, Tamil and Bengali names carry spacing vowel signs (category Mc).
    assert v.parse_name(raw) == raw


# --- Free text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (None, "required"),
        ("", "required"),
        ("x" * 101, "too_long"),
        ("Acme\u200bLtd", "characters"),
        ("Acme\u202eLtd", "characters"),  # right-to-left override
    ],
)
def test_text_refused(raw, key):
    assert refused(v.parse_text, raw) == key


def test_text_accepted_and_tidied():
    assert v.parse_text("  Northern  Rail Works Ltd ") == "Northern Rail Works Ltd"
    assert v.parse_text("x" * 100) == "x" * 100


# --- Dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-31", date(2024, 3, 31)),
        (" 2024-03-31 ", date(2024, 3, 31)),
        ("2024-02-29", date(2024, 2, 29)),
        (date(2020, 1, 2), date(2020, 1, 2)),
        ({"day": "31", "month": "3", "year": "2024"}, date(2024, 3, 31)),
        ({"day": "01", "month": "02", "year": "1990"}, date(1990, 2, 1)),
        ({"day": " 7 ", "month": "12", "year": "1984"}, date(1984, 12, 7)),
        ({"day": 7, "month": 12, "year": 1984}, date(1984, 12, 7)),
    ],
)
def test_date_accepted(raw, expected):
    assert v.parse_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (None, "required"),
        ("", "required"),
        ({}, "required"),
        ({"day": "", "month": "", "year": ""}, "required"),
        ({"day": "1", "month": "2"}, "incomplete"),
        ({"day": "1", "year": "2020"}, "incomplete"),
        ({"month": "2", "year": "2020"}, "incomplete"),
        ({"day": "1", "month": "", "year": "2020"}, "incomplete"),
        ({"day": "30", "month": "2", "year": "2023"}, "real"),
        ({"day": "29", "month": "2", "year": "2023"}, "real"),
        ({"day": "1", "month": "13", "year": "2023"}, "real"),
        ({"day": "0", "month": "1", "year": "2023"}, "real"),
        ({"day": "1", "month": "1", "year": "23"}, "real"),  # 2-digit year
        ({"day": "one", "month": "1", "year": "2023"}, "real"),
        ({"day": "-1", "month": "1", "year": "2023"}, "real"),
        ("2023-02-30", "real"),
        ("2023-02-29", "real"),
        ("2023-13-01", "real"),
        ("31/03/2024", "real"),
        ("2024-3-31", "real"),
        ("20240331", "real"),
        ("yesterday", "real"),
    ],
)
def test_date_refused(raw, key):
    assert refused(v.parse_date, raw) == key


# --- Driving licence numbers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("MORGA753116SM9IJ", "MORGA753116SM9IJ"),
        ("morga753116sm9ij", "MORGA753116SM9IJ"),
        ("MORGA 753116 SM9IJ", "MORGA753116SM9IJ"),
        ("MORGA703116SM9IJ", "MORGA703116SM9IJ"),  # month 03, a man
        ("MORGA712316SM9IJ", "MORGA712316SM9IJ"),  # month 12
        ("MORGA762316SM9IJ", "MORGA762316SM9IJ"),  # month 62 (12 + 50)
        ("LI999701011A99XY", "LI999701011A99XY"),  # short surname padded with 9
    ],
)
def test_driving_licence_accepted(raw, expected):
    assert v.parse_driving_licence(raw) == expected


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (None, "required"),
        ("", "required"),
        ("MORGA713116SM9IJ", "format"),  # month 13
        ("MORGA700116SM9IJ", "format"),  # month 00
        ("MORGA763116SM9IJ", "format"),  # month 63
        ("MORGA753006SM9IJ", "format"),  # day 00
        ("MORGA750316SM9IJ", "format"),  # month 50
        ("MORGA753326SM9IJ", "format"),  # day 32
        ("MORGA753116SM9I", "format"),  # 15 characters
        ("MORGA753116SM9IJK", "format"),  # 17 characters
        ("MORG1753116SM9IJ", "format"),  # digit in surname
        ("MORGA753116SMXIJ", "format"),  # letter where the arbitrary digit goes
        ("MORGA-753116-SM9IJ", "format"),
    ],
)
def test_driving_licence_refused(raw, key):
    assert refused(v.parse_driving_licence, raw) == key


# --- Bank details ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("309498", "309498"),
        ("30-94-98", "309498"),
        ("30 94 98", "309498"),
        (" 30 - 94 - 98 ", "309498"),
    ],
)
def test_sort_code_accepted(raw, expected):
    assert v.parse_sort_code(raw) == expected


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (None, "required"),
        ("", "required"),
        ("--", "required"),
        ("30949", "format"),
        ("3094981", "format"),
        ("30-94-9A", "format"),
        ("30/94/98", "format"),
    ],
)
def test_sort_code_refused(raw, key):
    assert refused(v.parse_sort_code, raw) == key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00733445", "00733445"),
        ("12345678", "12345678"),
        ("1234567", "01234567"),
        ("123456", "00123456"),
        ("1234 5678", "12345678"),
        ("12-34-56", "00123456"),
    ],
)
def test_account_number_accepted_and_padded(raw, expected):
    assert v.parse_account_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (None, "required"),
        ("", "required"),
        ("12345", "format"),
        ("123456789", "format"),
        ("1234567A", "format"),
    ],
)
def test_account_number_refused(raw, key):
    assert refused(v.parse_account_number, raw) == key


# --- PAYE references ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123/AB456", "123/AB456"),
        ("123/ab456", "123/AB456"),
        (" 123 / AB456 ", "123/AB456"),
        ("123/A", "123/A"),
        ("123/AB45678901", "123/AB45678901"),  # 10 characters after the slash
    ],
)
def test_paye_reference_accepted(raw, expected):
    assert v.parse_paye_reference(raw) == expected


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (None, "required"),
        ("", "required"),
        ("123AB456", "format"),  # no slash
        ("12/AB456", "format"),  # 2-digit office number
        ("1234/AB456", "format"),
        ("123/", "format"),
        ("123/AB456789012", "format"),  # 11 characters after the slash
        ("123/AB-456", "format"),
        ("ABC/12345", "format"),
    ],
)
def test_paye_reference_refused(raw, key):
    assert refused(v.parse_paye_reference, raw) == key


def test_invalid_carries_its_key():
    problem = v.Invalid("format")
    assert problem.key == "format"
    assert isinstance(problem, ValueError)
    assert str(problem) == "format" and problem.args == ("format",)


# --- contact details ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sian@example.com", "sian@example.com"),
        ("  Sian.OBrien@Example.CO.UK ", "Sian.OBrien@example.co.uk"),  # the box's case kept
        ("o'brien+tell-us-once@ex-ample.cymru", "o'brien+tell-us-once@ex-ample.cymru"),
        ("sian@example.com.", "sian@example.com"),  # a full stop typed after it
        ("sian@xn--bcher-kva.example", "sian@xn--bcher-kva.example"),
    ],
)
def test_email_accepted(raw, expected):
    assert v.parse_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("", "required"),
        ("sian", "format"),
        ("sian@", "format"),
        ("@example.com", "format"),
        ("sian@example", "format"),  # no top-level domain
        ("sian@@example.com", "format"),
        ("si an@example.com", "format"),
        ("sian..obrien@example.com", "format"),
        ("sian@example..com", "format"),
        ("sian@-example.com", "format"),
        ("sian@example.c0m", "format"),
        ("siân@example.com", "format"),  # Notify sends to ASCII local parts only
        ("sian@" + "a" * 64 + ".com", "format"),
    ],
)
def test_email_refused(raw, key):
    assert refused(v.parse_email, raw) == key


@pytest.mark.parametrize(
    "raw",
    [
        "07700900982",
        "07700 900 982",
        "+44 7700 900982",
        "+44 (0)7700-900982",
        "0044 7700900982",
        "447700900982",
    ],
)
def test_uk_mobile_accepted_in_the_ways_people_write_it(raw):
    assert v.parse_uk_mobile(raw) == "07700900982"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("", "required"),
        ("01632 960 001", "format"),  # a landline
        ("0770090098", "format"),  # 10 digits
        ("077009009821", "format"),
        ("+1 202 555 0143", "format"),
        ("07700 9OO 982", "format"),  # letter O for zero
        ("０７７００９００９８２", "format"),  # full-width digits
    ],
)
def test_uk_mobile_refused(raw, key):
    assert refused(v.parse_uk_mobile, raw) == key


# --- mutation survivors (issue 19): the edges each check draws ---------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "Xavier Dupont",  # a name may start with any letter
        "Sha\u0301\u0302\u0303ne",  # exactly 3 marks on one letter: the most allowed
        "שַּׁבְּתַאי",  # Hebrew: shin with a dagesh, a shin dot and a vowel (3 marks)
        "Оле\u0301на",  # a stress mark (script Inherited) on a Cyrillic name
        "金 민준",  # Korean: a hanja surname with a hangul given name
        "佐藤 まりア",  # Japanese: kanji, hiragana and katakana, all three
    ],
)
def test_names_at_the_edges_of_the_rules_are_accepted(raw):
    assert v.parse_name(raw) == unicodedata.normalize("NFC", raw)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Acme\x07Ltd", "characters"),  # a control character (Cc)
        ("Acme\ud800Ltd", "characters"),  # a lone surrogate (Cs)
        ("Acme\ue000Ltd", "characters"),  # private use (Co)
    ],
)
def test_text_refuses_every_category_of_unprintable_character(raw, key):
    assert refused(v.parse_text, raw) == key


def test_email_edges():
    local = "a" * (320 - len("@example.com"))
    assert v.parse_email(f"{local}@example.com") == f"{local}@example.com"  # 320: allowed
    assert refused(v.parse_email, f"{local}a@example.com") == "format"  # 321
    label = "a" * 63
    assert v.parse_email(f"sian@{label}.com") == f"sian@{label}.com"  # a 63-letter label
    assert v.parse_email("Xavier@Example.COM") == "Xavier@example.com"
    # Only the top level must be letters: a label before it may hold digits.
    assert v.parse_email("sian@mail.x1.example.com") == "sian@mail.x1.example.com"


def test_a_contact_is_masked_to_be_recognised_not_used():
    assert v.mask_contact("sian.obrien@example.com") == "s***@example.com"
    assert v.mask_contact("a@b@example.com") == "a***@b@example.com"
    assert v.mask_contact("07700900982") == "*******0982"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("DX7Q4K2M9PLA", "DX7Q4K2M9PLA"), (" dx7q-4k2m 9pla ", "DX7Q4K2M9PLA")],
)
def test_registrar_reference_accepted_and_normalised(raw, expected):
    assert v.parse_registrar_reference(raw) == expected


@pytest.mark.parametrize(
    ("raw", "key"),
    [("", "required"), (" - ", "required"), ("DX7Q4K2M9PL", "format"), ("DX7Q4K2M9PL!", "format")],
)
def test_registrar_reference_refused(raw, key):
    assert refused(v.parse_registrar_reference, raw) == key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("214", "214"), ("0214", "214"), (" 2 14 ", "214"), ("1", "1"), ("999999", "999999")],
)
def test_entry_number_accepted_without_leading_zeros(raw, expected):
    assert v.parse_entry_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("", "required"),
        ("0", "format"),
        ("000", "format"),
        ("1234567", "format"),  # more than 6 digits
        ("12a", "format"),
        ("١٢٣", "format"),  # Arabic-Indic digits: digits, but not ASCII
    ],
)
def test_entry_number_refused(raw, key):
    assert refused(v.parse_entry_number, raw) == key
