"""Security checks run by ``./dev test``: bandit over our code, pip-audit over what is
installed.

pip-audit asks a vulnerability database (PyPI's, or OSV) about every installed package.
Where that database cannot be reached it skips each package and still says "No known
vulnerabilities found": a pass that checked nothing. Here a run that could audit no
package says so in one line and is not counted as a pass; a run that finds a known
vulnerability fails.

    python -m scripts.audit            # bandit, then pip-audit
"""

from __future__ import annotations

import json
import subprocess
import sys


def bandit() -> int:
    # Configured in pyproject.toml ([tool.bandit]): its false positives are marked there.
    return subprocess.call(
        [sys.executable, "-m", "bandit", "-q", "-c", "pyproject.toml", "-r", "router", "channels"]
    )


def pip_audit(timeout: float = 120.0) -> int:
    command = [sys.executable, "-m", "pip_audit", "-l", "--skip-editable", "-f", "json"]
    command += ["--progress-spinner", "off"]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"pip-audit: skipped: no answer from the vulnerability database in {timeout:g}s")
        return 0
    try:
        report = json.loads(run.stdout)
    except ValueError:
        print("pip-audit: skipped: it gave no report (offline?):", run.stderr.strip()[:300])
        return 0
    packages = report.get("dependencies", [])
    audited = [p for p in packages if "skip_reason" not in p]
    vulnerable = [p for p in audited if p.get("vulns")]
    if not audited:
        print(
            f"pip-audit: skipped: the vulnerability database could not be reached, so none "
            f"of the {len(packages)} installed packages was audited (this is not a pass)"
        )
        return 0
    for package in vulnerable:
        ids = ", ".join(v["id"] for v in package["vulns"])
        print(f"pip-audit: {package['name']} {package['version']}: {ids}")
    skipped = len(packages) - len(audited)
    print(
        f"pip-audit: {len(audited)} packages audited, {skipped} skipped, "
        f"{len(vulnerable)} with known vulnerabilities"
    )
    return 1 if vulnerable else 0


def main() -> int:
    print("== bandit")
    found = bandit()
    print("== pip-audit")
    return found or pip_audit()


if __name__ == "__main__":
    sys.exit(main())
