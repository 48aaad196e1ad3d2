"""The `router` command, run as a real process against the test Redis."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis

from router import keys, redis_server, reference
from router.adapters.mocks import Faults, configure_faults
from router.delivery.worker import Supervisor
from tests.support.paths import EXAMPLES, ROOT
from tests.support.processes import router_cli, wait_settled
from tests.support.redis_dump import written_keys
from tests.support.samples import sample, samples


def _ref_from(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith("Reference: "))
    ref = reference.normalise(line.removeprefix("Reference: "))
    assert ref is not None
    return ref


@pytest.mark.parametrize("name", samples())
def test_submit_accepts_every_sample_and_prints_reference_and_secret(
    name: str, cli_env: dict[str, str], redis: Redis
) -> None:
    result = router_cli("submit", str(EXAMPLES / f"{name}.json"), env=cli_env)
    assert result.returncode == 0, result.stderr
    ref = _ref_from(result.stdout)
    assert "Status secret: " in result.stdout
    assert redis.hget(keys.case(ref), "channel") == b"cli"


BAD_INPUT = [
    pytest.param("{not json", {"file": "Not valid JSON"}, id="not-json"),
    pytest.param("[1, 2]", {"file": "one JSON object"}, id="not-an-object"),
    pytest.param(
        json.dumps({"event": "winning_the_lottery", "answers": {}, "consent": ["dwp"]}),
        {"event": "Choose a life event"},
        id="unknown-event",
    ),
    pytest.param(
        json.dumps({"event": "birth", "answers": "all of them", "consent": ["dwp"]}),
        {"answers": "named fields"},
        id="answers-not-an-object",
    ),
    pytest.param(
        json.dumps({"event": "birth", "answers": {}, "consent": []}),
        {
            "child_full_name": "Enter the baby’s full name",
            "parent_nino": "Enter your National Insurance number",
            "consent": "Select at least one organisation to tell",
        },
        id="nothing-answered",
    ),
    pytest.param(
        json.dumps(
            {
                **sample("birth"),
                "answers": {
                    **sample("birth")["answers"],
                    "parent_nino": "TN 12 34 56 A",
                    "postcode": "NOT A CODE",
                    "child_date_of_birth": "2999-01-01",
                },
            }
        ),
        {
            "parent_nino": "never used at the start",
            "postcode": "Enter a real postcode",
            "child_date_of_birth": "must be today or in the past",
        },
        id="bad-formats",
    ),
    pytest.param(
        json.dumps(
            {
                **sample("death"),
                "answers": {
                    **sample("death")["answers"],
                    "deceased_date_of_birth": {"days_ago": 100},
                    "date_of_death": {"days_ago": 200},
                },
            }
        ),
        {"date_of_death": "same as or after their date of birth"},
        id="death-before-birth",
    ),
    pytest.param(
        json.dumps({**sample("birth"), "consent": ["dvla"]}),
        {"consent": "only organisations from the list"},
        id="consent-to-uninterested-department",
    ),
    pytest.param(
        json.dumps({**sample("birth"), "shoe_size": 9}),
        {"shoe_size": "Remove this"},
        id="unknown-top-level-key",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), BAD_INPUT)
def test_bad_input_gives_a_message_per_field_exits_non_zero_and_writes_nothing(
    payload: str, expected: dict[str, str], cli_env: dict[str, str], redis: Redis
) -> None:
    result = router_cli("submit", "-", env=cli_env, stdin=payload)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "nothing was saved" in result.stderr
    for field, words in expected.items():
        lines = [
            line for line in result.stderr.splitlines() if line.strip().startswith(f"{field}:")
        ]
        assert lines, f"no message for {field} in:\n{result.stderr}"
        assert words in lines[0]
    assert result.stdout == ""
    assert written_keys(redis) == []


def test_status_prints_each_departments_state(
    cli_env: dict[str, str], redis: Redis, workers: Supervisor
) -> None:
    # A death the register confirms is told; nobody proved who reported the name change.
    death = _ref_from(router_cli("submit", str(EXAMPLES / "death.json"), env=cli_env).stdout)
    name = _ref_from(
        router_cli("submit", str(EXAMPLES / "change_of_name.json"), env=cli_env).stdout
    )
    wait_settled(redis, death)

    result = router_cli("status", reference.display(death).lower().replace("-", " "), env=cli_env)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "delivered" in lines["dwp"] and "receipt DWP-" in lines["dwp"]

    result = router_cli("status", name, env=cli_env)
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "waiting" in lines["hmrc"] and "identity" in lines["hmrc"]
    assert "assisted" in lines["dvla"]

    as_json = json.loads(router_cli("status", name, "--json", env=cli_env).stdout)
    assert as_json["deliveries"]["dvla"]["state"] == "assisted"
    assert as_json["deliveries"]["hmrc"]["state"] == "waiting"
    as_json = json.loads(router_cli("status", death, "--json", env=cli_env).stdout)
    assert as_json["deliveries"]["hmrc"]["state"] == "delivered"


@pytest.mark.parametrize("text", ["ACDE-FGHJ-K", "nonsense", ""])
def test_status_of_a_bad_or_unknown_reference_says_so_without_a_traceback(
    text: str, cli_env: dict[str, str], redis: Redis
) -> None:
    result = router_cli("status", text, env=cli_env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "reference" in result.stderr.lower()


def test_operators_list_and_replay_failed_deliveries(
    cli_env: dict[str, str], redis: Redis, workers: Supervisor
) -> None:
    configure_faults(redis, "payments", Faults(permanent_rate=1.0))
    ref = _ref_from(router_cli("submit", str(EXAMPLES / "death.json"), env=cli_env).stdout)
    wait_settled(redis, ref)

    failed = router_cli("deliveries", "failed", env=cli_env)
    assert f"{ref}-payments" in failed.stdout
    assert "refused" in failed.stdout

    assert (
        router_cli("mock", "configure", "payments", "--permanent-rate", "0", env=cli_env).returncode
        == 0
    )
    replay = router_cli("deliveries", "replay", "--all", env=cli_env)
    assert replay.returncode == 0, replay.stderr
    case = wait_settled(redis, ref)
    assert case.deliveries["payments"].state.value == "delivered"
    assert "No failed deliveries" in router_cli("deliveries", "failed", env=cli_env).stdout


def test_worker_refuses_an_unknown_department(cli_env: dict[str, str], redis: Redis) -> None:
    result = router_cli("worker", "--department", "ministry_of_magic", env=cli_env)
    assert result.returncode == 2
    assert "No adapter named ministry_of_magic" in result.stderr


# --- issue 13, row 21: `router up` with REDIS_URL on a fresh checkout -------------------------


def _up_until_running(env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run `router up --no-web` in ``cwd`` until it says it is running (then Ctrl-C) or
    stops by itself; its exit code and everything it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "router", "up", "--no-web"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Press Ctrl-C to stop."):
                proc.send_signal(signal.SIGINT)
                break
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(lines) + rest


def test_row_21_router_up_with_redis_url_on_a_fresh_checkout_starts(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "ROUTER_DATA_DIR"}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, whatever the folder it runs in
    fresh = tmp_path / "checkout"
    fresh.mkdir()
    assert not (fresh / ".router-data").exists()

    code, output = _up_until_running(env, fresh)

    assert "Traceback" not in output, output
    assert f"Redis: {redis_server.redacted(env['REDIS_URL'])} (external)" in output
    assert "Stopped." in output and code == 0, output
    assert not (fresh / ".router-data" / "redis.url").exists()


def test_row_21_router_up_with_a_redis_url_that_does_not_answer_says_so_in_one_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # (It waits the 15 seconds a Redis just started may take to answer first.)
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**cli_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0", "PYTHONPATH": str(ROOT)}

    code, output = _up_until_running(env, tmp_path)

    assert code == 1, output
    assert "Traceback" not in output, output
    assert output.strip().splitlines() == [
        f"Error: Redis at redis://127.0.0.1:{port}/0 (REDIS_URL) does not answer: start it, "
        "or unset REDIS_URL to let `router up` start its own."
    ]


def test_replay_takes_a_delivery_id_as_status_shows_it_and_a_whole_case(
    cli_env: dict[str, str], redis: Redis
) -> None:
    """Issue 15, item 14: `NNMX-NANX-J-hmrc` (as `router status` prints the reference)
    is the same delivery as `NNMXNANXJ-hmrc`; `--case REF` replays all of a case's."""
    from router.cases import CaseStore, DeliveryState

    ref = _ref_from(router_cli("submit", str(EXAMPLES / "death.json"), env=cli_env).stdout)
    store = CaseStore(redis)
    names = list(store.load(ref).deliveries)[:2]
    with redis.pipeline(transaction=True) as pipe:
        for name in names:
            store.mark(ref, name, DeliveryState.FAILED, "refused", pipeline=pipe)
            store.dead_letter(ref, name, "refused", pipe)
        pipe.execute()
    shown = f"{reference.display(ref)}-{names[0]}"
    one = router_cli("deliveries", "replay", shown, env=cli_env)
    assert one.returncode == 0, one.stderr
    assert f"Replayed {ref}-{names[0]}" in one.stdout
    rest = router_cli("deliveries", "replay", "--case", reference.display(ref), env=cli_env)
    assert rest.returncode == 0, rest.stderr
    assert f"Replayed {ref}-{names[1]}" in rest.stdout
    assert store.dead_letters() == {}
    none = router_cli("deliveries", "replay", "--case", reference.display(ref), env=cli_env)
    assert none.returncode == 1 and "no failed deliveries" in none.stderr
    assert router_cli("deliveries", "replay", env=cli_env).returncode == 2


