"""The centred, orthonormal 2-D Fourier transform over the last two axes."""

from __future__ import annotations

import torch

from mrirecon.physics.operators import LinearOperator

_DIMS = (-2, -1)


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D FFT: ``fftshift(fft2(ifftshift(x), norm="ortho"))``.

    The DC sample sits at ``(H // 2, W // 2)`` in both domains, as in fastMRI's ``fft2c``.
    """
    x = torch.fft.ifftshift(x, dim=_DIMS)
    return torch.fft.fftshift(torch.fft.fft2(x, dim=_DIMS, norm="ortho"), dim=_DIMS)


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fft2c` (and its adjoint: the transform is unitary)."""
    k = torch.fft.ifftshift(k, dim=_DIMS)
    return torch.fft.fftshift(torch.fft.ifft2(k, dim=_DIMS, norm="ortho"), dim=_DIMS)


class FFTOp(LinearOperator):
    """``F``: image ``(..., y, x)`` -> k-space ``(..., ky, kx)``; unitary, so ``F^H = F^-1``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Centred orthonormal 2-D FFT (:func:`fft2c`)."""
        return fft2c(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Centred orthonormal 2-D inverse FFT (:func:`ifft2c`)."""
        return ifft2c(y)
