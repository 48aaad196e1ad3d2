"""The ``router`` command: run the service, submit life events, look after deliveries."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import warnings
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import click
from redis import Redis
from redis.exceptions import RedisError

from router import demo, logs, metrics, redis_server, reference, retention, sealing, settings
from router.adapters import mock_gro
from router.adapters.mocks import Faults, configure_faults, get_faults
from router.adapters.registry import Registry
from router.assisted import branches
from router.assisted.staff import ROLES
from router.catalogue import EVENTS
from router.delivery import notices
from router.delivery.worker import Supervisor, run_worker, stop_on_signals
from router.dev_identity import LABEL, DevelopmentProvider
from router.exceptions import UnknownCase, UnknownDelivery, ValidationFailed
from router.ledger import LedgerError, pounds, statement_csv
from router.rotation import FOLLOW_MARGIN, Progress, Rotation, RotationError, describe
from router.rotation import state as rotation_state
from router.service import LifeEventRouter

log = logs.get_logger(__name__)


data_dir = sealing.data_dir


def redis_url() -> str:
    """``REDIS_URL`` (or the Sentinel URL ``REDIS_SENTINELS`` builds), else the address
    ``router up`` left in the data folder (as its cli user)."""
    url = redis_server.url_from_env()
    if url:
        return url
    marker = data_dir() / "redis.url"
    if marker.exists():
        return marker.read_text().strip()
    if os.environ.get("ROUTER_DATA_DIR", "").strip():
        where = f"with ROUTER_DATA_DIR={os.environ['ROUTER_DATA_DIR'].strip()} set"
    else:
        where = "in this folder"
    raise click.ClickException(
        f"No Redis to talk to: no running service left its address in {marker}. Start "
        f"the service with `router up` ({where}), or set REDIS_URL."
    )


def status_page_url(ref: str, secret: str) -> str:
    """The citizen's status link, when the web front door's address is known:
    TUO_PUBLIC_URL, else the address `router up` left in the data folder."""
    base = os.environ.get("TUO_PUBLIC_URL", "").strip()
    marker = data_dir() / "web.url"
    if not base and marker.exists():
        base = marker.read_text().strip()
    if not base:
        return ""
    return f"{base.rstrip('/')}/status/{reference.display(ref)}?s={secret}"


def _write_private(path: Path, text: str) -> None:
    """Write a file only this user can read (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


def connect() -> Redis:
    return redis_server.connect(redis_url())


def core() -> LifeEventRouter:
    redis = connect()
    return LifeEventRouter(redis, Registry.discover(redis))


@click.group()
@click.version_option(package_name="tell-us-once-router")
def main() -> None:
    """Tell us once: report a life event once; every department that needs to know is told."""
    try:
        logs.configure()  # JSON lines on standard error, at ROUTER_LOG_LEVEL (INFO)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


# --- running -------------------------------------------------------------------------


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


WEB_APP = "channels.app:create_app()"


def gunicorn_command(host: str, port: int, app: str = WEB_APP) -> list[str]:
    """How `router up` serves the web front door (the benchmark serves its bare Flask
    comparison with the very same settings)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        "2",
        "--threads",
        "4",
        "--log-level",
        "warning",
        # gunicorn's own settings module: its Server header names the service only.
        "--config",
        "python:channels.serving",
        app,
    ]


def start_web(
    url: str, host: str, port: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, REDIS_URL=url, **(extra_env or {}))
    return subprocess.Popen(gunicorn_command(host, port), env=env, stdin=subprocess.DEVNULL)


def start_identity_provider() -> DevelopmentProvider | None:
    """The development identity provider, unless a real one is configured
    (TUO_OIDC_ISSUER): see channels.web.identity for the settings."""
    if os.environ.get("TUO_OIDC_ISSUER", "").strip():
        return None
    with warnings.catch_warnings():
        # oidc-provider-mock still imports Authlib's deprecated modules.
        warnings.simplefilter("ignore")
        return DevelopmentProvider().start()


@main.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address the web front door listens on."
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    help="Port for the web front door (0, or a port in use: a free one).",
)
@click.option("--no-web", is_flag=True, help="Run Redis and the workers only.")
@click.option(
    "--demo",
    "with_demo",
    is_flag=True,
    help="Show the service: 30 days of sample figures, a demo account for each staff "
    "role (new passwords, shown once) and a few sample reports.",
)
@click.option(
    "--ha",
    is_flag=True,
    help="Redis with high availability: a primary, two replicas and three sentinels on "
    "loopback; a report is acknowledged once a replica has it.",
)
def up(host: str, port: int, no_web: bool, with_demo: bool, ha: bool) -> None:
    """Start everything: Redis (embedded unless REDIS_URL is set), workers, web front door.

    With --ha, the embedded Redis is a primary, two replicas and three sentinels
    (router.redis_server.start_ha), every process connects through the sentinels, and
    so a submission waits for a replica (unless REDIS_WAIT_REPLICAS says otherwise).

    With --demo, also what a demonstration needs (router.demo): sample figures for the
    performance page, staff accounts for the counter, /ops and /casework, and sample
    reports, one of them waiting for a caseworker."""
    folder = data_dir()
    external = redis_server.url_from_env()
    if ha and external:
        raise click.UsageError("--ha starts its own Redis: unset REDIS_URL and REDIS_SENTINELS")
    server: redis_server.RedisServer | redis_server.HighAvailability
    try:
        if ha:
            server = redis_server.start_ha(folder / "redis-ha")
            redis_server.check_version(server.url)
        else:
            server = redis_server.resolve(folder / "redis")
    except redis_server.RedisTooOld as error:
        raise click.ClickException(str(error)) from None
    except RuntimeError:
        if not external:
            raise
        raise click.ClickException(
            f"Redis at {redis_server.redacted(external)} (REDIS_URL) does not answer: start it, "
            "or unset REDIS_URL to let `router up` start its own."
        ) from None
    # A fresh checkout has no data folder yet when Redis is external (REDIS_URL).
    folder.mkdir(parents=True, exist_ok=True)
    # Every web and worker process started here writes its metrics to one folder, which
    # /metrics sums (router.metrics); an earlier run's are removed, not counted again.
    counted = Path(metrics.folder() or folder / "metrics")
    metrics.empty_folder(counted)
    os.environ[metrics.FOLDER_ENV] = str(counted)
    if not os.environ.get(sealing.MASTER_ENV):
        # The master key that opens the sealed personal data: made on the first start,
        # 0600, beside the data (a deployment gives its own: router.sealing).
        os.environ[sealing.KEY_FILE_ENV] = str(sealing.make_key_file(sealing.key_file()))
    # Each process connects as its own Redis user (one URL for all when REDIS_URL is
    # set); the `router` command run by hand finds the cli user's URL here.
    cli_url = server.url_as("cli")
    _write_private(folder / "redis.url", cli_url)  # it holds the cli user's password
    redis = redis_server.connect(cli_url)
    registry = Registry.discover(redis)
    try:
        notify_settings = settings.NotifySettings.from_env()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    mock_gro.seed(redis)  # the mock register holds the sample events' registrations
    supervisor = Supervisor(server.url_as("worker"), registry.names())
    web: subprocess.Popen[bytes] | None = None
    identity: DevelopmentProvider | None = None
    stopping = stop_on_signals()

    def watch_web() -> None:
        if web is not None and web.poll() is not None:
            raise click.ClickException(f"the web front door stopped (exit {web.returncode})")

    if not no_web:
        if port == 0 or not _port_free(host, port):
            port = redis_server.free_port()
        # The reporters' messages link to this front door's status page, unless the
        # deployment says where its public address is.
        if not os.environ.get("TUO_PUBLIC_URL", "").strip():
            os.environ["TUO_PUBLIC_URL"] = f"http://{host}:{port}"
    try:
        supervisor.start()
        if not no_web:
            identity = start_identity_provider()
            web = start_web(
                server.url_as("web"), host, port, identity.environment() if identity else None
            )
        where = (
            "external" if server.kind == "external" else f"{server.kind}, data in {server.data_dir}"
        )
        click.echo(f"Redis: {redis_server.redacted(cli_url)} ({where})")
        click.echo(
            f"Workers: {supervisor.processes} processes serving {len(registry)} departments "
            f"({', '.join(registry.names())})"
        )
        if identity is not None:
            click.echo(
                f"Identity provider: {identity.issuer} (a {LABEL}); sign in as "
                f"{', '.join(p.sub for p in identity.people)}"
            )
        elif web is not None:
            click.echo(f"Identity provider: {os.environ['TUO_OIDC_ISSUER']}")
        if os.environ.get("NOTIFY_API_KEY", "").strip():
            click.echo(f"Messages to citizens: GOV.UK Notify ({notify_settings.base_url})")
        else:
            click.echo("Messages to citizens: the outbox (read it with: router outbox)")
        if with_demo:
            site = f"http://{host}:{port}" if web is not None else ""
            for line in _demo(LifeEventRouter(redis, registry), site):
                click.echo(line)
        if web is not None:
            guard = (
                "bearer token METRICS_TOKEN"
                if os.environ.get("METRICS_TOKEN", "").strip()
                else "this machine only; set METRICS_TOKEN to scrape from elsewhere"
            )
            click.echo(f"Metrics: http://{host}:{port}/metrics ({guard}), counted in {counted}")
            (folder / "web.url").write_text(f"http://{host}:{port}/\n")
            click.echo(f"Tell us once is running. Open http://{host}:{port}/")
        click.echo(
            "Submit an event from another terminal: router submit examples/events/death.json"
        )
        click.echo("Press Ctrl-C to stop.")
        supervisor.run(
            stopping,
            follow=redis,
            added=lambda name: click.echo(f"New department {name}: the workers serve it now"),
            also=watch_web,
        )
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("Stopping...")
        if web is not None and web.poll() is None:
            web.terminate()
            try:
                web.wait(timeout=15)
            except subprocess.TimeoutExpired:
                web.kill()
        if identity is not None:
            identity.stop()
        supervisor.stop()
        server.stop()
        (folder / "redis.url").unlink(missing_ok=True)
        (folder / "web.url").unlink(missing_ok=True)
        click.echo("Stopped.")


# Where each demo account's area is, and how each sample report was sent.
DEMO_HOMES = {
    "clerk": "/counter",
    "manager": "/counter",
    "operator": "/ops",
    "caseworker": "/casework",
}
HOW_SENT = {
    "web": "sent online",
    "counter": f"sent at the counter by {demo.ACCOUNTS[0][0]}",
    "help": "sent online asking for help: in the caseworkers' queue",
}


def _demo(router: LifeEventRouter, site: str) -> list[str]:
    """Set up what ``router up --demo`` shows (router.demo); the lines to print, the
    staff passwords among them (shown this once: only their hashes are kept)."""
    lines = [f"Demo: {_seeded_words(demo.seed(router, days=30))}"]
    if site:
        lines.append(f"  {site}/performance")
    where = f"; sign in at {site}/counter/sign-in" if site else ""
    lines.append(f"Demo staff accounts (new passwords at each start, shown once{where}):")
    for account in demo.accounts(router):
        at = branches.branch(account.branch).name if account.branch else ""
        home = f"{site}{DEMO_HOMES[account.role]}" if site else ""
        lines.append(
            f"  {account.role:<11} {account.username:<16} {account.password}  "
            + "  ".join(filter(None, (home, at)))
        )
    cases = demo.sample_cases(router)
    if cases:
        lines.append("Demo reports:")
    for case in cases:
        again = "" if case.created else " (sent at an earlier start)"
        lines.append(
            f"  {reference.display(case.ref)}  {case.event.replace('_', ' ')}, "
            f"{HOW_SENT[case.how]}{again}"
        )
    return lines


@main.command()
@click.option(
    "--department", "departments", multiple=True, help="Only this department (repeatable)."
)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes, each serving every department (default 2, or ROUTER_WORKER_PROCESSES).",
)
@click.option("--serve", is_flag=True, help="Be one worker process (what the supervisor runs).")
@click.option("--burst", is_flag=True, help="One process; stop when nothing is left to send.")
def worker(departments: tuple[str, ...], processes: int | None, serve: bool, burst: bool) -> None:
    """Run delivery workers: by default two processes, each serving every department."""
    url = redis_url()
    registry = Registry.discover(redis_server.connect(url))
    chosen = list(departments) or registry.names()
    unknown = [d for d in chosen if d not in registry]
    if unknown:
        raise click.UsageError(
            f"No adapter named {', '.join(unknown)}. Known: {', '.join(registry.names())}"
        )
    if serve or burst:
        run_worker(url, list(departments), burst=burst)
        return
    from router.delivery.worker import supervise

    supervise(url, chosen, follow=not departments, processes=processes)


# --- citizens' events ------------------------------------------------------------------


def _read_event(stream: TextIO) -> dict[str, Any]:
    text = stream.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationFailed(
            {
                "file": f"Not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}. "
                "Give one JSON object with event, answers and consent"
            }
        ) from None
    if not isinstance(data, dict):
        raise ValidationFailed({"file": "Give one JSON object with event, answers and consent"})
    unknown = set(data) - {"event", "answers", "consent", "submission_key"}
    if unknown:
        raise ValidationFailed(
            {k: "Remove this: only event, answers and consent are read" for k in sorted(unknown)}
        )
    return data


@main.command()
@click.argument("source", type=click.File("r", encoding="utf-8"))
@click.option(
    "--channel", default="cli", show_default=True, help="Which channel this came through."
)
@click.option(
    "--wait",
    "wait_seconds",
    type=float,
    default=None,
    help="Wait up to this many seconds for the workers, then print each department's state.",
)
def submit(source: TextIO, channel: str, wait_seconds: float | None) -> None:
    """Submit a life event from a JSON FILE (or - for standard input); print its reference."""
    router = core()
    started = time.monotonic()
    try:
        data = _read_event(source)
        result = router.submit(
            data.get("event"),
            data.get("answers"),
            data.get("consent"),
            channel=channel,
            submission_key=data.get("submission_key")
            if isinstance(data.get("submission_key"), str)
            else None,
        )
    except ValidationFailed as failed:
        click.echo("There is a problem with the event; nothing was saved:", err=True)
        for field, message in failed.errors.items():
            click.echo(f"  {field}: {message}", err=True)
        sys.exit(2)
    click.echo(f"Reference: {reference.display(result.ref)}")
    if result.secret:
        click.echo(f"Status secret: {result.secret}")
        link = status_page_url(result.ref, result.secret)
        if link:
            click.echo(f"Status page: {link}")
    else:
        click.echo("This event was already submitted; that is its reference.")
    if wait_seconds is None:
        return
    deadline = started + wait_seconds
    case = router.case(result.ref)
    while not case.settled and time.monotonic() < deadline:
        time.sleep(0.05)
        case = router.case(result.ref)
    elapsed = time.monotonic() - started
    states = ", ".join(f"{name} {d.state.value}" for name, d in case.deliveries.items())
    if case.settled:
        click.echo(f"Settled in {elapsed:.2f}s: {states}")
    else:
        click.echo(f"Still pending after {elapsed:.2f}s: {states}")
        sys.exit(3)


def _case_ref(text: str) -> str:
    ref = reference.normalise(text)
    if ref is None:
        raise click.BadParameter(
            "Check the reference: it has 9 letters and numbers, like ACDE-FGHJ-K", param_hint="REF"
        )
    return ref


@main.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(ref: str, as_json: bool) -> None:
    """Print each department's state for the case REF."""
    router = core()
    try:
        case = router.case(_case_ref(ref))
    except UnknownCase:
        raise click.ClickException("No case has that reference.") from None
    titles = {a.name: a.title for a in router.adapters}
    if as_json:
        click.echo(
            json.dumps(
                {
                    "reference": case.display_ref,
                    "event": case.event_type,
                    "flagged": case.flagged,
                    "deliveries": {
                        name: {
                            "state": d.state.value,
                            "mode": d.mode,
                            "attempts": d.attempts,
                            "detail": d.detail,
                            "receipt": d.receipt.reference if d.receipt else None,
                        }
                        for name, d in case.deliveries.items()
                    },
                    "not_told": {d.department: d.reason for d in case.plan.decisions if not d.told},
                },
                indent=2,
            )
        )
        return
    click.echo(f"Case {case.display_ref}: {case.event_type}, received {case.created_at}")
    for name, d in case.deliveries.items():
        extra = (
            f" (receipt {d.receipt.reference})"
            if d.receipt
            else (f" ({d.detail})" if d.detail else "")
        )
        click.echo(f"  {name:<10} {d.state.value:<21}{extra}  {titles.get(name, name)}")
    for decision in case.plan.decisions:
        if not decision.told:
            click.echo(f"  {decision.department:<10} {'not told':<21} {decision.reason}")
    if case.flagged:
        click.echo(f"Flagged for follow-up: {case.flagged}")


@main.group("case")
def case_group() -> None:
    """A citizen's rights over their case: a copy of everything held, and erasure."""


def _load_ref(router: LifeEventRouter, text: str) -> str:
    ref = _case_ref(text)
    if not router.store.exists(ref):
        raise click.ClickException("No case has that reference.")
    return ref


@case_group.command("export")
@click.argument("ref")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The file to write (readable by you only), or - for standard output.",
)
def case_export(ref: str, out: str) -> None:
    """Write everything held about the case REF as JSON, for a subject access request:
    answers, history, audit entries, what was shared with whom and when."""
    router = core()
    held = router.retention.export(_load_ref(router, ref))
    text = json.dumps(held, indent=2, ensure_ascii=False) + "\n"
    if out == "-":
        click.echo(text, nl=False)
        return
    _write_private(Path(out), text)
    click.echo(
        f"Wrote everything held about case {held['reference']} to {out}: "
        f"{len(held['answers'])} answers, {len(held['shared'])} departments told, "
        f"{len(held['history'])} history entries, {len(held['audit'])} audit entries."
    )


