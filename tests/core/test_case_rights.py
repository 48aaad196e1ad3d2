"""Issue 14, the citizen's rights: `router case export REF` writes everything held about
a case for a subject access request; `router case erase REF --reason` erases its personal
data now, audited, and lists the departments told already. Run as real processes, as the
cli Redis user."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from redis import Redis

from router import keys, reference
from router.assisted import audit
from router.cases import DeliveryState
from router.service import LifeEventRouter
from tests.support.processes import router_cli
from tests.support.samples import answers_for, submit_to_core


def _deliver_all(core: LifeEventRouter, ref: str) -> None:
    for name in core.case(ref).deliveries:
        core.store.mark(ref, name, DeliveryState.DELIVERED, sent=True)


def test_export_writes_everything_held_about_a_case_to_a_private_file(
    core: LifeEventRouter, redis: Redis, cli_env: dict[str, str], tmp_path: Path
) -> None:
    ref = submit_to_core(core, "moving_house").ref
    _deliver_all(core, ref)
    audit.record(redis, "viewed_case", staff="clerk1", branch="B1", case=ref)
    out = tmp_path / "sar.json"
    result = router_cli("case", "export", reference.display(ref), "--out", str(out), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    held = json.loads(out.read_text())
    assert held["reference"] == reference.display(ref)
    assert held["answers"] == {k: v for k, v in dict(core.case(ref).answers).items()}
    assert held["answers"]["postcode"] == core.case(ref).answers["postcode"]
    told = sorted(core.case(ref).deliveries)
    assert sorted(s["department"] for s in held["shared"]) == told
    for shared in held["shared"]:
        assert shared["at"] and shared["fields"] == list(
            core.case(ref).deliveries[shared["department"]].fields
        )
    assert [e["state"] for e in held["history"]][0] == "received"
    assert [e["action"] for e in held["audit"]] == ["viewed_case"]
    # Nothing personal in what the command printed: only counts.
    assert answers_for("moving_house")["full_name"] not in result.stdout + result.stderr
    assert "departments told" in result.stdout


def test_erase_refuses_a_case_with_work_pending_then_erases_and_names_who_was_told(
    core: LifeEventRouter, redis: Redis, cli_env: dict[str, str]
) -> None:
    ref = submit_to_core(core, "moving_house").ref
    shown = reference.display(ref)
    refused = router_cli("case", "erase", shown, "--reason", "SAR-2026-114", env=cli_env)
    assert refused.returncode == 1 and "still has work to do" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert core.case(ref).answers.get("full_name")
    _deliver_all(core, ref)
    result = router_cli("case", "erase", shown, "--reason", "SAR-2026-114", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert f"Erased the personal data of case {shown}" in result.stdout
    for name in core.case(ref).deliveries:
        assert name in result.stdout
    assert not any(k.startswith(b"a:") for k in redis.hkeys(keys.case(ref)))
    [entry] = core.retention.erasures(ref)
    assert entry["by"] == "request" and entry["reason"] == "SAR-2026-114"
    again = router_cli("case", "erase", shown, "--reason", "SAR-2026-114", env=cli_env)
    assert again.returncode == 0 and "erased already" in again.stdout
    # The export after erasure says what is left and when it goes.
    held = json.loads(router_cli("case", "export", shown, "--out", "-", env=cli_env).stdout)
    assert held["answers"] == {} and held["retention"]["personal_data_erased_at"]


def test_export_and_erase_of_a_bad_or_unknown_reference_say_so_in_one_line(
    cli_env: dict[str, str], redis: Redis
) -> None:
    for args in (["export", "NOPE", "--out", "-"], ["erase", "ACDE-FGHJ-K", "--reason", "x"]):
        result = router_cli("case", *args, env=cli_env)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert "reference" in result.stderr.lower()
