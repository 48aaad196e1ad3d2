"""The citizen's journey for one life event: one question per page, who to tell,
check your answers, confirmation.

Answers live in the server-side session (Redis, through Flask-Session) between pages,
never in hidden fields. Each page is a GET that shows it and a POST that checks it and
redirects on success (post/redirect/get), so the browser's back button never offers
to send a form again. The journey holds a submission key and the status secret from
its first page, so a double click or a reload of the final POST makes one case, and
both answers show the same status link.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext, pgettext
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from channels.context import core, current_staff, public_url_for
from channels.presenters import (
    CITIZEN_CONFIDENCE_WORDS,
    IDENTITY_OUTCOMES,
    adapter_titles,
    delivery_words,
    display_answer,
    task_name,
    visit,
    waiting_for,
)
from channels.web import forms, identity, sign_in
from channels.web.access import grant
from channels.web.pages import satisfaction_form, take_feedback
from router import reference, routing
from router.cases import DeliveryState
from router.catalogue import CONTACT_FIELDS, EVENTS, EventType, Kind, Question
from router.exceptions import ValidationFailed
from router.trust import Evidence
from router.validators import mask_contact

bp = Blueprint("journey", __name__, url_prefix="/report")

TELL = "tell"
CHECK = "check"
DONE = "done"


# --- the journey in the session -----------------------------------------------------


def _event(name: str) -> EventType:
    event = EVENTS.get(name)
    if event is None:
        abort(404)
    return event


def counter_mode() -> bool:
    """True when counter staff take the report on a citizen's behalf (the same journey,
    registered again under /counter/report behind the counter's sign-in guard)."""
    return request.blueprint == "counter_journey"


def _journeys() -> dict[str, Any]:
    # Kept apart per channel, so a clerk's report never mixes with their own.
    journeys: dict[str, Any] = session.setdefault(f"journeys:{request.blueprint}", {})
    return journeys


def _journey(event: EventType) -> dict[str, Any] | None:
    return _journeys().get(event.name)


def _new_journey(event: EventType) -> dict[str, Any]:
    journey: dict[str, Any] = {
        "answers": {},
        "consent": None,
        "key": f"web-{uuid.uuid4()}",
        "secret": reference.new_secret(),
        "ref": None,
    }
    _journeys()[event.name] = journey
    session.modified = True
    return journey


def _save() -> None:
    session.modified = True


def _asked(event: EventType, answers: Mapping[str, Any]) -> list[Question]:
    """The questions that apply, given the answers so far, in order."""
    return [q for q in event.questions if q.applies(answers)]


def _first_unanswered(event: EventType, answers: Mapping[str, Any]) -> Question | None:
    for q in _asked(event, answers):
        if q.field not in answers:
            return q
    return None


def _next_page(event: EventType, journey: Mapping[str, Any], after: str | None) -> str:
    """Where to go next: the next question that applies, then who to tell, then check."""
    answers = journey["answers"]
    asked = _asked(event, answers)
    fields = [q.field for q in asked]
    start = fields.index(after) + 1 if after in fields else 0
    for q in asked[start:]:
        if q.field not in answers:
            return url_for(".question", event_name=event.name, field=q.field)
    missing = _first_unanswered(event, answers)
    if missing is not None:
        return url_for(".question", event_name=event.name, field=missing.field)
    if journey["consent"] is None or journey.get("newly"):
        return url_for(".tell", event_name=event.name)
    return url_for(".check", event_name=event.name)


def _previous_page(event: EventType, answers: Mapping[str, Any], field: str) -> str:
    fields = [q.field for q in _asked(event, answers)]
    if field in fields and fields.index(field) > 0:
        return url_for(".question", event_name=event.name, field=fields[fields.index(field) - 1])
    return url_for("counter.report") if counter_mode() else url_for("pages.start")


def _drop_unasked(event: EventType, journey: dict[str, Any]) -> None:
    """Forget answers to questions a changed answer made irrelevant (data we don't need)."""
    answers = journey["answers"]
    asked = {q.field for q in _asked(event, answers)}
    for name in list(answers):
        if name not in asked:
            del answers[name]