@case_group.command("erase")
@click.argument("ref")
@click.option(
    "--reason",
    required=True,
    help="Why, for the audit (a request's own reference, never the person's details).",
)
def case_erase(ref: str, reason: str) -> None:
    """Erase the personal data of the case REF now, once it has nothing left to do. The
    record of who was told stays for its 13 months; the erasure is audited."""
    router = core()
    canonical = _load_ref(router, ref)
    if not reason.strip():
        raise click.BadParameter("Say why the case is erased", param_hint="--reason")
    try:
        erasure = router.retention.erase(canonical, retention.BY_REQUEST, reason.strip())
    except retention.NotFinished as busy:
        raise click.ClickException(
            f"Case {reference.display(canonical)} still has work to do ({busy}): its details "
            "are needed until that is done. Erase it once everything is final."
        ) from None
    titles = {a.name: a.title for a in router.adapters}
    shown = reference.display(canonical)
    if erasure.already:
        click.echo(f"Case {shown} was erased already, at {erasure.at} (by {erasure.by}).")
    else:
        click.echo(f"Erased the personal data of case {shown} at {erasure.at}.")
    if erasure.told:
        click.echo("These departments were told before, and keep what they were sent:")
        for name in erasure.told:
            click.echo(f"  {name:<10} {titles.get(name, name)}")
    else:
        click.echo("No department had been sent anything.")


