"""Counter mode: sign-in, the branch queue, finding a case by reference, identity checks,
completing tasks, reports on a citizen's behalf, and the branch audit.

Deny by default: one guard (``guard``) runs before every request to a staff area: the
counter (with the journey pages registered under /counter/report), the operators'
console (/ops) and the caseworkers' screens (/casework). It lets through only the
sign-in page, which every member of staff uses, without a signed-in member of staff,
and lets each role into its own area only (AREAS). Each counter account belongs to one
branch; a clerk sees
their own branch's queue, and opens a case from elsewhere only after confirming the
citizen is at their counter, which is audited like every other action.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext, ngettext
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from channels.context import case_or_404, core, staff
from channels.counter import forms
from channels.presenters import (
    COUNTER_STATE_LABELS,
    STATE_LABELS,
    TAG_COLOURS,
    adapter_titles,
    branch_name,
    display_answer,
    local_branch,
    money,
    staff_audit,
    staff_evidence,
    statement_view,
    task_done,
    task_name,
    waiting_for,
    when,
)
from channels.web.forms import checked_date_of_birth
from router import reference
from router.assisted import branches
from router.assisted.desk import AFTER_IDENTITY, DOCUMENTS
from router.assisted.staff import Staff
from router.cases import Case, DeliveryState
from router.catalogue import EVENTS, Role
from router.exceptions import RouterError, UnknownCase, ValidationFailed
from router.throttle import Throttle

bp = Blueprint("counter", __name__, url_prefix="/counter")

# A counter session ends after 30 minutes without a request, and after 10 hours at most.
IDLE_SECONDS = 30 * 60
LONGEST_SECONDS = 10 * 3600
PUBLIC = {"counter.sign_in"}
MANAGERS_ONLY = {"counter.audit_log", "counter.statement", "counter.statement_csv"}
# What every member of staff may do, whatever their area.
EVERY_ROLE = {"counter.sign_out"}
COUNTER_ROLES = ("clerk", "manager")
# Each staff area (its blueprints, under its address) and the roles it lets in: one
# sign-in for every member of staff, one guard for every area, and nobody in an area
# that is not theirs.
AREAS: dict[str, tuple[str, ...]] = {
    "counter": COUNTER_ROLES,
    "counter_journey": COUNTER_ROLES,
    "ops": ("operator",),
    "casework": ("caseworker",),
}
AREA_PATHS = ("/counter", "/ops", "/casework")
# Where each role lands after signing in, and the addresses its ``next`` may name.
HOMES = {
    "clerk": ("counter.branch_queue", ("/counter",)),
    "manager": ("counter.branch_queue", ("/counter",)),
    "operator": ("ops.console", ("/ops",)),
    "caseworker": ("casework.queue", ("/casework",)),
}
# The answers a clerk sees on a case page (see _case_page).
SHOWN_ROLES = (Role.NAME, Role.DATE_OF_BIRTH, Role.POSTCODE)


# --- the guard -----------------------------------------------------------------------------


def guard() -> Response | None:
    """Run before every request to a staff area (the counter, /ops, /casework): signed
    in, not expired, and the area is the account's role's."""
    if request.endpoint in PUBLIC:
        return None
    # Outside the staff areas, nothing to guard. Where no route matched (a 404 or 405 to
    # come) in an area, strangers learn nothing, not even which addresses exist.
    unmatched = request.endpoint is None and _under(request.path, AREA_PATHS)
    if request.blueprint not in AREAS and not unmatched:
        return None
    held = session.get("staff")
    now = time.time()
    if not held:
        return _to_sign_in()
    if now - held["seen"] > IDLE_SECONDS or now - held["since"] > LONGEST_SECONDS:
        start_afresh()
        flash(gettext("You were signed out because you had not used the service for a while."))
        return _to_sign_in()
    if core().staff.session_version(held["username"]) != held.get("version", ""):
        # The account was changed, disabled or removed since: its sessions end at once.
        start_afresh()
        flash(gettext("You were signed out because your account was changed. Sign in again."))
        return _to_sign_in()
    if now - held["seen"] > 60:  # a write a minute is enough to measure idleness
        held["seen"] = now
        session.modified = True
    g.staff = Staff(held["username"], held["branch"], held["role"])
    wrong_area = request.blueprint in AREAS and g.staff.role not in AREAS[request.blueprint]
    if wrong_area and request.endpoint not in EVERY_ROLE:
        abort(403)
    if unmatched and not _under(request.path, HOMES[g.staff.role][1]):
        abort(403)  # another area's address, even one that does not exist
    if request.endpoint in MANAGERS_ONLY and not g.staff.is_manager:
        abort(403)
    return None


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _to_sign_in() -> Response:
    target = request.full_path if request.method == "GET" else ""
    return redirect(url_for("counter.sign_in", next=target.rstrip("?") or None))


def start_afresh() -> None:
    """Forget all this browser's session held (the account, the cases being served, the
    reports started on a citizen's behalf) under a new session id; only the language
    chosen stays. The stored copy is deleted, so the old id opens nothing."""
    lang = session.get("lang")
    if session:
        current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
    session.clear()
    if lang:
        session["lang"] = lang


def _safe_next(target: str | None, role: str) -> str:
    """Only a path inside the role's own area, never another site; and nothing a header
    could be split with or a browser would read otherwise (control characters, any space
    but a plain one, backslashes): the role's home page instead."""
    home, areas = HOMES[role]
    if (
        target
        and _under(target.partition("?")[0], areas)
        and target.isprintable()
        and not any(c.isspace() or c == "\\" for c in target)
        and not urlsplit(target).netloc
    ):
        return target
    return url_for(home)