def _reconcile(event: EventType, journey: dict[str, Any]) -> None:
    """Bring who is told into line with the answers as they are now, once consent has
    been given: an organisation the answers no longer concern leaves the consent (and
    the check page says why), and one they newly concern is asked about on the tell
    page, nothing ticked for the citizen. ``offered`` holds what the tell page last
    offered, so an organisation the citizen left unticked is not asked about again."""
    _save()
    if journey["consent"] is None:
        return
    offers = core().offers(event.name, journey["answers"])
    choosable = {d.department for d in offers if d.told}
    reasons = {d.department: d.reason for d in offers if not d.told}
    dropped: dict[str, str] = {
        name: reason for name, reason in journey.get("dropped", {}).items() if name in reasons
    }
    for name in journey["consent"]:
        if name not in choosable:
            dropped[name] = reasons.get(name, "")
    journey["dropped"] = dropped
    journey["consent"] = [name for name in journey["consent"] if name in choosable]
    offered = set(journey.get("offered", choosable)) & choosable
    journey["offered"] = sorted(offered)
    newly = choosable - offered
    journey["newly"] = sorted(newly)
    if not journey["consent"] and not newly:
        journey["consent"] = None  # nobody left to tell: choose again


def _live_journey(event: EventType) -> dict[str, Any] | Response:
    """The journey in progress, or a redirect to its start if there is none."""
    journey = _journey(event)
    if journey is None or journey.get("ref"):
        return redirect(url_for(".begin", event_name=event.name))
    return journey


# --- pages -----------------------------------------------------------------------------


@bp.get("/<event_name>/start")
def before_you_start(event_name: str) -> str:
    """What the report is for and what to have to hand, with the start button."""
    event = _event(event_name)
    return render_template("citizen/before_you_start.html", event=event, counter=counter_mode())


@bp.get("/<event_name>")
def begin(event_name: str) -> Response:
    """Start reporting an event, or carry on with the one in progress."""
    event = _event(event_name)
    journey = _journey(event)
    if journey is None or journey.get("ref"):
        journey = _new_journey(event)
        if not counter_mode():
            core().journey_started(event.name)  # the published completion rate
    return redirect(_next_page(event, journey, None))


@bp.route("/<event_name>/<field>", methods=["GET", "POST"])
def question(event_name: str, field: str) -> Any:
    event = _event(event_name)
    if field not in event.fields:
        abort(404)
    journey = _live_journey(event)
    if isinstance(journey, Response):
        return journey
    answers = journey["answers"]
    q = event.question(field)
    if not q.applies(answers):
        return redirect(_next_page(event, journey, None))
    changing = request.args.get("change") == "1"
    form = forms.question_form(q, event.name, answers.get(field))
    bound = form[field]
    if form.validate_on_submit():
        try:
            value = event.check_answer(field, bound.data, answers)
        except ValidationFailed as failed:
            bound.errors = [gettext(failed.errors[field])]
        else:
            answers[field] = value  # "" for an optional question left blank
            _drop_unasked(event, journey)
            _reconcile(event, journey)
            if not changing:
                return redirect(_next_page(event, journey, field))
            # A changed answer may open a question not yet answered (a licence number
            # after "yes, I have a licence"): ask it, then come back to check answers.
            missing = _first_unanswered(event, answers)
            if missing is not None:
                return redirect(
                    url_for(".question", event_name=event.name, field=missing.field, change="1")
                )
            return redirect(_next_page(event, journey, None))
    back = (
        url_for(".check", event_name=event.name)
        if changing
        else _previous_page(event, answers, field)
    )
    return render_template(
        "citizen/question.html",
        event=event,
        question=q,
        form=form,
        field=bound,
        params=forms.render_params(q, event.name),
        back=back,
        errors=_error_list(q, bound),
    ), (400 if bound.errors else 200)


def _error_list(q: Question, field: Any) -> list[dict[str, str]]:
    if not field.errors:
        return []
    anchor = f"#{q.field}-day" if q.kind is Kind.DATE else f"#{q.field}"
    return [{"text": field.errors[0], "href": anchor}]


