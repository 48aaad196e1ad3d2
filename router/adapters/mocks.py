"""Five mock departments: stateful simulations that keep their own records in Redis.

Each keeps records under its own key prefix (``mock:<name>:``), applies a change
and stores its receipt in one transaction, and returns the first receipt for a
repeated idempotency key without changing anything again. Latency and faults are set
per department at run time (``router mock configure`` or ``configure_faults``), so
fan-out can be tested against slow, flaky, rejecting or absent departments.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from redis import Redis
from redis.commands.core import Script

from router.adapters.contract import (
    Adapter,
    Notification,
    PermanentError,
    Receipt,
    RetryableError,
    Route,
)
from router.i18n import N_
from router.trust import Confidence, Need


@dataclass(frozen=True)
class Faults:
    """Injected behaviour of a mock department."""

    latency_ms: int = 0
    transient_rate: float = 0.0
    permanent_rate: float = 0.0
    outage: bool = False
    fail_first: int = 0  # every delivery fails this many times before it can succeed
    retry_after: int = 0  # seconds a failing department asks callers to wait (Retry-After)

    def to_redis(self) -> dict[Any, Any]:
        return {k: str(int(v) if isinstance(v, bool) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_redis(cls, raw: Mapping[bytes | str, bytes | str]) -> Faults:
        data = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in data:
                value = data[f.name]
                if f.type == "bool":
                    kwargs[f.name] = value in ("1", "true", "True", "on")
                elif f.type == "float":
                    kwargs[f.name] = float(value)
                else:
                    kwargs[f.name] = int(value)
        return cls(**kwargs)


def faults_key(name: str) -> str:
    return f"mock:{name}:faults"


def configure_faults(redis: Redis, name: str, faults: Faults) -> None:
    """Set a mock department's latency and faults; every worker sees it at once."""
    redis.hset(faults_key(name), mapping=faults.to_redis())


def get_faults(redis: Redis, name: str) -> Faults:
    return Faults.from_redis(redis.hgetall(faults_key(name)))


# KEYS: the delivery's receipt key, the department's attempt counter (a hash), its
#       fault settings (a hash).
# ARGV: the delivery id.
# A repeat gets the first receipt back; otherwise the attempt is counted, and the
# department's fault settings come back with its number.
CALL_SCRIPT = """
local first = redis.call('GET', KEYS[1])
if first then return {1, first} end
return {0, redis.call('HINCRBY', KEYS[2], ARGV[1], 1), redis.call('HGETALL', KEYS[3])}
"""

# KEYS: the receipt key, the department's sequence, its log, then every record key the
#       change touches.
# ARGV: reference prefix, receipt detail, the change's commands (JSON: [command, index
#       of its key in KEYS, arguments...]), the log entry without its receipt (JSON).
# Applies the change, stores the receipt and logs it, all at once; a concurrent repeat
# that got there first has its receipt returned and nothing changes again.
APPLY_SCRIPT = """
local first = redis.call('GET', KEYS[1])
if first then return first end
local sequence = redis.call('INCR', KEYS[2])
for _, command in ipairs(cjson.decode(ARGV[3])) do
  local args = {command[1], KEYS[command[2]]}
  for i = 3, #command do args[#args + 1] = command[i] end
  redis.call(unpack(args))
end
local receipt = cjson.encode({
  reference = string.format('%s-%08d', ARGV[1], sequence), detail = ARGV[2], extra = {}
})
redis.call('SET', KEYS[1], receipt)
local entry = cjson.decode(ARGV[4])
entry['receipt'] = string.format('%s-%08d', ARGV[1], sequence)
redis.call('RPUSH', KEYS[3], cjson.encode(entry))
return receipt
"""


# Loaded by SHA once per Redis client (EVALSHA after the first call).
_CALL = Script(None, CALL_SCRIPT.encode())  # type: ignore[arg-type]
_APPLY = Script(None, APPLY_SCRIPT.encode())  # type: ignore[arg-type]


class Changes:
    """The changes one delivery makes to a department's records, collected by
    ``MockDepartment.apply`` and applied with the receipt in one script."""

    FIXED_KEYS = 3  # receipt, sequence, log: the record keys follow

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.commands: list[list[Any]] = []

    def _add(self, command: str, key: str, *args: Any) -> None:
        if key not in self.keys:
            self.keys.append(key)
        index = self.FIXED_KEYS + self.keys.index(key) + 1
        self.commands.append([command, index, *(str(a) for a in args)])

    def hset(
        self,
        key: str,
        field: str | None = None,
        value: Any = None,
        mapping: Mapping[str, Any] | None = None,
    ) -> None:
        pairs: list[Any] = [] if field is None else [field, value]
        for k, v in (mapping or {}).items():
            pairs += [k, v]
        self._add("HSET", key, *pairs)

    def hdel(self, key: str, *fields: str) -> None:
        self._add("HDEL", key, *fields)

    def hincrby(self, key: str, field: str, amount: int = 1) -> None:
        self._add("HINCRBY", key, field, amount)


