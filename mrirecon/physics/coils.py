"""Coil combination: root-sum-of-squares and the all-ones map of single-coil data."""

from __future__ import annotations

import torch


def rss(coil_images: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Root-sum-of-squares ``sqrt(sum_c |x_c|^2)`` over the coil axis (real output)."""
    return torch.sqrt(torch.sum(coil_images.abs() ** 2, dim=dim))


def single_coil_maps(
    shape: tuple[int, int],
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """One all-ones coil map ``(1, y, x)``: single-coil data in the multi-coil model."""
    return torch.ones((1, *shape), dtype=dtype, device=device)
