"""The SENSE forward model ``A = M F S`` (Pruessmann et al. 1999), as composable operators.

``S`` multiplies the image by each coil's sensitivity, ``F`` is the centred orthonormal FFT and
``M`` keeps the sampled k-space locations (zeros elsewhere, the fastMRI convention). Single-coil
data is the same operator with one all-ones map. Shapes follow the layout table in
:mod:`mrirecon.data`: image ``(..., y, x)``, maps and k-space ``(..., coils, ky, kx)``, mask
``(ky, kx)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mrirecon.physics.fft import FFTOp
from mrirecon.physics.operators import LinearOperator


class SensitivityOp(LinearOperator):
    """``S``: image ``(..., y, x)`` -> coil images ``(..., coils, y, x)``.

    Forward multiplies by each map; the adjoint is the coil combination
    ``sum_c conj(S_c) y_c``.
    """

    def __init__(self, maps: torch.Tensor) -> None:
        if not torch.is_complex(maps) or maps.ndim < 3:
            raise ValueError(
                "coil maps must be complex (..., coils, y, x), "
                f"got {maps.dtype} {tuple(maps.shape)}"
            )
        self.maps = maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Multiply the image by each map: ``(..., y, x) -> (..., coils, y, x)``."""
        return self.maps * x.unsqueeze(-3)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Coil combination ``sum_c conj(S_c) y_c``."""
        return torch.sum(self.maps.conj() * y, dim=-3)

    def __repr__(self) -> str:
        return f"SensitivityOp(coils={self.maps.shape[-3]})"


def mask_tensor(mask: Any, device: torch.device | str | None = None) -> torch.Tensor:
    """A bool ``(ky, kx)`` tensor from a :class:`~mrirecon.sampling.Mask`, array or tensor."""
    array = getattr(mask, "array", mask)
    if isinstance(array, torch.Tensor):
        return array.to(device=device, dtype=torch.bool)
    return torch.as_tensor(np.asarray(array, dtype=bool), device=device)


class SamplingOp(LinearOperator):
    """``M``: keep the sampled k-space locations, zero the rest; self-adjoint (a projection).

    Parameters
    ----------
    mask
        A :class:`~mrirecon.sampling.Mask` (its spec is kept in :attr:`spec`), or a boolean
        ``(ky, kx)`` array / tensor; 1-D line masks may have ``ky == 1``. It broadcasts over
        batch and coil axes.
    """

    def __init__(self, mask: Any, device: torch.device | str | None = None) -> None:
        self.mask = mask_tensor(mask, device)
        if self.mask.ndim != 2:
            raise ValueError(f"mask must be (ky, kx), got shape {tuple(self.mask.shape)}")
        self.spec = getattr(mask, "spec", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zero the k-space outside the mask (its shape checked against ``x``)."""
        if x.shape[-1] != self.mask.shape[-1] or self.mask.shape[-2] not in (1, x.shape[-2]):
            raise ValueError(
                f"mask has shape {tuple(self.mask.shape)} but k-space has "
                f"{x.shape[-2]} rows and {x.shape[-1]} columns"
            )
        return torch.where(self.mask, x, torch.zeros((), dtype=x.dtype, device=x.device))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """The same projection: ``M`` is self-adjoint."""
        return self.forward(y)

    def __repr__(self) -> str:
        return f"SamplingOp({int(self.mask.sum())} of {self.mask.numel()} sampled)"


def sense_operator(maps: torch.Tensor, mask: Any | None = None) -> LinearOperator:
    """``A = M F S`` for coil ``maps`` ``(..., coils, y, x)`` and an optional ``mask``.

    ``mask=None`` gives the fully sampled ``F S``. For single-coil data pass one all-ones map
    (:func:`mrirecon.physics.coils.single_coil_maps`).
    """
    op = FFTOp() @ SensitivityOp(maps)
    if mask is None:
        return op
    return SamplingOp(mask, device=maps.device) @ op