def test_submit_prints_the_status_page_when_the_front_doors_address_is_known(
    cli_env: dict[str, str], redis: Redis
) -> None:
    """Issue 15, item 15: the status link as well as the secret."""
    env = dict(cli_env, TUO_PUBLIC_URL="https://tell-us-once.example/")
    result = router_cli("submit", str(EXAMPLES / "birth.json"), env=env)
    assert result.returncode == 0, result.stderr
    ref = _ref_from(result.stdout)
    secret = next(
        line.removeprefix("Status secret: ")
        for line in result.stdout.splitlines()
        if line.startswith("Status secret: ")
    )
    expected = f"https://tell-us-once.example/status/{reference.display(ref)}?s={secret}"
    assert f"Status page: {expected}" in result.stdout
    # `router up` leaves its address in the data folder, as it does Redis's.
    folder = Path(cli_env["ROUTER_DATA_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "web.url").write_text("http://127.0.0.1:5000/\n")
    again = router_cli("submit", str(EXAMPLES / "death.json"), env=cli_env)
    assert "Status page: http://127.0.0.1:5000/status/" in again.stdout


def test_no_redis_names_the_data_folder_it_looked_in(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["ROUTER_DATA_DIR"] = str(tmp_path / "elsewhere")
    result = router_cli("status", "ACDE-FGHJ-K", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "ROUTER_DATA_DIR=" in result.stderr and str(tmp_path / "elsewhere") in result.stderr


# --- the ledger (router.ledger) ------------------------------------------------------------


def _a_ledger_month(redis: Redis) -> str:
    from datetime import UTC, datetime

    from router import ledger

    at = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    entries = [
        ledger.delivery_entry("ACDEFGHJK", "dwp", at=at),
        ledger.delivery_entry("BCDEFGHJK", "dwp", at=at),
        ledger.delivery_entry("BCDEFGHJK", "hmrc", at=at),
        *ledger.task_entries("BCDEFGHJK", "identity_check", "cardiff-canton", ["dwp"], at=at),
    ]
    with redis.pipeline(transaction=True) as pipe:
        ledger.post(pipe, entries)
        pipe.execute()
    return "2026-11"


def test_ledger_months_and_a_departments_statement(cli_env: dict[str, str], redis: Redis) -> None:
    assert router_cli("ledger", "months", env=cli_env).stdout == "No ledger entries yet.\n"
    month = _a_ledger_month(redis)
    listed = router_cli("ledger", "months", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [month]

    result = router_cli("ledger", "statement", "--month", month, "--department", "dwp", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "Statement for department:dwp, 2026-11" in result.stdout
    assert "owes  delivery" in result.stdout and "operator" in result.stdout
    assert "branch:cardiff-canton" in result.stdout
    assert "Owes £3.40; owed £0.00; net £-3.40 (3 entries)" in result.stdout
    assert "Saved: 2 contacts" in result.stdout and "Source: " in result.stdout


def test_ledger_statement_as_csv_has_a_totals_row(cli_env: dict[str, str], redis: Redis) -> None:
    import csv
    import io

    month = _a_ledger_month(redis)
    result = router_cli("ledger", "statement", "--month", month, "--operator", "--csv", env=cli_env)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[-1]["direction"] == "total"
    assert int(rows[-1]["subtotal_pence"]) == sum(int(r["subtotal_pence"]) for r in rows[:-1])
    assert int(rows[-1]["count"]) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--month", "2026-11"], "Choose one party", id="no-party"),
        pytest.param(
            ["--month", "2026-11", "--operator", "--branch", "cardiff-canton"],
            "Choose one party",
            id="two-parties",
        ),
        pytest.param(["--month", "November", "--operator"], "YYYY-MM", id="bad-month"),
        pytest.param(
            ["--month", "2026-11", "--department", "passports"],
            "No department has that name",
            id="dept",
        ),
    ],
)
def test_ledger_statement_refuses_what_it_cannot_read(
    args: list[str], message: str, cli_env: dict[str, str]
) -> None:
    result = router_cli("ledger", "statement", *args, env=cli_env)
    assert result.returncode == 2
    assert message in result.stderr


def test_ledger_reconcile_balances_a_month(cli_env: dict[str, str], redis: Redis) -> None:
    month = _a_ledger_month(redis)
    result = router_cli("ledger", "reconcile", "--month", month, env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "4 entries, £3.80 in all; the nets add up to £0.00" in result.stdout