@bp.route("/<event_name>/" + TELL, methods=["GET", "POST"])
def tell(event_name: str) -> Any:
    """Who should we tell: every interested organisation, none chosen in advance."""
    event = _event(event_name)
    journey = _live_journey(event)
    if isinstance(journey, Response):
        return journey
    if _first_unanswered(event, journey["answers"]) is not None:
        return redirect(_next_page(event, journey, None))
    offers = core().offers(event.name, journey["answers"])
    choosable = [d for d in offers if d.told]
    titles = adapter_titles(core().adapters)
    form = forms.TellForm()
    form.departments.choices = [SelectChoice(d.department, titles[d.department]) for d in choosable]
    if not form.is_submitted() and journey["consent"]:
        # What the citizen chose stays chosen; an organisation a changed answer newly
        # concerns is offered unticked (journey["newly"], named in a banner).
        form.departments.data = list(journey["consent"])
    if not form.is_submitted():
        form.help.data = bool(journey.get("help"))
    errors: list[dict[str, str]] = []
    if form.validate_on_submit():
        chosen = [c for c in (form.departments.data or []) if c in titles]
        try:
            core().check_consent(event.name, chosen)
        except ValidationFailed as failed:
            form.departments.errors = [gettext(failed.errors["consent"])]
        else:
            journey["consent"] = sorted(set(chosen) & {d.department for d in choosable})
            journey["help"] = bool(form.help.data) and not counter_mode()
            if not journey["consent"]:
                form.departments.errors = [gettext("Select at least one organisation to tell")]
            else:
                journey["offered"] = sorted(d.department for d in choosable)
                journey["newly"] = []
                journey["dropped"] = {}
                _save()
                return redirect(url_for(".check", event_name=event.name))
    if form.departments.errors:
        errors = [{"text": form.departments.errors[0], "href": "#departments"}]
    items = [
        {
            "hint": {"html": _offer_hint(event, d)},
        }
        for d in choosable
    ]
    last = _asked(event, journey["answers"])[-1].field
    return render_template(
        "citizen/tell.html",
        event=event,
        form=form,
        items=items,
        not_needed=[d for d in offers if d.mode == "not_needed"],
        newly=[titles[n] for n in journey.get("newly", []) if n in titles],
        titles=titles,
        errors=errors,
        counter=counter_mode(),
        back=url_for(".question", event_name=event.name, field=last),
    ), (400 if errors else 200)


def _offer_hint(event: EventType, decision: routing.Decision) -> str:
    from markupsafe import escape

    told = ", ".join(gettext(event.label(f)) for f in decision.fields)
    text = escape(gettext("They will be told: %(fields)s", fields=told))
    if decision.mode == "assisted":
        tasks = ", ".join(task_name(t) for t in decision.tasks)
        text += escape(" ") + escape(
            gettext("You will need to visit a Post Office to finish this: %(tasks)s", tasks=tasks)
        )
    return str(text)


@bp.route("/<event_name>/" + CHECK, methods=["GET", "POST"])
def check(event_name: str) -> Any:
    """Check your answers, then send: the one POST that makes a case."""
    event = _event(event_name)
    sent = _journey(event)
    if sent is not None and sent.get("ref") and request.method == "POST":
        # A reload of the POST, or the second of a double click: already sent.
        return redirect(url_for(".done", event_name=event.name))
    journey = _live_journey(event)
    if isinstance(journey, Response):
        return journey
    answers = journey["answers"]
    if _first_unanswered(event, answers) is not None or not journey["consent"]:
        return redirect(_next_page(event, journey, None))
    # Answers changed since consent was given (or an adapter came or went): who is
    # told follows them, and anyone newly concerned is asked about first.
    _reconcile(event, journey)
    if not journey["consent"] or journey.get("newly"):
        return redirect(url_for(".tell", event_name=event.name))
    offers = {d.department: d for d in core().offers(event.name, answers)}
    form = forms.OnBehalfForm() if counter_mode() else forms.FlaskForm()
    errors: list[dict[str, str]] = []
    if form.validate_on_submit() and counter_mode() and not form.consent.data:
        form.consent.errors = [
            gettext("Confirm the citizen agrees to us telling these organisations")
        ]
        errors.append({"text": form.consent.errors[0], "href": "#consent"})
    elif form.is_submitted() and not form.errors:
        errors = _send(event, journey)
        if not errors:
            return redirect(url_for(".done", event_name=event.name))
    return render_template(
        "citizen/check.html",
        event=event,
        form=form,
        rows=_answer_rows(event, answers),
        told=_told_rows(event, journey, offers),
        no_longer_told=_no_longer_told(journey),
        errors=errors,
        counter=counter_mode(),
        back=url_for(".tell", event_name=event.name),
        **_identity_view(event, journey, offers),
    ), (400 if errors else 200)


