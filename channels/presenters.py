"""How the router's facts read to a person, defined once for every view: delivery
states, answers, departments, branches, counter tasks and audit entries.

The wording here is message ids (``N_``), translated when a page is drawn, so a
citizen's page and a clerk's say the same thing in the same words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from flask_babel import format_date, format_datetime, get_locale, gettext, ngettext, pgettext

from router import reference, routing
from router.adapters.contract import Adapter
from router.assisted import branches
from router.assisted.audit import Entry
from router.assisted.desk import DOCUMENTS
from router.cases import (
    FLAG_DEPARTMENT_REMOVED,
    FLAG_REASONS,
    FLAG_REFUSED_BY_REGISTER,
    Case,
    DeliveryState,
)
from router.catalogue import EVENTS, EventType, Kind
from router.i18n import N_, Contextual
from router.retention import LAPSED
from router.trust import Confidence, Proof

# --- deliveries ------------------------------------------------------------------------

STATE_LABELS: dict[DeliveryState, str] = {
    DeliveryState.QUEUED: N_("Waiting to send"),
    DeliveryState.SENDING: N_("Sending"),
    DeliveryState.DELIVERED: N_("Told"),
    DeliveryState.RETRYING: N_("Trying again"),
    DeliveryState.FAILED: N_("Not told yet"),
    DeliveryState.ASSISTED: N_("Visit a Post Office"),
    DeliveryState.COMPLETED_AT_COUNTER: N_("Done at a Post Office"),
    DeliveryState.HELD: N_("On hold"),
    DeliveryState.WAITING: N_("Waiting for proof"),
}

# What a clerk reads where the citizen reads STATE_LABELS: the citizen is at the counter.
COUNTER_STATE_LABELS: dict[DeliveryState, str] = {
    DeliveryState.ASSISTED: N_("To do at the counter"),
}

TAG_COLOURS: dict[DeliveryState, str] = {
    DeliveryState.QUEUED: "govuk-tag--grey",
    DeliveryState.SENDING: "govuk-tag--blue",
    DeliveryState.DELIVERED: "govuk-tag--green",
    DeliveryState.RETRYING: "govuk-tag--yellow",
    DeliveryState.FAILED: "govuk-tag--red",
    DeliveryState.ASSISTED: "govuk-tag--purple",
    DeliveryState.COMPLETED_AT_COUNTER: "govuk-tag--green",
    DeliveryState.HELD: "govuk-tag--orange",
    DeliveryState.WAITING: "govuk-tag--light-blue",
}

NEXT_STEPS: dict[DeliveryState, str] = {
    DeliveryState.QUEUED: N_("We are about to send them your details."),
    DeliveryState.SENDING: N_("We are sending them your details now."),
    DeliveryState.DELIVERED: N_(
        "They have your details. They will contact you if they need anything else."
    ),
    DeliveryState.RETRYING: N_(
        "Their service is not answering at the moment. We will keep trying: you do not "
        "need to do anything."
    ),
    # Only what the service does (issue 15, item 3): the failure is kept for the team to
    # send again, and a reporter who left contact details is told (router.delivery.notices).
    DeliveryState.FAILED: N_(
        "We could not tell them online. Our team can send it again once the problem is "
        "fixed. If it is urgent, contact them yourself."
    ),
    DeliveryState.ASSISTED: N_("Visit a Post Office to finish this. Take your reference with you."),
    DeliveryState.COMPLETED_AT_COUNTER: N_("This was finished at a Post Office."),
    DeliveryState.WAITING: N_("They will be told once what they need is in."),
    DeliveryState.HELD: N_(
        "We have held this back for now, because another report may concern it. It is not "
        "sent until that has been checked."
    ),
}

# A waiting delivery, by what it waits for (its detail): the tag, and what happens next.
WAITING_LABELS: dict[str, str] = {
    "identity": N_("Waiting for you to prove your identity"),
    "registration": N_("Waiting for the register to confirm the registration"),
    "identity,registration": N_("Waiting for your identity and the registration"),
}

WAITING_NEXT_STEPS: dict[str, str] = {
    "identity": N_(
        "They act on this only once you have proved who you are: sign in online, or have "
        "your identity checked at a Post Office."
    ),
    "registration": N_(
        "They act on this only once the register confirms the registration. We are "
        "checking: you do not need to do anything."
    ),
    "identity,registration": N_(
        "They act on this only once you have proved who you are and the register confirms "
        "the registration."
    ),
}


# A delivery that waited for a Post Office visit that never came (router.retention).
LAPSED_WORDS = (
    N_("Not told"),
    N_(
        "This needed a visit to a Post Office, which was not made in time. To tell them "
        "now, report it again or contact them yourself."
    ),
)


def delivery_words(state: DeliveryState, detail: str = "") -> tuple[str, str]:
    """A delivery's tag and what happens next, translated: a waiting one says what for."""
    if state == DeliveryState.FAILED and detail == LAPSED:
        return gettext(LAPSED_WORDS[0]), gettext(LAPSED_WORDS[1])
    if state == DeliveryState.WAITING and detail in WAITING_LABELS:
        return gettext(WAITING_LABELS[detail]), gettext(WAITING_NEXT_STEPS[detail])
    return gettext(STATE_LABELS[state]), gettext(NEXT_STEPS[state])


