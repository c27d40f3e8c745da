"""The package's one ``json.dumps`` fallback, for provenance, sidecars and checkpoint metadata."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np


def json_default(obj: Any, *, fallback: Callable[[Any], Any] | None = str) -> Any:
    """The ``default`` hook of ``json.dumps(..., default=json_default)``.

    It converts numpy and torch scalars and arrays (anything with ``tolist``), paths, tuples and
    sets; other objects go through ``fallback`` (their text), or, with ``fallback=None``, raise
    :class:`TypeError` (strict, as checkpoint metadata is).
    """
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "tolist"):  # numpy arrays, torch tensors
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if fallback is None:
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
    return fallback(obj)
