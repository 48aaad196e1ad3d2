"""Finds department adapters through the ``tell_us_once.adapters`` entry-point group.

A department ships its adapter as a package declaring, in its pyproject::

    [project.entry-points."tell_us_once.adapters"]
    mydept = "mydept_adapter:MyDeptAdapter"

and ``pip install`` makes it known to every router process. The built-in mock
departments register the same way. ``ROUTER_ADAPTERS`` (comma-separated
``module:Class`` specs) replaces the entry points, so a test or a deployment can say
exactly which adapters run.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points

from redis import Redis

from router.adapters.contract import Adapter, RegistryError, check_declaration
from router.adapters.webhook import adapter_class, load_webhooks

ENTRY_POINT_GROUP = "tell_us_once.adapters"


def _load_spec(spec: str) -> type[Adapter]:
    module_name, _, attr = spec.strip().partition(":")
    if not attr:
        raise RegistryError(f"adapter spec {spec!r} must look like 'package.module:Class'")
    obj = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(obj, type) and issubclass(obj, Adapter)):
        raise RegistryError(f"{spec!r} is not an Adapter subclass")
    return obj


class Registry:
    """The adapter classes this process knows, by name."""

    def __init__(self, classes: Iterable[type[Adapter]] = ()) -> None:
        self._classes: dict[str, type[Adapter]] = {}
        for cls in classes:
            self.register(cls)

    @classmethod
    def discover(cls, redis: Redis | None = None) -> Registry:
        """Adapters from ``ROUTER_ADAPTERS`` if set, else from installed entry points;
        with ``redis``, also the webhook departments added by ``router adapters
        add-webhook`` (they need no code, so they live in Redis, not in a package)."""
        registry = cls._discover_code()
        if redis is not None:
            for config in load_webhooks(redis):
                if config.name not in registry:
                    registry.register(adapter_class(config))
        return registry

    @classmethod
    def look_again(cls, redis: Redis | None = None) -> Registry:
        """``discover`` again in a process that has run a while (the web front door's
        follow), so that an adapter pip-installed since it started is found.

        The import system remembers what it saw of each folder on sys.path: a folder
        that did not exist yet (``pip install --target`` into a folder named in
        PYTHONPATH) stays "nothing there" until ``importlib.invalidate_caches()``, and
        the new entry point would then name a module that cannot be imported. Forgetting
        costs a fresh listing of sys.path, so only the follow does it, not every
        ``discover`` (a worker's drain calls that per batch)."""
        importlib.invalidate_caches()
        return cls.discover(redis)

    @classmethod
    def _discover_code(cls) -> Registry:
        specs = os.environ.get("ROUTER_ADAPTERS", "").strip()
        if specs:
            return cls(_load_spec(s) for s in specs.split(",") if s.strip())
        found = []
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            loaded = ep.load()
            if getattr(loaded, "name", None) != ep.name:
                raise RegistryError(
                    f"entry point {ep.name!r} loads an adapter named {loaded.name!r}"
                )
            found.append(loaded)
        return cls(found)

    def register(self, cls: type[Adapter]) -> None:
        check_declaration(cls)
        if cls.name in self._classes and self._classes[cls.name] is not cls:
            raise RegistryError(f"two adapters are named {cls.name!r}")
        self._classes[cls.name] = cls

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[type[Adapter]]:
        return iter(sorted(self._classes.values(), key=lambda c: c.name))

    def __len__(self) -> int:
        return len(self._classes)

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, name: str) -> type[Adapter]:
        try:
            return self._classes[name]
        except KeyError:
            raise RegistryError(f"no adapter named {name!r}") from None

    def create(self, name: str, redis: Redis | None = None) -> Adapter:
        return self.get(name)(redis)
