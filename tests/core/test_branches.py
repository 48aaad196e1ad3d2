"""The Post Office branch data in router/assisted/data, and the nearest-branch finder (no Redis)."""

from __future__ import annotations

import csv
import io
import re
from importlib.resources import files

import pytest

from router.assisted import branches as br
from router.assisted.branches import Branch, haversine_km, load_branches, locate, nearest
from router.routing import ASSISTED_TASKS
from router.validators import parse_postcode

# Every UK postcode area (the letters of the outward code).
AREAS_TEXT = (
    "AB AL B BA BB BD BH BL BN BR BS BT CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN "
    "DT DY E EC EH EN EX FK FY G GL GU HA HD HG HP HR HS HU HX IG IP IV KA KT KW KY L LA LD "
    "LE LL LN LS LU M ME MK ML N NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH RM S SA SE "
    "SG SK SL SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW UB W WA WC WD WF WN WR WS "
    "WV YO ZE"
)
ALL_AREAS = AREAS_TEXT.split()
SCOTTISH_AREAS = {"AB", "DD", "DG", "EH", "FK", "G", "HS", "IV", "KA", "KW", "KY", "ML", "PA"}
SCOTTISH_AREAS |= {"PH", "TD", "ZE"}
WELSH_AREAS = {"CF", "LD", "LL", "NP", "SA"}
WELSH_SY_DISTRICTS = {f"SY{n}" for n in range(15, 26)}  # mid Wales and Ceredigion
FULL_SERVICE = {"identity_check", "photo", "cash_payments"}
HOURS = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]")

BRANCHES = list(load_branches().values())


def district(b: Branch) -> str:
    return b.postcode.split()[0]


def area_of(code: str) -> str:
    return code[:2].rstrip("0123456789")


def area(b: Branch) -> str:
    return area_of(b.postcode)


def nation(b: Branch) -> str:
    if area(b) == "BT":
        return "Northern Ireland"
    if area(b) in SCOTTISH_AREAS:
        return "Scotland"
    if area(b) in WELSH_AREAS or district(b) in WELSH_SY_DISTRICTS:
        return "Wales"
    return "England"


def centroids(name: str) -> dict[str, tuple[float, float]]:
    text = (files("router.assisted") / "data" / name).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    return {code: (float(lat), float(lon)) for code, lat, lon in rows[1:]}


def in_uk(lat: float, lon: float) -> bool:
    return 49.8 <= lat <= 61.0 and -8.7 <= lon <= 2.0


# --- the data ------------------------------------------------------------------------


def test_there_are_enough_branches_with_unique_ids() -> None:
    ids = [b.id for b in BRANCHES]
    assert len(ids) >= 50
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", i) for i in ids)


@pytest.mark.parametrize("b", BRANCHES, ids=lambda b: b.id)
def test_each_branch_is_well_formed(b: Branch) -> None:
    assert b.name.endswith("Post Office") and b.town and b.address
    assert all(line.strip() == line and line for line in b.address)
    assert parse_postcode(b.postcode) == b.postcode
    assert in_uk(b.lat, b.lon)
    assert [day for day, _ in b.hours] == list(br.DAYS)
    for _, text in b.hours:
        assert text == "closed" or HOURS.fullmatch(text), text
        if text != "closed":
            opens, closes = text.split("-")
            assert opens < closes
    assert any(text != "closed" for _, text in b.hours[:5])
    assert b.services and b.services <= br.SERVICES


@pytest.mark.parametrize("b", BRANCHES, ids=lambda b: b.id)
def test_each_branch_is_near_its_own_postcode_district(b: Branch) -> None:
    assert district(b) in centroids("postcode_districts.csv")
    where = locate(b.postcode)
    assert where is not None
    assert haversine_km(where, (b.lat, b.lon)) < 20


def test_the_branches_cover_every_nation() -> None:
    by_nation: dict[str, list[Branch]] = {}
    for b in BRANCHES:
        by_nation.setdefault(nation(b), []).append(b)
    assert set(by_nation) == {"England", "Wales", "Scotland", "Northern Ireland"}
    assert len(by_nation["Wales"]) >= 10
    assert sum(b.welsh_speaking for b in by_nation["Wales"]) >= 3
    for name, found in by_nation.items():
        assert any(b.offers(FULL_SERVICE) for b in found), name
        assert any(not b.offers(FULL_SERVICE) for b in found), name


def test_services_vary_so_the_finder_has_to_choose() -> None:
    count = {s: sum(s in b.services for b in BRANCHES) for s in br.SERVICES}
    assert count["photo"] < count["cash_payments"] < count["identity_check"] < len(BRANCHES)
    assert any(len(b.services - {"welsh_speaking"}) == 1 for b in BRANCHES)