class MockDepartment(Adapter):
    """Shared machinery: idempotency, faults, and one log entry per applied change.

    A call costs the department two round trips to Redis, each one script: one before
    its latency (a repeat gets its first receipt; otherwise the attempt is counted and
    the fault settings read), and one after (the change, its receipt and its log entry, once
    per idempotency key however many calls race)."""

    prefix: ClassVar[str] = "mock"
    timeout: ClassVar[float] = 10.0

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, self.name, *parts))

    def deliver(self, notification: Notification) -> Receipt:
        redis = self.redis
        if redis is None:
            raise RetryableError("the mock department has no Redis connection")
        receipt_key = self.key("receipt", notification.delivery_id)
        # Not in a pipeline: redis-py asks SCRIPT EXISTS before every pipeline that
        # holds a script, a round trip of its own.
        answer = _CALL(
            keys=[receipt_key, self.key("attempts"), faults_key(self.name)],
            args=[notification.delivery_id],
            client=redis,
        )
        if int(answer[0]):
            return Receipt.from_dict(json.loads(answer[1]))
        attempt = int(answer[1])
        flat = answer[2]
        faults = Faults.from_redis(dict(zip(flat[::2], flat[1::2], strict=True)))
        wait = faults.retry_after or None
        if faults.outage:
            raise RetryableError("service unavailable", retry_after=wait)
        if attempt <= faults.fail_first:
            raise RetryableError("temporary failure", retry_after=wait)
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        draw = random.random()
        if draw < faults.transient_rate:
            raise RetryableError("temporary failure")
        if draw < faults.transient_rate + faults.permanent_rate:
            raise PermanentError("record rejected by the department")

        changes = Changes()
        self.apply(changes, notification)
        entry = {
            "delivery_id": notification.delivery_id,
            "event_type": notification.event_type,
            "fields": sorted(notification.fields),
            "at": time.time(),
        }
        stored = _APPLY(
            keys=[receipt_key, self.key("sequence"), self.key("log"), *changes.keys],
            args=[
                self.name.upper(),
                self.describe(notification),
                json.dumps(changes.commands),
                json.dumps(entry),
            ],
            client=redis,
        )
        return Receipt.from_dict(json.loads(stored))

    def apply(self, changes: Changes, n: Notification) -> None:
        """Change this department's records (collected, then applied with the receipt)."""
        raise NotImplementedError

    def describe(self, n: Notification) -> str:
        return N_("Record updated")

    def update(self, changes: Changes, record: str, n: Notification, **values: Any) -> None:
        """Set fields on one record and count the change."""
        mapping: dict[str, Any] = {k: str(v) for k, v in values.items()}
        mapping["last_delivery"] = n.delivery_id
        changes.hset(record, mapping=mapping)
        changes.hincrby(record, "changes", 1)


class DwpBenefits(MockDepartment):
    name = "dwp"
    title = N_("Department for Work and Pensions (benefits and State Pension)")
    fields = {
        "moving_house": (
            "nino",
            "full_name",
            "date_of_birth",
            "address_line_1",
            "town",
            "postcode",
            "move_date",
        ),
        "death": (
            "deceased_nino",
            "deceased_full_name",
            "deceased_date_of_birth",
            "date_of_death",
            # Who told us: a bereavement service speaks to a spouse differently.
            "informant_relationship",
        ),
        "birth": ("parent_nino", "parent_full_name", "child_full_name", "child_date_of_birth"),
        "new_job": ("nino", "full_name", "employer_name", "job_start_date", "claiming_benefits"),
        "retiring": ("nino", "full_name", "date_of_birth", "retirement_date"),
        "change_of_name": ("nino", "previous_full_name", "full_name", "date_of_change"),
    }
    needs = {
        "moving_house": Need(Confidence.P2),
        "death": Need(registration=True),
        "birth": Need(registration=True),
        "new_job": Need(Confidence.P2),
        "retiring": Need(Confidence.P2),
        "change_of_name": Need(Confidence.P2),
    }

    @classmethod
    def route(cls, event_type: str, answers: Mapping[str, Any]) -> Route:
        if event_type == "new_job" and answers.get("claiming_benefits") == "no":
            return Route(
                "not_needed",
                N_("You said you do not get benefits, so they do not need to know about your job"),
            )
        return super().route(event_type, answers)

    def apply(self, pipe: Changes, n: Notification) -> None:
        f = n.fields
        if n.event_type == "death":
            self.update(
                pipe,
                self.key("claimant", f["deceased_nino"]),
                n,
                status="deceased",
                date_of_death=f["date_of_death"],
                benefits="stopped",
                reported_by=f.get("informant_relationship", ""),
            )
        elif n.event_type == "birth":
            record = self.key("claimant", f["parent_nino"])
            self.update(pipe, record, n, latest_child_born=f["child_date_of_birth"])
            pipe.hincrby(record, "children_reported", 1)
        elif n.event_type == "moving_house":
            self.update(
                pipe,
                self.key("claimant", f["nino"]),
                n,
                address=f"{f['address_line_1']}, {f['town']}",
                postcode=f["postcode"],
                address_from=f["move_date"],
            )
        elif n.event_type == "new_job":
            self.update(
                pipe,
                self.key("claimant", f["nino"]),
                n,
                status="in work",
                employer=f["employer_name"],
                employment_from=f["job_start_date"],
            )
        elif n.event_type == "retiring":
            self.update(
                pipe, self.key("claimant", f["nino"]), n, state_pension_from=f["retirement_date"]
            )
        elif n.event_type == "change_of_name":
            self.update(
                pipe,
                self.key("claimant", f["nino"]),
                n,
                full_name=f["full_name"],
                previous_name=f["previous_full_name"],
            )


