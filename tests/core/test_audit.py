"""./dev test's security checks (issue 13, "Also"): pip-audit that could reach no
vulnerability database says so instead of passing silently; a known vulnerability fails."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from scripts import audit


def _answer(monkeypatch: pytest.MonkeyPatch, report: dict[str, Any]) -> None:
    def run(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 0, stdout=json.dumps(report), stderr="")

    monkeypatch.setattr(subprocess, "run", run)


def test_pip_audit_offline_is_a_skip_said_in_one_line_not_a_pass(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    skipped = {"name": "flask", "skip_reason": "Dependency not found on PyPI"}
    _answer(monkeypatch, {"dependencies": [skipped, skipped], "fixes": []})
    assert audit.pip_audit() == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "none of the 2 installed packages was audited" in out
    assert "not a pass" in out


def test_pip_audit_fails_on_a_known_vulnerability(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    vulnerable = {"name": "flask", "version": "0.1", "vulns": [{"id": "PYSEC-0000-1"}]}
    clean = {"name": "redis", "version": "5.0", "vulns": []}
    _answer(monkeypatch, {"dependencies": [vulnerable, clean], "fixes": []})
    assert audit.pip_audit() == 1
    out = capsys.readouterr().out
    assert "flask 0.1: PYSEC-0000-1" in out and "2 packages audited" in out


def test_bandit_finds_nothing_in_our_code() -> None:
    assert audit.bandit() == 0
