"""The routing plan: which departments are told what, and how, with a reason for each.

``plan`` is a pure function of (event type, answers, consent, adapters): no Redis,
no clock, no randomness, so every decision can be tested table by table.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from router.adapters.contract import Adapter
from router.exceptions import ValidationFailed
from router.i18n import N_
from router.trust import Evidence, Missing, Need

DecisionMode = Literal["digital", "assisted", "not_needed", "not_consented"]

# Tasks that need a person at a Post Office counter, and what to bring for each.
ASSISTED_TASKS: dict[str, tuple[str, str]] = {
    "identity_check": (
        N_("Identity check"),
        N_("Bring your passport or another photo identity document"),
    ),
    "photo": (
        N_("Photo for a new photocard driving licence"),
        N_("Your photo is taken at the counter; bring your current licence"),
    ),
    "cash_voucher": (
        N_("Payments by Post Office cash voucher"),
        N_("Bring a letter or bill with your address, and photo identity"),
    ),
}


@dataclass(frozen=True)
class Decision:
    """One department's part: told or not, how, with which fields, and why."""

    department: str
    mode: DecisionMode
    reason: str
    fields: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    # What the department must trust before it acts (its declaration for the event).
    need: Need = Need()

    @property
    def told(self) -> bool:
        return self.mode in ("digital", "assisted")

    def missing(self, evidence: Evidence) -> tuple[Missing, ...]:
        """What this delivery still waits for, given the case's evidence."""
        return self.need.unmet(evidence)

    def to_dict(self) -> dict[str, Any]:
        # What dataclasses.asdict gives, written out: asdict's deep copy was ~5% of a
        # submission's time in the web worker.
        return {
            "department": self.department,
            "mode": self.mode,
            "reason": self.reason,
            "fields": self.fields,
            "tasks": self.tasks,
            "need": self.need.code,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            department=data["department"],
            mode=data["mode"],
            reason=data["reason"],
            fields=tuple(data.get("fields", ())),
            tasks=tuple(data.get("tasks", ())),
            need=Need.from_code(data.get("need", "P0")),
        )


@dataclass(frozen=True)
class RoutingPlan:
    event_type: str
    decisions: tuple[Decision, ...]

    @property
    def deliveries(self) -> tuple[Decision, ...]:
        """The departments that will be told (online or after a counter visit)."""
        return tuple(d for d in self.decisions if d.told)

    def decision(self, department: str) -> Decision:
        for d in self.decisions:
            if d.department == department:
                return d
        raise KeyError(department)


def interested(event_type: str, adapters: Iterable[type[Adapter]]) -> list[type[Adapter]]:
    """The adapters that handle this event type, by name."""
    return sorted((a for a in adapters if event_type in a.fields), key=lambda a: a.name)


def check_consent(
    event_type: str, consent: Collection[str], adapters: Iterable[type[Adapter]]
) -> None:
    """Refuse consent that names no department, or one not concerned with this event."""
    names = {a.name for a in interested(event_type, adapters)}
    if not consent:
        raise ValidationFailed({"consent": N_("Select at least one organisation to tell")})
    if not set(consent) <= names:
        raise ValidationFailed(
            {"consent": N_("Select only organisations from the list for this life event")}
        )


def plan(
    event_type: str,
    answers: Mapping[str, Any],
    consent: Collection[str],
    adapters: Iterable[type[Adapter]],
) -> RoutingPlan:
    """Build the routing plan. ``answers`` must already be validated by the catalogue."""
    decisions = []
    for adapter in interested(event_type, adapters):
        # Not needed comes before not chosen: the reason given is the true one (a
        # citizen who unticked HMRC and then said no to Child Benefit reads that it
        # is not needed, not that they chose it).
        route = adapter.route(event_type, answers)
        if route.mode == "not_needed":
            decisions.append(Decision(adapter.name, "not_needed", route.reason))
            continue
        if adapter.name not in consent:
            decisions.append(
                Decision(adapter.name, "not_consented", N_("You chose not to tell them"))
            )
            continue
        unknown_tasks = set(route.tasks) - set(ASSISTED_TASKS)
        if unknown_tasks:
            raise ValueError(f"{adapter.name} asked for unknown tasks {sorted(unknown_tasks)}")
        # Data minimisation: only declared fields, and only those that were answered.
        fields = tuple(f for f in adapter.fields_for(event_type) if f in answers)
        decisions.append(
            Decision(
                adapter.name,
                route.mode,
                route.reason,
                fields,
                route.tasks,
                adapter.need_for(event_type),
            )
        )
    return RoutingPlan(event_type, tuple(decisions))
