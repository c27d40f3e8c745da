"""Synthetic image phase, and the coordinate grid of every synthetic field.

Used by :mod:`mrirecon.physics.simulate` (``mrirecon simulate``), the domain-randomised training
generator (:mod:`mrirecon.train.synthetic`) and the out-of-distribution validation suite
(``scripts/bench/generalisation.py``), each with its own parameters. Coordinates are in units of
the half field of view: the image spans ``[-1, 1]`` along each axis (pixel centres).

The synthetic coil maps (birdcage, surface loops) are in :mod:`mrirecon.physics.coils`, on the
same :func:`grid`.

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


def grid(shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, x)`` float64 pixel-centre coordinates in half-FOV units, each ``(ny, nx)``."""
    ny, nx = shape
    y = (torch.arange(ny, dtype=torch.float64) + 0.5 - ny / 2) / (ny / 2)
    x = (torch.arange(nx, dtype=torch.float64) + 0.5 - nx / 2) / (nx / 2)
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    return yy, xx


def polynomial_phase(shape: tuple[int, int], rng: np.random.Generator, order: int = 2,
                     max_phase: float = math.pi / 2) -> torch.Tensor:
    """Random polynomial phase of total degree ``order``, scaled so its peak is ``max_phase``."""
    yy, xx = grid(shape)
    terms = [xx**i * yy**j for i in range(order + 1) for j in range(order + 1 - i)]
    coeffs = rng.uniform(-1, 1, size=len(terms))
    phase = sum((float(c) * t for c, t in zip(coeffs, terms, strict=True)),
                torch.zeros_like(xx))
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
