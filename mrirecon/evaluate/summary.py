"""Summaries and thresholds: records -> one row per (method, acceleration) -> pass/fail lines.

:func:`summarize_records` takes the mean over volumes with a 95% t-interval
(:func:`mrirecon.metrics.summarize`); :func:`check_thresholds` compares the worst group's mean
with the limits of a ``--fail-below`` spec (:func:`parse_thresholds`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mrirecon.errors import InvalidParameterError
from mrirecon.evaluate.records import CALIBRATION, METRICS

#: Metrics where higher is better; the others (NMSE) are upper bounds in thresholds.
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "nmse": False}


def summarize_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group records by (method, acceleration): mean and 95% CI of each metric over volumes.

    Parameters
    ----------
    records
        Records of :func:`~mrirecon.evaluate.sweep` or :func:`~mrirecon.evaluate.compare_files`.

    Returns
    -------
    list of dict
        One flat dict per group, in order of first appearance sorted by acceleration: ``method``,
        ``acceleration``, ``n`` (records: volumes, times masks per volume in a sweep with
        ``mask_repeats``), ``achieved_acceleration`` (mean), for each of
        ``psnr``, ``ssim``, ``nmse`` the keys ``<metric>_mean``, ``_std``, ``_ci95_low``,
        ``_ci95_high`` (:func:`mrirecon.metrics.summarize`), and ``seconds_per_slice`` (mean over
        records that recorded it, else ``None``). Groups whose records carry the calibration
        keys (:data:`CALIBRATION`) get the same four statistics of each, over the volumes where
        it is defined (a NaN correlation, from a constant std or error, is left out; all NaN
        gives NaN).
    """
    from mrirecon.metrics import summarize

    groups: dict[tuple[str, float | None], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["method"], r.get("acceleration")), []).append(r)
    order = {m: i for i, m in enumerate(dict.fromkeys(r["method"] for r in records))}
    rows = []
    for (method, accel), group in sorted(
            groups.items(), key=lambda kv: (_sort_accel(kv[0][1]), order[kv[0][0]])):
        row: dict[str, Any] = {"method": method, "acceleration": accel, "n": len(group)}
        achieved = [r["achieved_acceleration"] for r in group
                    if r.get("achieved_acceleration") is not None]
        row["achieved_acceleration"] = float(np.mean(achieved)) if achieved else None
        for metric in METRICS:
            stats = summarize(r[metric] for r in group)
            for key in ("mean", "std", "ci95_low", "ci95_high"):
                row[f"{metric}_{key}"] = stats[key]
        times = [r["seconds_per_slice"] for r in group if r.get("seconds_per_slice") is not None]
        row["seconds_per_slice"] = float(np.mean(times)) if times else None
        for key in CALIBRATION:
            values = [r[key] for r in group if key in r]
            if values:
                row.update(_stats(key, values))
        rows.append(row)
    return rows


def _stats(key: str, values: Sequence[float]) -> dict[str, float]:
    """``<key>_mean``, ``_std``, ``_ci95_low``, ``_ci95_high`` of the values that are not NaN."""
    from mrirecon.metrics import summarize

    defined = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    stats = summarize(defined) if defined else dict.fromkeys(
        ("mean", "std", "ci95_low", "ci95_high"), math.nan)
    return {f"{key}_{s}": stats[s] for s in ("mean", "std", "ci95_low", "ci95_high")}


def _sort_accel(accel: float | None) -> float:
    return math.inf if accel is None else float(accel)


def parse_thresholds(spec: str) -> dict[str, float]:
    """``"psnr=30,ssim=0.8"`` -> ``{"psnr": 30.0, "ssim": 0.8}``.

    PSNR and SSIM thresholds are lower bounds, an NMSE threshold an upper bound.

    Parameters
    ----------
    spec
        Comma-separated ``METRIC=VALUE`` items, metrics of :data:`HIGHER_IS_BETTER` in any case.

    Raises
    ------
    InvalidParameterError
        Empty spec, an item without ``=``, an unknown metric, a repeated metric, a value that is
        not a finite number.
    """
    out: dict[str, float] = {}
    items = [s.strip() for s in str(spec).split(",") if s.strip()]
    if not items:
        raise InvalidParameterError(
            f"empty threshold spec {spec!r}; expected e.g. psnr=30,ssim=0.8")
    for item in items:
        key, sep, value = (s.strip() for s in item.partition("="))
        key = key.lower()
        if not sep or key not in HIGHER_IS_BETTER:
            raise InvalidParameterError(f"bad threshold {item!r}; expected METRIC=VALUE with "
                                        f"METRIC one of {', '.join(METRICS)} (e.g. psnr=30)")
        if key in out:
            raise InvalidParameterError(f"threshold for {key} given twice in {spec!r}")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise InvalidParameterError(f"threshold {item!r}: {value!r} is not a finite number")
        out[key] = number
    return out


def check_thresholds(summary: Sequence[dict[str, Any]], spec: str) -> list[str]:
    """The thresholds of ``spec`` (:func:`parse_thresholds`) that the summary fails, one line each.

    Every group's mean is compared: the worst group (lowest PSNR/SSIM mean, highest NMSE mean)
    decides. An empty list means every threshold is met.

    Parameters
    ----------
    summary
        Rows of :func:`summarize_records`.
    spec
        The thresholds, e.g. ``psnr=30,ssim=0.8``.

    Raises
    ------
    InvalidParameterError
        A bad spec (:func:`parse_thresholds`), an empty summary.
    """
    thresholds = parse_thresholds(spec)
    if not summary:
        raise InvalidParameterError("no results to compare with the thresholds")
    failures = []
    for metric, limit in thresholds.items():
        higher = HIGHER_IS_BETTER[metric]
        pick = min if higher else max
        worst = pick(summary, key=lambda row: row[f"{metric}_mean"])
        value = worst[f"{metric}_mean"]
        if (value < limit) if higher else (value > limit):
            where = f"{worst['method']}, R={_fmt_accel(worst['acceleration'])}"
            relation = "below" if higher else "above"
            failures.append(f"{metric} {value:.4g} ({where}) is {relation} the threshold "
                            f"{metric}={limit:g}")
    return failures


def _fmt_accel(accel: float | None) -> str:
    return "?" if accel is None else f"{accel:g}"
