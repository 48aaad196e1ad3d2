"""The ledger: one entry for every delivered delivery and every counter task done, and
the monthly statements read from it.

An entry is posted inside the same Redis transaction that records what it is for (the
batch's MULTI/EXEC when a delivery is marked delivered, router.delivery.batch; the
desk's WATCHed transaction when a task is done, router.assisted.desk), with one HSETNX
into the month's hash (``keys.ledger``) under the entry's id: a delivery's id
(``<case>-<department>``), or ``<case>:<task>`` (``<case>:<task>:<department>`` where
each department that needed the task pays for it). A replay, a batch recorded twice or
a retried transaction finds the id taken and posts nothing. An entry holds no personal
data: parties, the kind, the case reference, pence, the tariff version and the time.

A statement is one party's month: the entries where it pays or is paid, grouped by
kind, counterparty and unit price, with the totals it owes, is owed and the net. Every
entry has one payer and one payee, so the nets of every party's statement of a month
add up to 0 (``reconcile``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime

from redis import Redis
from redis.client import Pipeline

from router import keys, tariff
from router.exceptions import RouterError
from router.i18n import N_
from router.tariff import DELIVERY, NEEDING, OPERATOR, Tariff

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_PARTY = re.compile(r"operator|(?:department|branch|register):[a-z0-9][a-z0-9_.-]*")
FIRST_MONTH = "2024-01"  # months() looks no further back than this

# How a person reads each kind of entry (the statement pages).
KIND_WORDS: dict[str, str] = {
    DELIVERY: N_("Digital delivery"),
    "identity_check": N_("Identity check at a counter"),
    "photo": N_("Photo taken at a counter"),
    "cash_voucher": N_("Cash voucher paid at a counter"),
    tariff.HELP: N_("Help given at a counter"),
    tariff.REGISTRATION_CHECK: N_("Registration checked with the register"),
}
OWES, OWED = "owes", "owed"  # a line the party pays, a line it is paid


class LedgerError(RouterError):
    """A month or a party the ledger cannot read; the message (a message id, N_) says
    how to write it."""


def month_of(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m")


def check_month(text: str) -> str:
    """``text`` if it is a month as the ledger names it (``YYYY-MM``)."""
    if not _MONTH.fullmatch(text.strip()):
        raise LedgerError(N_("Write the month as YYYY-MM, like 2026-12"))
    return text.strip()


def check_party(text: str) -> str:
    """``text`` if it names a party: ``operator``, ``department:NAME``, ``branch:ID``
    or ``register:NAME``."""
    if not _PARTY.fullmatch(text):
        raise LedgerError(
            N_("Name a party as operator, department:NAME, branch:ID or register:NAME")
        )
    return text


@dataclass(frozen=True)
class Entry:
    """One posting: ``payer`` owes ``payee`` ``pence`` for one ``kind`` of thing done
    for case ``case`` (a reference, never personal data)."""

    id: str
    payer: str
    payee: str
    kind: str
    case: str
    pence: int
    tariff: str
    at: str
    department: str = ""  # the department concerned, if any
    branch: str = ""  # the branch where it was done, if any

    def to_json(self) -> str:
        # Read field by field: asdict's deep copy of every value cost more than the
        # rest of posting (the drain posts one entry per delivery).
        data = {k: v for k in _STORED if (v := getattr(self, k)) != ""}
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, entry_id: str, raw: str | bytes) -> Entry:
        return cls(id=entry_id, **json.loads(raw))

    @property
    def month(self) -> str:
        # Entries are stamped in UTC ("...+00:00"): the month is the first seven
        # characters, without parsing and formatting a datetime per entry.
        if self.at.endswith("+00:00") and _MONTH.fullmatch(self.at[:7]):
            return self.at[:7]
        return month_of(datetime.fromisoformat(self.at))


# What an entry stores under its id (the id is the hash field's name).
_STORED = tuple(f.name for f in fields(Entry) if f.name != "id")


def _now() -> datetime:
    return datetime.now(UTC)


def delivery_entry(
    ref: str, department: str, prices: Tariff | None = None, at: datetime | None = None
) -> Entry:
    """The entry of one delivered delivery: its department pays the operator."""
    prices = prices or tariff.current()
    at = at or _now()
    return Entry(
        id=f"{ref}-{department}",
        payer=tariff.department(department),
        payee=OPERATOR,
        kind=DELIVERY,
        case=ref,
        pence=prices.delivery_pence(department),
        tariff=prices.version,
        at=at.isoformat(timespec="milliseconds"),
        department=department,
    )


def registration_entry(
    ref: str, register: str, prices: Tariff | None = None, at: datetime | None = None
) -> Entry:
    """The entry of one registration the register answered for (case ``ref``): the
    operator pays the register. One per case, whichever check answered."""
    prices = prices or tariff.current()
    return Entry(
        id=f"{ref}:{tariff.REGISTRATION_CHECK}",
        payer=OPERATOR,
        payee=tariff.register(register),
        kind=tariff.REGISTRATION_CHECK,
        case=ref,
        pence=prices.registration_check,
        tariff=prices.version,
        at=(at or _now()).isoformat(timespec="milliseconds"),
    )


def task_entries(
    ref: str,
    kind: str,
    branch: str,
    needing: Iterable[str],
    prices: Tariff | None = None,
    at: datetime | None = None,
) -> list[Entry]:
    """The entries of one counter task done at ``branch`` for case ``ref``: one, paid
    by its payer; or, when the tariff has the departments that need it pay, one for
    each of ``needing`` (the operator pays if none did)."""
    prices = prices or tariff.current()
    price = prices.task(kind)
    stamp = (at or _now()).isoformat(timespec="milliseconds")
    payers: list[tuple[str, str, str]]  # (entry id, payer, department)
    if price.payer == NEEDING and list(needing):
        payers = [(f"{ref}:{kind}:{d}", tariff.department(d), d) for d in sorted(set(needing))]
    elif price.payer in (NEEDING, OPERATOR):
        payers = [(f"{ref}:{kind}", OPERATOR, "")]
    else:
        payers = [(f"{ref}:{kind}", tariff.department(price.payer), price.payer)]
    return [
        Entry(
            id=entry_id,
            payer=payer,
            payee=tariff.branch(branch),
            kind=kind,
            case=ref,
            pence=price.pence,
            tariff=prices.version,
            at=stamp,
            department=dept,
            branch=branch,
        )
        for entry_id, payer, dept in payers
    ]


def post(pipe: Pipeline, entries: Iterable[Entry]) -> None:
    """Post each entry inside the caller's transaction: one HSETNX each, so an entry
    whose id is in its month's ledger already is not posted again."""
    for entry in entries:
        pipe.hsetnx(keys.ledger(entry.month), entry.id, entry.to_json())