# --- operators ------------------------------------------------------------------------


@main.command()
@click.option("--case", "ref", default="", help="Only the messages of this case.")
@click.option("--limit", default=20, show_default=True, help="How many cases, latest last.")
def outbox(ref: str, limit: int) -> None:
    """Print the messages citizens would have been sent by email and text message: where
    they go when no GOV.UK Notify key is set (NOTIFY_API_KEY). Recipients show only in part."""
    box = notices.Outbox(connect())
    messages = box.read(_case_ref(ref) if ref else None, limit=limit)
    if not messages:
        click.echo("The outbox is empty." if not ref else "No message for that case.")
        return
    for m in messages:
        kind = "Email" if m["channel"] == "email" else "Text message"
        click.echo(f"{m['at']}  {reference.display(m['ref'])}  {kind} to {m['to']}: {m['name']}")
        if m["channel"] == "email":
            click.echo(f"  Subject: {m['subject']}")
        for line in m["body"].splitlines():
            click.echo(f"  {line}" if line else "")
        click.echo("")


@main.group()
def staff() -> None:
    """Counter staff accounts."""


@staff.command("add")
@click.argument("username")
@click.option(
    "--branch",
    default="",
    help="Branch id, from `router staff branches`: needed for a clerk or a manager.",
)
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="clerk",
    show_default=True,
    help="clerk or manager (the counter), operator (/ops) or caseworker (/casework).",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Change an account that exists (its password, branch and role); it is signed out.",
)
def staff_add(username: str, branch: str, role: str, replace: bool) -> None:
    """Create a counter staff account (with --replace: set its password, branch and role,
    which signs it out everywhere). User names are the same in capitals or small letters.

    The password is asked for, twice, or read from ROUTER_STAFF_PASSWORD; never from the
    command line, where anyone on the machine could read it in the process list. Choose
    3 or 4 random words: common passwords and easily guessed ones are refused."""
    password = os.environ.get("ROUTER_STAFF_PASSWORD") or click.prompt(
        "Password (3 or 4 random words work well)",
        hide_input=True,
        confirmation_prompt=True,
    )
    try:
        account = core().staff.add(username, password, branch, role, replace=replace)
    except ValidationFailed as failed:
        click.echo("The account was not created:", err=True)
        for field, message in failed.errors.items():
            click.echo(f"  {field}: {message}", err=True)
        sys.exit(2)
    if account.branch:
        where = branches.branch(account.branch).name
        click.echo(f"{account.role.capitalize()} {account.username} can sign in at {where}.")
    else:
        click.echo(f"{account.role.capitalize()} {account.username} can sign in.")


