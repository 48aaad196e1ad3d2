"""The tariff: what each party of the chain pays another, in whole pence.

Read from ``router/data/tariff.toml`` (a versioned file: ``version`` and
``effective_from``), checked when it is first loaded: a department or a counter task
kind the router does not know, a price that is not a whole number of pence, or a payer
or payee it cannot name is a ``TariffError`` at start, not a wrong statement later.

Parties are named as the ledger names them (router.ledger): ``operator`` (the router's
operator, Tell Us Once), ``department:<name>``, ``branch:<id>`` (a Post Office branch)
and ``register:<name>`` (the register births and deaths are checked with).
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import metadata
from importlib.resources import files
from pathlib import Path
from typing import Any

from router.exceptions import RouterError
from router.routing import ASSISTED_TASKS

OPERATOR = "operator"
ADAPTERS_GROUP = "tell_us_once.adapters"  # the installed departments (router.adapters.registry)

# Every counter task kind: those a plan asks for (router.routing) and help given.
HELP = "help"
TASK_KINDS = frozenset({*ASSISTED_TASKS, HELP})
# Who may pay for a counter task: the departments that needed it, one department, or
# the operator.
NEEDING = "departments"

DELIVERY = "delivery"  # the ledger's kind for a digital delivery
REGISTRATION_CHECK = "registration_check"  # a registration checked with the register


class TariffError(RouterError):
    """The tariff file is wrong; the message says where."""


def department(name: str) -> str:
    return f"department:{name}"


def branch(branch_id: str) -> str:
    return f"branch:{branch_id}"


def register(name: str) -> str:
    """A register source (router.adapters.register): ``register:gro``."""
    return f"register:{name}"


@dataclass(frozen=True)
class TaskPrice:
    """A counter task's price, paid to the branch that did it. ``payer``: a department
    name, ``operator``, or ``departments`` (each department that needed it pays it)."""

    kind: str
    pence: int
    payer: str


@dataclass(frozen=True)
class Saved:
    """The cost of one contact a citizen did not have to make, and where it comes from.
    ``assumption``: no published source; the figure is ours."""

    pence_per_contact: int
    what: str
    source_title: str
    source_date: str
    source_url: str
    source_note: str
    assumption: bool


@dataclass(frozen=True)
class Tariff:
    version: str
    effective_from: date
    delivery: Mapping[str, int]  # department -> pence it pays the operator per delivery
    delivery_default: int
    tasks: Mapping[str, TaskPrice]
    registration_check: int  # what the operator pays the register per check
    saved: Saved

    def delivery_pence(self, name: str) -> int:
        """What ``name`` pays the operator for one digital delivery."""
        return self.delivery.get(name, self.delivery_default)

    def task(self, kind: str) -> TaskPrice:
        return self.tasks[kind]


def known_departments() -> frozenset[str]:
    """The departments installed as adapters (their entry points)."""
    return frozenset(ep.name for ep in metadata.entry_points(group=ADAPTERS_GROUP))


def _pence(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TariffError(f"tariff: {where} must be a whole number of pence, 0 or more")
    return value


def _text(table: Mapping[str, Any], name: str, where: str) -> str:
    value = table.get(name)
    if not isinstance(value, str) or not value.strip():
        raise TariffError(f"tariff: {where}.{name} must be some text")
    return value


def parse(data: Mapping[str, Any], departments: Collection[str] | None = None) -> Tariff:
    """A tariff from the file's data, checked against ``departments`` (else those
    installed) and every counter task kind; ``TariffError`` saying what is wrong."""
    departments = known_departments() if departments is None else departments
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise TariffError("tariff: version must be some text, like 2026-12.1")
    effective = data.get("effective_from")
    if not isinstance(effective, date):
        raise TariffError("tariff: effective_from must be a date, like 2026-12-01")
    delivery = data.get("delivery")
    if not isinstance(delivery, Mapping):
        raise TariffError("tariff: a [delivery] table is needed")
    if (delivery.get("payer"), delivery.get("payee")) != ("department", OPERATOR):
        raise TariffError('tariff: [delivery] is paid by payer = "department" to "operator"')
    prices = delivery.get("pence", {})
    unknown = sorted(set(prices) - set(departments))
    if unknown:
        raise TariffError(
            f"tariff: [delivery.pence] names departments the router does not know: "
            f"{', '.join(unknown)} (known: {', '.join(sorted(departments))})"
        )
    delivery_prices = {n: _pence(p, f"delivery.pence.{n}") for n, p in prices.items()}
    tasks_data = data.get("task", {})
    unknown = sorted(set(tasks_data) - TASK_KINDS)
    if unknown:
        raise TariffError(
            f"tariff: [task] names counter tasks the router does not know: "
            f"{', '.join(unknown)} (known: {', '.join(sorted(TASK_KINDS))})"
        )
    missing = sorted(TASK_KINDS - set(tasks_data))
    if missing:
        raise TariffError(f"tariff: no price for the counter tasks {', '.join(missing)}")
    tasks = {}
    for kind, table in tasks_data.items():
        payer = table.get("payer")
        if payer not in (NEEDING, OPERATOR, *departments):
            raise TariffError(
                f"tariff: task.{kind}.payer must be {NEEDING!r}, {OPERATOR!r} or a "
                f"department the router knows, not {payer!r}"
            )
        if table.get("payee") != "branch":
            raise TariffError(f'tariff: task.{kind} is paid to payee = "branch"')
        tasks[kind] = TaskPrice(kind, _pence(table.get("pence"), f"task.{kind}.pence"), payer)
    check = data.get(REGISTRATION_CHECK)
    if not isinstance(check, Mapping):
        raise TariffError(f"tariff: a [{REGISTRATION_CHECK}] table is needed")
    if (check.get("payer"), check.get("payee")) != (OPERATOR, "register"):
        raise TariffError(
            f'tariff: [{REGISTRATION_CHECK}] is paid by payer = "operator" to "register"'
        )
    saved = data.get("saved")
    if not isinstance(saved, Mapping):
        raise TariffError("tariff: a [saved] table is needed")
    assumption = saved.get("assumption")
    if not isinstance(assumption, bool):
        raise TariffError("tariff: saved.assumption must be true or false")
    if not assumption:
        for name in ("source_title", "source_url"):
            _text(saved, name, "saved")
        if not isinstance(saved.get("source_date"), date):
            raise TariffError("tariff: saved.source_date must be a date")
    return Tariff(
        version=version,
        effective_from=effective,
        delivery=delivery_prices,
        delivery_default=_pence(delivery.get("default"), "delivery.default"),
        tasks=tasks,
        registration_check=_pence(check.get("pence"), f"{REGISTRATION_CHECK}.pence"),
        saved=Saved(
            pence_per_contact=_pence(saved.get("pence_per_contact"), "saved.pence_per_contact"),
            what=_text(saved, "what", "saved"),
            source_title=str(saved.get("source_title", "")),
            source_date=str(saved.get("source_date", "")),
            source_url=str(saved.get("source_url", "")),
            source_note=str(saved.get("source_note", "")),
            assumption=assumption,
        ),
    )


def load(path: Path | None = None, departments: Collection[str] | None = None) -> Tariff:
    """The tariff in ``path`` (else the one shipped), checked."""
    raw = path.read_bytes() if path is not None else _shipped()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise TariffError(f"tariff: not a TOML file: {error}") from error
    return parse(data, departments)


def _shipped() -> bytes:
    return files("router").joinpath("data", "tariff.toml").read_bytes()


@cache
def current() -> Tariff:
    """The shipped tariff, loaded and checked once per process."""
    return load()
