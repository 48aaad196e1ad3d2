"""The architecture, kept by a test: which room may import which, and no cycles.

Every import in ``router/`` and ``channels/`` is read with ``ast`` (those inside
functions too: a lazy import is still a dependency). A module may import from its own
layer or the layers below it, never above; channels reach the core only through the
façade and its plain modules, never Redis, RQ, the Redis keys or the worker side.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lowest first. A new module must be given a layer here.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "router.i18n",
        "router.exceptions",
        "router.keys",
        "router.settings",
        "router.validators",
        "router.reference",
        "router.redis_server",
        "router.trust",
        "router.sealing",
        "router.metrics",
        "router.logs",
    ),
    ("router.catalogue",),
    ("router.adapters.contract",),
    (
        "router.routing",
        "router.cases",
        "router.throttle",
        "router.people",
        "router.clients",
        "router.retention",
        "router.stats",
        "router.feedback",
        "router.tariff",
        "router.ledger",
    ),
    ("router.adapters",),  # the registry, webhooks, mocks, the conformance kit
    ("router.delivery",),
    ("router.assisted", "router.performance"),
    ("router.service", "router.dev_identity", "router.rotation", "router.demo"),
    ("router.cli", "router.__main__"),
    ("channels",),
)

# What a channel must never import: it goes through router.service instead.
CHANNELS_MAY_NOT_IMPORT = ("redis", "rq", "router.delivery", "router.keys")


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("router", "channels"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, by its full name (``from a import b`` gives
    ``a.b`` when that is a module of ours, else ``a``)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield full if full in MODULES else node.module


def _internal(path: Path) -> set[str]:
    return {m for m in _imports(path) if m.split(".")[0] in ("router", "channels")}


def layer(module: str) -> int:
    """The index of the most specific layer entry that names ``module`` or a package
    holding it."""
    best: tuple[int, int] | None = None  # (length of the matching prefix, layer)
    for index, names in enumerate(LAYERS):
        for name in names:
            matches = module == name or module.startswith(name + ".")
            if matches and (best is None or len(name) > best[0]):
                best = (len(name), index)
    if best is None:
        raise AssertionError(f"{module} has no layer: add it to LAYERS in {__file__}")
    return best[1]


def _packages(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_from_a_layer_above_its_own(module: str) -> None:
    upward = sorted(
        imported
        for imported in _internal(MODULES[module])
        if imported not in _packages(module) and layer(imported) > layer(module)
    )
    assert upward == [], f"{module} (layer {layer(module)}) imports upward: {upward}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("channels")))
def test_channels_reach_the_core_only_through_its_facade(module: str) -> None:
    forbidden = sorted(
        imported
        for imported in _imports(MODULES[module])
        if any(imported == f or imported.startswith(f + ".") for f in CHANNELS_MAY_NOT_IMPORT)
    )
    assert forbidden == [], f"{module} imports {forbidden}: go through router.service"
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    reached = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "redis"
    ]
    assert reached == [], f"{module} reaches the core's Redis client on lines {reached}"


def test_there_are_no_import_cycles() -> None:
    graph = {
        module: {m for m in _internal(path) if m in MODULES and m not in _packages(module)}
        for module, path in MODULES.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                cycles.append([*trail[trail.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*trail, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_layer_check_would_see_an_upward_import(tmp_path: Path) -> None:
    """The checks above can fail: an import of the façade from the case store is seen."""
    planted = tmp_path / "cases.py"
    planted.write_text("def f():\n    from router.service import LifeEventRouter\n")
    assert "router.service" in _internal(planted)
    assert layer("router.service") > layer("router.cases")
    assert layer("channels.web.journey") > layer("router.service")
