"""The chaos workload: valid submissions across every life event, made up from a seed."""

from __future__ import annotations

import random
import unicodedata
from typing import Any

from router import catalogue, routing
from router.adapters.registry import Registry
from tests.support.samples import sample

DEPARTMENTS: tuple[str, ...] = ("dwp", "dvla", "payments", "hmrc", "council")
EVENT_TYPES: tuple[str, ...] = (
    "moving_house",
    "death",
    "birth",
    "new_job",
    "retiring",
    "change_of_name",
)


# --- the workload ------------------------------------------------------------------------

FIRST_NAMES = (
    "Aisha",
    "Bronwen",
    "Siân",
    "Zoë",
    "Chidi",
    "Priya",
    "Gareth",
    "Mairéad",
    "Tomasz",
    "Émile",
    "Oluwaseun",
    "Niamh",
    "Rhys",
    "Fatima",
    "Dafydd",
    "Yusuf",
    "Ewa",
    "Callum",
    "Ngozi",
    "Hamish",
)
LAST_NAMES = (
    "Okafor",
    "Llewellyn",
    "O'Brien",
    "Sharma",
    "Pendleton",
    "D'Souza",
    "Carter",
    "Nowak",
    "MacLeod",
    "Ó Súilleabháin",
    "Evans-Jones",
    "Begum",
    "Kowalski",
    "Adeyemi",
    "Price",
    "Morgan",
    "Hughes",
    "Campbell",
    "Khan",
    "Fraser",
)
PLACES = (
    ("Edinburgh", "EH2 2PR"),
    ("Cardiff", "CF10 1BH"),
    ("Leeds", "LS1 4AP"),
    ("Manchester", "M1 1AE"),
    ("Swansea", "SA1 1NW"),
    ("Bristol", "BS1 4DJ"),
    ("Birmingham", "B33 8TH"),
    ("Croydon", "CR2 6XH"),
    ("London", "SW1A 1AA"),
    ("London", "EC1A 1BB"),
    ("Glasgow", "G2 3DE"),
    ("Belfast", "BT1 5GS"),
    ("Newcastle", "NE1 7RU"),
    ("Liverpool", "L1 8JQ"),
    ("Plymouth", "PL1 2AA"),
    ("Aberdeen", "AB10 1XG"),
    ("Bangor", "LL57 2DG"),
)
STREETS = (
    "Rose Street",
    "Mill Lane",
    "Heol y Castell",
    "Quay Street",
    "Bryn Road",
    "High Street",
    "Station Road",
    "Church Walk",
)
EMPLOYERS = (
    "Northern Rail Works Ltd",
    "Cwmni Bara Cymru",
    "Tay Bridge Logistics",
    "St Mungo's Trust",
    "Harbour & Sons",
)
NINO_LETTERS = "ABCEGHJKLMNPRSTWXYZ"
NINO_NEVER = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"


