"""Mutation testing of the core: plant one small bug at a time, see if a test notices.

    python -m scripts.mutation                        # every module in TARGETS
    python -m scripts.mutation router/reference.py    # only these
    python -m scripts.mutation --list                 # the modules and their tests

mutmut 3 (``pip install -e ".[mutation]"``, or ``pip install "mutmut>=3.8"``, into .venv;
a developer's tool, not a dependency) mutates each function of a module and, for each
mutant, runs those of the module's tests that call the function. A mutant no test fails
"survived": a bug the suite would let through. Not part of CI: it is slow, and its result
is a score to improve, not a gate.

Each module runs in its own copy of the working tree, ``mutants/<module>/`` (ignored by
git), with a ``[tool.mutmut]`` table that mutates that module only (only the access
checks of the counter's views) and selects only the test files that cover it, so each
run stays short. mutmut makes its own ``mutants/`` inside that copy and runs the tests
there: the suite's own Redis (tests/conftest.py) and the worker processes it starts
import the mutated code from it. The copy is kept until the next run, to look at the
survivors by hand:

    cd mutants/router-reference && ../../.venv/bin/mutmut show <name>

The script prints, per module, the mutants, killed, survived (mutmut's "no tests"
counted too: no test runs that code), timed out, and the score (killed and timed out,
as mutmut counts them, over all mutants), then the diff of every survivor.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "mutants"


@dataclass(frozen=True)
class Target:
    module: str
    tests: tuple[str, ...]
    # Only these functions (methods as Class.method), when not the whole module.
    functions: tuple[str, ...] = ()
    # Run the slow tests of ``tests`` too: for a module whose covering tests are marked
    # slow (whole modules such as tests/delivery/test_recovery.py), which the fast
    # selection would skip.
    slow: bool = False

    @property
    def slug(self) -> str:
        return self.module.removesuffix(".py").replace("/", "-")

    @property
    def dotted(self) -> str:
        return self.module.removesuffix(".py").replace("/", ".")

    def patterns(self) -> list[str]:
        """mutmut's mutant names of this target: ``router.reference.x_new_secret__mutmut_3``,
        ``router.cases.xǁCaseǁat_counter__mutmut_1``."""
        if not self.functions:
            return [f"{self.dotted}.*"]
        names = []
        for function in self.functions:
            owner, _, method = function.rpartition(".")
            mangled = f"xǁ{owner}ǁ{method}" if owner else f"x_{method}"
            names.append(f"{self.dotted}.{mangled}__mutmut_*")
        return names


RECOVERY_IN_PROCESS = tuple(
    f"tests/delivery/test_recovery.py::{name}"
    for name in (
        "test_the_sweeper_recovers_an_orphan_and_leaves_a_live_lease_alone",
        "test_a_lease_renewed_in_bulk_keeps_a_slow_delivery_from_the_sweeper",
        "test_the_sweeper_drops_a_finished_delivery_and_a_malformed_id_and_recovers_nothing",
        "test_a_lease_runs_for_its_length_from_when_it_is_taken_or_renewed",
        "test_a_beat_step_that_fails_is_logged_and_the_next_one_runs",
        "test_a_beat_runs_on_a_daemon_thread_and_stops_started_or_not",
        "test_a_beat_stops_within_its_timeout_even_while_a_step_hangs",
        "test_a_beat_stopped_has_finished_its_step",
        "test_the_beat_keeps_a_draining_department_s_wake_key_but_never_brings_one_back",
    )
)

# The core, and the access checks of the status page and the counter, each with the
# tests that cover it (a file, or one test of it).
TARGETS = (
    Target(
        "router/reference.py",
        ("tests/core/test_reference.py", "tests/core/test_properties.py"),
    ),
    Target(
        "router/routing.py",
        (
            "tests/core/test_routing.py",
            "tests/core/test_case_model.py",
            "tests/core/test_properties.py",
        ),
    ),
    Target(
        "router/validators.py",
        (
            "tests/core/test_validators.py",
            "tests/core/test_names.py",
            "tests/core/test_properties.py",
        ),
    ),
    Target(
        "router/cases.py",
        (
            "tests/core/test_case_model.py",
            "tests/core/test_case_store.py",
            "tests/core/test_case_rights.py",
            "tests/core/test_duplicates.py",
            "tests/core/test_trust.py",
            "tests/core/test_service.py",
            "tests/delivery/test_fanout.py",  # the drain's lean load
        ),
        # The store's writes and reads, the delivery ids and the parse of a stored
        # case, and what a case says of itself: not the sealed mappings' plumbing,
        # which the sealing tests pin (1,014 mutants in all do not fit in a session).
        functions=(
            "history_entry",
            "delivery_id",
            "split_delivery_id",
            "Case.counter_tasks",
            "Case.waiting_for",
            "Case.at_counter",
            "Case.finished",
            "Case.settled",
            "CaseStore.create",
            "CaseStore._writes",
            "CaseStore._run_create",
            "CaseStore.mark",
            "CaseStore.flag",
            "CaseStore.unflag",
            "CaseStore.dead_letter",
            "CaseStore.load_many",
            "CaseStore.load_for_delivery",
            "parse",
            "_delivery",
            "lean_case",
        ),
        slow=True,
    ),
    # The batch and the sweeper run in worker processes, which mutmut does not see: what
    # counts is the tests that call them in the test's own process (test_fanout.py's
    # batch step by step; the sweeper's, the leases' and the beat's tests in
    # test_recovery.py, a module marked slow, named one by one so that its tests of
    # killed workers and outages, which only the workers' code serves, stay out).
    Target(
        "router/delivery/batch.py",
        (
            "tests/delivery/test_fanout.py",
            *RECOVERY_IN_PROCESS,
            "tests/delivery/test_ledger_posting.py",
            "tests/core/test_metrics.py",
        ),
        slow=True,
    ),
    Target(
        "router/delivery/recovery.py",
        (*RECOVERY_IN_PROCESS, "tests/delivery/test_ledger_posting.py"),
        slow=True,
    ),
    # Step by step in test_health.py (test_recovery.py's outage runs in the workers).
    Target("router/delivery/breaker.py", ("tests/delivery/test_health.py",)),
    # The desk's counter work: the branch a case waits at, moving it, the identity check,
    # the tasks, releasing deliveries, and the date of birth that opens another
    # branch's case. Not its sign-in and audit wrappers (router.assisted.staff,
    # router.throttle and router.assisted.audit do that work), to keep the run short.
    Target(
        "router/assisted/desk.py",
        (
            "tests/counter/test_desk.py",
            "tests/counter/test_ledger_at_counter.py",
            "tests/counter/test_trust_at_counter.py",
            "tests/counter/test_staff_hardening.py",
            "tests/counter/test_access.py",
            "tests/core/test_ledger.py",
            "tests/core/test_metrics.py",  # a task done is counted
        ),
        functions=(
            "tasks_needed",
            "choose_branch",
            "_needing_identity",
            "Desk.reporter_born_on",
            "Desk.assign",
            "Desk.branch_queue",
            "Desk.move",
            "Desk.record_identity",
            "Desk.complete",
            "Desk._finish",
            "Desk._change",
        ),
    ),
    # The status page's access: which cases a browser has proved it may see.
    Target(
        "channels/web/access.py", ("tests/web/test_status.py", "tests/web/test_hardening_web.py")
    ),
    # The counter's access checks: each role into its own area only, a safe ``next``,
    # another branch's case only while serving that citizen.
    Target(
        "channels/counter/views.py",
        (
            "tests/counter/test_access.py",
            "tests/counter/test_hardening.py",
            "tests/counter/test_staff.py",
            "tests/counter/test_staff_hardening.py",
            "tests/backoffice/test_areas.py",
        ),
        functions=("guard", "_under", "_safe_next", "_may_serve"),
    ),
)
BY_MODULE = {target.module: target for target in TARGETS}

SOURCES = ("router", "channels")
# Copied beside the mutated code: the tests run there (cwd mutants/), and read these.
ALSO = ("tests", "templates", "examples", "docs", "scripts", "benchmarks")
COPY_FILES = ("babel.cfg", "README.md", "hatch_build.py", "pyproject.toml")
# The tests' own options: fast tests only (slow ones too for a Target with ``slow``), no
# browser tests.
TEST_ARGS = ["-p", "no:cacheprovider", "-x", "-q"]
FAST = "not slow and not browser"
WITH_SLOW = "not browser"
_RESULT = re.compile(r"^\s+(?P<name>\S+): (?P<status>\w[\w ]*)$")


def test_args(target: Target) -> list[str]:
    return ["-m", WITH_SLOW if target.slow else FAST, *TEST_ARGS]


def _config(target: Target) -> str:
    """The [tool.mutmut] table: mutate ``target`` only, with its tests only."""
    # TOML's arrays of basic strings read JSON's arrays of strings as they are.
    return (
        "\n[tool.mutmut]\n"
        f"source_paths = {json.dumps(list(SOURCES))}\n"
        f"only_mutate = {json.dumps([target.module])}\n"
        f"pytest_add_cli_args = {json.dumps(test_args(target))}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(list(target.tests))}\n"
        f"also_copy = {json.dumps([*ALSO, *COPY_FILES])}\n"
        # Under two cores a run's Redis and workers share the machine with the tests.
        "timeout_multiplier = 20.0\n"
        "timeout_constant = 5.0\n"
    )


def _tree(target: Target) -> Path:
    """A fresh copy of the working tree for ``target``, with its [tool.mutmut] table."""
    tree = WORK / target.slug
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    skip = shutil.ignore_patterns("node_modules", "__pycache__", ".hypothesis", "results")
    for name in (*SOURCES, *ALSO):
        shutil.copytree(ROOT / name, tree / name, ignore=skip)
    for name in COPY_FILES:
        shutil.copy2(ROOT / name, tree / name)
    with (tree / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write(_config(target))
    return tree


def _env() -> dict[str, str]:
    # The mutated code must be the only router on the path: no PYTHONPATH to this tree.
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def run(
    target: Target, mutmut: Path, resume: bool = False, survivors_again: bool = False
) -> tuple[Counter[str], list[tuple[str, str, list[str]]]]:
    """Run mutmut over ``target``: the count of each status, and each survivor's diff.
    With ``resume``, in the copy a stopped run left, testing only the mutants it did
    not come to (the others keep their result). With ``survivors_again``, in that copy
    with the working tree's tests of now, testing again only the mutants that survived
    (tests added since can only kill more)."""
    env = _env()
    tree = WORK / target.slug
    patterns = target.patterns()
    names = patterns if target.functions else []
    if (resume or survivors_again) and tree.exists():
        if survivors_again:
            shutil.rmtree(tree / "tests")
            skip = shutil.ignore_patterns("node_modules", "__pycache__", ".hypothesis")
            shutil.copytree(ROOT / "tests", tree / "tests", ignore=skip)
        again = ("not checked",) if resume else ("survived", "no tests")
        # Named mutants run again whatever their result: name only those.
        names = [n for n, status in _results(tree, mutmut, env, patterns) if status in again]
        if not names:
            return _collect(tree, mutmut, env, patterns)
    else:
        tree = _tree(target)
        subprocess.run(
            [sys.executable, "-m", "scripts.i18n", "compile"], cwd=tree, env=env, check=True
        )
    appending = resume or survivors_again
    with (tree / "mutmut.log").open("a" if appending else "w", encoding="utf-8") as log:
        subprocess.run(
            [str(mutmut), "run", *names],
            cwd=tree,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return _collect(tree, mutmut, env, patterns)


def _collect(
    tree: Path, mutmut: Path, env: dict[str, str], patterns: list[str]
) -> tuple[Counter[str], list[tuple[str, str, list[str]]]]:
    """The count of each status of the target's mutants in ``tree``, and each survivor's
    diff."""
    counts: Counter[str] = Counter()
    survivors = []
    for name, status in _results(tree, mutmut, env, patterns):
        counts[status] += 1
        if status == "not checked":  # a run stopped before it came to them
            continue
        if status not in ("killed", "timeout"):
            shown = subprocess.run(
                [str(mutmut), "show", name],
                cwd=tree,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            changed = [
                line
                for line in shown.splitlines()
                if line[:1] in "+-" and not line.startswith(("+++", "---"))
            ]
            survivors.append((name, status, changed))
    return counts, survivors


def _results(
    tree: Path, mutmut: Path, env: dict[str, str], patterns: list[str]
) -> list[tuple[str, str]]:
    """(name, status) of every mutant of the target in ``tree`` so far."""
    listed = subprocess.run(
        [str(mutmut), "results", "--all", "true"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [
        (found["name"], found["status"])
        for found in map(_RESULT.match, listed.splitlines())
        if found and any(fnmatch(found["name"], p) for p in patterns)
    ]


def row(module: str, counts: Counter[str]) -> str:
    total = sum(counts.values()) - counts["not checked"]
    killed, timeout = counts["killed"], counts["timeout"]
    survived = total - killed - timeout
    score = f"{100 * (killed + timeout) / total:.0f}%" if total else "-"
    unchecked = f" ({counts['not checked']} not checked)" if counts["not checked"] else ""
    return f"| {module}{unchecked} | {total} | {killed} | {survived} | {timeout} | {score} |"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.mutation", description=__doc__)
    parser.add_argument("modules", nargs="*", help="modules of TARGETS (default: all)")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="go on with a stopped run in its copy under mutants/ (same code and tests)",
    )
    parser.add_argument(
        "--survivors-again",
        action="store_true",
        help="in a run's copy under mutants/, test its survivors again with today's tests",
    )
    args = parser.parse_args(argv)
    if args.list:
        for target in TARGETS:
            only = f" ({', '.join(target.functions)})" if target.functions else ""
            slow = " (slow tests too)" if target.slow else ""
            print(f"{target.module}{only}{slow}: {' '.join(target.tests)}")
        return 0
    unknown = [m for m in args.modules if m not in BY_MODULE]
    if unknown:
        print(f"not a module of TARGETS: {', '.join(unknown)}", file=sys.stderr)
        return 2
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        print('mutmut is not installed: .venv/bin/pip install "mutmut>=3.8"', file=sys.stderr)
        return 2
    rows = []
    details = []
    for target in [BY_MODULE[m] for m in args.modules] or list(TARGETS):
        print(f"== {target.module}", flush=True)
        counts, survivors = run(
            target, mutmut, resume=args.resume, survivors_again=args.survivors_again
        )
        rows.append(row(target.module, counts))
        print(rows[-1], flush=True)
        details.append((target, survivors))
    print("\n| module | mutants | killed | survived | timeout | score |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    for target, survivors in details:
        for name, status, changed in survivors:
            print(f"\n{name} ({status}; mutants/{target.slug})")
            print("\n".join(f"  {line}" for line in changed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
