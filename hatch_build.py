"""Hatchling build hook: compile the translation catalogues into the wheel.

The .mo files are not kept in git (see .gitignore), so a wheel built from a clean
checkout compiles each channels/translations/<lang>/LC_MESSAGES/messages.po here
and ships the result at the same path inside the package.  Configured in
pyproject.toml under [tool.hatch.build.targets.wheel.hooks.custom].
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    _compiled: Path | None = None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return  # an editable install reads the .mo files that ./dev compiles in place
        root = Path(self.root)
        out = self._compiled = Path(tempfile.mkdtemp(prefix="tuo-mo-"))
        for po in sorted(root.glob("channels/translations/*/LC_MESSAGES/messages.po")):
            relative = po.relative_to(root).with_suffix(".mo")
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name)
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as sink:
                write_mo(sink, catalog, use_fuzzy=False)
            build_data["force_include"][str(target)] = relative.as_posix()

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if self._compiled is not None:
            shutil.rmtree(self._compiled, ignore_errors=True)
            self._compiled = None