def address_throttle() -> Throttle:
    """Wrong passwords from one client, whatever the user name."""
    return core().throttle("counter-sign-in-address", limit=30)


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    form = forms.SignInForm()
    errors: list[dict[str, str]] = []
    if form.validate_on_submit():
        username = (form.username.data or "").strip().lower()
        address = request.remote_addr or "unknown"
        # Each attempt is counted before it is tried (row 4), per (user, client) with a
        # lock that grows, and per client (row 3): others cannot lock the clerk out.
        wait = core().desk.sign_in_wait(username, address) or address_throttle().attempt(address)
        if wait:
            minutes = max(1, (wait + 59) // 60)
            return (
                render_template("errors/429.html", minutes=minutes),
                429,
                {"Retry-After": str(wait)},
            )
        account = core().desk.sign_in(username, form.password.data or "")
        if account is None:
            core().desk.sign_in_failed(username, address)
            form.password.errors = [gettext("Enter a correct user name and password")]
            errors = [{"text": form.password.errors[0], "href": "#username"}]
        else:
            core().desk.sign_in_succeeded(username, address)
            address_throttle().succeeded(address)
            # A new, empty session at sign-in: one planted before it is worth nothing, and
            # nothing the last person at this browser left is seen by the next.
            start_afresh()
            now = time.time()
            session["staff"] = {
                "username": account.username,
                "branch": account.branch,
                "role": account.role,
                "version": account.session_version,
                "since": now,
                "seen": now,
            }
            return redirect(_safe_next(request.args.get("next"), account.role))
    return render_template("counter/sign_in.html", form=form, errors=errors), (
        400 if errors else 200
    )


@bp.post("/sign-out")
def sign_out() -> Response:
    start_afresh()
    flash(gettext("You have signed out."))
    return redirect(url_for("counter.sign_in"))


# --- the queue and finding cases -------------------------------------------------------------


def _waited(since: datetime) -> str:
    minutes = int((datetime.now(UTC) - since).total_seconds() // 60)
    if minutes < 60:
        return ngettext("%(num)d minute", "%(num)d minutes", minutes)
    hours = minutes // 60
    if hours < 48:
        return ngettext("%(num)d hour", "%(num)d hours", hours)
    return ngettext("%(num)d day", "%(num)d days", hours // 24)


@bp.get("")
def branch_queue() -> str:
    """The cases waiting at this clerk's branch, oldest first."""
    me = staff()
    rows = []
    for waiting in core().desk.branch_queue(me.branch):
        try:
            case = core().case(waiting.ref)
        except UnknownCase:
            continue
        rows.append(
            {
                "case": case,
                "event": gettext(EVENTS[case.event_type].title),
                "tasks": [task_name(t) for t in case.counter_tasks],
                "help": case.help_requested and "help" not in case.tasks_done,
                "waited": _waited(waiting.since),
            }
        )
    return render_template(
        "counter/branch_queue.html",
        rows=rows,
        branch=local_branch(branches.branch(me.branch)),
        staff=me,
    )


def find_throttle() -> Throttle:
    """Looking up references that do not exist, per member of staff: no walking the
    reference space from a counter."""
    return core().throttle("counter-find", limit=20)


def serve_throttles(ref: str) -> tuple[tuple[Throttle, str], ...]:
    """Wrong dates of birth for another branch's case: per member of staff, and per case
    (so several clerks cannot share the guessing of one citizen's)."""
    return (
        (core().throttle("counter-serve", limit=5), staff().username),
        (core().throttle("counter-serve-case", limit=10), ref),
    )


def _too_many(wait: int) -> Any:
    minutes = max(1, (wait + 59) // 60)
    return render_template("errors/429.html", minutes=minutes), 429, {"Retry-After": str(wait)}


@bp.route("/find", methods=["GET", "POST"])
def find() -> Any:
    form = forms.FindForm()
    errors: list[dict[str, str]] = []
    if form.validate_on_submit():
        wait = find_throttle().wait_seconds(staff().username)
        if wait:
            return _too_many(wait)
        typed = form.reference.data or ""
        problem = reference.mistake(typed) if typed.strip() else "empty"
        messages = {
            "empty": gettext("Enter the reference number"),
            "length": gettext("A reference number has 9 characters, like ACDE-FGHJ-K"),
            "characters": gettext(
                "A reference number has only the letters and numbers shown on the "
                "confirmation: check each character with the citizen"
            ),
            "check": gettext(
                "That reference number has a mistake in it: check each character with the citizen"
            ),
        }
        ref = reference.normalise(typed)
        if problem:
            form.reference.errors = [messages[problem]]
        elif ref is not None and not core().store.exists(ref):
            find_throttle().failed(staff().username)
            form.reference.errors = [gettext("There is no report with that reference number")]
        elif ref is not None:
            return redirect(url_for(".case", ref=reference.display(ref)))
        errors = [{"text": form.reference.errors[0], "href": "#reference"}]
    return render_template("counter/find.html", form=form, errors=errors), (400 if errors else 200)


def _may_serve(case: Case) -> bool:
    """A clerk's own branch's cases; another's only while serving that citizen."""
    return case.branch == staff().branch or case.ref in session.get("serving", [])


@bp.route("/cases/<ref>/serve", methods=["GET", "POST"])
def serve(ref: str) -> Any:
    """A case waiting elsewhere: open it only to serve the citizen at this counter."""
    case = case_or_404(ref)
    if _may_serve(case):
        return redirect(url_for(".case", ref=case.display_ref))
    form = forms.ServeForm()
    errors: list[dict[str, str]] = []
    if form.validate_on_submit():
        throttles = serve_throttles(case.ref)
        wait = max(t.wait_seconds(who) for t, who in throttles)
        if wait:
            return _too_many(wait)
        born = _date_of_birth(form)
        if not form.present.data:
            form.present.errors = [
                gettext("Confirm the citizen is at your counter, or go back to your queue")
            ]
        elif born is not None and core().desk.reporter_born_on(case, born):
            serving = session.setdefault("serving", [])
            serving.append(case.ref)
            session.modified = True
            core().desk.serve_from_another_branch(case, staff())
            return redirect(url_for(".case", ref=case.display_ref))
        elif born is not None:
            for t, who in throttles:
                t.failed(who)
            core().desk.serve_refused(case, staff())
            form.date_of_birth.errors = [
                gettext("The date of birth does not match the report: check it with the citizen")
            ]
        errors = [
            {"text": form[name].errors[0], "href": anchor}
            for name, anchor in (("present", "#present"), ("date_of_birth", "#date_of_birth-day"))
            if form[name].errors
        ]
    found = branches.load_branches().get(case.branch)
    elsewhere = local_branch(found) if found else None
    return render_template(
        "counter/serve.html", form=form, case=case, elsewhere=elsewhere, errors=errors
    ), (400 if errors else 200)


def _date_of_birth(form: forms.ServeForm) -> str | None:
    return checked_date_of_birth(
        form.date_of_birth, gettext("Enter the date of birth the citizen gives")
    )


@bp.route("/cases/<ref>", methods=["GET"])
def case(ref: str) -> Any:
    found = case_or_404(ref)
    if not _may_serve(found):
        return redirect(url_for(".serve", ref=found.display_ref))
    core().desk.viewed_case(found.ref, staff())
    return _case_page(found)


def _case_page(
    found: Case,
    identity: forms.IdentityForm | None = None,
    errors: list[dict[str, str]] | None = None,
) -> Any:
    event = EVENTS[found.event_type]
    identity = identity or forms.IdentityForm(formdata=None)
    identity.document.choices = [SelectChoice(k, gettext(v)) for k, v in DOCUMENTS.items()]
    titles = adapter_titles(core().adapters)
    # Only what a clerk needs to check the person in front of them is who the report is
    # about: names and dates of birth, and the postcode. No NI numbers, no bank details.
    shown = [
        (gettext(event.label(q.field)), display_answer(event, q.field, found.answers[q.field]))
        for q in event.questions
        if q.field in found.answers and q.role in SHOWN_ROLES
    ]
    deliveries = [
        {
            "title": titles.get(name, name),
            "label": gettext(COUNTER_STATE_LABELS.get(d.state, STATE_LABELS[d.state])),
            "colour": TAG_COLOURS[d.state],
            "state": d.state,
            "tasks": [task_name(t) for t in d.tasks],
            "acts_on": found.plan.decision(name).need.code,
            "waiting_for": waiting_for(d.detail) if d.state == DeliveryState.WAITING else "",
        }
        for name, d in found.deliveries.items()
    ]
    done = [
        {
            "task": task_done(task),
            "at": when(info["at"]),
            "branch": branch_name(info.get("branch", "")),
            "by": info.get("by", ""),
        }
        for task, info in found.tasks_done.items()
    ]
    waiting_tasks = found.counter_tasks
    needs_identity = "identity_check" in waiting_tasks
    buttons = [t for t in waiting_tasks if t != "identity_check"]
    # A photo or a voucher is for the person the report is about: their identity first.
    after_identity = [t for t in buttons if needs_identity and t in AFTER_IDENTITY]
    buttons = [t for t in buttons if t not in after_identity]
    if found.help_requested and "help" not in found.tasks_done:
        buttons.append("help")
    return render_template(
        "counter/case.html",
        case=found,
        event=event,
        shown=shown,
        deliveries=deliveries,
        done=done,
        identity_form=identity,
        needs_identity=needs_identity,
        buttons=[(t, task_done(t)) for t in buttons],
        after_identity=[task_name(t) for t in after_identity],
        task_form=forms.TaskForm(),
        branch=branch_name(found.branch),
        errors=errors or [],
        valid_until=found.counter_valid_until,
        documents=DOCUMENTS,
        evidence=staff_evidence(found),
    ), (400 if errors else 200)


@bp.post("/cases/<ref>/identity")
def identity(ref: str) -> Any:
    found = case_or_404(ref)
    if not _may_serve(found):
        return redirect(url_for(".serve", ref=found.display_ref))
    form = forms.IdentityForm()
    form.document.choices = [SelectChoice(k, gettext(v)) for k, v in DOCUMENTS.items()]
    if form.validate_on_submit():
        try:
            core().desk.record_identity(
                found.ref, form.document.data or "", form.last_four.data or "", staff()
            )
        except ValidationFailed as failed:
            anchors = {"document": "#document", "last_four": "#last_four"}
            errors = []
            for name, message in failed.errors.items():
                form[name].errors = [gettext(message)]
                errors.append({"text": gettext(message), "href": anchors.get(name, "#")})
            form.last_four.data = ""  # never show a whole document number back
            form.last_four.raw_data = [""]
            return _case_page(found, form, errors)
        flash(gettext("Identity check recorded."))
    return redirect(url_for(".case", ref=found.display_ref))


@bp.post("/cases/<ref>/tasks/<task>")
def complete(ref: str, task: str) -> Any:
    found = case_or_404(ref)
    if not _may_serve(found):
        return redirect(url_for(".serve", ref=found.display_ref))
    form = forms.TaskForm()
    if form.validate_on_submit():
        try:
            core().desk.complete(found.ref, task, staff())
        except ValidationFailed as failed:
            message = gettext(next(iter(failed.errors.values())))
            return _case_page(found, errors=[{"text": message, "href": "#tasks"}])
        flash(task_done(task))
    return redirect(url_for(".case", ref=found.display_ref))


# --- reports on a citizen's behalf, and the audit --------------------------------------------


@bp.get("/report")
def report() -> str:
    return render_template("counter/report.html", events=EVENTS.values())


@bp.get("/audit")
def audit_log() -> str:
    me = staff()
    rows = staff_audit(core().desk.branch_audit(me))
    return render_template(
        "counter/audit.html", rows=rows, branch=local_branch(branches.branch(me.branch))
    )


def _branch_statement() -> tuple[Any, str]:
    """This manager's branch's statement for ``?month=`` (this month by default)."""
    month = request.args.get("month", "").strip() or datetime.now(UTC).strftime("%Y-%m")
    party = core().ledger_party(branch=staff().branch)
    try:
        return core().statement(month, party), party
    except RouterError:
        abort(404)


@bp.get("/statement")
def statement() -> str:
    found, party = _branch_statement()
    return render_template(
        "counter/statement.html",
        statement=statement_view(found),
        csv_url=url_for(".statement_csv", month=found.month),
        tariff=core().tariff(),
        each=money(core().tariff().saved.pence_per_contact),
        months=core().ledger_months(),
    )


@bp.get("/statement.csv")
def statement_csv() -> Response:
    found, party = _branch_statement()
    body = core().statement_csv(found.month, party)
    name = f"statement-{found.month}-{staff().branch}.csv"
    return Response(
        body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
