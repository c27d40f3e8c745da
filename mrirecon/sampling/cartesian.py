"""1-D (line) masks over the phase-encode columns ``kx``.

``random``, ``equispaced``, ``equispaced-fraction`` and ``magic`` reproduce fastMRI's
``fastmri/data/subsample.py`` (Zbontar et al. 2018; Defazio 2019 for ``magic``) draw for draw:
the same ``np.random.RandomState(seed)``, the same calls in the same order (one
``randint(1)`` for the acceleration choice, then the pattern's own draws), the same
``round(N * cf)`` centre block starting at ``(N - num_low + 1) // 2``. ``gaussian`` is our
variable-density pattern that hits the requested number of lines exactly.
"""

from __future__ import annotations

import numpy as np

from mrirecon.errors import InvalidParameterError
from mrirecon.sampling.seeding import rng
from mrirecon.sampling.spec import MaskKind, MaskSpec

#: Standard deviation of the ``gaussian`` column density, as a fraction of the column count.
GAUSSIAN_SIGMA_FRACTION = 0.25


def num_low_frequencies(n: int, center_fraction: float) -> int:
    """FastMRI's centre count ``round(n * cf)`` (Python rounding, as fastMRI uses)."""
    return round(n * center_fraction)


def center_mask(n: int, num_low: int) -> np.ndarray:
    """The fully sampled centre block of ``num_low`` of ``n`` columns."""
    mask = np.zeros(n, dtype=bool)
    start = (n - num_low + 1) // 2
    mask[start : start + num_low] = True
    return mask


def line_mask(spec: MaskSpec) -> tuple[np.ndarray, int]:
    """Draw the column pattern ``(kx,)`` and the centre count for a 1-D ``spec``."""
    n, accel = spec.columns, spec.acceleration
    assert spec.center_fraction is not None  # MaskSpec.__post_init__ fills in the default
    num_low = num_low_frequencies(n, spec.center_fraction)
    _check_reachable(spec, n, num_low)
    if spec.kind is MaskKind.GAUSSIAN:
        return center_mask(n, num_low) | _gaussian(spec, n, num_low), num_low

    state = np.random.RandomState(spec.seed)  # a private state: fastMRI's exact draws
    state.randint(1)  # fastMRI's choose_acceleration() with a single (cf, R) pair
    if spec.kind is MaskKind.RANDOM:
        prob = (n / accel - num_low) / (n - num_low)
        accel_mask = state.uniform(size=n) < prob
    elif spec.kind is MaskKind.EQUISPACED:
        step = int(accel)
        accel_mask = np.zeros(n, dtype=bool)
        accel_mask[state.randint(0, high=round(step)) :: step] = True
    elif spec.kind is MaskKind.EQUISPACED_FRACTION:
        adjusted = (accel * (num_low - n)) / (num_low * accel - n)
        offset = state.randint(0, high=round(adjusted))
        accel_mask = np.zeros(n, dtype=bool)
        accel_mask[np.around(np.arange(offset, n - 1, adjusted)).astype(np.uint)] = True
    elif spec.kind is MaskKind.MAGIC:
        accel_mask = _magic(n, int(accel), state.randint(0, high=int(accel)))
    else:  # pragma: no cover - make_mask routes 2-D kinds elsewhere
        raise InvalidParameterError(f"{spec.kind.value} is not a line mask")
    return center_mask(n, num_low) | accel_mask, num_low


def _magic(n: int, step: int, offset: int) -> np.ndarray:
    """Defazio's offset sampling: equispaced on each half, shifted between halves."""
    if offset % 2 == 0:
        offset_pos, offset_neg = offset + 1, offset + 2
    else:
        offset_pos, offset_neg = offset + 2, offset - 1
    positive = np.zeros((n + 1) // 2, dtype=bool)
    negative = np.zeros(n - (n + 1) // 2, dtype=bool)
    positive[offset_pos::step] = True
    negative[offset_neg::step] = True
    return np.fft.fftshift(np.concatenate((positive, np.flip(negative))))


def _gaussian(spec: MaskSpec, n: int, num_low: int) -> np.ndarray:
    """Exactly ``round(n / R) - num_low`` outer columns drawn without replacement.

    Drawn with probability proportional to a centred Gaussian of std
    ``GAUSSIAN_SIGMA_FRACTION * n``.
    """
    target = round(n / spec.acceleration)
    outer = np.flatnonzero(~center_mask(n, num_low))
    weights = np.exp(-0.5 * ((outer - n // 2) / (GAUSSIAN_SIGMA_FRACTION * n)) ** 2)
    chosen = rng(spec.seed).choice(outer, size=target - num_low, replace=False,
                                   p=weights / weights.sum())
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    return mask


def _check_reachable(spec: MaskSpec, n: int, num_low: int) -> None:
    if num_low < 1:
        raise InvalidParameterError(
            f"centre fraction {spec.center_fraction:g} gives 0 of {n} columns; "
            "expected at least one centre line"
        )
    budget = n / spec.acceleration
    if budget < 1:
        raise InvalidParameterError(
            f"acceleration {spec.acceleration:g} cannot be reached on {n} columns: "
            f"at most {n}x (one line)"
        )
    # equal is reachable (the centre alone gives R exactly), except for equispaced-fraction,
    # whose spacing formula divides by num_low * R - n
    if num_low > budget or (num_low == budget and spec.kind is MaskKind.EQUISPACED_FRACTION):
        raise InvalidParameterError(
            f"acceleration {spec.acceleration:g} cannot be reached on {n} columns with centre "
            f"fraction {spec.center_fraction:g}: the {num_low} centre columns alone give "
            f"{n / num_low:.3g}x; lower the centre fraction or the acceleration"
        )
