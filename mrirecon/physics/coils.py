"""Coil sensitivities, all in one place: combination, estimation from data, and synthesis.

* :func:`rss`: root-sum-of-squares coil combination;
* :func:`single_coil_maps`: the all-ones map (single-coil data in the multi-coil model);
* :func:`acs_maps`: maps from the auto-calibration signal (the learned models' and the
  ``acs`` option of the baselines);
* :func:`espirit_maps` and the dispatcher :func:`coil_maps` (``espirit`` or ``acs``): what
  SENSE and CS use; ESPIRiT is sigpy's ``EspiritCalib`` (sigpy imported only when called);
  :func:`plan_coil_maps` picks the estimator and block for a mask, falling back from ESPIRiT
  to ACS maps below :data:`~mrirecon.physics.calibration.MIN_CALIBRATION_LINES` lines;
* :func:`birdcage_maps`: ``coils`` elements evenly spaced on a circle of ``radius``, field
  ``~ 1 / distance`` with a phase that turns with the element's angle (the construction of
  ``sigpy.mri.birdcage_maps``), optionally rotated;
* :func:`loop_maps`: small surface loops at arbitrary positions, magnitude
  ``(1 + (d / size)^2)^(-3/2)`` (the on-axis field of a loop of radius ``size`` at depth ``d``,
  Biot-Savart), each with its own phase offset and a smooth phase that turns with the angle
  off the loop's axis. Birdcage and loop maps are returned unnormalised or normalised to unit
  root-sum-of-squares (``normalise``); coordinates are those of
  :func:`mrirecon.physics.fields.grid`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mrirecon.errors import InvalidParameterError
from mrirecon.physics.calibration import (
    MAX_CALIBRATION_LINES,
    MIN_ACS_LINES,
    MIN_CALIBRATION_LINES,
    acs_calibration_width,
    calibration_width,
    calibration_window,
)
from mrirecon.physics.fft import ifft2c
from mrirecon.physics.fields import grid


def rss(coil_images: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Root-sum-of-squares ``sqrt(sum_c |x_c|^2)`` over the coil axis (real output)."""
    return torch.sqrt(torch.sum(coil_images.abs() ** 2, dim=dim))