def _name(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return f"{first} {last}", last


def _nino(rng: random.Random) -> str:
    while True:
        prefix = rng.choice(NINO_LETTERS) + rng.choice(NINO_LETTERS)
        if prefix not in NINO_NEVER:
            break
    digits = "".join(rng.choice(DIGITS) for _ in range(6))
    suffix = rng.choice("ABCD")
    if rng.random() < 0.5:  # as printed on a card, or as typed
        return f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
    return f"{prefix}{digits}{suffix}"


def _licence(rng: random.Random, surname: str) -> str:
    ascii_letters = "".join(
        c for c in unicodedata.normalize("NFKD", surname).upper() if "A" <= c <= "Z"
    )
    month = rng.randint(1, 12) + rng.choice((0, 50))
    return (
        ascii_letters[:5].ljust(5, "9")
        + rng.choice(DIGITS)
        + f"{month:02d}{rng.randint(1, 28):02d}"
        + rng.choice(DIGITS)
        + rng.choice(UPPER)
        + rng.choice(UPPER + "9")
        + rng.choice(DIGITS)
        + rng.choice(UPPER + DIGITS)
        + rng.choice(UPPER + DIGITS)
    )


def _birth_date(rng: random.Random, first_year: int, last_year: int) -> str:
    return f"{rng.randint(first_year, last_year)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _address(rng: random.Random, answers: dict[str, Any]) -> None:
    town, postcode = rng.choice(PLACES)
    answers["address_line_1"] = f"{rng.randint(1, 240)} {rng.choice(STREETS)}"
    answers["town"] = town
    answers["postcode"] = postcode.lower() if rng.random() < 0.2 else postcode


def _registration(rng: random.Random, answers: dict[str, Any]) -> None:
    """Each death or birth its own registrar's reference: they come, as in Tell Us Once,
    from a registrar's system, which vouches for them (see tests.support.identities)."""
    answers["registration_how"] = "reference"
    answers["registrar_reference"] = "".join(rng.choice(UPPER + DIGITS) for _ in range(12))


def _answers(rng: random.Random, event: str) -> dict[str, Any]:
    """Answers for ``event``: the sample's, with every personal detail and choice varied."""
    answers: dict[str, Any] = dict(sample(event)["answers"])
    yes_no = ("yes", "no")
    if event == "moving_house":
        answers["full_name"], surname = _name(rng)
        answers["date_of_birth"] = _birth_date(rng, 1945, 2004)
        answers["nino"] = _nino(rng)
        _address(rng, answers)
        answers["previous_postcode"] = rng.choice(PLACES)[1]
        answers["move_date"] = {"days_ago": rng.randint(-80, 300)}
        answers["has_driving_licence"] = rng.choice(yes_no)
        if answers["has_driving_licence"] == "yes":
            answers["driving_licence_number"] = _licence(rng, surname)
        else:
            del answers["driving_licence_number"]
    elif event == "death":
        answers["deceased_full_name"], surname = _name(rng)
        answers["deceased_date_of_birth"] = _birth_date(rng, 1925, 1990)
        answers["date_of_death"] = {"days_ago": rng.randint(0, 1500)}
        answers["deceased_nino"] = _nino(rng)
        _address(rng, answers)
        answers["informant_full_name"] = _name(rng)[0]
        answers["informant_relationship"] = rng.choice(
            ("spouse_or_partner", "child", "parent", "sibling", "executor", "other")
        )
        answers["had_driving_licence"] = rng.choice(yes_no)
        if answers["had_driving_licence"] == "yes":
            answers["driving_licence_number"] = _licence(rng, surname)
        else:
            del answers["driving_licence_number"]
        _registration(rng, answers)
    elif event == "birth":
        parent, surname = _name(rng)
        answers["child_full_name"] = f"{rng.choice(FIRST_NAMES)} {surname}"
        answers["child_date_of_birth"] = {"days_ago": rng.randint(0, 300)}
        answers["parent_full_name"] = parent
        answers["parent_date_of_birth"] = _birth_date(rng, 1975, 2004)
        answers["parent_nino"] = _nino(rng)
        _address(rng, answers)
        answers["claim_child_benefit"] = rng.choice(yes_no)
        _registration(rng, answers)
    elif event == "new_job":
        answers["full_name"] = _name(rng)[0]
        answers["date_of_birth"] = _birth_date(rng, 1960, 2006)
        answers["nino"] = _nino(rng)
        answers["employer_name"] = rng.choice(EMPLOYERS)
        if rng.random() < 0.7:
            answers["employer_paye_reference"] = (
                f"{rng.randint(100, 999)}/{rng.choice(UPPER)}{rng.choice(UPPER)}"
                f"{rng.randint(100, 99999)}"
            )
        else:
            del answers["employer_paye_reference"]  # optional
        answers["job_start_date"] = {"days_ago": rng.randint(-150, 300)}
        answers["claiming_benefits"] = rng.choice(yes_no)
        answers["postcode"] = rng.choice(PLACES)[1]
    elif event == "retiring":
        answers["full_name"] = _name(rng)[0]
        answers["date_of_birth"] = _birth_date(rng, 1950, 1966)
        answers["nino"] = _nino(rng)
        answers["retirement_date"] = {"days_ago": rng.randint(-300, 300)}
        _address(rng, answers)
        answers["has_bank_account"] = rng.choice(("yes", "yes", "no"))
        if answers["has_bank_account"] == "yes":
            answers["sort_code"] = "-".join(f"{rng.randint(0, 99):02d}" for _ in range(3))
            answers["account_number"] = "".join(rng.choice(DIGITS) for _ in range(8))
        else:
            del answers["sort_code"], answers["account_number"]
    elif event == "change_of_name":
        first = rng.choice(FIRST_NAMES)
        old_surname, new_surname = rng.sample(LAST_NAMES, 2)
        answers["previous_full_name"] = f"{first} {old_surname}"
        answers["full_name"] = f"{first} {new_surname}"
        answers["date_of_birth"] = _birth_date(rng, 1950, 2004)
        answers["nino"] = _nino(rng)
        answers["date_of_change"] = {"days_ago": rng.randint(0, 1500)}
        answers["reason"] = rng.choice(
            ("marriage", "civil_partnership", "divorce", "deed_poll", "other")
        )
        _address(rng, answers)
        answers["driving_licence"] = rng.choice(("photocard", "paper", "none"))
        if answers["driving_licence"] == "none":
            del answers["driving_licence_number"]
        else:
            answers["driving_licence_number"] = _licence(rng, old_surname)
    else:  # pragma: no cover - EVENT_TYPES is the whole catalogue
        raise ValueError(event)
    return answers


def workload(seed: int, count: int = 210) -> list[dict[str, Any]]:
    """``count`` valid submissions, every event type about equally, in seeded random order.

    Each is ``{"event", "answers", "consent"}``; consent is a non-empty random subset of
    the departments interested in the event (all of them about half the time).
    """
    rng = random.Random(seed)
    registry = Registry.discover()
    events = [EVENT_TYPES[i % len(EVENT_TYPES)] for i in range(count)]
    rng.shuffle(events)
    cases = []
    for event in events:
        answers = _answers(rng, event)
        names = [a.name for a in routing.interested(event, registry)]
        if rng.random() < 0.5:
            consent = list(names)
        else:
            consent = rng.sample(names, rng.randint(1, len(names)))
        # A generator that writes invalid cases would test nothing: check each one.
        catalogue.get_event(event).validate(answers)
        routing.check_consent(event, consent, registry)
        cases.append({"event": event, "answers": answers, "consent": sorted(consent)})
    return cases
