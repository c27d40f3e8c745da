"""Simulate k-space from magnitude images (what ``mrirecon simulate`` runs).

Real MRI data is complex and multi-coil; images from DICOM or NIfTI are magnitudes. We make
them plausible measurements with the forward model ``y = F S (m * exp(i phi)) + n``:

* ``phi``: a smooth synthetic phase (a random low-order polynomial over the field of view,
  up to about +-pi/2), as B0 and receive phase are smooth;
* ``S``: birdcage coil sensitivities (coils evenly spaced on a circle of 1.5x the half field of
  view, field ~ 1/distance with a phase that turns with the coil angle; the construction of
  ``sigpy.mri.birdcage_maps``), normalised to root-sum-of-squares 1 so that the RSS of the
  noiseless coil images equals the magnitude image;
* ``n``: circular complex Gaussian noise whose standard deviation per k-space sample is
  ``noise * max(m)`` (``F`` is orthonormal, so the image-domain noise has that std per pixel).

Everything is seeded; the same volume and parameters give the same k-space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mrirecon.physics.coils import birdcage_maps, rss
from mrirecon.physics.fft import ifft2c
from mrirecon.physics.sense import sense_operator


@dataclass(frozen=True)
class SimulationParams:
    """Parameters of :func:`simulate_kspace` (recorded in the output's provenance)."""

    coils: int = 8
    noise: float = 0.01
    seed: int = 0
    max_phase: float = math.pi / 2
    coil_radius: float = 1.5

    def to_dict(self) -> dict:
        """The parameters as a JSON-friendly dict."""
        return {"coils": self.coils, "noise": self.noise, "seed": self.seed,
                "max_phase": self.max_phase, "coil_radius": self.coil_radius}


def smooth_phase(shape: tuple[int, int], rng: np.random.Generator,
                 max_phase: float = math.pi / 2) -> torch.Tensor:
    """A random smooth phase map: a quadratic polynomial in x and y scaled to ``max_phase``."""
    ny, nx = shape
    y, x = torch.meshgrid(torch.linspace(-1, 1, ny, dtype=torch.float64),
                          torch.linspace(-1, 1, nx, dtype=torch.float64), indexing="ij")
    basis = torch.stack([torch.ones_like(x), x, y, x * y, x**2 - y**2, x**2 + y**2])
    coeffs = torch.as_tensor(rng.uniform(-1, 1, size=len(basis)))
    phase = torch.einsum("k,kyx->yx", coeffs, basis)
    return phase * (max_phase / phase.abs().max().clamp_min(1e-12))


def measure(image: torch.Tensor, maps: torch.Tensor, sigma: float,
            rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy fully sampled k-space ``F S x + n`` and its reference image.

    ``image`` ``(..., y, x)`` complex, ``maps`` ``(coils, y, x)`` (or with the batch axes),
    ``sigma`` the noise std per complex k-space sample (circular Gaussian, drawn from ``rng``).
    Returns ``(kspace (..., coils, y, x), target (..., y, x))``: the target is the RSS of the
    noisy coil images (for one coil their magnitude: fastMRI's RSS/ESC convention). Keeps the
    inputs' precision.
    """
    clean = sense_operator(maps)(image)
    noise = rng.standard_normal((2, *clean.shape)) * (sigma / math.sqrt(2))
    noise_t = torch.complex(torch.as_tensor(noise[0]), torch.as_tensor(noise[1]))
    kspace = clean + noise_t.to(clean.dtype)
    return kspace, rss(ifft2c(kspace))


def simulate_kspace(magnitude: np.ndarray, params: SimulationParams) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Fully sampled multi-coil k-space from a magnitude volume.

    Parameters
    ----------
    magnitude
        ``(slices, rows, cols)`` real, non-negative image (a :class:`~mrirecon.data.Volume`'s
        data).
    params
        Coils, relative noise level, seed, phase amplitude, coil radius.

    Returns
    -------
    kspace
        ``(slices, coils, rows, cols)`` complex64.
    target
        ``(slices, rows, cols)`` float32: the reference image of the *noisy* fully sampled data,
        RSS of the coil images (for one coil, the magnitude: fastMRI's ESC/RSS targets).
    """
    mag = torch.as_tensor(np.asarray(magnitude, dtype=np.float64))
    if mag.ndim != 3:
        raise ValueError(f"magnitude must be (slices, rows, cols), got shape {tuple(mag.shape)}")
    shape = (mag.shape[1], mag.shape[2])
    rng = np.random.default_rng(np.random.SeedSequence(params.seed))
    image = torch.polar(mag, smooth_phase(shape, rng, params.max_phase))
    maps = birdcage_maps(shape, params.coils, params.coil_radius, dtype=torch.complex128)
    kspace, target = measure(image, maps, params.noise * float(mag.max()), rng)
    return kspace.to(torch.complex64).numpy(), target.to(torch.float32).numpy()


def resample_inplane(data: np.ndarray, affine: np.ndarray,
                     matrix: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``(slices, rows, cols)`` images to ``matrix`` in-plane, keeping the field of view.

    Bilinear interpolation with antialiasing (pixel centres aligned as in
    ``align_corners=False``); the affine's row and column vectors are rescaled and the origin
    moved so that every new pixel centre lands where it lies in the old field of view.
    """
    rows, cols = (matrix, matrix) if isinstance(matrix, int) else matrix
    old_rows, old_cols = data.shape[1:]
    if (rows, cols) == (old_rows, old_cols):
        return np.asarray(data), np.asarray(affine, dtype=float)
    x = torch.as_tensor(np.asarray(data, dtype=np.float32))[:, None]
    out = torch.nn.functional.interpolate(x, size=(rows, cols), mode="bilinear",
                                          align_corners=False, antialias=True)[:, 0]
    new = np.array(affine, dtype=float)
    for axis, (old_n, new_n) in ((1, (old_rows, rows)), (2, (old_cols, cols))):
        ratio = old_n / new_n
        new[:3, 3] += new[:3, axis] * 0.5 * (ratio - 1)
        new[:3, axis] *= ratio
    return out.numpy(), new