def single_coil_maps(
    shape: tuple[int, int],
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """One all-ones coil map ``(1, y, x)``: single-coil data in the multi-coil model."""
    return torch.ones((1, *shape), dtype=dtype, device=device)


def acs_maps(kspace: torch.Tensor, calib_width: int) -> torch.Tensor:
    """Coil maps from the auto-calibration signal: smooth coil images divided by their RSS.

    The centre ``calib_width`` x ``calib_width`` block of k-space is weighted by a separable
    :func:`calibration_window` (a short taper against ringing) and zero-padded; its inverse FFT
    gives low-resolution coil images ``l_c``; the maps are ``l_c / sqrt(sum_c |l_c|^2)`` (unit
    root-sum-of-squares everywhere, carrying the smooth image phase, which does not change
    ``|x|``).

    Parameters
    ----------
    kspace
        ``(..., coils, ky, kx)`` complex k-space (batch dimensions broadcast).
    calib_width
        Side of the fully sampled centre block.

    Returns
    -------
    torch.Tensor
        ``(..., coils, ky, kx)`` maps, same dtype and device as ``kspace``.
    """
    ky, kx = kspace.shape[-2:]
    window = calibration_window(calib_width)
    window = (window[:, None] * window[None, :]).to(kspace.device, kspace.real.dtype)
    r0, c0 = ky // 2 - calib_width // 2, kx // 2 - calib_width // 2
    calib = torch.zeros_like(kspace)
    rows, cols = slice(r0, r0 + calib_width), slice(c0, c0 + calib_width)
    calib[..., rows, cols] = kspace[..., rows, cols] * window
    low = ifft2c(calib)
    norm = torch.sqrt(torch.sum(low.abs() ** 2, dim=-3, keepdim=True))
    floor = torch.clamp(norm.amax(dim=(-3, -2, -1), keepdim=True) * 1e-8,
                        min=torch.finfo(norm.dtype).tiny)
    return low / torch.maximum(norm, floor)


#: Coil-map estimators selectable with ``maps=``.
MAP_METHODS = ("espirit", "acs")


def espirit_kernel_width(calib_width: int) -> int:
    """ESPIRiT kernel width for a calibration width.

    sigpy's 6, but at most ``calib_width // 2 - 1`` (at least 3).

    With few calibration lines the calibration matrix has too few rows,
    ``(calib_width - kernel_width + 1)^2``, to span the signal subspace: on a 64x64 8-coil
    image a 10-line region with 6x6 kernels gives eigenvalues below 0.88 everywhere, so the
    0.95 crop zeroes every map; 4x4 kernels give eigenvalues of 1 inside the object.
    """
    return max(3, min(6, calib_width // 2 - 1))


def espirit_maps(kspace_slice: np.ndarray, calib_width: int, *, thresh: float = 0.02,
                 kernel_width: int | None = None, crop: float = 0.95) -> np.ndarray:
    """ESPIRiT coil maps (Uecker et al. 2014) of one slice.

    Parameters
    ----------
    kspace_slice
        ``(coils, ky, kx)`` complex k-space whose centre ``calib_width`` x ``calib_width``
        block is fully sampled.
    calib_width
        Side of that block (see :func:`checked_calibration_width`).
    thresh, kernel_width, crop
        sigpy's ``EspiritCalib`` settings: singular-value threshold of the calibration matrix,
        k-space kernel width (``None``: :func:`espirit_kernel_width`), eigenvalue threshold
        below which the maps are set to zero (outside the object).

    Returns
    -------
    numpy.ndarray
        ``(coils, ky, kx)`` complex64 maps, unit root-sum-of-squares where the eigenvalue
        exceeds ``crop``, zero elsewhere; phase relative to the first coil.
    """
    from sigpy.mri.app import EspiritCalib

    ksp = np.ascontiguousarray(kspace_slice, dtype=np.complex64)
    if kernel_width is None:
        kernel_width = espirit_kernel_width(calib_width)
    maps = EspiritCalib(ksp, calib_width=calib_width, thresh=thresh, kernel_width=kernel_width,
                        crop=crop, show_pbar=False).run()
    return np.asarray(maps, dtype=np.complex64)


def coil_maps(kspace_slice: np.ndarray, calib_width: int, method: str = "espirit") -> np.ndarray:
    """``(coils, ky, kx)`` coil maps by ``method``: ``"espirit"`` or ``"acs"``.

    All-ones for one coil.
    """
    if kspace_slice.shape[0] == 1:
        return np.ones(kspace_slice.shape, dtype=np.complex64)
    if method == "espirit":
        return espirit_maps(kspace_slice, calib_width)
    if method == "acs":
        return acs_maps(torch.from_numpy(np.asarray(kspace_slice, np.complex64)),
                        calib_width).numpy()
    raise InvalidParameterError(
        f"unknown coil-map method {method!r}; expected one of {', '.join(MAP_METHODS)}"
    )


@dataclass(frozen=True)
class MapPlan:
    """How a slice's coil maps are estimated: by :func:`plan_coil_maps`.

    ``method`` is ``"espirit"``, ``"acs"`` or ``"ones"`` (single coil); ``calib_width`` the side
    of the centre block used; ``centre_lines`` the fully sampled centre the mask has;
    ``fallback`` why the requested method was not used (``None`` when it was).
    """

    method: str
    calib_width: int
    centre_lines: int
    fallback: str | None = None

    def record(self) -> dict[str, object]:
        """The plan for provenance (``maps_used``)."""
        return {"method": self.method, "calib_width": self.calib_width,
                "centre_lines": self.centre_lines, "fallback": self.fallback}


def plan_coil_maps(mask: np.ndarray | torch.Tensor, shape: tuple[int, int], coils: int,
                   method: str = "espirit") -> MapPlan:
    """Which estimator and centre block to use for coil maps under ``mask``.

    One coil: the all-ones map. ESPIRiT needs :data:`MIN_CALIBRATION_LINES` fully sampled
    centre lines; below that the plan falls back to the ACS maps the learned models use (from
    as few as :data:`MIN_ACS_LINES` lines) and says so in ``fallback``. Fewer than
    :data:`MIN_ACS_LINES` centre lines leave nothing to estimate maps from: an
    :class:`~mrirecon.errors.InvalidParameterError`.
    """
    if method not in MAP_METHODS:
        raise InvalidParameterError(
            f"unknown coil-map method {method!r}; expected one of {', '.join(MAP_METHODS)}"
        )
    lines = calibration_width(mask, shape)
    if coils == 1:
        return MapPlan("ones", 0, lines)
    if lines < MIN_ACS_LINES:
        raise InvalidParameterError(
            f"mask has too small a calibration region for coil maps: {lines} fully sampled "
            f"centre lines, expected at least {MIN_ACS_LINES} (raise the centre fraction)"
        )
    if method == "espirit" and lines >= MIN_CALIBRATION_LINES:
        return MapPlan("espirit", min(lines, MAX_CALIBRATION_LINES), lines)
    fallback = None if method == "acs" else (
        f"{lines} fully sampled centre lines, fewer than the {MIN_CALIBRATION_LINES} ESPIRiT "
        f"needs: ACS coil maps instead")
    return MapPlan("acs", acs_calibration_width(mask, shape), lines, fallback)


def _normalised(maps: torch.Tensor, normalise: bool, dtype: torch.dtype) -> torch.Tensor:
    if normalise:
        maps = maps / rss(maps, dim=0).clamp_min(1e-12)
    return maps.to(dtype)


def birdcage_maps(shape: tuple[int, int], coils: int, radius: float = 1.5,
                  dtype: torch.dtype = torch.complex64, rotation: float = 0.0,
                  normalise: bool = True) -> torch.Tensor:
    """Birdcage coil maps ``(coils, y, x)``; one coil gives the all-ones map."""
    if coils == 1:
        return single_coil_maps(shape, dtype=dtype)
    ny, nx = shape
    y = (torch.arange(ny, dtype=torch.float64) - ny / 2) / (ny / 2)
    x = (torch.arange(nx, dtype=torch.float64) - nx / 2) / (nx / 2)
    angle = torch.arange(coils, dtype=torch.float64) * (2 * math.pi / coils) + rotation
    dx = x[None, None, :] - radius * torch.cos(angle)[:, None, None]
    dy = y[None, :, None] - radius * torch.sin(angle)[:, None, None]
    phase = torch.atan2(dx, -dy) - angle[:, None, None]
    maps = torch.polar(1.0 / torch.sqrt(dx**2 + dy**2), phase)
    return _normalised(maps, normalise, dtype)


def loop_maps(shape: tuple[int, int], centres: np.ndarray, size: float | np.ndarray,
              phases: np.ndarray | None = None, dtype: torch.dtype = torch.complex64,
              normalise: bool = True) -> torch.Tensor:
    """Surface-loop coil maps ``(coils, y, x)`` for loops at ``centres`` ``(coils, 2)`` (y, x).

    ``size`` (scalar or one per coil) is the loop radius in half-FOV units; ``phases`` the
    coils' constant phase offsets (radians, default 0).
    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    coils = len(centres)
    sizes = torch.as_tensor(np.broadcast_to(np.asarray(size, dtype=np.float64), (coils,)).copy())
    offsets = torch.as_tensor(np.zeros(coils) if phases is None else np.asarray(phases, float))
    yy, xx = grid(shape)
    cy = torch.as_tensor(centres[:, 0])[:, None, None]
    cx = torch.as_tensor(centres[:, 1])[:, None, None]
    dy, dx = yy[None] - cy, xx[None] - cx
    dist2 = dx**2 + dy**2
    magnitude = (1.0 + dist2 / sizes[:, None, None] ** 2) ** -1.5
    # a phase that turns across the field of view as seen from the loop: the angle off the
    # loop's axis (its direction to the image centre), made smooth everywhere by measuring the
    # along-axis distance from behind the loop (no branch cut crosses the image)
    norm = torch.sqrt(cy**2 + cx**2).clamp_min(1e-6)
    uy, ux = -cy / norm, -cx / norm  # unit vector from the loop towards the centre
    along = dy * uy + dx * ux
    across = dx * uy - dy * ux
    phase = offsets[:, None, None] + 0.5 * torch.atan2(across, along.abs() + sizes[:, None, None])
    return _normalised(torch.polar(magnitude, phase), normalise, dtype)
