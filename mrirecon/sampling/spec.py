"""``MaskSpec`` (what to draw) and ``Mask`` (what was drawn, with its spec and statistics)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from mrirecon.data.masks import mask_statistics
from mrirecon.errors import InvalidParameterError


class MaskKind(str, Enum):
    """Undersampling patterns. The first four reproduce fastMRI's ``subsample.py`` exactly."""

    RANDOM = "random"
    EQUISPACED = "equispaced"
    EQUISPACED_FRACTION = "equispaced-fraction"
    MAGIC = "magic"
    GAUSSIAN = "gaussian"
    POISSON = "poisson"
    RANDOM_2D = "random-2d"

    @property
    def is_line(self) -> bool:
        """True for 1-D masks that keep whole phase-encode columns."""
        return self not in (MaskKind.POISSON, MaskKind.RANDOM_2D)

    @property
    def needs_integer_acceleration(self) -> bool:
        """True for the kinds that space lines by the acceleration (equispaced, magic)."""
        return self in (MaskKind.EQUISPACED, MaskKind.MAGIC)


Seed = int | tuple[int, ...]


def default_center_fraction(acceleration: float) -> float:
    """FastMRI's pairing of centre fraction and acceleration: 0.08 at 4x, 0.04 at 8x (0.32 / R)."""
    return 0.32 / acceleration


def check_mask_parameters(kind: MaskKind | str, acceleration: Any,
                          center_fraction: Any = None) -> tuple[MaskKind, float, float]:
    """``(kind, acceleration, centre fraction)`` checked, the fraction defaulted from ``R``.

    The shape-free half of :class:`MaskSpec`'s checks, so options can be validated before any
    k-space (and its shape) is known.
    """
    try:
        kind = MaskKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in MaskKind)
        raise InvalidParameterError(
            f"unknown mask kind {kind!r}; expected one of {choices}") from None
    acceleration = _number("acceleration", acceleration)
    if not acceleration > 1:
        raise InvalidParameterError(f"acceleration must be a number > 1, got {acceleration:g}")
    cf = default_center_fraction(acceleration) if center_fraction is None else center_fraction
    cf = _number("centre fraction", cf)
    if not 0 < cf < 1:
        raise InvalidParameterError(f"centre fraction must be in (0, 1), got {cf:g}")
    if kind.needs_integer_acceleration and acceleration != int(acceleration):
        raise InvalidParameterError(
            f"{kind.value} masks need an integer acceleration, got {acceleration:g}")
    return kind, acceleration, cf