def _no_longer_told(journey: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(organisation, why) for each one chosen that changed answers no longer concern."""
    titles = adapter_titles(core().adapters)
    return [
        (titles[name], gettext(reason) if reason else "")
        for name, reason in journey.get("dropped", {}).items()
        if name in titles
    ]


def _needs_identity(journey: Mapping[str, Any], offers: Mapping[str, routing.Decision]) -> bool:
    """Whether an organisation chosen acts only once the reporter has proved who they are."""
    nothing = Evidence()
    return any(
        "identity" in offers[name].missing(nothing)
        for name in journey["consent"] or []
        if name in offers
    )


def _identity_view(
    event: EventType, journey: dict[str, Any], offers: Mapping[str, routing.Decision]
) -> dict[str, Any]:
    """Proving your identity before sending (online only, and optional)."""
    if counter_mode() or not identity.configured():
        return {}
    view: dict[str, Any] = {}
    outcome = journey.pop("identity_outcome", "")
    if outcome:
        _save()
    if outcome in IDENTITY_OUTCOMES:
        kind, message = IDENTITY_OUTCOMES[outcome]
        view["outcome"] = {"kind": kind, "text": gettext(message)}
    proved = sign_in.journey_identity(event.name, journey)
    if proved is not None:
        view["proved_level"] = gettext(CITIZEN_CONFIDENCE_WORDS[proved.confidence])
    elif _needs_identity(journey, offers):
        view["offer_sign_in"] = True
        view["development_provider"] = identity.development()
    return view


@bp.post("/<event_name>/prove-identity")
def prove_identity(event_name: str) -> Response:
    """Prove your identity before sending: off to the provider, back to check answers."""
    event = _event(event_name)
    if counter_mode() or not identity.configured():
        abort(404)
    journey = _live_journey(event)
    if isinstance(journey, Response):
        return journey
    away = sign_in.begin(f"report:{event.name}")
    if away is None:
        journey["identity_outcome"] = "failed"
        _save()
        return redirect(url_for(".check", event_name=event.name), 303)
    return away


def _send(event: EventType, journey: dict[str, Any]) -> list[dict[str, str]]:
    """Submit the journey's report once (its submission key makes a repeat harmless);
    return the errors to show, none when it was sent."""
    clean = {k: v for k, v in journey["answers"].items() if v != ""}
    staff = current_staff()
    try:
        result = core().submit(
            event.name,
            clean,
            journey["consent"],
            channel="counter" if staff else "web",
            submission_key=journey["key"],
            secret=journey["secret"],
            help_requested=bool(journey.get("help")),
            branch=staff.branch if staff else None,
            welsh=g.get("lang") == "cy",
            submitted_by=staff.username if staff else "",
            identity=None if staff else sign_in.journey_identity(event.name, journey),
        )
    except ValidationFailed as failed:
        # An answer that was right when given may be out of date now (a moving date
        # more than 12 months ago): send the citizen back to change it.
        return [
            {
                "text": gettext(message),
                "href": url_for(".question", event_name=event.name, field=name, change="1")
                if name in event.fields
                else url_for(".tell", event_name=event.name),
            }
            for name, message in failed.errors.items()
        ]
    journey["ref"] = result.ref
    # Sent: the answers are the case's now (sealed in the store). The session keeps
    # only what the confirmation needs: the reference and the status secret.
    journey["answers"] = {}
    _save()
    if not staff:
        grant(result.ref)
    return []


def _summary_row(key: str, value: dict[str, str], href: str, hidden: str) -> dict[str, Any]:
    """One row of a GOV.UK summary list, with its "Change" link."""
    return {
        "key": {"text": key},
        "value": value,
        "actions": {
            "items": [{"href": href, "text": gettext("Change"), "visuallyHiddenText": hidden}]
        },
    }


def _answer_rows(event: EventType, answers: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        _summary_row(
            gettext(event.check_key(q.field)),
            {"text": display_answer(event, q.field, answers.get(q.field))},
            url_for(".question", event_name=event.name, field=q.field, change="1"),
            gettext(event.label(q.field)).lower(),
        )
        for q in _asked(event, answers)
    ]


def _told_rows(
    event: EventType, journey: Mapping[str, Any], offers: Mapping[str, routing.Decision]
) -> list[dict[str, Any]]:
    """Who we will tell, and whether help at a Post Office was asked for."""
    titles = adapter_titles(core().adapters)
    tell = url_for(".tell", event_name=event.name)
    told = [
        _summary_row(
            titles[name],
            {"html": _offer_hint(event, offers[name])},
            tell,
            gettext("who we will tell"),
        )
        for name in journey["consent"]
        if name in offers
    ]
    if journey.get("help"):
        told.append(
            _summary_row(
                gettext("Help at a Post Office"),
                # Welsh answers with the verb of the question it answers ("Oes").
                {"text": pgettext("help_requested", "Yes")},
                tell,
                gettext("help at a Post Office"),
            )
        )
    return told


@bp.route("/<event_name>/" + DONE, methods=["GET", "POST"])
def done(event_name: str) -> Any:
    """The confirmation: reference, status link and what happens next; and online,
    GOV.UK's satisfaction question (posted here, kept apart from the report)."""
    event = _event(event_name)
    journey = _journey(event)
    if journey is None or not journey.get("ref"):
        return redirect(url_for(".begin", event_name=event.name))
    counter = counter_mode()
    problems: dict[str, str] = {}
    if request.method == "POST":
        if counter or journey.get("rated"):
            abort(404)  # asked of citizens online, once a report
        problems = take_feedback()
        if not problems:
            journey["rated"] = True
            _save()
            return redirect(url_for(".done", event_name=event.name, _anchor="feedback"))
    case = core().case(journey["ref"])
    titles = adapter_titles(core().adapters)
    status_link = public_url_for("status.show", ref=case.display_ref, s=journey["secret"])
    waiting = [
        (
            name,
            gettext("Waiting for %(what)s", what=waiting_for(d.detail))
            if counter
            else delivery_words(d.state, d.detail)[0],
        )
        for name, d in case.deliveries.items()
        if d.state == DeliveryState.WAITING
    ]
    # Where the workers send the reporter's messages (router.delivery.notices).
    contacts = [mask_contact(str(case.answers[f])) for f in CONTACT_FIELDS if case.answers.get(f)]
    # At the counter the citizen is in front of the clerk: what is left is done now.
    counter_left = [task_name(t) for t in case.counter_tasks]
    if case.help_requested and "help" not in case.tasks_done:
        counter_left.append(gettext("Help to finish the report"))
    told_now = [
        name
        for name, d in case.deliveries.items()
        if d.state not in (DeliveryState.WAITING, DeliveryState.ASSISTED)
    ]
    return render_template(
        "citizen/done.html",
        event=event,
        case=case,
        titles=titles,
        told_now=told_now,
        waiting=waiting,
        after_visit=[n for n, d in case.deliveries.items() if d.state == DeliveryState.ASSISTED],
        status_link=status_link,
        counter=counter,
        counter_left=counter_left if counter else [],
        contacts=contacts,
        rated=bool(journey.get("rated")),
        **satisfaction_form(request.path, problems, page=False),
        **visit(case),
    ), (400 if problems else 200)