def _no_such_account(username: str) -> click.ClickException:
    return click.ClickException(f"No staff account named {username}: see `router staff list`.")


@staff.command("disable")
@click.argument("username")
def staff_disable(username: str) -> None:
    """Stop USERNAME signing in, and sign them out everywhere at once (enable undoes it)."""
    if not core().staff.disable(username):
        raise _no_such_account(username)
    click.echo(f"Disabled {username}: signed out everywhere, and cannot sign in.")


@staff.command("enable")
@click.argument("username")
def staff_enable(username: str) -> None:
    """Let a disabled account sign in again."""
    if not core().staff.enable(username):
        raise _no_such_account(username)
    click.echo(f"Enabled {username}: they can sign in again.")


@staff.command("remove")
@click.argument("username")
def staff_remove(username: str) -> None:
    """Delete USERNAME's account and end its sessions at once (the audit keeps their name)."""
    if not core().staff.remove(username):
        raise _no_such_account(username)
    click.echo(f"Removed {username}: signed out everywhere; the account is gone.")


@staff.command("list")
def staff_list() -> None:
    """Each account: user name, role, branch, when created, and whether it is disabled."""
    listed = core().staff.accounts()
    if not listed:
        click.echo("No staff accounts.")
        return
    for a in listed:
        state = "active" if a.active else f"disabled {a.disabled_at}"
        branch = a.branch or "-"
        click.echo(f"{a.username:<24} {a.role:<10} {branch:<32} created {a.created_at}  {state}")


@staff.command("unlock")
@click.argument("username")
def staff_unlock(username: str) -> None:
    """Let an account sign in again after too many wrong passwords (audited)."""
    account = core().desk.unlock(username, by="router staff unlock")
    if account is None:
        click.echo(f"There is no account {username.strip().lower()}.", err=True)
        sys.exit(2)
    click.echo(f"{account.username} can sign in again.")


@staff.command("branches")
@click.option("--near", default="", help="Only the 10 nearest to this postcode.")
def staff_branches(near: str) -> None:
    """List branch ids, names and the services each offers."""
    listed = (
        [b for b, _km in branches.nearest(near, limit=10)]
        if near
        else sorted(branches.load_branches().values(), key=lambda b: b.id)
    )
    for b in listed:
        click.echo(f"{b.id:<32} {b.name}  [{', '.join(sorted(b.services))}]")


@main.group("api-clients")
def api_clients() -> None:
    """Partner services' keys for the JSON API (/api/v1): add, list, revoke.

    Each partner channel (an app, a charity's assisted-digital service, a registrar's
    own system) gets its own key, scoped to the life events it may send and limited to
    a rate. The key is shown once and stored only as a digest."""


