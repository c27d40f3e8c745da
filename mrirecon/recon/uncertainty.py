"""Calibration of a posterior sampler's standard deviation: fit a scale, store it, apply it.

A sampler's pixelwise std ``s`` is calibrated when ``|mean - reference| <= k s`` holds for the
Gaussian fraction of pixels (:data:`mrirecon.metrics.GAUSSIAN_COVERAGE`: 68.3%, 95.4% and 99.7%
for ``k = 1, 2, 3``). A cINN trained by maximum likelihood is usually overconfident away from
its training data, so the map is rescaled by one factor ``c`` fitted on a calibration set kept
apart from validation (:func:`fit_scale`), from the ratios ``r = |error| / s`` of its pixels:

* ``conformal``: split-conformal, ``c = q / 2`` with ``q`` the ``ceil((n + 1) 0.954) / n``
  empirical quantile of ``r``, so that 2 std cover 95.4% of the calibration pixels (and, for
  exchangeable data, at least that fraction of new pixels);
* ``gaussian``: ``c = sqrt(mean(r^2))``, the maximum-likelihood scale if the errors were
  Gaussian with std ``c s``.

:func:`choose` fits both on one half of the calibration volumes, measures the calibration error
(mean ``|coverage - nominal|`` at 1, 2 and 3 std) on the other half, and keeps the better
method, refitted on all of them, and also on each acceleration's slices alone (applied
interpolated in ``log R``). The result, a :class:`Calibration`, is stored in the
checkpoint's metadata (``extra["calibration"]``) and applied by
:class:`~mrirecon.recon.posterior.PosteriorSampler` (the std is multiplied by ``scale``; the
mean is untouched).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mrirecon.errors import InvalidParameterError
from mrirecon.metrics import GAUSSIAN_COVERAGE

METHODS = ("conformal", "gaussian")
#: The std multiple whose coverage the conformal fit sets to its Gaussian value.
FIT_K = 2


def coverage(ratios: np.ndarray, scale: float = 1.0) -> dict[int, float]:
    """Fraction of pixels with ``|error| <= k * scale * std`` for ``k = 1, 2, 3``."""
    r = np.asarray(ratios, np.float64)
    return {k: float(np.mean(r <= k * scale)) for k in (1, 2, 3)}


def calibration_error(ratios: np.ndarray, scale: float = 1.0) -> float:
    """Mean over ``k = 1, 2, 3`` of ``|coverage_k - GAUSSIAN_COVERAGE[k]|``."""
    got = coverage(ratios, scale)
    return sum(abs(got[k] - GAUSSIAN_COVERAGE[k]) for k in got) / len(got)


def ratios(error: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``|error| / std`` per pixel, flattened (float64).

    A pixel of zero std counts as covered only when its error is zero too (ratio 0), else never
    (ratio ``inf``), as in :func:`mrirecon.metrics.calibration`.
    """
    e = np.abs(np.asarray(error, np.float64)).reshape(-1)
    s = np.asarray(std, np.float64).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(s > 0, e / np.where(s > 0, s, 1.0), np.where(e == 0, 0.0, np.inf))
    return r


