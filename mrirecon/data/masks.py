"""What a sampling mask achieved: the one place its statistics are counted.

Used by :class:`mrirecon.sampling.Mask` (drawn masks), the provenance of a mask a file carries
(:func:`mrirecon.inference.mask_record`) and ``mrirecon info``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def mask_statistics(mask: Any, shape: tuple[int, int] | None = None) -> dict[str, Any]:
    """Line and point counts of a mask, and the acceleration they give.

    The keys are ``sampled_lines``, ``total_lines``, ``sampled_points``, ``total_points`` and
    ``achieved_acceleration`` (``total / sampled`` locations, ``inf`` for an empty mask).

    ``mask`` is boolean ``(ky, kx)`` or ``(1, kx)`` (a line mask, broadcast over ``shape``'s
    rows when given); a line keeps a phase-encode column when any of its rows is sampled.
    """
    array = np.asarray(mask, dtype=bool)
    if shape is not None:
        array = np.broadcast_to(array, shape)
    sampled = int(array.sum())
    return {"sampled_lines": int(array.any(axis=0).sum()), "total_lines": int(array.shape[-1]),
            "sampled_points": sampled, "total_points": int(array.size),
            "achieved_acceleration": math.inf if sampled == 0 else array.size / sampled}
