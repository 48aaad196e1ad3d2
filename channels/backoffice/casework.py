"""The caseworkers' screens (/casework): the queue of flagged cases, and a case page with
its history and the actions that finish it: send a failed delivery again, contact the
citizen (a fixed message through their own notifications), move it to another Post
Office branch, close the follow-up with a note.

Behind the staff guard (channels.counter.views.guard): caseworkers only. A case page
shows what the task needs and no more: the event, the states and reasons, the branch,
whether the citizen can be contacted. No answer of the report is shown, nor the
citizen's email address or number. Opening a case and every action are audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext, ngettext
from wtforms import SelectChoice

from channels.backoffice.forms import CloseForm, ContactForm, ReassignForm
from channels.context import case_or_404, core, staff
from channels.counter.forms import TaskForm
from channels.presenters import (
    STATE_LABELS,
    TAG_COLOURS,
    adapter_titles,
    branch_name,
    flag_reason,
    local_branch,
    staff_audit,
    when,
)
from router.assisted import branches
from router.assisted.backoffice import CONTACT_KINDS, contactable, notes_of
from router.cases import Case, DeliveryState
from router.catalogue import EVENTS
from router.exceptions import ValidationFailed
from router.i18n import N_

bp = Blueprint("casework", __name__, url_prefix="/casework")

CONTACT_WORDS = {
    "looking": N_("We are looking into your report"),
    "visit": N_("Please visit a Post Office"),
    "resent": N_("We have tried again to tell the organisations"),
}


def _waited(since: datetime) -> str:
    hours = (datetime.now(UTC) - since).total_seconds() / 3600
    if hours < 1:
        return gettext("under an hour")
    if hours < 48:
        return ngettext("%(num)d hour", "%(num)d hours", int(hours))
    return ngettext("%(num)d day", "%(num)d days", int(hours // 24))


@bp.get("")
def queue() -> str:
    rows = [
        {
            "case": f.case,
            "event": gettext(EVENTS[f.case.event_type].title),
            "reason": flag_reason(f.case.flagged),
            "since": when(f.since.isoformat()),
            "waited": _waited(f.since),
            "branch": branch_name(f.case.branch) if f.case.branch else "",
        }
        for f in core().casework.queue()
    ]
    return render_template("backoffice/flagged.html", rows=rows)


def _state(state: str) -> str:
    """A history entry's state in words, for a delivery's states; else as stored
    ("received", "branch", "erased")."""
    try:
        return gettext(STATE_LABELS[DeliveryState(state)])
    except ValueError:
        return state


def _branch_choices(case: Case) -> list[SelectChoice]:
    needed = branches.services_for(case.counter_tasks)
    able = [b for b in branches.load_branches().values() if b.offers(needed)]
    return [
        SelectChoice(b.id, local_branch(b).name)
        for b in sorted(able, key=lambda b: local_branch(b).name)
    ]


def _page(
    case: Case,
    contact: ContactForm | None = None,
    reassign: ReassignForm | None = None,
    close: CloseForm | None = None,
    errors: list[dict[str, str]] | None = None,
) -> Any:
    titles = adapter_titles(core().adapters)
    contact = contact or ContactForm(formdata=None)
    contact.kind.choices = [SelectChoice(k, gettext(CONTACT_WORDS[k])) for k in CONTACT_KINDS]
    reassign = reassign or ReassignForm(formdata=None)
    reassign.branch.choices = _branch_choices(case) if case.at_counter else []
    close = close or CloseForm(formdata=None)
    deliveries = [
        {
            "name": name,
            "title": titles.get(name, name),
            "label": gettext(STATE_LABELS[d.state]),
            "colour": TAG_COLOURS[d.state],
            "detail": d.detail,
            "failed": d.state == DeliveryState.FAILED,
            "updated": when(d.updated_at),
        }
        for name, d in case.deliveries.items()
    ]
    history = [
        {
            "at": when(h.at, seconds=True),
            "department": titles.get(h.department, h.department),
            "state": _state(h.state),
            "detail": h.detail,
        }
        for h in core().store.history(case.ref)
    ]
    return render_template(
        "backoffice/case.html",
        case=case,
        flagged=flag_reason(case.flagged),
        event=gettext(EVENTS[case.event_type].title),
        deliveries=deliveries,
        history=history,
        audit=staff_audit(core().audit_for_case(case.ref)),
        notes=[{**n, "at": when(n["at"])} for n in notes_of(core().store, case)],
        contactable=contactable(case),
        branch=branch_name(case.branch) if case.branch else "",
        contact_form=contact,
        reassign_form=reassign,
        close_form=close,
        task_form=TaskForm(),
        errors=errors or [],
    ), (400 if errors else 200)


@bp.get("/cases/<ref>")
def case(ref: str) -> Any:
    found = case_or_404(ref)
    core().casework.viewed(found.ref, staff())
    return _page(found)


def _done(found: Case, message: str) -> Any:
    flash(message)
    return redirect(url_for(".case", ref=found.display_ref))


@bp.post("/cases/<ref>/replay/<department>")
def replay(ref: str, department: str) -> Any:
    found = case_or_404(ref)
    if department not in found.deliveries:
        return redirect(url_for(".case", ref=found.display_ref))
    if TaskForm().validate_on_submit():
        if core().casework.replay(found, department, staff()):
            return _done(found, gettext("The delivery is being sent again."))
        return _done(found, gettext("That delivery is no longer failed: nothing was sent again."))
    return redirect(url_for(".case", ref=found.display_ref))


def _refused(found: Case, failed: ValidationFailed, form: Any, anchor: str, **forms: Any) -> Any:
    errors = []
    for name, message in failed.errors.items():
        form[name].errors = [gettext(message)]
        errors.append({"text": gettext(message), "href": anchor})
    return _page(found, errors=errors, **forms)


@bp.post("/cases/<ref>/contact")
def contact(ref: str) -> Any:
    found = case_or_404(ref)
    form = ContactForm()
    form.kind.choices = [SelectChoice(k, gettext(CONTACT_WORDS[k])) for k in CONTACT_KINDS]
    if form.validate_on_submit():
        try:
            core().casework.contact(found.ref, form.kind.data or "", staff())
        except ValidationFailed as failed:
            return _refused(found, failed, form, "#kind", contact=form)
        return _done(found, gettext("The message will be sent to the citizen."))
    return _refused(
        found,
        ValidationFailed({"kind": N_("Choose the message to send")}),
        form,
        "#kind",
        contact=form,
    )


@bp.post("/cases/<ref>/branch")
def reassign(ref: str) -> Any:
    found = case_or_404(ref)
    form = ReassignForm()
    form.branch.choices = _branch_choices(found) if found.at_counter else []
    if form.validate_on_submit():
        try:
            core().casework.reassign(found.ref, form.branch.data or "", staff())
        except ValidationFailed as failed:
            return _refused(found, failed, form, "#branch", reassign=form)
        moved_to = branch_name(form.branch.data or "")
        return _done(found, gettext("The report is now waiting at %(branch)s.", branch=moved_to))
    return _refused(
        found,
        ValidationFailed({"branch": N_("Choose a branch from the list")}),
        form,
        "#branch",
        reassign=form,
    )


@bp.post("/cases/<ref>/close")
def close(ref: str) -> Any:
    found = case_or_404(ref)
    form = CloseForm()
    if form.validate_on_submit():
        try:
            core().casework.close(found.ref, form.note.data or "", staff())
        except ValidationFailed as failed:
            return _refused(found, failed, form, "#note", close=form)
        flash(gettext("Follow-up closed for %(ref)s.", ref=found.display_ref))
        return redirect(url_for(".queue"))
    return _refused(
        found,
        ValidationFailed({"note": N_("Enter a note saying what was done")}),
        form,
        "#note",
        close=form,
    )
