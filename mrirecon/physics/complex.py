"""Native complex tensors <-> real channels, the one conversion at the network boundary.

Layout (see :mod:`mrirecon.data`): ``c`` complex channels ``(..., c, y, x)`` become ``2c`` real
channels ``(..., 2c, y, x)``, real parts first, then imaginary parts. A single complex image
``(..., y, x)`` is handled with ``channel_dim=None`` and becomes ``(..., 2, y, x)``.
"""

from __future__ import annotations

import torch


def to_channels(x: torch.Tensor, channel_dim: int | None = -3) -> torch.Tensor:
    """Complex ``(..., c, y, x)`` -> real ``(..., 2c, y, x)`` (``channel_dim=None``: add one)."""
    if not torch.is_complex(x):
        raise TypeError(f"to_channels expects a complex tensor, got {x.dtype}")
    if channel_dim is None:
        return torch.stack((x.real, x.imag), dim=-3)
    return torch.cat((x.real, x.imag), dim=channel_dim)


def from_channels(x: torch.Tensor, channel_dim: int | None = -3) -> torch.Tensor:
    """Inverse of :func:`to_channels`: real ``(..., 2c, y, x)`` -> complex ``(..., c, y, x)``."""
    if torch.is_complex(x):
        raise TypeError("from_channels expects a real tensor")
    dim = -3 if channel_dim is None else channel_dim
    if x.shape[dim] % 2:
        raise ValueError(f"from_channels needs an even channel count, got {x.shape[dim]}")
    real, imag = x.chunk(2, dim=dim)
    z = torch.complex(real, imag)
    return z.squeeze(dim) if channel_dim is None else z
