"""Post Office branches, and a finder for the nearest one that can do a person's tasks.

Some tasks cannot be done online (an identity check, a photo for a licence, paying a
cash voucher), so the service points people to a Post Office counter. Everything here
is read from files shipped in ``router/assisted/data`` and computed locally: no network look-ups.

- ``branches.json``: the branches. They are invented for this service (realistic towns
  and streets, made-up street numbers and postcode units), not copied from any list.
  A branch in Wales has its Welsh name too (``name_cy``), and its town's where that
  differs (``town_cy``: Caerdydd, Abertawe...), for Welsh pages.
- ``postcode_districts.csv`` and ``postcode_areas.csv``: approximate centroids (to
  about 0.05 degrees) of postcode districts ("CF10") and areas ("CF"), written from
  general knowledge of UK geography, with no external data set copied. Good enough
  to rank branches by distance; not for anything that needs an address's position.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SERVICES = frozenset({"identity_check", "photo", "cash_payments", "welsh_speaking"})

# Which counter service each assisted task (router.routing.ASSISTED_TASKS) needs.
TASK_SERVICES: dict[str, str] = {
    "identity_check": "identity_check",
    "photo": "photo",
    "cash_voucher": "cash_payments",
}

EARTH_RADIUS_KM = 6371.0088

# An area ("CF"), a district ("CF10") or a full postcode (district then inward "1AA").
_POSTCODE = re.compile(r"[A-Z]{1,2}(?:[0-9][0-9A-Z]?(?:[0-9][A-Z]{2})?)?")


@dataclass(frozen=True)
class Branch:
    """One Post Office branch: where it is, when it is open and what it can do."""

    id: str
    name: str
    address: tuple[str, ...]
    town: str
    postcode: str
    lat: float
    lon: float
    hours: tuple[tuple[str, str], ...]  # (day, "09:00-17:30" or "closed"), mon..sun
    services: frozenset[str]
    name_cy: str = ""  # its Welsh name, for a branch in Wales
    town_cy: str = ""  # its town's Welsh name, where that is not the English one

    def in_language(self, lang: str) -> Branch:
        """The branch as a reader of ``lang`` reads it: in Welsh, by its Welsh name and
        town where it has them; otherwise as it is."""
        if lang != "cy":
            return self
        return replace(self, name=self.name_cy or self.name, town=self.town_cy or self.town)

    def offers(self, services: Iterable[str]) -> bool:
        """Whether the branch offers every one of ``services``."""
        return self.services.issuperset(services)

    @property
    def welsh_speaking(self) -> bool:
        return "welsh_speaking" in self.services


def services_for(tasks: Iterable[str]) -> frozenset[str]:
    """The counter services the tasks need; KeyError for a task we do not know."""
    return frozenset(TASK_SERVICES[task] for task in tasks)


def _read(name: str) -> str:
    return (files("router.assisted") / "data" / name).read_text(encoding="utf-8")


@cache
def load_branches() -> dict[str, Branch]:
    """Every branch by id, read once (the dict is shared: do not change it)."""
    branches: dict[str, Branch] = {}
    for item in json.loads(_read("branches.json")):
        branches[item["id"]] = Branch(
            id=item["id"],
            name=item["name"],
            address=tuple(item["address"]),
            town=item["town"],
            postcode=item["postcode"],
            lat=float(item["lat"]),
            lon=float(item["lon"]),
            hours=tuple((day, item["hours"][day]) for day in DAYS),
            services=frozenset(item["services"]),
            name_cy=item.get("name_cy", ""),
            town_cy=item.get("town_cy", ""),
        )
    return branches


def branch(branch_id: str) -> Branch:
    """The branch with this id; KeyError if there is none."""
    return load_branches()[branch_id]


@cache
def _centroids(name: str) -> dict[str, tuple[float, float]]:
    rows = csv.reader(io.StringIO(_read(name)))
    next(rows)  # the header: area or district, lat, lon
    return {code: (float(lat), float(lon)) for code, lat, lon in rows}


def outward_code(postcode: str) -> str | None:
    """The district ("CF10") of a postcode, or the area ("CF") if that is all there is."""
    text = "".join(postcode.split()).upper()
    if not _POSTCODE.fullmatch(text):
        return None
    return text[:-3] if len(text) >= 5 else text


def locate(postcode: str) -> tuple[float, float] | None:
    """Approximate (lat, lon) of a postcode: its district's centroid, else its area's."""
    outward = outward_code(postcode)
    if outward is None:
        return None
    area = outward[:2].rstrip("0123456789")
    districts, areas = _centroids("postcode_districts.csv"), _centroids("postcode_areas.csv")
    return districts.get(outward) or areas.get(area)


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def nearest(
    postcode: str, tasks: Iterable[str] = (), *, welsh: bool = False, limit: int = 5
) -> list[tuple[Branch, float]]:
    """The nearest branches (with distance in km) that can do all the tasks.

    With ``welsh`` only branches with Welsh-speaking staff count. Nearest first, ties
    by id; [] when the postcode cannot be located.
    """
    origin = locate(postcode)
    if origin is None:
        return []
    needed = services_for(tasks) | ({"welsh_speaking"} if welsh else set())
    return _ranked(origin, needed)[: max(limit, 0)]


# Branches ranked by distance from a district's centre, for what they offer: a
# submission with counter tasks asks for one, and ranking every branch cost about a
# tenth of the front door's time. Each ranking keeps the branch list it was made from,
# so a different list (a test's) is never answered from another's ranking.
_RANKINGS: dict[
    tuple[tuple[float, float], frozenset[str]],
    tuple[dict[str, Branch], list[tuple[Branch, float]]],
] = {}
_MAX_RANKINGS = 4096


def _ranked(origin: tuple[float, float], needed: frozenset[str]) -> list[tuple[Branch, float]]:
    every = load_branches()
    kept = _RANKINGS.get((origin, needed))
    if kept is not None and kept[0] is every:
        return kept[1]
    found = [(b, haversine_km(origin, (b.lat, b.lon))) for b in every.values() if b.offers(needed)]
    found.sort(key=lambda pair: (pair[1], pair[0].id))
    if len(_RANKINGS) >= _MAX_RANKINGS:
        _RANKINGS.clear()
    _RANKINGS[(origin, needed)] = (every, found)
    return found
