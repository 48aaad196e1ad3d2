"""Names that are not what they seem: look-alike letters from another alphabet,
invisible fillers and stacks of combining marks are refused, each with its own advice;
real names in any one writing system are kept (router.validators.parse_name).

A report that changes "Emily Carter" into "Еmily Cаrter" (a Cyrillic Е and а) names
somebody else to every department that receives it, while looking the same to a person.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router import validators as v
from router.catalogue import EVENTS

# Latin letters and their look-alikes in Cyrillic and Greek (a few of many).
LOOK_ALIKES = {
    "a": "\u0430",  # Cyrillic а
    "c": "\u0441",  # Cyrillic с
    "e": "\u0435",  # Cyrillic е
    "o": "\u043e",  # Cyrillic о
    "p": "\u0440",  # Cyrillic р
    "y": "\u0443",  # Cyrillic у
    "E": "\u0415",  # Cyrillic Е
    "C": "\u0421",  # Cyrillic С
    "O": "\u039f",  # Greek Ο
    "A": "\u0391",  # Greek Α
}
FILLERS = ["\u3164", "\u115f", "\u1160", "\uffa0", "\u034f", "\ufe0f"]


def refused(value: str) -> str:
    with pytest.raises(v.Invalid) as info:
        v.parse_name(value)
    return info.value.key


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("\u0415mily C\u0430rter", "mixed_scripts"),  # the report the issue reproduced
        ("Emily Cart\u0435r", "mixed_scripts"),
        ("\u039flga", "mixed_scripts"),  # a Greek capital omicron
        ("Jo\u3164hn Smith", "invisible"),  # Hangul filler: a "letter" that prints nothing
        ("\u3164", "invisible"),
        ("John\u115fSmith", "invisible"),
        ("Ann\u034fe", "invisible"),  # combining grapheme joiner
        ("Ja\u0301\u0301\u0301\u0301ne", "marks"),
        ("Z\u0336\u0334\u0335\u0337\u0338algo", "marks"),
    ],
)
def test_a_name_that_is_not_what_it_seems_is_refused(raw: str, key: str) -> None:
    assert refused(raw) == key


@pytest.mark.parametrize(
    "raw",
    [
        "Siân Llywelyn",
        "Gwenllïan ap Rhys",
        "Dafydd ab Owain",
        "Seán Ó Súilleabháin",
        "Aoife Ní Bhriain",
        "Nguyễn Thị Ánh",
        "François Lefèvre",
        "Ольга Петренко",
        "Ἀλέξανδρος Παπαδόπουλος",
        "שָׁלוֹם כֹּהֵן",  # Hebrew with points: up to 3 marks on a letter
        "محمد عبد الله",
        "प्रिया शर्मा",
        "山田 花子",
        "山田 はなこ",  # Japanese mixes kanji and kana
        "김민준",
        "李小龍",
    ],
)
def test_real_names_in_one_writing_system_are_kept(raw: str) -> None:
    assert v.parse_name(raw) == unicodedata.normalize("NFC", raw)


def test_each_refusal_has_its_own_advice_in_english_and_welsh() -> None:
    question = EVENTS["change_of_name"].question("full_name")
    advice = {key: question.error(key) for key in ("mixed_scripts", "invisible", "marks")}
    assert len(set(advice.values())) == 3
    assert question.required_error not in advice.values()
    assert "one alphabet" in advice["mixed_scripts"]
    assert "invisible" in advice["invisible"]


# --- both sides, as properties -------------------------------------------------------

LATIN = "abcdefghijklmnopqrstuvwyzâêîôûŵŷäëïöüáéíóúàèìòù"
SCRIPTS = {
    "latin": LATIN,
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщыэюяі",
    "greek": "αβγδεζηθικλμνξοπρστυφχψωάέήίόύώ",
}


def names(letters: str) -> st.SearchStrategy[str]:
    """One to three words of 2 to 12 letters, the first letter of each a capital."""
    word = st.text(alphabet=letters, min_size=2, max_size=12).map(lambda w: w[0].upper() + w[1:])
    return st.lists(word, min_size=1, max_size=3).map(" ".join)


@given(st.sampled_from(sorted(SCRIPTS)).flatmap(lambda s: names(SCRIPTS[s])))
def test_any_name_in_one_alphabet_is_accepted(name: str) -> None:
    assert v.parse_name(name) == unicodedata.normalize("NFC", name)


@given(names("acepyoEC" + "bdfghklmnrstu"), st.data())
def test_one_look_alike_letter_from_another_alphabet_is_refused(name: str, data) -> None:
    positions = [i for i, c in enumerate(name) if c in LOOK_ALIKES]
    if not positions:
        name, positions = name + "e", [len(name)]
    at = data.draw(st.sampled_from(positions))
    planted = name[:at] + LOOK_ALIKES[name[at]] + name[at + 1 :]
    assert refused(planted) == "mixed_scripts"


@given(names(LATIN), st.sampled_from(FILLERS), st.data())
def test_an_invisible_character_anywhere_is_refused(name: str, filler: str, data) -> None:
    at = data.draw(st.integers(1, len(name)))
    assert refused(name[:at] + filler + name[at:]) == "invisible"


@given(
    names(LATIN),
    st.lists(st.sampled_from("\u0300\u0301\u0302\u0303\u0308\u0336"), min_size=4, max_size=12),
    st.data(),
)
def test_a_stack_of_more_than_three_marks_is_refused(name: str, marks: list[str], data) -> None:
    letters = [i for i, c in enumerate(name) if c != " "]
    at = data.draw(st.sampled_from(letters)) + 1
    assert refused(name[:at] + "".join(marks) + name[at:]) == "marks"
