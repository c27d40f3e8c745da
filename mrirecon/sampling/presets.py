"""Named mask presets, shipped as JSON in the repository's ``masks/`` folder.

A preset file ``masks/NAME.json`` holds a :class:`MaskSpec` (``kind``, ``acceleration``,
``center_fraction``, ``shape``, ``seed``) and a ``description``. Wheels carry the folder as
``mrirecon/_data/masks``; a source checkout reads the repository's ``masks/`` directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mrirecon.errors import InvalidParameterError
from mrirecon.sampling.spec import MaskSpec

_PACKAGE = Path(__file__).resolve().parents[1]


def presets_dir() -> Path:
    """Where the presets live: inside the installed package, else the source checkout."""
    for candidate in (_PACKAGE / "_data" / "masks", _PACKAGE.parent / "masks"):
        if candidate.is_dir():
            return candidate
    raise InvalidParameterError("no mask presets found (the masks/ folder is missing)")


def list_presets() -> dict[str, str]:
    """``{name: description}`` of every shipped preset, sorted by name."""
    out = {}
    for path in sorted(presets_dir().glob("*.json")):
        data = json.loads(path.read_text())
        if "kind" in data and "description" in data:  # skip sidecars of canonical mask files
            out[path.stem] = data["description"]
    return out


def load_preset(name: str, **overrides: Any) -> tuple[MaskSpec, str]:
    """The spec and description of preset ``name``; ``overrides`` replace spec fields."""
    presets = list_presets()
    if name not in presets:
        raise InvalidParameterError(
            f"unknown mask preset {name!r}; expected one of {', '.join(presets)}"
        )
    data = json.loads((presets_dir() / f"{name}.json").read_text())
    description = data.pop("description")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return MaskSpec.from_dict(data), description