def fit_scale(r: np.ndarray, method: str) -> float:
    """The factor ``c`` that calibrates ``std`` on pixels with ratios ``r`` (module docstring).

    Raises
    ------
    InvalidParameterError
        An unknown method, or ratios from which no finite positive scale follows.
    """
    r = np.asarray(r, np.float64).reshape(-1)
    if method not in METHODS:
        raise InvalidParameterError(
            f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
    if r.size < 2:
        raise InvalidParameterError(f"calibration needs at least 2 pixels, got {r.size}")
    if method == "conformal":
        level = min(1.0, math.ceil((r.size + 1) * GAUSSIAN_COVERAGE[FIT_K]) / r.size)
        scale = float(np.quantile(r, level, method="higher")) / FIT_K
    else:
        finite = r[np.isfinite(r)]
        scale = float(np.sqrt(np.mean(finite**2))) if finite.size else math.inf
    if not (math.isfinite(scale) and scale > 0):
        raise InvalidParameterError(
            f"calibration gives no usable scale ({method}: {scale}); are the std maps zero?")
    return scale


@dataclass(frozen=True)
class Calibration:
    """A fitted std scale and where it came from (stored as ``extra["calibration"]``).

    Attributes
    ----------
    method
        ``conformal`` or ``gaussian`` (see the module docstring).
    scale
        The factor the sampler's std is multiplied by (finite, > 0).
    data
        The calibration files (names) and what was drawn on them (accelerations, samples).
    created
        UTC date and time of the fit (ISO 8601).
    measured
        What choosing the method measured: calibration error of each method on the held-out
        half, and the coverage at 1, 2, 3 std before and after on all calibration pixels.
    by_acceleration
        The scale fitted on each acceleration's pixels alone (``{"4.0": c4, "8.0": c8}``): a cINN
        is usually more overconfident at higher rates, so one pooled factor over-covers the low
        rates and under-covers the high ones (:meth:`scale_for`).
    """

    method: str
    scale: float
    data: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    measured: dict[str, Any] = field(default_factory=dict)
    by_acceleration: dict[str, float] = field(default_factory=dict)

    def scale_for(self, acceleration: float | None) -> float:
        """The factor for data at ``acceleration``.

        Interpolated in ``log R`` between the rates fitted (:attr:`by_acceleration`), the
        nearest one outside them; :attr:`scale` (the pooled fit) when none were fitted or the
        rate is unknown.
        """
        if not self.by_acceleration or acceleration is None or not acceleration > 0:
            return self.scale
        rates = sorted((float(r), v) for r, v in self.by_acceleration.items())
        x = [math.log(r) for r, _ in rates]
        return float(np.interp(math.log(acceleration), x, [v for _, v in rates]))

    def to_dict(self) -> dict[str, Any]:
        """The JSON metadata entry."""
        return asdict(self)

    @classmethod
    def from_dict(cls, value: Any) -> Calibration:
        """Read a stored entry; a malformed one is an :class:`InvalidParameterError`."""
        if not isinstance(value, dict):
            raise InvalidParameterError(f"calibration metadata is not a JSON object: {value!r}")
        method, scale = value.get("method"), value.get("scale")
        if method not in METHODS:
            raise InvalidParameterError(f"calibration method {method!r} is not one of "
                                        f"{', '.join(METHODS)}")
        if (isinstance(scale, bool) or not isinstance(scale, (int, float))
                or not math.isfinite(scale) or scale <= 0):
            raise InvalidParameterError(f"calibration scale must be a finite number > 0, got "
                                        f"{scale!r}")
        for key in ("data", "measured", "by_acceleration"):
            if not isinstance(value.get(key, {}), dict):
                raise InvalidParameterError(f"calibration {key} is not a JSON object")
        rates = {}
        for rate, factor in dict(value.get("by_acceleration", {})).items():
            try:
                r, c = float(rate), float(factor)
            except (TypeError, ValueError):
                r = c = math.nan
            if not (r > 1 and math.isfinite(r) and math.isfinite(c) and c > 0):
                raise InvalidParameterError(
                    f"calibration by_acceleration entry {rate!r}: {factor!r} is not a rate > 1 "
                    "with a finite scale > 0")
            rates[str(r)] = c
        return cls(str(method), float(scale), dict(value.get("data", {})),
                   str(value.get("created", "")), dict(value.get("measured", {})), rates)

    def note(self, acceleration: float | None = None) -> str:
        """One line for pictures and tables: how the map (at ``acceleration``) was calibrated."""
        day = self.created[:10] or "undated"
        return (f"calibrated: std x {self.scale_for(acceleration):.3g} ({self.method}, 2 std -> "
                f"{100 * GAUSSIAN_COVERAGE[FIT_K]:.1f}%, {day})")


def by_acceleration(parts: dict[float, list[np.ndarray]], method: str) -> dict[str, float]:
    """The scale of ``method`` fitted on each acceleration's slices alone."""
    return {str(float(r)): fit_scale(np.concatenate(p), method) for r, p in sorted(parts.items())}


def choose(parts: list[np.ndarray]) -> tuple[str, float, dict[str, Any]]:
    """Pick the method by measurement and fit it on every pixel (module docstring).

    Parameters
    ----------
    parts
        The ratios of each calibration slice (at least 2): the even-numbered ones fit, the
        odd-numbered ones judge, then all of them fit the chosen method.

    Returns
    -------
    tuple
        ``(method, scale, measured)``.
    """
    if len(parts) < 2:
        raise InvalidParameterError(
            f"calibration needs at least 2 slices (one to fit, one to check), got {len(parts)}")
    fit = np.concatenate(parts[0::2])
    held = np.concatenate(parts[1::2])
    held_error = {m: calibration_error(held, fit_scale(fit, m)) for m in METHODS}
    method = min(METHODS, key=lambda m: held_error[m])
    every = np.concatenate(parts)
    scale = fit_scale(every, method)
    measured = {"held_out_calibration_error": held_error,
                "held_out_calibration_error_uncalibrated": calibration_error(held),
                "coverage_before": {f"{k}std": v for k, v in coverage(every).items()},
                "coverage_after": {f"{k}std": v for k, v in coverage(every, scale).items()},
                "pixels": int(every.size)}
    return method, scale, measured
