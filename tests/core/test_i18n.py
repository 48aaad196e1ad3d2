"""Welsh translations: every message has one, and the web front door uses them."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords
from babel.messages.pofile import read_po
from bs4 import BeautifulSoup
from flask.testing import FlaskClient

from scripts import i18n

ROOT = Path(__file__).resolve().parents[2]
CY_PO = ROOT / "channels" / "translations" / "cy" / "LC_MESSAGES" / "messages.po"

# The same keywords `python -m scripts.i18n extract` gives pybabel.
KEYWORDS = {**DEFAULT_KEYWORDS, **parse_keywords(list(i18n.EXTRA_KEYWORDS))}
# Example values and other tokens a translation must keep exactly as they are.
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
KEPT = re.compile(r"SW1A 1AA|QQ 12 34 56 C|123/AB456|MORGA753116SM9IJ|\d{4}-\d\d-\d\d|\d+")


def _mapping() -> list[tuple[str, str]]:
    try:
        from babel.messages.frontend import parse_mapping_cfg as parse
    except ImportError:  # Babel before 2.15
        from babel.messages.frontend import parse_mapping as parse
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, _options = parse(cfg)
    return method_map


def extracted_messages() -> set[tuple[str, str | None]]:
    """Every (message id, context) in router/, channels/ and templates/, freshly extracted:
    the same English in two contexts ("Yes" to two questions) is two messages."""
    found: set[tuple[str, str | None]] = set()
    for _filename, _lineno, message, _comments, context in extract_from_dir(
        str(ROOT), _mapping(), keywords=KEYWORDS
    ):
        # A plural message is filed under its singular id.
        found.add((message if isinstance(message, str) else message[0], context))
    return found


def extracted_msgids() -> set[str]:
    """Every message id in router/, channels/ and templates/, whatever its context."""
    return {msgid for msgid, _context in extracted_messages()}


def welsh() -> Catalog:
    with CY_PO.open("rb") as po:
        return read_po(po, locale="cy")


def test_extraction_finds_the_core_and_template_messages() -> None:
    ids = extracted_msgids()
    assert "What is your National Insurance number?" in ids  # router/catalogue.py, N_
    assert "Tell us about a life event" in ids  # templates/citizen/start.html, _()
    assert "Told" in ids  # router/cases.py, N_


def _translation_calls() -> set[str]:
    """The name of every function the code calls that translates (or marks) wording:
    imported from flask_babel or babel.support with "gettext" in its name, or a marker
    from router.i18n (N_, NP_: a name ending in "_"), under whatever name it was
    imported as."""
    called: set[str] = set()
    for package in ("router", "channels"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module in (
                    "flask_babel",
                    "babel.support",
                    "router.i18n",
                ):
                    for alias in node.names:
                        if "gettext" in alias.name or alias.name.endswith("_"):
                            names.add(alias.asname or alias.name)
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in names
                ):
                    called.add(node.func.id)
    return called


def test_extraction_knows_every_translation_function_the_code_calls() -> None:
    called = _translation_calls()
    assert {"N_", "NP_", "gettext", "pgettext", "lazy_gettext"} <= called
    assert called - set(KEYWORDS) == set()


def test_a_message_marked_with_a_context_is_extracted_in_it() -> None:
    """Issue 15, item 9: each yes or no question's "Yes" is a message of its own, in a
    context named after the question, so Welsh can answer each with its own verb."""
    found = extracted_messages()
    for field in ("has_driving_licence", "had_driving_licence", "claim_child_benefit"):
        assert ("Yes", field) in found and ("No", field) in found
    assert ("Yes", "help_requested") in found  # check answers: "Help at a Post Office"
    assert ("Yes", None) not in found  # no "Yes" left to mean whichever question asks


def test_lazily_translated_form_labels_are_extracted() -> None:
    ids = extracted_msgids()
    for lazy in (
        "I would like help from Post Office counter staff to finish this",
        "The citizen is here at my counter and I am serving them",
    ):
        assert lazy in ids


def _forms(text: str | tuple[str, ...] | None) -> tuple[str, ...]:
    """The forms of a message: one, or one per plural class."""
    if text is None:
        return ("",)
    return (text,) if isinstance(text, str) else tuple(text)


def test_every_message_has_a_welsh_translation() -> None:
    catalog = welsh()
    missing = sorted(
        (msgid, context or "")
        for msgid, context in extracted_messages()
        if (entry := catalog.get(msgid, context=context)) is None
        or not all(form.strip() for form in _forms(entry.string))
        or entry.fuzzy
    )
    assert not missing, (
        "No Welsh translation for these messages; run `python -m scripts.i18n extract` and "
        "`python -m scripts.i18n update`, then translate them in " + str(CY_PO)
    ) + "".join(f"\n  {m!r}" + (f" (context {c!r})" if c else "") for m, c in missing)


def test_welsh_catalogue_is_clean() -> None:
    catalog = welsh()
    assert not catalog.fuzzy
    assert catalog.plural_forms.startswith("nplurals=6;")
    for entry in catalog:
        if not entry.id:
            continue
        assert not entry.fuzzy, entry.id
        english = _forms(entry.id)
        forms = _forms(entry.string)
        if len(english) > 1:  # a plural: one Welsh form for each of the six plural classes
            assert len(forms) == 6, entry.id
        for form in forms:
            for token in KEPT.findall(" ".join(english)) + PLACEHOLDER.findall(english[-1]):
                assert token in form, f"{english[0]!r} lost {token!r}"


# The Welsh-speaking reviewer's corrections (issue 15, item 11) that hold for every
# message: words the Welsh must not use (a pattern, "(?i)" where case does not matter),
# and why.
WELSH_NEVER = (
    (
        r"(?i)\b(mewn|unrhyw) Swyddfa[’']r Post",
        "‘mewn’ and ‘unrhyw’ take an indefinite noun: ‘mewn cangen o Swyddfa’r Post’",
    ),
    (
        r"(?i)\bdogfen hunaniaeth",
        "the document is a ‘dogfen adnabod’ (the check stays ‘gwiriad hunaniaeth’)",
    ),
    (r"(?i)\b[td]rwydded cerdyn-llun", "DVLA’s term is ‘trwydded yrru cerdyn-llun’"),
    (r"Dweud Wrthym Unwaith", "the service is spelt as its title, ‘Dweud wrthym unwaith’"),
    (r"\bIawn\b", "‘Iawn’ means ‘OK’: Welsh answers yes with the question’s verb"),
    (r"\bmeddu ar\b", "stiff for a check-answers key: ‘Trwydded yrru’"),
)

# The reviewer's wording for messages said once (rows 4-6, 10, 13-15 and 17-24 of the review).
WELSH_REVIEWED = {
    "I would like help from Post Office counter staff to finish this": (
        "Hoffwn gael help gan staff cownter Swyddfa'r Post i gwblhau hyn"
    ),
    "The citizen has checked these answers and agrees to us telling these organisations": (
        "Mae'r dinesydd wedi gwirio'r atebion hyn ac yn cytuno i ni roi gwybod i'r sefydliadau hyn"
    ),
    "The citizen is here at my counter and I am serving them": (
        "Rwy'n gwasanaethu'r dinesydd sydd yma wrth fy nghownter"
    ),
    "Choose a Post Office": "Dewis cangen o Swyddfa’r Post",
    "Choose a different Post Office": "Dewis cangen arall",
    "Choose this Post Office": "Dewis y gangen hon",
    "Choose a Post Office that can do what your report needs": (
        "Dewiswch gangen o Swyddfa’r Post sy’n gallu gwneud yr hyn sydd ei angen ar gyfer "
        "eich adroddiad"
    ),
    "Whether you have a driving licence": "Trwydded yrru",
    "Whether they had a driving licence": "Trwydded yrru",
    "Whether you have a bank or building society account": "Cyfrif banc neu gymdeithas adeiladu",
    "Tell us once and we tell every public body that needs to know.": (
        "Rhowch wybod i ni unwaith a byddwn ni’n rhoi gwybod i bob corff cyhoeddus y mae "
        "angen iddo gael gwybod."
    ),
    "Waiting at: %(branch)s.": "Yn aros yn y gangen: %(branch)s.",
    "It is waiting at %(branch)s.": "Mae’n aros mewn cangen arall: %(branch)s.",
    "Waited": "Amser aros",
    "Select the kind of driving licence you have, or that you have none": (
        "Dewiswch y math o drwydded yrru sydd gennych, neu ‘Nid oes gennyf drwydded yrru’"
    ),
    "That task is not waiting on this report": (
        "Nid oes angen gwneud y dasg honno ar gyfer yr adroddiad hwn"
    ),
    "What we shared": "Yr hyn a rannwyd gennym",
    "Biometric residence permit or card": "Trwydded breswylio fiometrig neu gerdyn preswylio",
    # "atalnodau" is also full stops (and is right where English says "full stops").
    "Answer must only include letters, numbers and punctuation": (
        "Rhaid i’r ateb gynnwys llythrennau, rhifau a marciau atalnodi yn unig"
    ),
}


def test_welsh_never_uses_what_the_reviewer_corrected() -> None:
    """Issue 15, item 11: the corrections that are rules hold for every message, so a
    new message cannot bring the mistake back."""
    catalog = welsh()
    found = [
        f"{entry.id!r}: {why}"
        for entry in catalog
        if entry.id
        for pattern, why in WELSH_NEVER
        if any(re.search(pattern, form) for form in _forms(entry.string))
    ]
    assert not found, "\n".join(found)


def test_welsh_says_what_the_reviewer_proposed() -> None:
    """Issue 15, item 11: the reviewer's wording for messages said once."""
    catalog = welsh()
    assert {msgid: catalog[msgid].string for msgid in WELSH_REVIEWED} == WELSH_REVIEWED
    # "Too many times" in all six plural forms, not a calque of "too many attempts".
    entry = catalog[
        "The details did not match too many times. You can try again in %(num)d minute."
    ]
    assert all(
        form.startswith("Rydych wedi rhoi manylion nad ydynt yn cyfateb ormod o weithiau.")
        for form in _forms(entry.string)
    )
    # Welsh answers the question "Do you have a ...?" with the label the page shows.
    option = catalog["I do not have a driving licence"].string
    assert f"‘{option}’" in str(
        WELSH_REVIEWED["Select the kind of driving licence you have, or that you have none"]
    )


