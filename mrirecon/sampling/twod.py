"""2-D masks (both phase-encode axes undersampled, as in 3-D Cartesian acquisitions).

``poisson``: variable-density Poisson disc (Lustig et al. 2007) drawn by ``sigpy.mri.poisson``
with a fully sampled centre box, retried until the achieved acceleration is within
:data:`POISSON_TOLERANCE` of the request. ``random-2d``: a centre box plus uniformly random
points, exactly ``round(ky * kx / R)`` in total.
"""

from __future__ import annotations

import numpy as np

from mrirecon.errors import InvalidParameterError
from mrirecon.sampling.seeding import int_seed, rng
from mrirecon.sampling.spec import MaskKind, MaskSpec

#: Largest relative error |achieved - requested| / requested accepted for ``poisson``.
POISSON_TOLERANCE = 0.01


def calibration_box(spec: MaskSpec) -> tuple[int, int]:
    """Centre box ``(round(ky * cf), round(kx * cf))``; both sides must be at least one."""
    ky, kx = spec.shape
    cf = spec.center_fraction
    assert cf is not None  # MaskSpec.__post_init__ fills in the default
    box = (round(ky * cf), round(kx * cf))
    if min(box) < 1:
        raise InvalidParameterError(
            f"centre fraction {spec.center_fraction:g} gives a {box[0]}x{box[1]} centre box on "
            f"{ky}x{kx}; expected at least one line each way"
        )
    if box[0] * box[1] >= ky * kx / spec.acceleration:
        raise InvalidParameterError(
            f"acceleration {spec.acceleration:g} cannot be reached on {ky}x{kx} with centre "
            f"fraction {spec.center_fraction:g}: the {box[0]}x{box[1]} centre box alone gives "
            f"{ky * kx / (box[0] * box[1]):.3g}x"
        )
    return box


def _box_mask(shape: tuple[int, int], box: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    (ky, kx), (by, bx) = shape, box
    y0, x0 = (ky - by + 1) // 2, (kx - bx + 1) // 2
    mask[y0 : y0 + by, x0 : x0 + bx] = True
    return mask


def plane_mask(spec: MaskSpec) -> tuple[np.ndarray, int]:
    """Draw a 2-D ``(ky, kx)`` mask; returns it and the centre box width in ``kx``."""
    box = calibration_box(spec)
    if spec.kind is MaskKind.RANDOM_2D:
        return _random_2d(spec, box), box[1]
    if spec.kind is MaskKind.POISSON:
        return _poisson(spec, box), box[1]
    raise InvalidParameterError(f"{spec.kind.value} is not a 2-D mask")  # pragma: no cover


def _random_2d(spec: MaskSpec, box: tuple[int, int]) -> np.ndarray:
    mask = _box_mask(spec.shape, box)
    target = round(mask.size / spec.acceleration)
    outside = np.flatnonzero(~mask.ravel())
    chosen = rng(spec.seed).choice(outside, size=target - int(mask.sum()), replace=False)
    mask.ravel()[chosen] = True
    return mask


def _poisson(spec: MaskSpec, box: tuple[int, int], attempts: int = 8) -> np.ndarray:
    accel = spec.acceleration
    base = int_seed(spec.seed)
    last = None
    for attempt in range(attempts):  # the bisection in sigpy can miss; other draws may not
        try:
            mask = _bounded_poisson(spec.shape, accel, box, (base + attempt) % 2**32,
                                    POISSON_TOLERANCE * accel)
        except ValueError as exc:
            last = exc
            continue
        mask = mask.astype(bool) | _box_mask(spec.shape, box)
        if abs(mask.size / mask.sum() - accel) <= POISSON_TOLERANCE * accel:
            return mask
    raise InvalidParameterError(
        f"poisson: acceleration {accel:g} cannot be reached on {spec.shape[0]}x{spec.shape[1]} "
        f"within {POISSON_TOLERANCE:.0%} ({last or 'no draw close enough'})"
    )


#: Most bisection steps of the Poisson-disc density search. sigpy's own loop runs until its
#: float bounds meet, which never happens when no density reaches the rate (small matrices at
#: high R): ``sigpy.mri.poisson`` then hangs. 64 halvings exhaust float64.
POISSON_BISECTIONS = 64


def _bounded_poisson(shape: tuple[int, int], accel: float, calib: tuple[int, int], seed: int,
                     tol: float) -> np.ndarray:
    """``sigpy.mri.poisson`` with at most :data:`POISSON_BISECTIONS` bisection steps.

    ``sigpy.mri.poisson(shape, accel, calib, crop_corner=True, seed, tol)`` with the same steps
    and draws (so the same mask), but bounded bisection; raises ``ValueError`` like sigpy when
    the rate is not met.
    """
    from sigpy.mri import samp  # heavy (numba); only needed for this kind

    ny, nx = shape
    y, x = np.mgrid[:ny, :nx]
    xr = np.maximum(abs(x - nx / 2) - calib[-1] / 2, 0)
    xr /= xr.max()
    yr = np.maximum(abs(y - ny / 2) - calib[-2] / 2, 0)
    yr /= yr.max()
    r = np.sqrt(xr**2 + yr**2)
    state = np.random.get_state()  # noqa: NPY002 - sigpy's numba kernel seeds the global state; restore it
    try:
        slope_min, slope_max, actual, mask = 0.0, float(max(nx, ny)), np.inf, None
        for _ in range(POISSON_BISECTIONS):
            if not slope_min < slope_max:
                break
            slope = (slope_max + slope_min) / 2
            radius_x = np.clip((1 + r * slope) * nx / max(nx, ny), 1, None)
            radius_y = np.clip((1 + r * slope) * ny / max(nx, ny), 1, None)
            mask = samp._poisson(nx, ny, 30, radius_x, radius_y, calib, seed)
            mask *= r < 1
            actual = nx * ny / max(float(np.sum(mask)), 1.0)
            if abs(actual - accel) < tol:
                break
            if actual < accel:
                slope_min = slope
            else:
                slope_max = slope
    finally:
        np.random.set_state(state)  # noqa: NPY002
    if mask is None or abs(actual - accel) >= tol:
        raise ValueError(f"Cannot generate mask to satisfy accel={accel}.")
    return mask.reshape(shape).astype(np.float32)