def test_welsh_speaking_staff_are_in_wales() -> None:
    assert all(nation(b) == "Wales" for b in BRANCHES if b.welsh_speaking)


# The towns of branches in Wales whose Welsh name is not the English (issue 15, item 12);
# Aberystwyth, Bangor and the rest are the same in both.
WELSH_TOWNS = {
    "Cardiff": "Caerdydd",
    "Swansea": "Abertawe",
    "Newport": "Casnewydd",
    "Wrexham": "Wrecsam",
    "Carmarthen": "Caerfyrddin",
    "Brecon": "Aberhonddu",
    "Haverfordwest": "Hwlffordd",
    "Merthyr Tydfil": "Merthyr Tudful",
    "Bridgend": "Pen-y-bont ar Ogwr",
    "Llandrindod Wells": "Llandrindod",
    "Bala": "Y Bala",
}


@pytest.mark.parametrize("b", BRANCHES, ids=lambda b: b.id)
def test_a_branch_in_wales_has_its_welsh_name_and_town(b: Branch) -> None:
    """Issue 15, item 12: Welsh pages name a branch in Wales in Welsh; English pages, and
    branches elsewhere, keep their English names."""
    assert b.in_language("en") == b
    welsh = b.in_language("cy")
    if nation(b) != "Wales":
        assert (b.name_cy, b.town_cy) == ("", "") and welsh == b
        return
    assert welsh.name == b.name_cy and welsh.name.startswith("Swyddfa’r Post ")
    assert "Post Office" not in welsh.name
    assert welsh.town == WELSH_TOWNS.get(b.town, b.town)
    assert b.town_cy != b.town  # given only where it differs
    assert (welsh.id, welsh.address, welsh.postcode) == (b.id, b.address, b.postcode)


@pytest.mark.parametrize("name", ["postcode_areas.csv", "postcode_districts.csv"])
def test_centroid_tables(name: str) -> None:
    text = (files("router.assisted") / "data" / name).read_text(encoding="utf-8")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header == ["area" if "areas" in name else "district", "lat", "lon"]
    codes = [row[0] for row in rows]
    assert len(set(codes)) == len(codes)
    for code, lat, lon in rows:
        assert re.fullmatch(r"[A-Z]{1,2}([0-9][0-9A-Z]?)?", code)
        assert 49.0 <= float(lat) <= 61.0 and -8.7 <= float(lon) <= 2.0, code


def test_every_postcode_area_has_a_centroid_and_districts_fall_near_theirs() -> None:
    areas = centroids("postcode_areas.csv")
    assert set(ALL_AREAS) <= set(areas)
    districts = centroids("postcode_districts.csv")
    assert len(districts) >= 200
    for code, where in districts.items():
        assert haversine_km(where, areas[area_of(code)]) < 200, code


def test_tasks_map_to_counter_services() -> None:
    assert set(br.TASK_SERVICES) == set(ASSISTED_TASKS)
    assert set(br.TASK_SERVICES.values()) <= br.SERVICES
    assert br.services_for(["photo", "cash_voucher"]) == {"photo", "cash_payments"}
    assert br.services_for([]) == frozenset()
    with pytest.raises(KeyError):
        br.services_for(["juggling"])


def test_branch_by_id() -> None:
    first = BRANCHES[0]
    assert br.branch(first.id) is first
    with pytest.raises(KeyError):
        br.branch("no-such-branch")


# --- locate --------------------------------------------------------------------------


def test_locate_a_postcode_however_it_is_typed() -> None:
    cf10 = locate("CF10 1AA")
    assert cf10 is not None
    assert locate("cf10 1aa") == locate("CF101AA") == locate(" cf10  ") == locate("CF10") == cf10
    assert abs(cf10[0] - 51.48) < 0.1 and abs(cf10[1] + 3.18) < 0.1


def test_locate_falls_back_from_district_to_area() -> None:
    assert locate("CF") == locate("CF99 9ZZ") == centroids("postcode_areas.csv")["CF"]
    assert locate("M1 1AE") == centroids("postcode_districts.csv")["M1"]
    assert locate("W1D 3QF") != locate("W")


@pytest.mark.parametrize("text", ["", "   ", "hello", "XX1 1AA", "QQ", "12345", "CF10 1A", "M1AA"])
def test_locate_gives_none_when_it_cannot(text: str) -> None:
    assert locate(text) is None


# --- nearest -------------------------------------------------------------------------