class DvlaLicences(MockDepartment):
    name = "dvla"
    title = N_("Driver and Vehicle Licensing Agency (driving licences)")
    fields = {
        "moving_house": (
            "full_name",
            "date_of_birth",
            "driving_licence_number",
            "address_line_1",
            "town",
            "postcode",
        ),
        "death": (
            "deceased_full_name",
            "deceased_date_of_birth",
            "date_of_death",
            "driving_licence_number",
        ),
        "change_of_name": (
            "previous_full_name",
            "full_name",
            "date_of_birth",
            "driving_licence_number",
        ),
    }
    needs = {
        "moving_house": Need(Confidence.P2),
        "death": Need(registration=True),
        "change_of_name": Need(Confidence.P2),
    }

    @classmethod
    def route(cls, event_type: str, answers: Mapping[str, Any]) -> Route:
        if event_type == "moving_house" and answers.get("has_driving_licence") != "yes":
            return Route("not_needed", N_("You said you do not have a driving licence"))
        if event_type == "death" and answers.get("had_driving_licence") != "yes":
            return Route("not_needed", N_("You said they did not have a driving licence"))
        if event_type == "change_of_name":
            kind = answers.get("driving_licence")
            if kind == "photocard":
                return Route(
                    "assisted",
                    N_(
                        "A new name on a photocard licence needs a new photo and an identity "
                        "check at a Post Office"
                    ),
                    ("identity_check", "photo"),
                )
            if kind == "paper":
                return Route(
                    "assisted",
                    N_(
                        "A paper licence is replaced by a photocard, which needs a photo and an "
                        "identity check at a Post Office"
                    ),
                    ("identity_check", "photo"),
                )
            return Route("not_needed", N_("You said you do not have a driving licence"))
        return super().route(event_type, answers)

    def apply(self, pipe: Changes, n: Notification) -> None:
        f = n.fields
        record = self.key("licence", f["driving_licence_number"])
        if n.event_type == "moving_house":
            self.update(
                pipe,
                record,
                n,
                holder=f["full_name"],
                address=f"{f['address_line_1']}, {f['town']}",
                postcode=f["postcode"],
            )
        elif n.event_type == "death":
            self.update(
                pipe, record, n, status="cancelled: holder died", cancelled_from=f["date_of_death"]
            )
        elif n.event_type == "change_of_name":
            self.update(pipe, record, n, holder=f["full_name"], status="new photocard ordered")


class GovernmentPayments(MockDepartment):
    name = "payments"
    title = N_("Government Payment Services (NS&I)")
    fields = {
        "retiring": ("nino", "full_name", "has_bank_account", "sort_code", "account_number"),
        "death": ("deceased_nino", "deceased_full_name", "date_of_death"),
        "change_of_name": ("nino", "full_name"),
    }
    needs = {
        "retiring": Need(Confidence.P2),
        "death": Need(registration=True),
        "change_of_name": Need(Confidence.P2),
    }

    @classmethod
    def route(cls, event_type: str, answers: Mapping[str, Any]) -> Route:
        if event_type == "retiring" and answers.get("has_bank_account") == "no":
            return Route(
                "assisted",
                N_(
                    "Without a bank account, payments come as a Post Office cash voucher, set "
                    "up at a counter with an identity check"
                ),
                ("cash_voucher", "identity_check"),
            )
        return super().route(event_type, answers)

    def apply(self, pipe: Changes, n: Notification) -> None:
        f = n.fields
        if n.event_type == "retiring":
            method = "bank account" if f.get("has_bank_account") == "yes" else "cash voucher"
            self.update(
                pipe,
                self.key("payee", f["nino"]),
                n,
                payee=f["full_name"],
                method=method,
                sort_code=f.get("sort_code", ""),
                account_number=f.get("account_number", ""),
                status="active",
            )
        elif n.event_type == "death":
            self.update(
                pipe,
                self.key("payee", f["deceased_nino"]),
                n,
                status="stopped",
                stopped_from=f["date_of_death"],
            )
        elif n.event_type == "change_of_name":
            self.update(pipe, self.key("payee", f["nino"]), n, payee=f["full_name"])


