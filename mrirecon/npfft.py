"""Centred orthonormal FFTs on numpy arrays (the convention of :mod:`mrirecon.physics.fft`).

For numpy code that must not import torch (the raw readers in ``io/``) and for the per-slice
sigpy-side solvers: the k-space centre sits at index ``N // 2`` and the transforms are unitary,
as BART's ``fft -u`` and our torch ``fft2c``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["fftc", "ifftc"]


def fftc(x: np.ndarray, axes: int | Sequence[int] = (-2, -1)) -> np.ndarray:
    """Centred orthonormal forward FFT of ``x`` over ``axes``."""
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    return np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x, axes), axes=axes, norm="ortho"), axes)


def ifftc(x: np.ndarray, axes: int | Sequence[int] = (-2, -1)) -> np.ndarray:
    """Centred orthonormal inverse FFT of ``x`` over ``axes``."""
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(x, axes), axes=axes, norm="ortho"), axes)
