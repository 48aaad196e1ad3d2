"""The citizen's status page: each organisation's state in plain words, what happens
next, what was shared with whom and when; kept live by htmx while anything is pending.

A reference alone reveals nothing: the page needs the secret from the confirmation
link, or the reference with the reporter's own date of birth and the postcode given in
the report (not any date of birth in the case: a baby's has few candidates). Wrong
guesses are counted per (reference, client) and per client and, past a few, refused
for a while; a right secret is never refused.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_date, gettext
from werkzeug.wrappers import Response

from channels.context import case_or_404, core, find_case
from channels.presenters import (
    IDENTITY_OUTCOMES,
    TAG_COLOURS,
    adapter_titles,
    citizen_audit,
    delivery_words,
    display_answer,
    how_we_know,
    local_branch,
    task_name,
    task_to_bring,
    visit,
    when,
)
from channels.web import forms, identity, sign_in
from channels.web.access import allowed, grant, revoke
from channels.web.forms import checked_date_of_birth
from router import reference, validators
from router import throttle as throttling
from router.assisted import branches
from router.cases import PENDING_STATES, Case, DeliveryState
from router.catalogue import EVENTS, Role
from router.exceptions import ValidationFailed
from router.retention import BY_CITIZEN, NotFinished
from router.throttle import Throttle

bp = Blueprint("status", __name__, url_prefix="/status")

# How often the page asks for news while something is pending (htmx), in seconds.
POLL_SECONDS = 2


def throttle() -> Throttle:
    """Wrong guesses at one reference from one client."""
    return core().throttle("status", limit=5)


def address_throttle() -> Throttle:
    """Wrong guesses from one client, whatever the reference."""
    return core().throttle("status-address", limit=20)


def _client() -> str:
    return request.remote_addr or "unknown"


def _checks(ref: str) -> list[tuple[Throttle, str]]:
    # Per (reference, client) and per client, never per reference alone: a stranger who
    # heard a reference read aloud cannot lock its citizen out (issue 13, row 2).
    return [(throttle(), f"{ref} {_client()}"), (address_throttle(), _client())]


def _too_many(wait: int) -> Response:
    minutes = max(1, (wait + 59) // 60)
    page = render_template("errors/429.html", minutes=minutes)
    response = make_response(page, 429)
    response.headers["Retry-After"] = str(wait)
    return response


@bp.route("", methods=["GET", "POST"])
def find() -> Any:
    """Find a case by its reference and the reporter's date of birth and postcode."""
    form = forms.FindCaseForm()
    if not form.is_submitted() and request.args.get("ref"):
        form.reference.data = request.args["ref"][:20]
    if form.validate_on_submit():
        ref = _reference(form)
        born = _date_of_birth(form)
        postcode = _postcode(form)
        if ref is not None and born is not None and postcode is not None:
            # Counted first, in one atomic step, then refused past the limit (row 4).
            checks = _checks(ref)
            wait = throttling.attempt(checks)
            if wait:
                return _too_many(wait)
            case = find_case(ref)
            if case is not None and _reporter_matches(case, born, postcode):
                throttling.succeeded(checks)  # a right answer is never a failure
                throttle().forget(checks[0][1])
                grant(ref)
                return redirect(url_for(".show", ref=case.display_ref))
            form.reference.errors = [
                gettext(
                    "We could not find a report with that reference, date of birth "
                    "and postcode. Check them and try again"
                )
            ]
    errors = [
        {"text": form[name].errors[0], "href": anchor}
        for name, anchor in (
            ("reference", "#reference"),
            ("date_of_birth", "#date_of_birth-day"),
            ("postcode", "#postcode"),
        )
        if form[name].errors
    ]
    return render_template("citizen/find.html", form=form, errors=errors), (400 if errors else 200)


def _reference(form: forms.FindCaseForm) -> str | None:
    typed = form.reference.data or ""
    ref = reference.normalise(typed)
    if not typed.strip():
        form.reference.errors = [gettext("Enter your reference number")]
    elif ref is None:
        form.reference.errors = [
            gettext(
                "Enter the reference number as it is shown on your confirmation, like ACDE-FGHJ-K"
            )
        ]
    return ref


