"""What the browser tests need, installed by the test set-up itself.

python -m scripts.browser ensure   # Chromium from Debian, axe-core from the npm registry

- Chromium: Debian's package ``chromium`` (``/usr/bin/chromium``), installed with apt-get
  when missing. Playwright drives it; Playwright's own browser download is never used.
- axe-core: pinned in tests/browser/package.json and package-lock.json, installed with
  ``npm ci`` into tests/browser/node_modules when missing or not the locked version.

Idempotent: when both are present it only looks at a few files. Exits non-zero with a
message saying what to do when it cannot install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_TESTS = ROOT / "tests" / "browser"
AXE_JS = BROWSER_TESTS / "node_modules" / "axe-core" / "axe.min.js"


class SetupError(Exception):
    """Something the browser tests need could not be installed."""


def say(message: str) -> None:
    print(f"browser: {message}", flush=True)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run ``cmd``; return its output, or raise SetupError with the end of it."""
    try:
        done = subprocess.run(
            cmd, env=env, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
    except OSError as error:
        raise SetupError(f"could not run {cmd[0]}: {error}") from error
    output = (done.stdout or "") + (done.stderr or "")
    if done.returncode != 0:
        raise SetupError(f"`{' '.join(cmd)}` exited with {done.returncode}:\n{_tail(output)}")
    return output


def ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise SetupError(
            f"{CHROMIUM} is missing and there is no apt-get here: install Debian's "
            "`chromium` package (or a Chromium at that path) by hand"
        )
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise SetupError(
            f"{CHROMIUM} is missing and installing it needs root: run "
            "`sudo apt-get install -y --no-install-recommends chromium`"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = [apt_get, "install", "-y", "-q", "--no-install-recommends", "chromium"]
    started = time.monotonic()
    say("installing Debian's chromium with apt-get (once; takes a minute or two)")
    try:
        _run(install, env=env)
    except SetupError:
        # Most often a fresh machine with no package lists yet (or stale ones).
        say("apt-get install failed; running apt-get update and trying again")
        _run([apt_get, "update", "-q"], env=env)
        _run(install, env=env)
    if not CHROMIUM.exists():
        raise SetupError(f"apt-get installed chromium but {CHROMIUM} is still missing")
    say(f"chromium installed in {time.monotonic() - started:.0f}s")


def _locked_axe_version() -> str | None:
    lock = json.loads((BROWSER_TESTS / "package-lock.json").read_text())
    return lock.get("packages", {}).get("node_modules/axe-core", {}).get("version")


def _installed_axe_version() -> str | None:
    manifest = AXE_JS.parent / "package.json"
    if not (AXE_JS.exists() and manifest.exists()):
        return None
    return json.loads(manifest.read_text()).get("version")


def ensure_axe() -> None:
    locked = _locked_axe_version()
    if locked is None:
        raise SetupError(f"no axe-core in {BROWSER_TESTS / 'package-lock.json'}")
    if _installed_axe_version() == locked:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SetupError(
            "npm is missing: install Node.js and npm (Debian: `apt-get install nodejs npm`)"
        )
    started = time.monotonic()
    say(f"installing axe-core {locked} with npm ci in {BROWSER_TESTS.relative_to(ROOT)}")
    _run([npm, "ci", "--no-audit", "--no-fund"], cwd=BROWSER_TESTS)
    if _installed_axe_version() != locked:
        raise SetupError(f"npm ci ran but {AXE_JS} is not axe-core {locked}")
    say(f"axe-core installed in {time.monotonic() - started:.0f}s")


def ensure() -> None:
    ensure_chromium()
    ensure_axe()
    say(f"ready: {CHROMIUM}, axe-core {_installed_axe_version()}")


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "ensure"
    if action != "ensure":
        print("usage: python -m scripts.browser ensure", file=sys.stderr)
        return 2
    try:
        ensure()
    except SetupError as error:
        print(f"browser: cannot set up the browser tests: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
