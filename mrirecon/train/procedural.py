"""Procedural training images: structure that is neither a head nor a photograph.

:func:`procedural_image` layers random ellipses (a random Shepp-Logan-like phantom), a
band-limited ``1/f^beta`` texture and, sometimes, gratings, so the learned prior also sees
edges, blobs and oscillations at every scale and orientation. Seeded by the generator passed in.
"""

from __future__ import annotations

import numpy as np

from mrirecon.train.augment import normalise


def _coords(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = shape
    return np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")


def ellipses(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """3 to 15 random ellipses, each adding a random intensity (one large outer ellipse first)."""
    y, x = _coords(shape)
    image = np.zeros(shape)
    for i in range(int(rng.integers(3, 16))):
        big = i == 0
        cy, cx = (rng.uniform(-0.1, 0.1, 2) if big else rng.uniform(-0.6, 0.6, 2))
        ay, ax = rng.uniform(0.6, 0.9, 2) if big else rng.uniform(0.03, 0.4, 2)
        t = rng.uniform(0, np.pi)
        u = (x - cx) * np.cos(t) + (y - cy) * np.sin(t)
        v = -(x - cx) * np.sin(t) + (y - cy) * np.cos(t)
        inside = (u / ax) ** 2 + (v / ay) ** 2 <= 1
        image[inside] += rng.uniform(0.4, 1.0) if big else rng.uniform(-0.4, 0.6)
    return np.clip(image, 0, None)


def texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A ``1/f^beta`` random field (beta in [1, 3]) scaled to ``[0, 1]``."""
    ny, nx = shape
    fy, fx = np.meshgrid(np.fft.fftfreq(ny), np.fft.fftfreq(nx), indexing="ij")
    f = np.sqrt(fy**2 + fx**2)
    f[0, 0] = 1.0
    spectrum = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) \
        * f ** (-rng.uniform(1, 3) / 2)
    spectrum[0, 0] = 0
    field = np.fft.ifft2(spectrum).real
    return (field - field.min()) / max(float(np.ptp(field)), 1e-12)


def gratings(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A sinusoidal grating of random period (2 to 20 pixels) and orientation, in ``[0, 1]``."""
    y, x = _coords(shape)
    period = rng.uniform(2, 20) / (max(shape) / 2)
    t = rng.uniform(0, np.pi)
    return 0.5 + 0.5 * np.sin(2 * np.pi * (x * np.cos(t) + y * np.sin(t)) / period)


def procedural_image(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """One procedural image ``shape``, float32 in ``[0, 1]`` (see the module docstring)."""
    base = ellipses(shape, rng)
    image = base * (0.6 + 0.4 * texture(shape, rng))
    if rng.random() < 0.3:
        inside = base > 0
        image = image + inside * rng.uniform(0.1, 0.4) * gratings(shape, rng)
    return normalise(image)