@api_clients.command("add")
@click.argument("name")
@click.option(
    "--events",
    required=True,
    help="The life events it may send, comma-separated (for example death,birth).",
)
@click.option(
    "--vouches",
    default="",
    help="What it is trusted to vouch for: registration (a registrar's system: the "
    "deaths and births it sends are not looked up in the register).",
)
@click.option(
    "--rate",
    default="120/minute",
    show_default=True,
    help="Most requests it may make, per second, minute or hour.",
)
def api_clients_add(name: str, events: str, vouches: str, rate: str) -> None:
    """Give partner NAME a key for the JSON API (or a new key, once revoked).

    NAME is 2 to 31 lower-case letters, digits and underscores, starting with a letter
    (as a department's name). The key is printed once: give it to the partner, who sends
    it as Authorization: Bearer <key>."""
    try:
        client, key = core().clients.add(
            name, events.split(","), [v for v in vouches.split(",") if v.strip()], rate
        )
    except ValidationFailed as failed:
        click.echo("No key was made:", err=True)
        for field, message in failed.errors.items():
            click.echo(f"  {field}: {message}", err=True)
        sys.exit(2)
    trust = ", ".join(client.vouches) or "nothing"
    click.echo(
        f"API client {client.name}: may send {', '.join(client.events)}; vouches for "
        f"{trust}; at most {client.rate}."
    )
    click.echo(f"Key (give it to the partner; it is shown only now): {key}")
    click.echo("It is sent as a header: Authorization: Bearer <key>")


@api_clients.command("list")
def api_clients_list() -> None:
    """Each client: name, events, trust, rate, when created and revoked (never its key)."""
    listed = core().clients.all()
    if not listed:
        click.echo("No API clients.")
        return
    for c in listed:
        revoked = f"revoked {c.revoked_at}" if c.revoked_at else "active"
        click.echo(
            f"{c.name:<24} events: {','.join(c.events)}  vouches: {','.join(c.vouches) or '-'}"
            f"  rate: {c.rate}  created {c.created_at}  {revoked}"
        )


@api_clients.command("revoke")
@click.argument("name")
def api_clients_revoke(name: str) -> None:
    """Revoke partner NAME's key at once (the cases it sent are kept)."""
    revoked = core().clients.revoke(name)
    if revoked is None:
        raise click.UsageError(f"No API client named {name}")
    click.echo(f"Revoked API client {name}'s key ({revoked.revoked_at}).")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def queues(as_json: bool) -> None:
    """Each department's queue (breaker, pending, retrying, sending, the oldest waiting,
    failed), what it settled in the last hour (told, failed, and the p50 and p95 time
    from submission to told) and the delivery workers alive."""
    service = core()
    figures = service.queues()
    alive = service.workers_alive()
    if as_json:
        body = {"departments": [f.as_dict() for f in figures], "workers": alive}
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(
        f"{'department':<12} {'breaker':<9} {'pending':>7} {'retrying':>8} "
        f"{'sending':>7} {'oldest':>8} {'failed':>6} {'told/h':>7} {'failed/h':>8} "
        f"{'p50':>8} {'p95':>8}"
    )
    for f in figures:
        click.echo(
            f"{f.department:<12} {f.breaker:<9} {f.pending:>7} {f.retrying:>8} "
            f"{f.sending:>7} {f.oldest_seconds:>7.1f}s {f.failed:>6} "
            f"{f.delivered_last_hour:>7} {f.failed_last_hour:>8} "
            f"{_seconds(f.p50_seconds):>8} {_seconds(f.p95_seconds):>8}"
        )
    if alive:
        beats = ", ".join(
            f"{name} ({seconds:.1f} s ago)" for name, seconds in sorted(alive.items())
        )
        click.echo(f"Workers alive: {len(alive)}: {beats}")
    else:
        click.echo(
            "Workers alive: none. Nothing is being delivered: "
            "start them with router up or router worker."
        )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


@main.group()
def deliveries() -> None:
    """Look after deliveries that failed."""


@deliveries.command("failed")
def deliveries_failed() -> None:
    """List dead-lettered deliveries with the reason each failed."""
    store = core().store
    dead = store.dead_letters()
    if not dead:
        click.echo("No failed deliveries.")
        return
    for delivery_id, entry in dead.items():
        click.echo(f"{delivery_id}  {entry['at']}  {entry['reason']}")


def _delivery_id(text: str) -> str:
    """A delivery id as `router deliveries failed` prints it (ACDEFGHJK-hmrc), or with
    the reference as `router status` shows it (ACDE-FGHJ-K-hmrc)."""
    text = text.strip()
    at = text.find("-")
    while at != -1:
        ref = reference.normalise(text[:at])
        if ref is not None and text[at + 1 :]:
            return f"{ref}-{text[at + 1 :]}"
        at = text.find("-", at + 1)
    return text


@deliveries.command("replay")
@click.argument("delivery_id", required=False)
@click.option("--case", "case_ref", help="Replay every failed delivery of this case.")
@click.option("--all", "replay_all", is_flag=True, help="Replay every failed delivery.")
def deliveries_replay(delivery_id: str | None, case_ref: str | None, replay_all: bool) -> None:
    """Send a failed delivery (its id: REF-department), or every one of a --case, or
    --all of them, again."""
    router = core()
    if sum(map(bool, (delivery_id, case_ref, replay_all))) != 1:
        raise click.UsageError(
            "Give one delivery id (from `router deliveries failed`), or --case REF, or --all"
        )
    dead = router.store.dead_letters()
    if replay_all:
        targets = list(dead)
    elif case_ref:
        ref = _case_ref(case_ref)
        targets = [d for d, entry in dead.items() if entry.get("case") == ref]
        if not targets:
            raise click.ClickException(
                f"Case {reference.display(ref)} has no failed deliveries to replay."
            )
    else:
        targets = [_delivery_id(str(delivery_id))]
    problems = 0
    for target in targets:
        try:
            router.fanout.replay(target)
            click.echo(f"Replayed {target}")
        except UnknownDelivery as error:
            problems += 1
            click.echo(f"{target}: {error.message}", err=True)
    if problems:
        sys.exit(1)


# --- mock departments -----------------------------------------------------------------


@main.group()
def mock() -> None:
    """Set latency and faults on the built-in mock departments."""