@dataclass(frozen=True)
class MaskSpec:
    """What to draw: kind, acceleration, centre fraction, seed and k-space shape.

    Parameters
    ----------
    kind
        A :class:`MaskKind` (or its string value).
    acceleration
        Requested acceleration ``R`` (> 1): the fraction of k-space kept is about ``1 / R``.
    shape
        ``(ky, kx)`` of the k-space the mask is for; 1-D kinds only use ``kx``.
    center_fraction
        Fraction of the phase-encode columns (``kx``; for 2-D kinds also of the rows) kept fully
        sampled around the centre: ``round(N * center_fraction)`` lines, as fastMRI counts them.
        ``None``: :func:`default_center_fraction` of the acceleration.
    seed
        Integer or tuple of integers. fastMRI kinds seed ``np.random.RandomState(seed)`` exactly
        as fastMRI does; the others use ``np.random.default_rng(SeedSequence(seed))``.
    """

    kind: MaskKind
    acceleration: float
    shape: tuple[int, int]
    center_fraction: float | None = None
    seed: Seed = 0

    def __post_init__(self) -> None:
        kind, acceleration, cf = check_mask_parameters(self.kind, self.acceleration,
                                                       self.center_fraction)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "acceleration", acceleration)
        object.__setattr__(self, "center_fraction", cf)
        object.__setattr__(self, "shape", _shape(self.shape))
        object.__setattr__(self, "seed", _seed(self.seed))

    @property
    def columns(self) -> int:
        """Number of phase-encode columns ``kx``."""
        return self.shape[1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: the kind as its string value, shape and seed as lists."""
        d = asdict(self)
        d["kind"] = self.kind.value
        d["shape"] = list(self.shape)
        d["seed"] = list(self.seed) if isinstance(self.seed, tuple) else self.seed
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MaskSpec:
        """The spec from :meth:`to_dict`'s output (unknown or missing keys rejected)."""
        known = {"kind", "acceleration", "center_fraction", "shape", "seed"}
        unknown = set(d) - known
        if unknown:
            raise InvalidParameterError(
                f"unknown mask spec keys {sorted(unknown)}; expected {sorted(known)}"
            )
        missing = {"kind", "acceleration", "shape"} - set(d)
        if missing:
            raise InvalidParameterError(f"mask spec lacks {sorted(missing)}")
        return cls(**d)


@dataclass(frozen=True)
class Mask:
    """A drawn mask: the boolean array with the spec that made it.

    Attributes
    ----------
    array
        Boolean ``(ky, kx)``; line masks are stored as ``(1, kx)`` and broadcast over rows.
    spec
        The :class:`MaskSpec` it was drawn from.
    num_low_frequencies
        Fully sampled centre lines (columns; for 2-D kinds the side of the centre box in ``kx``).
    """

    array: np.ndarray
    spec: MaskSpec
    num_low_frequencies: int
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        array = np.asarray(self.array, dtype=bool)
        ky, kx = self.spec.shape
        if array.ndim != 2 or array.shape[1] != kx or array.shape[0] not in (1, ky):
            raise InvalidParameterError(
                f"mask array has shape {array.shape} but its spec says {ky}x{kx}"
            )
        object.__setattr__(self, "array", array)

    @property
    def full(self) -> np.ndarray:
        """The mask expanded to the spec's full ``(ky, kx)`` shape."""
        return np.broadcast_to(self.array, self.spec.shape)

    @property
    def sampled_fraction(self) -> float:
        """Fraction of the k-space locations sampled."""
        return float(self.array.mean())

    @property
    def achieved_acceleration(self) -> float:
        """``total / sampled`` k-space locations (``inf`` for an empty mask)."""
        return float(mask_statistics(self.array)["achieved_acceleration"])

    @property
    def sampled_lines(self) -> int:
        """Phase-encode columns with at least one sample."""
        return int(mask_statistics(self.array)["sampled_lines"])

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description: the spec plus what was achieved."""
        out: dict[str, Any] = {
            **self.spec.to_dict(),
            "achieved_acceleration": round(self.achieved_acceleration, 4),
            "num_low_frequencies": self.num_low_frequencies,
            "sampled_lines": self.sampled_lines,
            "total_lines": self.spec.columns,
        }
        if not self.spec.kind.is_line:
            stats = mask_statistics(self.array)
            out["sampled_points"] = stats["sampled_points"]
            out["total_points"] = stats["total_points"]
        return {**out, **self.extra}


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise InvalidParameterError(f"{name} must be a finite number, got {value!r}")
    return out


def _shape(shape: Any) -> tuple[int, int]:
    try:
        dims = tuple(int(n) for n in shape)
        ok = len(dims) == 2 and all(float(n) == int(n) for n in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok or min(dims) < 1:
        raise InvalidParameterError(
            f"shape must be two positive integers (ky kx), got {shape!r}"
        )
    return dims  # type: ignore[return-value]


def _seed(seed: Any) -> Seed:
    values = list(seed) if isinstance(seed, list | tuple) else [seed]
    if not values or any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0
                         for v in values):
        raise InvalidParameterError(
            f"seed must be a non-negative integer or a list of them, got {seed!r}"
        )
    ints = tuple(int(v) for v in values)
    if isinstance(seed, list | tuple):
        return ints
    if ints[0] >= 2**32:
        raise InvalidParameterError(f"seed must be below 2**32, got {seed!r}")
    return ints[0]
