"""Mutation testing of the core: plant one small bug at a time, see if a test notices.

    python -m scripts.mutation                        # the core modules in MODULES
    python -m scripts.mutation router/reference.py    # only these

mutmut 3 (``pip install "mutmut>=3.8"`` into .venv; it is a developer's tool, not a
dependency) mutates each function of the modules named and runs the fast tests that
cover it. A mutant no test fails on "survived": a bug the suite would let through.
Not part of CI: it is slow, and its result is a score to improve, not a gate.

It runs in a scratch copy of the working tree (so the repository gets no mutants/
folder) and prints, per module, the mutants killed, survived and timed out, then the
diff of every survivor. The meta-tests that read the source as text (translations,
the layout) are left out: a mutated string would only fail them for being new.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The core, and the access checks of the status page and the counter.
MODULES = (
    "router/reference.py",
    "router/routing.py",
    "router/validators.py",
    "router/cases.py",
    "router/delivery/batch.py",
    "router/delivery/recovery.py",
    "router/delivery/breaker.py",
    "router/assisted/desk.py",
    "channels/web/access.py",
    "channels/counter/views.py",
)
PACKAGES = ("router", "channels")
COPY = ("tests", "templates", "examples", "docs", "scripts", "benchmarks")
COPY_FILES = ("babel.cfg", "README.md", "hatch_build.py", "pyproject.toml")
TEST_ARGS = [
    "-m",
    "not slow and not browser",
    "-p",
    "no:cacheprovider",
    "--ignore=tests/core/test_i18n.py",
    "--ignore=tests/core/test_layout.py",
]
_RESULT = re.compile(r"^\s+(?P<name>\S+): (?P<status>\w[\w ]*)$")


def _config(modules: list[str]) -> str:
    """The [tool.mutmut] table: mutate ``modules`` and no other file of the packages."""
    others = sorted(
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if str(path.relative_to(ROOT)) not in modules
    )
    # TOML's arrays of basic strings read JSON's arrays of strings as they are.
    return (
        "\n[tool.mutmut]\n"
        f"source_paths = {json.dumps(list(PACKAGES))}\n"
        f"do_not_mutate = {json.dumps(others)}\n"
        f"pytest_add_cli_args = {json.dumps(TEST_ARGS)}\n"
        f"also_copy = {json.dumps([*COPY, *COPY_FILES[:-1]])}\n"
    )


def _module_of(mutant: str) -> str:
    """``router.reference.x_new_secret__mutmut_1`` -> ``router/reference.py``."""
    dotted = re.split(r"\.x[_ǁ]", mutant, maxsplit=1)[0]
    return dotted.replace(".", "/") + ".py"


def main(argv: list[str]) -> int:
    modules = argv or list(MODULES)
    unknown = [m for m in modules if not (ROOT / m).is_file()]
    if unknown:
        print(f"no such module: {', '.join(unknown)}", file=sys.stderr)
        return 2
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        print('mutmut is not installed: .venv/bin/pip install "mutmut>=3.8"', file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        work = Path(scratch) / "tree"
        work.mkdir()
        for name in (*PACKAGES, *COPY):
            shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("node_modules"))
        for name in COPY_FILES:
            shutil.copy2(ROOT / name, work / name)
        with (work / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
            pyproject.write(_config(modules))
        subprocess.run([sys.executable, "-m", "scripts.i18n", "compile"], cwd=work, check=True)
        subprocess.run([str(mutmut), "run"], cwd=work, check=False)
        listed = subprocess.run(
            [str(mutmut), "results", "--all", "true"],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        results = [m.groupdict() for m in map(_RESULT.match, listed.splitlines()) if m]
        by_module: dict[str, Counter[str]] = {}
        for result in results:
            by_module.setdefault(_module_of(result["name"]), Counter())[result["status"]] += 1
        heading = ("module", "mutants", "killed", "survived", "other", "score")
        print("\n{:<32} {:>8} {:>7} {:>9} {:>6} {:>6}".format(*heading))
        for module in modules:
            counts = by_module.get(module, Counter())
            total = sum(counts.values())
            killed = counts["killed"]
            other = total - killed - counts["survived"]
            score = f"{100 * killed / total:.0f}%" if total else "-"
            print(
                f"{module:<32} {total:>8} {killed:>7} {counts['survived']:>9} {other:>6} {score:>6}"
            )
        survivors = [r["name"] for r in results if r["status"] != "killed"]
        for name in survivors:
            shown = subprocess.run(
                [str(mutmut), "show", name], cwd=work, capture_output=True, text=True, check=False
            ).stdout
            changed = [
                line
                for line in shown.splitlines()
                if line[:1] in "+-" and not line.startswith(("+++", "---"))
            ]
            status = next(r["status"] for r in results if r["name"] == name)
            print(f"\n{name} ({status})")
            print("\n".join(f"  {line}" for line in changed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