@mock.command("configure")
@click.argument("name")
@click.option("--latency-ms", type=click.IntRange(0, 60_000))
@click.option("--transient-rate", type=click.FloatRange(0, 1))
@click.option("--permanent-rate", type=click.FloatRange(0, 1))
@click.option("--outage/--no-outage", default=None)
@click.option("--fail-first", type=click.IntRange(0, 100))
@click.option(
    "--retry-after", type=click.IntRange(0, 3600), help="Seconds it asks callers to wait."
)
def mock_configure(name: str, **changes: Any) -> None:
    """Change a mock department's latency and faults (others keep their values)."""
    redis = connect()
    current = get_faults(redis, name)
    values = {k: v for k, v in changes.items() if v is not None}
    updated = Faults(**{**current.__dict__, **values})
    configure_faults(redis, name, updated)
    click.echo(f"{name}: {updated}")


@mock.group("gro")
def mock_gro_group() -> None:
    """The mock General Register Office: registrations of deaths and births.

    Its latency and faults are set like a department's: router mock configure gro ...
    """


@mock_gro_group.command("add")
@click.argument("kind", type=click.Choice(["death", "birth"]))
@click.option("--name", "full_name", required=True, help="The person who died, or the baby.")
@click.option(
    "--date", "event_date", required=True, help="Date of the death or birth (YYYY-MM-DD)."
)
@click.option("--district", required=True, help="The registration district, e.g. Leeds.")
@click.option("--registered", default="", help="Date of registration (default: the date).")
def mock_gro_add(
    kind: str, full_name: str, event_date: str, district: str, registered: str
) -> None:
    """Register a death or birth, for a demo; prints how to report it."""
    try:
        happened = date.fromisoformat(event_date)
        on = date.fromisoformat(registered) if registered else happened
        entry = mock_gro.add(connect(), kind, full_name, happened, district, on)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    reference = entry.reference
    click.echo(f"Registered the {kind} of {entry.full_name} in {entry.district}.")
    click.echo(f"  Registrar's reference: {reference[:4]} {reference[4:8]} {reference[8:]}")
    click.echo(
        f"  Register entry: district {entry.district}, entry number {entry.entry_number}, "
        f"registered {entry.registration_date}"
    )


@mock_gro_group.command("list")
def mock_gro_list() -> None:
    """Every registration the mock register holds."""
    for entry in mock_gro.entries(connect()):
        click.echo(
            f"{entry.kind:<6} {entry.reference}  {entry.district} {entry.entry_number:>5}  "
            f"registered {entry.registration_date}"
        )


# --- departments' adapters ------------------------------------------------------------


@main.group()
def adapters() -> None:
    """The departments' adapters: list them, check them, add a webhook department."""


@adapters.command("list")
def adapters_list() -> None:
    """Each adapter: name, title, queue, and the fields it receives for each event."""
    from router.delivery.queues import queue_for

    try:
        redis: Redis | None = connect()
        assert redis is not None
        redis.ping()
    except (click.ClickException, OSError, RedisError):
        redis = None  # no service running: list the adapters installed as code
    registry = Registry.discover(redis)
    for cls in registry:
        click.echo(f"{cls.name}  {cls.title}")
        click.echo(f"  queue: {queue_for(cls.name)}   timeout: {cls.timeout:g}s")
        for event in sorted(cls.fields):
            click.echo(f"  {event}: {', '.join(cls.fields_for(event))}")
    if redis is None:
        click.echo("(Webhook departments are listed when the service is running.)")


@adapters.command("check")
@click.argument("name")
@click.option(
    "--keep-samples",
    is_flag=True,
    help="Leave the sample deliveries in the adapter's own store, to look at them.",
)
def adapters_check(name: str, keep_samples: bool) -> None:
    """Run the conformance kit against adapter NAME, on a throwaway Redis of its own.

    Afterwards the sample deliveries are removed from the adapter's own store through
    its conformance_cleanup hook; without one, their ids are listed."""
    import tempfile

    from router.adapters import conformance

    try:
        live: Redis | None = connect()
        assert live is not None
        live.ping()
    except (click.ClickException, OSError, RedisError):
        live = None
    registry = Registry.discover(live)
    if name not in registry:
        raise click.UsageError(f"No adapter named {name}. Known: {', '.join(registry.names())}")
    cls = registry.get(name)
    with tempfile.TemporaryDirectory(prefix="adapter-check-") as folder:
        server = redis_server.start_redis(Path(folder), fsync="no")
        try:
            scratch = redis_server.connect(server.url)
            findings = conformance.check(cls, scratch, keep_samples=keep_samples)
            scratch.close()
        finally:
            server.stop()
    for finding in findings:
        click.echo(finding.line())
    checks = [f for f in findings if not f.note]
    failed = [f for f in checks if not f.passed]
    if failed:
        click.echo(f"{name}: {len(failed)} of {len(checks)} checks failed", err=True)
        sys.exit(1)
    click.echo(f"{name}: all {len(checks)} checks passed")