@pytest.fixture(scope="module")
def compiled() -> None:
    i18n.main(["compile"])  # as ./dev does, so a changed .po is what the app reads


@pytest.mark.usefixtures("compiled")
def test_start_page_in_welsh(client: FlaskClient) -> None:
    catalog = welsh()
    heading = str(catalog["Tell us about a life event"].string)
    assert heading and heading != "Tell us about a life event"
    page = client.get("/?lang=cy")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    soup = BeautifulSoup(text, "html.parser")
    assert soup.html["lang"] == "cy"
    assert soup.h1.get_text(strip=True) == heading
    assert "Tell us about a life event" not in text
    # Core wording marked with N_ is translated at the edge too.
    assert html.escape(str(catalog["Moving house"].string)) in text


@pytest.mark.usefixtures("compiled")
def test_start_page_in_english_by_default(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    soup = BeautifulSoup(text, "html.parser")
    assert soup.html["lang"] == "en"
    assert soup.h1.get_text(strip=True) == "Tell us about a life event"
    assert "Moving house" in text


@pytest.mark.usefixtures("compiled")
def test_welsh_from_accept_language(client: FlaskClient) -> None:
    text = client.get("/", headers={"Accept-Language": "cy-GB,cy;q=0.9,en;q=0.5"}).get_data(
        as_text=True
    )
    soup = BeautifulSoup(text, "html.parser")
    assert soup.html["lang"] == "cy"
    assert soup.h1.get_text(strip=True) != "Tell us about a life event"


def test_no_message_a_person_reads_calls_their_report_a_case() -> None:
    """Issue 15, item 4: citizens (and partners showing our messages to them) read of
    their report, never a "case"."""
    word = re.compile(r"(?<!lower )(?<!upper )(?<!any )\bcases?\b", re.IGNORECASE)
    said = sorted(m for m in extracted_msgids() if word.search(m))
    assert said == []