# --- statements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """Entries of one kind, one direction, one counterparty and one unit price."""

    direction: str  # OWES or OWED
    kind: str
    counterparty: str
    count: int
    unit_pence: int

    @property
    def subtotal_pence(self) -> int:
        return self.count * self.unit_pence


@dataclass(frozen=True)
class Statement:
    """One party's month: what it owes, what it is owed, and the net (owed - owes).
    ``contacts_avoided``: the deliveries in it (each department told on a citizen's
    behalf is one contact the citizen did not make), priced at ``saved_pence``."""

    party: str
    month: str
    lines: list[Line]
    entries: int
    owes_pence: int
    owed_pence: int
    contacts_avoided: int
    saved_pence: int
    tariff_versions: list[str] = field(default_factory=list)

    @property
    def net_pence(self) -> int:
        return self.owed_pence - self.owes_pence


@dataclass(frozen=True)
class Reconciliation:
    """A month's statements checked against each other and against the ledger."""

    month: str
    statements: list[Statement]
    entries: int
    ledger_pence: int  # the sum of every entry's pence
    net_sum_pence: int  # the sum of every party's net: 0 when it balances
    mismatched: list[str]  # parties whose totals are not the sum of their entries

    @property
    def balanced(self) -> bool:
        return self.net_sum_pence == 0 and not self.mismatched


def pounds(pence: int) -> str:
    """Pence as pounds and pence, like 1234.50 (no currency sign)."""
    sign = "-" if pence < 0 else ""
    return f"{sign}{abs(pence) // 100}.{abs(pence) % 100:02d}"