def _parse_fields(events: str, field_specs: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    chosen = [e.strip() for e in events.split(",") if e.strip()]
    if not chosen:
        raise click.BadParameter("name at least one life event", param_hint="--events")
    given: dict[str, tuple[str, ...]] = {}
    for spec in field_specs:
        event, sep, names = spec.partition("=")
        if not sep:
            raise click.BadParameter(
                f"{spec!r}: write EVENT=field,field (for example death=date_of_death)",
                param_hint="--fields",
            )
        given[event.strip()] = tuple(n.strip() for n in names.split(",") if n.strip())
    stray = set(given) - set(chosen)
    if stray:
        raise click.BadParameter(
            f"fields given for events not in --events: {sorted(stray)}", param_hint="--fields"
        )
    missing = [e for e in chosen if not given.get(e)]
    if missing:
        raise click.BadParameter(
            f"say which fields the department needs for {', '.join(missing)} "
            "(it is sent nothing else)",
            param_hint="--fields",
        )
    return {e: given[e] for e in chosen}


@adapters.command("add-webhook")
@click.argument("name")
@click.option("--url", required=True, help="Where deliveries are POSTed (http or https).")
@click.option("--events", required=True, help="Life events it handles, comma-separated.")
@click.option(
    "--fields",
    "field_specs",
    multiple=True,
    help="EVENT=field,field: what it receives for that event (repeat per event).",
)
@click.option(
    "--needs",
    "need_specs",
    multiple=True,
    help="EVENT=NEED: what it must trust before it acts, P0, P1 or P2, with +registration "
    "for a verified registration (default: P0+registration for deaths and births, P2 else).",
)
@click.option("--title", default="", help="The department's name as people read it.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for an answer.")
@click.option(
    "--allow-http-loopback",
    is_flag=True,
    help="A department on this machine (local tests and demos): allow http:// and 127.0.0.1.",
)
def adapters_add_webhook(
    name: str,
    url: str,
    events: str,
    field_specs: tuple[str, ...],
    need_specs: tuple[str, ...],
    title: str,
    timeout: float,
    allow_http_loopback: bool,
) -> None:
    """Add a department that receives signed webhooks; no code needed."""
    from router.adapters.webhook import WebhookConfigError, add_webhook

    redis = connect()
    if name in Registry.discover():
        raise click.UsageError(f"{name} is already an installed adapter; choose another name")
    fields = _parse_fields(events, field_specs)
    needs = {}
    for spec in need_specs:
        event, sep, code = spec.partition("=")
        if not sep:
            raise click.BadParameter(
                f"{spec!r}: write EVENT=NEED (for example moving_house=P2)", param_hint="--needs"
            )
        needs[event.strip()] = code.strip()
    try:
        config = add_webhook(
            redis,
            name,
            url,
            fields,
            title=title,
            timeout=timeout,
            needs=needs,
            allow_http_loopback=allow_http_loopback,
        )
    except WebhookConfigError as error:
        raise click.UsageError(str(error)) from None
    click.echo(f"Added webhook department {config.name}, POSTing to {config.url}")
    for event, code in config.needs.items():
        click.echo(f"  {event}: acts on {code}")
    click.echo(f"Signing secret (give it to the department; shown once): {config.secret}")
    click.echo("A running `router up` serves it within seconds.")


@adapters.command("remove-webhook")
@click.argument("name")
def adapters_remove_webhook(name: str) -> None:
    """Remove a webhook department. Its deliveries still queued fail with a dead letter
    (router deliveries failed), to replay once it is added again."""
    from router.adapters.webhook import remove_webhook

    if not remove_webhook(connect(), name):
        raise click.UsageError(f"No webhook department named {name}")
    failed = core().retire_department(name)
    click.echo(f"Removed webhook department {name}")
    if failed:
        click.echo(
            f"{len(failed)} deliveries to it were still queued: they are on the dead-letter "
            "list (router deliveries failed) to replay if it comes back"
        )


# --- the data keys that seal personal data (router.sealing, router.rotation) ------------


@main.group("keys")
def keys_group() -> None:
    """The data keys that seal personal data in Redis: list them, rotate them."""


@keys_group.command("list")
@click.option(
    "--count",
    is_flag=True,
    help="Also count the values sealed under each key (reads every case and session).",
)
def keys_list(count: bool) -> None:
    """Each data key's id (current first), and the key rotation's state and progress."""
    redis = connect()
    try:
        ids = sealing.KeyRing(redis).ids()
        tally = Rotation(redis).tally() if count else None
        held = rotation_state(redis)
    except RedisError as error:
        raise click.ClickException(f"Redis did not answer: {error}") from None
    if not ids:
        click.echo("No data key yet: nothing has been sealed.")
    for i, kid in enumerate(ids):
        role = "current" if i == 0 else "old"
        sealed = f"  {tally.by_key.get(kid, 0)} values" if tally is not None else ""
        click.echo(f"{kid}  {role:<8}{sealed}")
    if tally is not None:
        lost = sum(n for kid, n in tally.by_key.items() if kid not in ids)
        if lost:
            click.echo(
                f"{lost} values are sealed under keys no longer in the ring: they cannot be opened."
            )
    click.echo(describe(held))


class _SweepBars:
    """A progress bar per sweep of a key rotation, and a line of figures after each."""

    def __init__(self) -> None:
        self.sweep = self.shown = self.first = 0
        self.last: Progress | None = None
        self.bar: Any = None  # click's ProgressBar, entered by hand

    def show(self, progress: Progress) -> None:
        if progress.sweep != self.sweep:
            self.close()
            self.sweep, self.shown, self.first = progress.sweep, 0, progress.resealed
            label = f"Sweep {progress.sweep} of 2"
            self.bar = click.progressbar(length=max(progress.total, 1), label=label)
            self.bar.__enter__()
        self.bar.update(progress.done - self.shown)
        self.shown, self.last = progress.done, progress

    def close(self) -> None:
        if self.bar is None or self.last is None:
            return
        self.bar.__exit__(None, None, None)
        self.bar = None
        last = self.last
        click.echo(
            f"Sweep {last.sweep} of 2: {last.done} keys read, "
            f"{last.resealed - self.first} values sealed again"
        )


@keys_group.command("rotate")
def keys_rotate() -> None:
    """Add a data key, seal every sealed value again under it, then retire the old key.

    Every process seals under the new key within seconds; cases, identity checks,
    webhook secrets and web sessions are sealed again in the background, each written
    only if it did not change meanwhile. The old key is retired only once nothing is
    left under it. One that stopped (its process killed) is taken up again here."""
    click.echo(
        "Adding a data key; every process seals under it within "
        f"{sealing.FOLLOW_SECONDS + FOLLOW_MARGIN:g}s, then every sealed value is "
        "sealed again under it."
    )
    bars = _SweepBars()
    try:
        outcome = Rotation(connect()).run(bars.show)
    except (RotationError, sealing.KeyProblem) as error:
        raise click.ClickException(str(error)) from None
    except RedisError as error:
        raise click.ClickException(
            f"Redis did not answer ({error}): `router keys rotate` takes it up again"
        ) from None
    finally:
        bars.close()
    if outcome.resumed:
        click.echo(f"Took up the rotation to key {outcome.to} that had stopped.")
    if outcome.unknown:
        click.echo(
            f"{outcome.unknown} values are sealed under keys no longer in the ring: "
            "they cannot be opened, and were left as they are."
        )
    if outcome.left:
        left = sum(outcome.left.values())
        raise click.ClickException(
            f"{left} values are still sealed under key {', '.join(sorted(outcome.left))} "
            f"(at {', '.join(outcome.where)}): the old key was kept, as a value sealed under "
            "a retired key can never be opened; `router keys rotate` tries them again"
        )
    retired = ", ".join(outcome.retired) or "none (there was no other)"
    click.echo(
        f"Sealed {outcome.resealed} values again under key {outcome.to} in "
        f"{outcome.seconds:.1f}s; retired key {retired}."
    )


# --- the money that flows along the chain (router.ledger, docs/money.md) ---------------


@main.group("ledger")
def ledger_group() -> None:
    """Who owes whom: monthly statements from the ledger."""


@ledger_group.command("months")
def ledger_months() -> None:
    """List the months that have ledger entries, oldest first."""
    months = core().ledger_months()
    if not months:
        click.echo("No ledger entries yet.")
    for month in months:
        click.echo(month)


@ledger_group.command("statement")
@click.option("--month", required=True, help="The month, as YYYY-MM.")
@click.option("--department", default="", help="A department's statement (dwp, dvla...).")
@click.option("--branch", default="", help="A Post Office branch's, by its id.")
@click.option("--operator", is_flag=True, help="The router's operator's (Tell Us Once).")
@click.option("--register", default="", help="A register source's (gro).")
@click.option("--csv", "as_csv", is_flag=True, help="Print it as CSV, with a totals row.")
def ledger_statement(
    month: str, department: str, branch: str, operator: bool, register: str, as_csv: bool
) -> None:
    """Print one party's statement for a month: what it owes and is owed, by kind."""
    service = core()
    try:
        party = service.ledger_party(
            department=department, branch=branch, operator=operator, register=register
        )
        statement = service.statement(month, party)
    except LedgerError as error:
        raise click.UsageError(error.message) from None
    if as_csv:
        click.echo(statement_csv(statement), nl=False)
        return
    click.echo(f"Statement for {statement.party}, {statement.month}")
    if statement.tariff_versions:
        click.echo(f"Tariff: {', '.join(statement.tariff_versions)}")
    if not statement.lines:
        click.echo("No entries.")
    for line in statement.lines:
        click.echo(
            f"  {line.direction:<5} {line.kind:<15} {line.counterparty:<34} "
            f"{line.count:>6} x {pounds(line.unit_pence):>8} = {pounds(line.subtotal_pence):>10}"
        )
    click.echo(
        f"Owes £{pounds(statement.owes_pence)}; owed £{pounds(statement.owed_pence)}; "
        f"net £{pounds(statement.net_pence)} ({statement.entries} entries)"
    )
    if statement.contacts_avoided:
        saved = service.tariff().saved
        where = (
            "an assumption, with no published source"
            if saved.assumption
            else f"{saved.source_title}, {saved.source_date}, {saved.source_url}"
        )
        click.echo(
            f"Saved: {statement.contacts_avoided} contacts citizens did not have to make, "
            f"at £{pounds(saved.pence_per_contact)} each ({saved.what}): "
            f"£{pounds(statement.saved_pence)}. Source: {where}"
        )


@ledger_group.command("reconcile")
@click.option("--month", required=True, help="The month, as YYYY-MM.")
def ledger_reconcile(month: str) -> None:
    """Check a month: every party's net adds up to 0, each statement matches its entries."""
    try:
        result = core().reconcile(month)
    except LedgerError as error:
        raise click.UsageError(error.message) from None
    for s in result.statements:
        click.echo(f"  {s.party:<40} net £{pounds(s.net_pence):>10}")
    click.echo(
        f"{result.entries} entries, £{pounds(result.ledger_pence)} in all; the nets add up "
        f"to £{pounds(result.net_sum_pence)}"
    )
    if not result.balanced:
        mismatched = ", ".join(result.mismatched) or "none"
        raise click.ClickException(f"{month} does not balance (mismatched: {mismatched})")


# --- sample data for a demonstration (router.demo) --------------------------------------


@main.group("demo")
def demo_group() -> None:
    """Sample data, to show the service: never for a service people use."""


def _seeded_words(seeded: demo.Seeded) -> str:
    if not seeded.filled:
        return f"Sample figures: the {len(seeded.kept)} days had them already; left as they were."
    first, last = seeded.filled[0], seeded.filled[-1]
    words = (
        f"Sample figures for {len(seeded.filled)} days ({first} to {last}): "
        f"{seeded.reports:,} reports, {seeded.entries:,} ledger entries"
    )
    if seeded.kept:
        words += f"; {len(seeded.kept)} days had them already"
    return words + ". The performance page says they are sample data."


@demo_group.command("reports")
@click.option(
    "--count", type=click.IntRange(1, 1000), default=6, show_default=True, help="How many."
)
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(sorted(EVENTS)),
    help="Only this life event (repeatable); default: each in turn.",
)
def demo_reports(count: int, events: tuple[str, ...]) -> None:
    """Send COUNT sample reports online, each from its sample reporter signed in.

    The reports of examples/events, sent through the real submission path as if their
    reporters had signed in with the development identity provider, so their
    organisations are told at once: traffic to watch on /ops, during an outage made
    with `router mock configure`, say."""
    try:
        sent = demo.reports(core(), count, events)
    except ValidationFailed as error:
        raise click.ClickException(
            "a sample report was refused (" + "; ".join(error.errors.values()) + "): "
            "the register holds the sample births and deaths only as `router up` seeds it"
        ) from error
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    for ref, event in sent:
        click.echo(f"{reference.display(ref)}  {event.replace('_', ' ')}")


@demo_group.command("seed")
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=30,
    show_default=True,
    help="How many whole days before today to fill.",
)
@click.option(
    "--seed",
    "seed_number",
    type=int,
    default=demo.SEED,
    show_default=True,
    help="The random generator's seed: the same gives the same figures for the same day.",
)
def demo_seed(days: int, seed_number: int) -> None:
    """Fill the last DAYS days with sample performance figures and ledger entries.

    Reports by channel, journeys, ratings and a few comments, each department's time
    to tell, and ledger entries posted as deliveries and counter tasks post theirs:
    counts and made-up references only, no case and nothing about anyone. The
    performance page says they are sample data. A day filled before is left alone."""
    click.echo(_seeded_words(demo.seed(core(), days=days, seed=seed_number)))
