"""JSON for metadata: the ``default=`` hook every writer passes to ``json.dumps``."""

from __future__ import annotations

from typing import Any

import numpy as np


def json_default(obj: Any) -> Any:
    """``json.dumps`` fallback: numpy scalars and arrays, tuples and sets, anything else as text."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)