class HmrcTax(MockDepartment):
    name = "hmrc"
    title = N_("HM Revenue and Customs (tax and Child Benefit)")
    fields = {
        "moving_house": ("nino", "full_name", "address_line_1", "town", "postcode", "move_date"),
        "death": ("deceased_nino", "deceased_full_name", "date_of_death"),
        "birth": (
            "parent_nino",
            "parent_full_name",
            "child_full_name",
            "child_date_of_birth",
            "claim_child_benefit",
        ),
        "new_job": (
            "nino",
            "full_name",
            "date_of_birth",
            "employer_name",
            "employer_paye_reference",
            "job_start_date",
        ),
        "retiring": ("nino", "full_name", "retirement_date"),
        "change_of_name": ("nino", "previous_full_name", "full_name", "date_of_change"),
    }
    needs = {
        "moving_house": Need(Confidence.P2),
        "death": Need(registration=True),
        # A Child Benefit claim pays the claimant: the claimant must be known too.
        "birth": Need(Confidence.P1, registration=True),
        "new_job": Need(Confidence.P2),
        "retiring": Need(Confidence.P2),
        "change_of_name": Need(Confidence.P2),
    }

    @classmethod
    def route(cls, event_type: str, answers: Mapping[str, Any]) -> Route:
        if event_type == "birth" and answers.get("claim_child_benefit") != "yes":
            return Route("not_needed", N_("You said you do not want to claim Child Benefit"))
        return super().route(event_type, answers)

    def apply(self, pipe: Changes, n: Notification) -> None:
        f = n.fields
        if n.event_type == "death":
            self.update(
                pipe,
                self.key("taxpayer", f["deceased_nino"]),
                n,
                status="deceased",
                date_of_death=f["date_of_death"],
            )
        elif n.event_type == "birth":
            self.update(
                pipe,
                self.key("taxpayer", f["parent_nino"]),
                n,
                child_benefit="claim opened",
                child_born=f["child_date_of_birth"],
            )
        elif n.event_type == "moving_house":
            self.update(
                pipe,
                self.key("taxpayer", f["nino"]),
                n,
                address=f"{f['address_line_1']}, {f['town']}",
                postcode=f["postcode"],
            )
        elif n.event_type == "new_job":
            self.update(
                pipe,
                self.key("taxpayer", f["nino"]),
                n,
                employer=f["employer_name"],
                paye_reference=f.get("employer_paye_reference", ""),
                employment_from=f["job_start_date"],
                tax_code="1257L",
            )
        elif n.event_type == "retiring":
            self.update(
                pipe,
                self.key("taxpayer", f["nino"]),
                n,
                status="retired",
                retired_from=f["retirement_date"],
            )
        elif n.event_type == "change_of_name":
            self.update(pipe, self.key("taxpayer", f["nino"]), n, full_name=f["full_name"])


class LocalCouncil(MockDepartment):
    name = "council"
    title = N_("Your local council (council tax and electoral register)")
    fields = {
        "moving_house": (
            "full_name",
            "address_line_1",
            "town",
            "postcode",
            "previous_postcode",
            "move_date",
        ),
        "death": ("deceased_full_name", "address_line_1", "town", "postcode", "date_of_death"),
        "change_of_name": ("previous_full_name", "full_name", "address_line_1", "town", "postcode"),
    }
    needs = {
        "moving_house": Need(Confidence.P1),
        "death": Need(registration=True),
        "change_of_name": Need(Confidence.P1),
    }

    def apply(self, pipe: Changes, n: Notification) -> None:
        f = n.fields
        register = self.key("register", f["postcode"])
        council_tax = self.key("council_tax", f["postcode"], f["address_line_1"].lower())
        if n.event_type == "moving_house":
            pipe.hset(register, f["full_name"], "registered")
            pipe.hdel(self.key("register", f["previous_postcode"]), f["full_name"])
            self.update(pipe, council_tax, n, liable=f["full_name"], liable_from=f["move_date"])
        elif n.event_type == "death":
            pipe.hdel(register, f["deceased_full_name"])
            self.update(
                pipe, council_tax, n, note="occupant died", date_of_death=f["date_of_death"]
            )
        elif n.event_type == "change_of_name":
            pipe.hdel(register, f["previous_full_name"])
            pipe.hset(register, f["full_name"], "registered")
            self.update(pipe, council_tax, n, liable=f["full_name"])