def brute_force(postcode: str, tasks: list[str], welsh: bool) -> list[tuple[Branch, float]]:
    where = locate(postcode)
    assert where is not None
    needed = br.services_for(tasks) | ({"welsh_speaking"} if welsh else set())
    found = [(b, haversine_km(where, (b.lat, b.lon))) for b in BRANCHES if b.offers(needed)]
    return sorted(found, key=lambda pair: (pair[1], pair[0].id))


@pytest.mark.parametrize("postcode", ["CF11 9SD", "SW1A 1AA", "LL55 1AA", "BT48 6DQ", "IV2 3PU"])
@pytest.mark.parametrize(
    "tasks", [[], ["identity_check"], ["photo"], ["cash_voucher", "identity_check"]]
)
@pytest.mark.parametrize("welsh", [False, True])
def test_nearest_is_the_closest_that_offers_everything(
    postcode: str, tasks: list[str], welsh: bool
) -> None:
    found = nearest(postcode, tasks, welsh=welsh, limit=8)
    assert found == brute_force(postcode, tasks, welsh)[:8]
    needed = br.services_for(tasks)
    assert all(b.offers(needed) and (b.welsh_speaking or not welsh) for b, _ in found)
    assert [d for _, d in found] == sorted(d for _, d in found)


def test_photo_tasks_never_go_to_a_branch_without_photo_capture() -> None:
    for code in centroids("postcode_districts.csv"):
        for b, _ in nearest(code, ["photo"], limit=3):
            assert "photo" in b.services, (code, b.id)


def test_the_finder_skips_a_nearer_branch_without_photo_capture() -> None:
    # Canton (CF11) takes identity checks and cash but has no photo booth.
    everything = nearest("CF11 9SD", limit=len(BRANCHES))
    closest, distance = everything[0]
    assert closest.id == "cardiff-canton" and "photo" not in closest.services
    expected = next((b, d) for b, d in everything if "photo" in b.services)
    assert nearest("CF11 9SD", ["photo"])[0] == expected
    assert expected[1] > distance
    assert nearest("CF11 9SD", ["identity_check"])[0][0] is closest


def test_a_cardiff_identity_check_goes_to_cardiff() -> None:
    b, distance = nearest("CF10 1EP", ["identity_check"])[0]
    assert b.town == "Cardiff" and nation(b) == "Wales" and distance < 5


def test_a_belfast_postcode_goes_to_northern_ireland() -> None:
    for tasks in ([], ["identity_check"], ["photo"], ["photo", "cash_voucher"]):
        b, _ = nearest("BT7 1NN", tasks)[0]
        assert nation(b) == "Northern Ireland", tasks


def test_welsh_only_returns_welsh_speaking_branches() -> None:
    found = nearest("LL57 2DG", ["photo"], welsh=True, limit=100)
    assert found and all(b.welsh_speaking and "photo" in b.services for b, _ in found)
    assert len(found) == sum(b.welsh_speaking and "photo" in b.services for b in BRANCHES)
    # Even from London: the nearest Welsh-speaking branch, however far.
    assert all(b.welsh_speaking for b, _ in nearest("EC1A 1BB", welsh=True))


def test_limit_is_respected() -> None:
    assert len(nearest("B2 4QA")) == 5
    assert len(nearest("B2 4QA", limit=1)) == 1
    assert len(nearest("B2 4QA", limit=3)) == 3
    assert nearest("B2 4QA", limit=0) == []
    assert len(nearest("B2 4QA", limit=10_000)) == len(BRANCHES)


def test_ties_are_broken_by_id(monkeypatch: pytest.MonkeyPatch) -> None:
    real = br.branch("cardiff-queen-street")
    twins = {
        name: Branch(
            name,
            real.name,
            real.address,
            real.town,
            real.postcode,
            real.lat,
            real.lon,
            real.hours,
            real.services,
        )
        for name in ("twin-b", "twin-c", "twin-a")
    }
    assert "twin-a" not in [b.id for b, _ in nearest("CF10 1EP")]  # ranked, and kept
    monkeypatch.setattr(br, "load_branches", lambda: twins)
    # Another list of branches is ranked afresh, never answered from the kept ranking.
    assert [b.id for b, _ in nearest("CF10 1EP")] == ["twin-a", "twin-b", "twin-c"]


@pytest.mark.parametrize("postcode", ["", "not a postcode", "XX1 1AA", "QQ99 9QQ"])
def test_an_unknown_postcode_finds_nothing(postcode: str) -> None:
    assert nearest(postcode, ["identity_check"]) == []