def _date_of_birth(form: forms.FindCaseForm) -> str | None:
    return checked_date_of_birth(form.date_of_birth, gettext("Enter your date of birth"))


def _postcode(form: forms.FindCaseForm) -> str | None:
    typed = (form.postcode.data or "").strip()
    if not typed:
        form.postcode.errors = [gettext("Enter the postcode you gave in the report")]
        return None
    try:
        return validators.parse_postcode(typed)
    except validators.Invalid:
        form.postcode.errors = [gettext("Enter a real postcode, like SW1A 1AA")]
        return None


def _reporter_matches(case: Case, born: str, postcode: str) -> bool:
    """The reporter's own date of birth, and a postcode given in the report (row 1):
    not any date of birth in the case, as a baby's has at most 367 candidates."""
    event = EVENTS[case.event_type]
    postcodes = set()
    for q in event.questions:
        if q.role is Role.POSTCODE and case.answers.get(q.field):
            try:
                postcodes.add(validators.parse_postcode(case.answers[q.field]))
            except validators.Invalid:
                continue
    return event.reporter.date_of_birth(case.answers) == born and postcode in postcodes


@bp.get("/<ref>")
def show(ref: str) -> Any:
    canonical = reference.normalise(ref)
    if canonical is None:
        abort(404)
    secret = request.args.get("s", "")
    if secret:
        case = find_case(canonical)
        # A right secret always opens the page, however many wrong guesses others made
        # (row 2); it cannot be guessed (128 random bits). Wrong ones are counted.
        if case is not None and reference.secret_matches(secret, case.secret_hash):
            grant(canonical)
        elif not allowed(canonical):
            wait = throttling.attempt(_checks(canonical))
            if wait:
                return _too_many(wait)
            return redirect(url_for(".find", ref=reference.display(canonical)))
        # Granted: now the same page at a clean address, so the secret leaves the
        # address bar and the browser's history (row 20).
        return redirect(_clean_url(canonical))
    if not allowed(canonical):
        return redirect(url_for(".find", ref=reference.display(canonical)))
    view = _view(case_or_404(canonical))
    outcome = sign_in.take_outcome(canonical)
    if outcome in IDENTITY_OUTCOMES:
        kind, message = IDENTITY_OUTCOMES[outcome]
        view["outcome"] = {"kind": kind, "text": gettext(message)}
    return render_template("citizen/status.html", **view)


def _clean_url(canonical: str) -> str:
    address = url_for(".show", ref=reference.display(canonical))
    lang = request.args.get("lang")
    return f"{address}?lang={lang}" if lang in ("en", "cy") else address


@bp.post("/<ref>/sign-out")
def sign_out(ref: str) -> Any:
    """End this browser's access to the report: its link or details are needed again."""
    canonical = reference.normalise(ref)
    if canonical is None:
        abort(404)
    form = forms.SignOutOfReportForm()
    if not form.validate_on_submit():
        abort(400)
    revoke(canonical)
    flash(gettext("You have signed out of this report."))
    return redirect(url_for(".find", ref=reference.display(canonical)))


@bp.get("/<ref>/deliveries")
def deliveries(ref: str) -> Any:
    """The part of the status page htmx refreshes; a full page without JavaScript."""
    return render_template("partials/deliveries.html", **_view(_seen_case(ref)))


def _seen_case(ref: str) -> Case:
    """The case, if this session has proved it may see it; otherwise a 404."""
    return case_or_404(ref, may_see=allowed)