class Ledger:
    """Reads the ledger: a month's entries, statements, reconciliation."""

    def __init__(self, redis: Redis, prices: Tariff | None = None) -> None:
        self.redis = redis
        self.prices = prices

    @property
    def tariff(self) -> Tariff:
        return self.prices or tariff.current()

    def entries(self, month: str) -> list[Entry]:
        """Every entry of ``month``, oldest first (HSCAN: no long block on a big month)."""
        key = keys.ledger(check_month(month))
        found = [
            Entry.from_json(k.decode() if isinstance(k, bytes) else k, v)
            for k, v in self.redis.hscan_iter(key, count=1000)
        ]
        return sorted(found, key=lambda e: (e.at, e.id))

    def months(self, today: date | None = None) -> list[str]:
        """The months with a ledger, oldest first (one EXISTS each, in one round trip,
        from FIRST_MONTH to this month: no SCAN of the key space)."""
        today = today or _now().date()
        year, month = map(int, FIRST_MONTH.split("-"))
        names = []
        while (year, month) <= (today.year, today.month):
            names.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.exists(keys.ledger(name))
            found = pipe.execute()
        return [name for name, there in zip(names, found, strict=True) if there]

    def parties(self, month: str, entries: list[Entry] | None = None) -> list[str]:
        """Every party that pays or is paid in ``month``: the operator first."""
        entries = self.entries(month) if entries is None else entries
        named = {p for e in entries for p in (e.payer, e.payee)}
        return sorted(named, key=lambda p: (p != OPERATOR, p))

    def statement(self, month: str, party: str, entries: list[Entry] | None = None) -> Statement:
        """``party``'s statement for ``month`` (an empty one if it had no entries)."""
        month, party = check_month(month), check_party(party)
        entries = self.entries(month) if entries is None else entries
        counts: dict[tuple[str, str, str, int], int] = defaultdict(int)
        mine = [e for e in entries if party in (e.payer, e.payee)]
        for e in mine:
            direction, other = (OWES, e.payee) if e.payer == party else (OWED, e.payer)
            counts[(direction, e.kind, other, e.pence)] += 1
        lines = [Line(d, k, o, n, p) for (d, k, o, p), n in sorted(counts.items())]
        contacts = sum(e.kind == DELIVERY and (party == OPERATOR or e.payer == party) for e in mine)
        return Statement(
            party=party,
            month=month,
            lines=lines,
            entries=len(mine),
            owes_pence=sum(line.subtotal_pence for line in lines if line.direction == OWES),
            owed_pence=sum(line.subtotal_pence for line in lines if line.direction == OWED),
            contacts_avoided=contacts,
            saved_pence=contacts * self.tariff.saved.pence_per_contact,
            tariff_versions=sorted({e.tariff for e in mine}),
        )

    def statements(self, month: str) -> list[Statement]:
        """Every party's statement for ``month``, the operator's first."""
        entries = self.entries(month)
        return [self.statement(month, p, entries) for p in self.parties(month, entries)]

    def reconcile(self, month: str) -> Reconciliation:
        """Check ``month``: every party's net adds up to 0, and each statement's totals
        are the sums of its own entries, counted again straight from the ledger."""
        entries = self.entries(month)
        statements = [self.statement(month, p, entries) for p in self.parties(month, entries)]
        mismatched = []
        for s in statements:
            owes = sum(e.pence for e in entries if e.payer == s.party)
            owed = sum(e.pence for e in entries if e.payee == s.party)
            if (owes, owed) != (s.owes_pence, s.owed_pence):
                mismatched.append(s.party)
        return Reconciliation(
            month=month,
            statements=statements,
            entries=len(entries),
            ledger_pence=sum(e.pence for e in entries),
            net_sum_pence=sum(s.net_pence for s in statements),
            mismatched=mismatched,
        )


CSV_HEADER = ("direction", "kind", "counterparty", "count", "unit_pence", "subtotal_pence")
TOTAL = "total"


def statement_csv(statement: Statement) -> str:
    """The statement as CSV: a header, one row per line, then a totals row (direction
    "total", the count of every entry, and the net, owed - owes, as its subtotal);
    amounts in pence."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for line in statement.lines:
        writer.writerow(
            (
                line.direction,
                line.kind,
                line.counterparty,
                line.count,
                line.unit_pence,
                line.subtotal_pence,
            )
        )
    writer.writerow((TOTAL, "", "", statement.entries, "", statement.net_pence))
    return out.getvalue()
