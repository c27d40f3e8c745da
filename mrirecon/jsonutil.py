"""The package's JSON: one ``json.dumps`` fallback and one strict writer (no NaN/Infinity).

Used for provenance, sidecars, ``--json`` output and checkpoint metadata.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
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


def json_safe(value: Any, replaced: list[int] | None = None) -> Any:
    """``value`` with every non-finite float as ``None`` (JSON has no NaN or Infinity).

    Mappings, lists, tuples and sets are walked; numpy scalars and arrays become Python values,
    paths text. ``replaced``, when given, gets one entry per number replaced.
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, replaced) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v, replaced) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    elif hasattr(value, "tolist"):  # numpy arrays, torch tensors
        return json_safe(value.tolist(), replaced)
    if isinstance(value, float) and not math.isfinite(value):
        if replaced is not None:
            replaced.append(1)
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def strict_dumps(value: Any, replaced: list[int] | None = None, **kwargs: Any) -> str:
    """``json.dumps`` that always writes valid JSON: non-finite numbers become ``null``.

    ``kwargs`` go to :func:`json.dumps` (``indent``, ``sort_keys``, ...); other objects go
    through :func:`json_default`.
    """
    return json.dumps(json_safe(value, replaced), allow_nan=False, default=json_default,
                      **kwargs)
