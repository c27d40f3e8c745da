"""A checkpoint's declared domain: what it was trained on, and whether an input lies inside.

Training records, in every checkpoint's metadata (``extra["domain"]``)::

    {"coils": [min, max], "matrix": [min, max], "accelerations": [min, max],
     "mask_kinds": [...], "sources": [{"file": ..., "sha256": ..., "kind": ...}, ...]}

``matrix`` bounds each side (rows and columns) of the k-space matrix. :func:`outside` lists
the ways an input falls outside; ``reconstruct`` and ``evaluate`` print them as one warning
line. Checkpoints from before this field declare nothing and are never warned about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["describe", "merge", "outside"]


def merge(domains: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The union of several training sets' domains (ranges widened, lists joined)."""
    out: dict[str, Any] = {}
    for key in ("coils", "matrix", "accelerations"):
        ranges = [d[key] for d in domains if d.get(key)]
        if ranges:
            out[key] = [min(r[0] for r in ranges), max(r[1] for r in ranges)]
    kinds: list[str] = []
    sources: list[Any] = []
    for d in domains:
        kinds += [k for k in d.get("mask_kinds", []) if k not in kinds]
        sources += list(d.get("sources", []))
    out["mask_kinds"], out["sources"] = kinds, sources
    return out


def _fmt(value: float) -> str:
    return f"{value:g}"


def outside(domain: Mapping[str, Any] | None, *, coils: int | None = None,
            shape: Sequence[int] | None = None, acceleration: float | None = None,
            mask_kind: str | None = None) -> list[str]:
    """How an input differs from ``domain`` (empty when inside, or when nothing is declared).

    ``shape`` is the k-space matrix ``(ky, kx)``; ``acceleration`` the achieved (or requested)
    rate; ``mask_kind`` the mask's kind (``None``: unknown, e.g. a file's own mask).
    """
    if not domain:
        return []
    found = []
    low_high = domain.get("coils")
    if coils is not None and low_high and not low_high[0] <= coils <= low_high[1]:
        found.append(f"{coils} coil{'s' * (coils != 1)} (trained on {low_high[0]}-{low_high[1]})")
    low_high = domain.get("matrix")
    if shape is not None and low_high and not all(low_high[0] <= s <= low_high[1]
                                                  for s in shape):
        found.append(f"matrix {'x'.join(map(str, shape))} (trained on sides "
                     f"{low_high[0]}-{low_high[1]})")
    low_high = domain.get("accelerations")
    if acceleration is not None and low_high and not (
            low_high[0] * 0.95 <= acceleration <= low_high[1] * 1.05):
        found.append(f"acceleration {acceleration:.1f}x (trained on "
                     f"{_fmt(low_high[0])}-{_fmt(low_high[1])}x)")
    kinds = domain.get("mask_kinds")
    if mask_kind is not None and kinds and mask_kind not in kinds:
        found.append(f"{mask_kind} mask (trained on {', '.join(kinds)})")
    return found


def describe(domain: Mapping[str, Any] | None) -> str:
    """One line for tables and model cards: coils, matrix, accelerations, masks, sources."""
    if not domain:
        return "not declared"
    parts = []
    for key, unit in (("coils", " coils"), ("matrix", " px per side"),
                      ("accelerations", "x")):
        if domain.get(key):
            low, high = domain[key]
            parts.append(f"{_fmt(low)}-{_fmt(high)}{unit}")
    if domain.get("mask_kinds"):
        parts.append("masks " + "/".join(domain["mask_kinds"]))
    files = [s.get("file", "?") for s in domain.get("sources", [])]
    if files:
        shown = ", ".join(files[:6]) + (f" (+{len(files) - 6} more)" if len(files) > 6 else "")
        parts.append("sources " + shown)
    return "; ".join(parts)