def adapter_titles(adapters: Iterable[type[Adapter]]) -> dict[str, str]:
    """Each department's name as a person reads it, by adapter name."""
    return {a.name: gettext(a.title) for a in adapters}


def department_title(name: str) -> str:
    """One department's name as a person reads it; its adapter name if it is gone."""
    from channels.context import core

    return adapter_titles(core().adapters).get(name, name)


def flag_reason(stored: str) -> str:
    """Why a case is flagged, in the page's language. The case keeps the English words of
    router.cases' FLAG_ reasons; a reason of another shape (an older one) is shown as is."""
    if stored in FLAG_REASONS:
        return gettext(stored)
    if found := _FLAG_REGISTER.fullmatch(stored):
        return gettext(FLAG_REFUSED_BY_REGISTER, field=found["field"])
    if found := _FLAG_REMOVED.fullmatch(stored):
        return gettext(FLAG_DEPARTMENT_REMOVED, department=department_title(found["department"]))
    return stored


def _pattern_of(message: str) -> re.Pattern[str]:
    """A regular expression matching ``message`` with each %(name)s filled in."""
    parts = re.split(r"%\((\w+)\)s", message)
    return re.compile(
        "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    )


_FLAG_REGISTER = _pattern_of(FLAG_REFUSED_BY_REGISTER)
_FLAG_REMOVED = _pattern_of(FLAG_DEPARTMENT_REMOVED)


# --- counter tasks -----------------------------------------------------------------------

TASK_DONE_WORDS: dict[str, str] = {
    "identity_check": N_("Identity verified"),
    "photo": N_("Photo captured"),
    "cash_voucher": N_("Cash voucher paid"),
    "help": N_("Help given at the counter"),
}


def task_name(task: str) -> str:
    """What a counter task is called (an identity check, a photo...)."""
    return gettext(routing.ASSISTED_TASKS[task][0])


def task_to_bring(task: str) -> str:
    """What the citizen brings to a counter for a task."""
    return gettext(routing.ASSISTED_TASKS[task][1])


def task_done(task: str) -> str:
    """How a finished counter task is reported (``task`` itself if it has no words)."""
    return gettext(TASK_DONE_WORDS.get(task, task))


# --- answers, times and places ---------------------------------------------------------


def translated(message: str) -> str:
    """A message id from the core in the reader's language: looked up in its context
    when it was marked with one (``NP_``, a yes or no question's own "Yes" and "No")."""
    if isinstance(message, Contextual):
        return pgettext(message.context, message)
    return gettext(message)


# Identifiers shown back to a citizen after the report is sent (the status page, "What
# we shared"): only their last characters, enough to recognise, too few to use (row 1).
MASKED_KINDS: dict[Kind, int] = {
    Kind.NINO: 3,
    Kind.DRIVING_LICENCE: 4,
    Kind.SORT_CODE: 2,
    Kind.ACCOUNT_NUMBER: 4,
}


def display_answer(event: EventType, field: str, value: Any, *, masked: bool = False) -> str:
    """An answer as a person reads it: dates in words, options by their wording. With
    ``masked``, identifiers (NI number, driving licence, bank details) show only their
    last few characters: everywhere but the check-your-answers page they were typed for."""
    if value in ("", None):
        return gettext("Not given")
    q = event.question(field)
    if masked and q.kind in MASKED_KINDS:
        last = str(value).replace(" ", "").replace("-", "")[-MASKED_KINDS[q.kind] :]
        return gettext("Ending %(last)s", last=last)
    if q.kind is Kind.DATE:
        return format_date(date.fromisoformat(value), "d MMMM y")
    if q.kind in (Kind.YES_NO, Kind.CHOICE):
        for option, text in q.choices():
            if option == value:
                return translated(text)
    if q.kind is Kind.NINO:
        return f"{value[:2]} {value[2:4]} {value[4:6]} {value[6:8]} {value[8:]}"
    if q.kind is Kind.SORT_CODE:
        return f"{value[:2]}-{value[2:4]}-{value[4:]}"
    return str(value)


def when(iso: str, seconds: bool = False) -> str:
    """A stored time (ISO 8601) in words, to the minute or second; "" for none."""
    if not iso:
        return ""
    pattern = "d MMMM y, HH:mm:ss" if seconds else "d MMMM y, HH:mm"
    return format_datetime(datetime.fromisoformat(iso), pattern)


def local_branch(branch: branches.Branch) -> branches.Branch:
    """A branch as the reader reads it: on a Welsh page by its Welsh name and town
    ("Swyddfa’r Post Heol Awst, Caerfyrddin"), where it has them."""
    locale = get_locale()
    return branch.in_language(locale.language if locale else "en")


def branch_name(branch_id: str) -> str:
    """A Post Office branch's name in the reader's language; its id when the branch
    list no longer has it (so a page still says which branch, rather than nothing)."""
    found = branches.load_branches().get(branch_id)
    return local_branch(found).name if found else branch_id


DAY_NAMES = {
    "mon": N_("Monday"),
    "tue": N_("Tuesday"),
    "wed": N_("Wednesday"),
    "thu": N_("Thursday"),
    "fri": N_("Friday"),
    "sat": N_("Saturday"),
    "sun": N_("Sunday"),
}


def visit(case: Case) -> dict[str, Any]:
    """Where to go, what to bring and by when, for a case waiting at a Post Office."""
    found = branches.load_branches().get(case.branch) if case.at_counter else None
    branch = local_branch(found) if found else None
    bring = [(task_name(t), task_to_bring(t)) for t in case.counter_tasks]
    return {
        "visit_branch": branch,
        "visit_bring": bring,
        "visit_help": case.help_requested and "help" not in case.tasks_done,
        "visit_needed": case.at_counter,
        "visit_by": format_date(case.counter_valid_until, "d MMMM y"),
        "visit_hours": [(gettext(DAY_NAMES[day]), text) for day, text in branch.hours]
        if branch
        else [],
    }


# --- the counter audit ---------------------------------------------------------------------

# What the citizen is told a branch did with their report (who exactly stays in the
# branch's own audit).
CITIZEN_ACTIONS: dict[str, str] = {
    "viewed_case": N_("counter staff opened your report"),
    "served_from_another_branch": N_("counter staff opened your report to serve you"),
    "identity_checked": N_("your identity was checked"),
    "task_completed": N_("a task was completed"),
    "submitted_on_behalf": N_("counter staff sent this report with you"),
    "branch_changed": N_("your report was moved to this branch"),
    # what operators and caseworkers did
    "replayed_delivery": N_("we tried again to tell %(organisation)s"),
    "contacted_citizen": N_("a caseworker sent you a message"),
    "reassigned_branch": N_("a caseworker moved your report to %(branch)s"),
    "closed_follow_up": N_("a caseworker finished following up your report"),
}


def citizen_audit(entries: Iterable[Entry]) -> list[dict[str, str]]:
    """Which branches did what to a case, as the citizen reads it (opened: once per
    branch; which member of staff stays in the branch's own audit)."""
    seen: set[tuple[str, str]] = set()
    touched = []
    for entry in entries:
        if entry.action not in CITIZEN_ACTIONS or (entry.action, entry.branch) in seen:
            continue
        if entry.action in ("viewed_case", "served_from_another_branch"):
            seen.add((entry.action, entry.branch))
        words = CITIZEN_ACTIONS[entry.action]
        if entry.action == "task_completed" and entry.detail in TASK_DONE_WORDS:
            words = TASK_DONE_WORDS[entry.detail]
        # Operators and caseworkers have no branch: their actions are "our team's".
        where = branch_name(entry.branch) if entry.branch else ""
        detail = {
            "organisation": department_title(entry.detail),
            "branch": branch_name(entry.detail),
        }
        touched.append(
            {
                "when": when(entry.at),
                "branch": where,
                "action": gettext(words, **detail) if not entry.branch else gettext(words),
                "team": "" if entry.branch else "yes",
            }
        )
    return touched


# What each counter action is called in the branch audit its manager reads.
ACTION_WORDS = {
    "signed_in": N_("Signed in"),
    "sign_in_refused": N_("Sign-in refused: wrong password"),
    "sign_in_locked": N_("Sign-in locked after too many wrong passwords"),
    "sign_in_unlocked": N_("Sign-in unlocked"),
    "viewed_case": N_("Viewed a report"),
    "served_from_another_branch": N_("Served a citizen whose report was for another branch"),
    "serve_refused": N_("Refused another branch’s report: the date of birth did not match"),
    "identity_checked": N_("Recorded an identity check"),
    "task_completed": N_("Completed a task"),
    "submitted_on_behalf": N_("Sent a report on a citizen’s behalf"),
    "branch_changed": N_("Moved a report to another branch"),
    "viewed_audit": N_("Read the branch audit"),
    "replayed_delivery": N_("Sent a failed delivery again"),
    "viewed_flagged_case": N_("Opened a flagged report"),
    "contacted_citizen": N_("Sent the citizen a message"),
    "reassigned_branch": N_("Moved a report to another branch"),
    "closed_follow_up": N_("Closed a follow-up"),
}


# Openings of another branch's reports, and refused tries: highlighted for the manager.
ANOTHER_BRANCH = ("served_from_another_branch", "serve_refused")


def audit_detail(entry: Entry) -> str:
    """An audit entry's detail in words: the task, the document kind, the event, the branch."""
    if entry.action == "task_completed" and entry.detail in TASK_DONE_WORDS:
        return gettext(TASK_DONE_WORDS[entry.detail])
    if entry.action == "identity_checked" and entry.detail in DOCUMENTS:
        return gettext(DOCUMENTS[entry.detail])
    if entry.action == "submitted_on_behalf" and entry.detail in EVENTS:
        return gettext(EVENTS[entry.detail].title)
    if entry.action in (*ANOTHER_BRANCH, "branch_changed", "reassigned_branch"):
        return branch_name(entry.detail)
    if entry.action == "replayed_delivery":
        return department_title(entry.detail)
    if entry.action == "sign_in_locked" and entry.detail.isdigit():
        minutes = int(entry.detail)
        return ngettext("For %(num)d minute", "For %(num)d minutes", minutes)
    if entry.action == "sign_in_unlocked":
        return gettext("By %(who)s", who=entry.detail)
    return entry.detail


def staff_audit(entries: Iterable[Entry]) -> list[dict[str, str | bool]]:
    """A branch's audit entries as its manager reads them, one row each."""
    return [
        {
            "at": when(e.at, seconds=True),
            "action": gettext(ACTION_WORDS.get(e.action, e.action)),
            "staff": e.staff,
            "case": reference.display(e.case) if e.case else "",
            "detail": audit_detail(e),
            "another_branch": e.action in ANOTHER_BRANCH,
        }
        for e in entries
    ]


# --- trust, as the citizen reads it: how we know who sent a report ---------------------

CITIZEN_CONFIDENCE_WORDS: dict[Confidence, str] = {
    Confidence.P0: N_("no confidence"),
    Confidence.P1: N_("low confidence"),
    Confidence.P2: N_("medium confidence"),
}

REGISTERED_WORDS: dict[str, str] = {
    "death": N_("The death was confirmed against the register on %(when)s"),
    "birth": N_("The birth was confirmed against the register on %(when)s"),
    "": N_("The registration was confirmed against the register on %(when)s"),
}


def how_we_know(case: Case, development_issuer: str = "") -> list[str]:
    """How we know who sent the report, and that the event happened, in plain words from
    the case's evidence, oldest first. ``development_issuer`` names the development
    identity provider, said to be one wherever it is mentioned."""
    said: list[str] = []
    for proof in case.evidence.proofs:
        on = when(proof.at)
        level = gettext(CITIZEN_CONFIDENCE_WORDS[proof.confidence])
        if proof.kind == "identity_provider":
            if (development_issuer and proof.source == development_issuer) or _on_this_machine(
                proof.source
            ):
                said.append(
                    gettext(
                        "You proved your identity online (%(level)s), with the development "
                        "identity provider, not GOV.UK One Login, on %(when)s",
                        level=level,
                        when=on,
                    )
                )
            else:
                said.append(
                    gettext(
                        "You proved your identity online (%(level)s) on %(when)s",
                        level=level,
                        when=on,
                    )
                )
        elif proof.kind == "counter":
            said.append(
                gettext(
                    "Your identity was checked at %(branch)s (%(level)s) on %(when)s",
                    branch=branch_name(proof.source),
                    level=level,
                    when=on,
                )
            )
        elif proof.kind == "register":
            kind = EVENTS[case.event_type].registration
            words = REGISTERED_WORDS.get(kind.kind if kind else "", REGISTERED_WORDS[""])
            said.append(gettext(words, when=on))
        elif proof.kind == "vouched":
            said.append(
                gettext(
                    "The registration was confirmed by the registrar’s own system on %(when)s",
                    when=on,
                )
            )
    if not any(p.covers == "identity" for p in case.evidence.proofs):
        said.append(gettext("Nobody has proved who sent this report yet"))
    if case.verifying:
        said.append(gettext("We are still checking the registration with the register"))
    return said


def _on_this_machine(issuer: str) -> bool:
    """Whether an identity provider was on a loopback address: a development one (an
    earlier `router up`'s), never GOV.UK One Login."""
    host = urlsplit(issuer).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


# How the last online sign-in for a case ended (channels.web.sign_in), said once.
IDENTITY_OUTCOMES: dict[str, tuple[str, str]] = {
    "released": (
        "success",
        N_("You proved your identity. The organisations that were waiting for it are being told."),
    ),
    "not_enough": (
        "important",
        N_(
            "You signed in, but your identity was not proved strongly enough for every "
            "organisation. The ones still waiting need medium confidence: prove your "
            "identity fully online, or have it checked at a Post Office."
        ),
    ),
    "proved_before": (
        "success",
        N_(
            "You proved your identity. It will be sent with your report, so the "
            "organisations that need it can act straight away."
        ),
    ),
    "no_match": (
        "important",
        N_(
            "The identity you signed in with does not match the name and date of birth in "
            "this report, so it does not count."
        ),
    ),
    "no_identity": (
        "important",
        N_(
            "You signed in, but the account has not proved an identity, so it does not "
            "count. Prove your identity with it first, or have it checked at a Post Office."
        ),
    ),
    "cancelled": ("important", N_("You did not finish signing in. Nothing has changed.")),
    "failed": (
        "important",
        N_(
            "We could not finish signing you in. Try again later, or have your identity "
            "checked at a Post Office."
        ),
    ),
}


# --- trust, as counter staff read it ------------------------------------------------------

CONFIDENCE_WORDS: dict[Confidence, str] = {
    Confidence.P0: N_("None (P0): nobody has proved who reported it"),
    Confidence.P1: N_("Low (P1)"),
    Confidence.P2: N_("Medium (P2)"),
}

WAITING_FOR_WORDS: dict[str, str] = {
    "identity": N_("the reporter’s identity"),
    "registration": N_("the register to confirm the registration"),
}


def proof_words(proof: Proof) -> str:
    """One piece of a case's evidence in a clerk's words."""
    if proof.kind == "identity_provider":
        return gettext(
            "Signed in with an identity provider: %(level)s",
            level=gettext(CONFIDENCE_WORDS[proof.confidence]),
        )
    if proof.kind == "counter":
        return gettext(
            "Identity checked at %(branch)s: %(document)s",
            branch=branch_name(proof.source),
            document=gettext(DOCUMENTS.get(proof.detail, proof.detail)),
        )
    if proof.kind == "register":
        return gettext("Registration confirmed by the register")
    return gettext("Registration vouched for by %(client)s", client=proof.source)


def staff_evidence(case: Case) -> dict[str, Any]:
    """How we know who reported a case, and that the event happened, for a clerk."""
    if case.evidence.registration_verified:
        registration = gettext("Confirmed")
    elif case.verifying:
        registration = gettext("Being checked with the register")
    elif EVENTS[case.event_type].registration is not None:
        registration = gettext("Not confirmed")
    else:
        registration = ""
    return {
        "confidence": gettext(CONFIDENCE_WORDS[case.evidence.confidence]),
        "registration": registration,
        "proofs": [proof_words(p) for p in case.evidence.proofs],
    }


def waiting_for(detail: str) -> str:
    """What a waiting delivery waits for ("identity,registration"), in words."""
    return ", ".join(gettext(WAITING_FOR_WORDS.get(w, w)) for w in detail.split(",") if w)


# --- the money: statements (router.ledger) ------------------------------------------------

PARTY_WORDS = {"operator": N_("Tell Us Once (the router’s operator)")}
REGISTER_WORDS = {"gro": N_("General Register Office")}
DIRECTION_WORDS = {"owes": N_("Pays"), "owed": N_("Is paid")}


def party_name(party: str) -> str:
    """A ledger party (``department:dvla``, ``branch:<id>``, ``operator``) in words."""
    kind, _, name = party.partition(":")
    if party in PARTY_WORDS:
        return gettext(PARTY_WORDS[party])
    if kind == "department":
        return department_title(name)
    if kind == "branch":
        return branch_name(name)
    if kind == "register":
        return gettext(REGISTER_WORDS[name]) if name in REGISTER_WORDS else name
    return party


def seconds_words(value: float | None) -> str:
    """A time in seconds as a person reads it (0.25 s, 4 min, 2.5 h, 1.5 d); a dash for
    none."""
    if value is None:
        return "–"
    if value < 60:
        return gettext("%(s)s s", s=f"{value:.2f}".rstrip("0").rstrip(".") if value else "0")
    if value < 3600:
        return gettext("%(m)d min", m=round(value / 60))
    if value < 86400:
        return gettext("%(h)s h", h=f"{value / 3600:.1f}")
    return gettext("%(d)s d", d=f"{value / 86400:.1f}")


def money(pence: int) -> str:
    """Pence as a person reads money: £1,234.50."""
    sign = "−" if pence < 0 else ""
    return f"{sign}£{abs(pence) // 100:,}.{abs(pence) % 100:02d}"


def statement_view(statement: Any) -> dict[str, Any]:
    """A ledger Statement as its page shows it."""
    from router.ledger import KIND_WORDS

    return {
        "party": statement.party,
        "name": party_name(statement.party),
        "month": statement.month,
        "lines": [
            {
                "direction": gettext(DIRECTION_WORDS.get(line.direction, line.direction)),
                "kind": gettext(KIND_WORDS[line.kind]) if line.kind in KIND_WORDS else line.kind,
                "counterparty": party_name(line.counterparty),
                "count": line.count,
                "unit": money(line.unit_pence),
                "subtotal": money(line.subtotal_pence),
            }
            for line in statement.lines
        ],
        "entries": statement.entries,
        "owes": money(statement.owes_pence),
        "owed": money(statement.owed_pence),
        "net": money(statement.net_pence),
        "contacts_avoided": statement.contacts_avoided,
        "saved": money(statement.saved_pence),
        "versions": ", ".join(statement.tariff_versions),
    }
