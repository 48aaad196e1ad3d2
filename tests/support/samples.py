"""The example events in examples/events: one valid submission per life event."""

from __future__ import annotations

import json
from typing import Any

from tests.support.paths import EXAMPLES


def sample(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def samples() -> list[str]:
    return sorted(p.stem for p in EXAMPLES.glob("*.json"))