def _view(case: Case) -> dict[str, Any]:
    event = EVENTS[case.event_type]
    titles = adapter_titles(core().adapters)
    rows = []
    for name, d in case.deliveries.items():
        shared = d.state in (DeliveryState.DELIVERED, DeliveryState.COMPLETED_AT_COUNTER)
        label, next_step = delivery_words(d.state, d.detail)
        rows.append(
            {
                "name": name,
                "title": titles.get(name, name),
                "state": d.state,
                "label": label,
                "colour": TAG_COLOURS[d.state],
                "next": next_step,
                "tasks": [(task_name(t), task_to_bring(t)) for t in d.tasks],
                "fields": [
                    {
                        "key": {"text": gettext(event.label(f))},
                        "value": {
                            "text": gettext("Deleted")
                            if case.erased
                            else display_answer(event, f, case.answers.get(f), masked=True)
                        },
                    }
                    for f in d.fields
                ],
                "shared": shared,
                "shared_at": when(d.updated_at) if shared else "",
                "receipt": d.receipt.reference if shared and d.receipt else "",
            }
        )
    not_told = [
        {"title": titles.get(d.department, d.department), "reason": gettext(d.reason)}
        for d in case.plan.decisions
        if not d.told
    ]
    pending = any(d.state in PENDING_STATES for d in case.deliveries.values())
    touched = citizen_audit(core().audit_for_case(case.ref))
    development = identity.development()
    waiting_identity = case.waiting_for("identity")
    return {
        "how_we_know": how_we_know(case, identity.issuer() if development else ""),
        "identity_waiting": [titles.get(n, n) for n in waiting_identity],
        "sign_in_online": identity.configured() and bool(waiting_identity),
        "development_provider": development,
        **visit(case),
        "touched": touched,
        "change_branch": url_for(".branch", ref=case.display_ref) if case.at_counter else "",
        "case": case,
        "event": event,
        "rows": rows,
        "not_told": not_told,
        "pending": pending,
        "poll_seconds": POLL_SECONDS,
        "received_at": when(case.created_at),
        "today": date.today(),
        **_erasure(case),
    }


def _erasure(case: Case) -> dict[str, Any]:
    """What the page says about deleting the citizen's details: when they were (and
    until when the record without them is kept), or that they can ask for it now."""
    policy = core().retention.policy
    if case.erased:
        erased = datetime.fromisoformat(case.erased_at)
        return {
            "erased_at": when(case.erased_at),
            "erased_by_citizen": case.erased_by == BY_CITIZEN,
            "record_until": format_date(erased + timedelta(days=policy.record_days), "d MMMM y"),
        }
    return {"may_erase": case.finished, "retain_days": policy.retain_days}


@bp.route("/<ref>/delete", methods=["GET", "POST"])
def delete(ref: str) -> Any:
    """The citizen asks for their details to be deleted now, once everything is final."""
    case = _seen_case(ref)
    back = url_for(".show", ref=case.display_ref)
    if case.erased:
        return redirect(back)
    if not case.finished:
        return render_template("citizen/delete.html", case=case, back=back, busy=True), 409
    form = forms.DeleteDetailsForm()
    if form.validate_on_submit():
        try:
            core().retention.erase(case.ref, BY_CITIZEN)
        except NotFinished:  # something moved on since the page was shown
            return render_template("citizen/delete.html", case=case, back=back, busy=True), 409
        return redirect(back + "#deleted")
    return render_template(
        "citizen/delete.html",
        case=case,
        back=back,
        busy=False,
        form=form,
        retain_days=core().retention.policy.retain_days,
    )


@bp.route("/<ref>/branch", methods=["GET", "POST"])
def branch(ref: str) -> Any:
    """Choose another Post Office: the nearest to a postcode that offer what is needed."""
    case = _seen_case(ref)
    if not case.at_counter:
        return redirect(url_for(".show", ref=case.display_ref))
    postcode = (request.values.get("postcode") or str(case.answers.get("postcode", ""))).strip()
    errors: list[dict[str, str]] = []
    form = forms.ChooseBranchForm()
    if form.validate_on_submit() and request.form.get("branch"):
        try:
            core().desk.move(case.ref, request.form["branch"])
        except ValidationFailed as failed:
            errors.append({"text": gettext(next(iter(failed.errors.values()))), "href": "#branch"})
        else:
            return redirect(url_for(".show", ref=case.display_ref) + "#post-office")
    found = branches.nearest(postcode, case.counter_tasks, limit=5) if postcode else []
    if postcode and not found:
        errors.append({"text": gettext("Enter a UK postcode, like SW1A 1AA"), "href": "#postcode"})
    return render_template(
        "citizen/branch.html",
        case=case,
        postcode=postcode,
        found=[(local_branch(b), round(km, 1)) for b, km in found],
        form=form,
        errors=errors,
        back=url_for(".show", ref=case.display_ref),
    ), (400 if errors else 200)
