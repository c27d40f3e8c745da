"""Synthetic coil sensitivities and image phase: the families that simulation draws from.

Used by :mod:`mrirecon.physics.simulate` (``mrirecon simulate``), the domain-randomised training
generator (:mod:`mrirecon.train.synthetic`) and the out-of-distribution validation suite
(``scripts/bench/generalisation.py``), each with its own parameters. Coordinates are in units of
the half field of view: the image spans ``[-1, 1]`` along each axis (pixel centres).

Coil maps
---------
- :func:`birdcage_maps`: ``coils`` elements evenly spaced on a circle of ``radius``, field
  ``~ 1 / distance`` with a phase that turns with the element's angle (the construction of
  ``sigpy.mri.birdcage_maps``), optionally rotated;
- :func:`loop_maps`: small surface loops at arbitrary positions, magnitude
  ``(1 + (d / size)^2)^(-3/2)`` (the on-axis field of a loop of radius ``size`` at depth ``d``,
  Biot-Savart), each with its own phase offset and a smooth phase that turns with the angle
  off the loop's axis.

Both are returned unnormalised or normalised to unit root-sum-of-squares (``normalise``).

Phase
-----
- :func:`polynomial_phase`: a random polynomial of total degree ``order`` in ``(x, y)``;
- :func:`ramp_phase`: a linear ramp, i.e. a k-space shift of up to ``max_cycles`` cycles;
- :func:`patch_phase`: a few sharp Gaussian bumps, like off-resonance near air-tissue
  boundaries.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mrirecon.physics.coils import rss, single_coil_maps


def grid(shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, x)`` float64 pixel-centre coordinates in half-FOV units, each ``(ny, nx)``."""
    ny, nx = shape
    y = (torch.arange(ny, dtype=torch.float64) + 0.5 - ny / 2) / (ny / 2)
    x = (torch.arange(nx, dtype=torch.float64) + 0.5 - nx / 2) / (nx / 2)
    return torch.meshgrid(y, x, indexing="ij")


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


def polynomial_phase(shape: tuple[int, int], rng: np.random.Generator, order: int = 2,
                     max_phase: float = math.pi / 2) -> torch.Tensor:
    """Random polynomial phase of total degree ``order``, scaled so its peak is ``max_phase``."""
    yy, xx = grid(shape)
    terms = [xx**i * yy**j for i in range(order + 1) for j in range(order + 1 - i)]
    coeffs = rng.uniform(-1, 1, size=len(terms))
    phase = sum(float(c) * t for c, t in zip(coeffs, terms, strict=True))
    return phase * (max_phase / phase.abs().max().clamp_min(1e-12))


def ramp_phase(shape: tuple[int, int], rng: np.random.Generator,
               max_cycles: float = 2.0) -> torch.Tensor:
    """A linear phase ramp of up to ``max_cycles`` cycles across the FOV along each axis."""
    yy, xx = grid(shape)
    cy, cx = rng.uniform(-max_cycles, max_cycles, size=2)
    return math.pi * (float(cy) * yy + float(cx) * xx)


def patch_phase(shape: tuple[int, int], rng: np.random.Generator, count: int = 2,
                width: tuple[float, float] = (0.05, 0.2),
                max_phase: float = 2 * math.pi) -> torch.Tensor:
    """``count`` Gaussian phase bumps of random centre, width (half-FOV units) and sign."""
    yy, xx = grid(shape)
    phase = torch.zeros_like(xx)
    for _ in range(count):
        cy, cx = rng.uniform(-0.8, 0.8, size=2)
        w = float(rng.uniform(*width))
        amp = float(rng.uniform(-max_phase, max_phase))
        phase = phase + amp * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * w**2))
    return phase
