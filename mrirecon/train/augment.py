"""Image-level randomisation of the training generator: geometry and contrast.

Every function draws from the ``numpy.random.Generator`` it is given and nothing else, so an item
is a pure function of its seed. Images are float32 ``(rows, cols)`` arrays, intensities about
``[0, 1]``.

- :func:`place`: flips, a random multiple of 90 degrees plus a small rotation, scaling and
  translation into a new matrix of any size and aspect ratio (one bilinear resampling, with an
  antialiasing downscale first when the image shrinks);
- :func:`remap_contrast`: gamma, monotone and non-monotone piecewise-linear intensity remaps and
  inversion of the object's contrast (the background stays dark);
- :func:`synthesise`: SynthSeg-style images from integer tissue labels (a random intensity and
  texture per label);
- :func:`bias_field` and :func:`blur`: smooth multiplicative shading and Gaussian blur.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mrirecon.physics.fields import polynomial_phase


def normalise(image: np.ndarray) -> np.ndarray:
    """``image`` divided by its 99.5th percentile and clipped to ``[0, 1]``."""
    image = np.clip(np.asarray(image, dtype=np.float32), 0, None)
    top = float(np.percentile(image, 99.5))
    return np.clip(image / top, 0, 1) if top > 0 else image


def place(image: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, *,
          zoom: tuple[float, float] = (0.7, 1.25), rotation: float = 15.0) -> np.ndarray:
    """``image`` flipped, rotated, scaled and shifted into a ``shape`` matrix (zero outside).

    At ``zoom`` 1 the image just fits the matrix; larger values crop it.
    """
    ny, nx = shape
    src = torch.as_tensor(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    h0, w0 = src.shape[-2:]
    k = float(rng.uniform(*zoom)) * min(ny / h0, nx / w0)  # output pixels per source pixel
    if k < 0.8:  # antialias: shrink first, then resample at about unit scale
        size = (max(int(round(h0 * k)), 2), max(int(round(w0 * k)), 2))
        src = F.interpolate(src, size=size, mode="bilinear", antialias=True,
                            align_corners=False)
        k *= h0 / size[0]
        h0, w0 = size
    angle = math.radians(90 * int(rng.integers(4)) + float(rng.uniform(-rotation, rotation)))
    flip = -1.0 if rng.random() < 0.5 else 1.0
    shift = rng.uniform(-0.1, 0.1, size=2)
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c * flip, -s], [s * flip, c]], dtype=torch.float64)
    out_scale = torch.diag(torch.tensor([nx / 2, ny / 2], dtype=torch.float64))
    in_scale = torch.diag(torch.tensor([2 / w0, 2 / h0], dtype=torch.float64))
    theta = torch.zeros(1, 2, 3, dtype=torch.float64)
    theta[0, :, :2] = in_scale @ rot @ out_scale / k
    theta[0, :, 2] = torch.as_tensor(shift)
    grid = F.affine_grid(theta.float(), [1, 1, ny, nx], align_corners=False)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0, 0].numpy()


def _piecewise(x: np.ndarray, rng: np.random.Generator, monotone: bool) -> np.ndarray:
    knots = int(rng.integers(3, 7))
    xs = np.linspace(0, 1, knots)
    ys = rng.uniform(0, 1, size=knots)
    ys = np.sort(ys) if monotone else ys
    ys[0] = 0.0  # the background stays dark
    ys = ys / max(float(ys.max()), 1e-6)
    return np.interp(x, xs, ys).astype(np.float32)


def remap_contrast(image: np.ndarray, rng: np.random.Generator, *,
                   gamma: tuple[float, float] = (0.6, 1.7), remap: float = 0.4,
                   nonmonotone: float = 0.15, invert: float = 0.15) -> np.ndarray:
    """Random intensity transforms of a ``[0, 1]`` image (see the module docstring)."""
    x = np.clip(image, 0, 1) ** float(np.exp(rng.uniform(np.log(gamma[0]), np.log(gamma[1]))))
    draw = rng.random(3)
    if draw[0] < remap:
        x = _piecewise(x, rng, monotone=True)
    if draw[1] < nonmonotone:
        x = _piecewise(x, rng, monotone=False)
    if draw[2] < invert:
        support = blur((image > 0.05).astype(np.float32), 1.5)
        x = support * (1.0 - x)
    return x.astype(np.float32)


def synthesise(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An image from integer ``labels``: per label a random mean intensity and a mild texture.

    Label 0 (background) stays near 0.
    """
    count = int(labels.max()) + 1
    means = rng.uniform(0.05, 1.0, size=count).astype(np.float32)
    means[0] = float(rng.uniform(0, 0.03))
    spread = rng.uniform(0, 0.08, size=count).astype(np.float32)
    image = means[labels] * (1 + spread[labels] * rng.standard_normal(labels.shape)
                             .astype(np.float32))
    return normalise(image)


def bias_field(shape: tuple[int, int], rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth multiplicative field ``exp(a * p)``, ``p`` a random quadratic in ``[-1, 1]``."""
    a = float(rng.uniform(0, amplitude))
    return np.exp(a * polynomial_phase(shape, rng, order=2, max_phase=1.0).numpy()).astype(
        np.float32)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (``sigma`` in pixels; 0 or less returns the image)."""
    if sigma <= 0.05:
        return np.asarray(image, dtype=np.float32)
    radius = max(int(math.ceil(3 * sigma)), 1)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    x = torch.as_tensor(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return x[0, 0].numpy()


def uniform(rng: np.random.Generator, bounds: Any, log: bool = False) -> float:
    """One draw in ``[bounds[0], bounds[1]]``, uniform or log-uniform."""
    low, high = float(bounds[0]), float(bounds[1])
    if log:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return float(rng.uniform(low, high))
