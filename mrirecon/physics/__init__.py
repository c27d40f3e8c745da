"""Forward models on native complex tensors: ``A = M F S`` and friends.

Layout of every tensor: see the table in :mod:`mrirecon.data`.
"""

from mrirecon.physics.coils import rss, single_coil_maps
from mrirecon.physics.complex import from_channels, to_channels
from mrirecon.physics.fft import FFTOp, fft2c, ifft2c
from mrirecon.physics.likelihood import data_consistency, dc_gradient, gradient_fn
from mrirecon.physics.operators import (
    AdjointOperator,
    Composition,
    LinearOperator,
    adjoint_mismatch,
    inner,
)
from mrirecon.physics.sense import SamplingOp, SensitivityOp, mask_tensor, sense_operator

__all__ = [
    "AdjointOperator",
    "Composition",
    "FFTOp",
    "LinearOperator",
    "SamplingOp",
    "SensitivityOp",
    "adjoint_mismatch",
    "data_consistency",
    "dc_gradient",
    "fft2c",
    "from_channels",
    "gradient_fn",
    "ifft2c",
    "inner",
    "mask_tensor",
    "rss",
    "sense_operator",
    "single_coil_maps",
    "to_channels",
]
