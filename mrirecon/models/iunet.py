"""Fully invertible 2-D U-Net (Etmann, Ke & Schönlieb 2020, "iUNets").

Each level applies additive couplings (Dinh et al. 2015) with orthogonal 1x1 mixing between them;
on the way down the channels are split: the first half is kept for the skip connection and the
second half is downsampled by a learnable orthogonal (Haar-initialised) 2x2 convolution,
``C/2 -> 2C`` channels at half resolution. On the way up, the coarse channels are upsampled
orthogonally, concatenated with the kept half and pass through couplings again. Every piece is
invertible and volume preserving, so the network is a bijection with ``log|det J| = 0`` and can be
trained memory-free (Putzky & Welling 2019).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mrirecon.models.invertible import (
    AdditiveCoupling,
    InvertibleModule,
    InvertibleSequence,
    Orthogonal1x1,
    OrthogonalDownsample,
    OrthogonalUpsample,
)

__all__ = ["IUNet", "required_multiple"]


def required_multiple(levels: int) -> int:
    """H and W of an :class:`IUNet` input must be multiples of ``2 ** (levels - 1)``."""
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    return 2 ** (levels - 1)


class _Skip(InvertibleModule):
    """Split ``x = (keep, down)``; ``down' = up(inner(downsample(down)))``; concatenate."""

    def __init__(self, channels: int, inner: InvertibleModule):
        super().__init__()
        self.keep = channels // 2
        self.down = OrthogonalDownsample(channels - self.keep)
        self.inner = inner
        self.up = OrthogonalUpsample(channels - self.keep)

    def forward(self, x: Tensor) -> Tensor:
        keep, rest = x[:, : self.keep], x[:, self.keep :]
        return torch.cat([keep, self.up(self.inner(self.down(rest)))], dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        keep, rest = y[:, : self.keep], y[:, self.keep :]
        rest = self.down.inverse(self.inner.inverse(self.up.inverse(rest)))
        return torch.cat([keep, rest], dim=1)


class IUNet(InvertibleModule):
    """Invertible U-Net mapping ``(B, C, H, W)`` to the same shape.

    Parameters
    ----------
    channels : int
        Input channels; even and >= 2, because each coupling and each level split halves the
        channels and both halves must be non-empty and equal.
    levels : int
        Resolution levels (1 = no downsampling). H and W must be multiples of
        :func:`required_multiple` ``(levels)``; use :func:`mrirecon.padding.pad_to_multiple`
        and :func:`~mrirecon.padding.center_crop`.
    blocks_per_level : int or sequence of int
        Additive couplings per level and direction (one count per level, top first).
    hidden : int
        Width of each coupling's conv-ReLU-conv.
    memory_free : bool
        Store only outputs and rebuild activations by inversion in backward.

    Channels at level ``l`` are ``C * 2**l``; the parameter count grows with ``hidden`` and blocks.
    """

    def __init__(
        self,
        channels: int,
        levels: int = 3,
        blocks_per_level: int | Sequence[int] = 2,
        hidden: int = 32,
        memory_free: bool = False,
    ):
        super().__init__()
        if channels < 2 or channels % 2:
            raise ValueError(f"IUNet needs an even number of channels >= 2 (couplings and level "
                             f"splits halve them), got {channels}")
        self.multiple = required_multiple(levels)
        counts = [blocks_per_level] * levels if isinstance(blocks_per_level, int) else list(
            blocks_per_level)
        if len(counts) != levels or any(n < 0 for n in counts):
            raise ValueError(f"blocks_per_level must be one count >= 0 or {levels} of them, "
                             f"got {blocks_per_level}")
        self.channels, self.levels = channels, levels

        def stage(c: int, n: int) -> list[InvertibleModule]:
            blocks: list[InvertibleModule] = []
            for i in range(n):
                if i:
                    blocks.append(Orthogonal1x1(c, init="reverse"))
                blocks.append(AdditiveCoupling(c, hidden))
            return blocks

        widths = [channels * 2**lev for lev in range(levels)]
        body = InvertibleSequence(stage(widths[-1], counts[-1]), memory_free)
        for lev in range(levels - 2, -1, -1):
            c, n = widths[lev], counts[lev]
            body = InvertibleSequence([*stage(c, n), _Skip(c, body), *stage(c, n)], memory_free)
        self.body = body

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"IUNet expects (B, {self.channels}, H, W) but got shape "
                             f"{tuple(x.shape)}")
        if x.shape[-2] % self.multiple or x.shape[-1] % self.multiple:
            raise ValueError(f"IUNet with {self.levels} levels needs H and W divisible by "
                             f"{self.multiple} but got shape {tuple(x.shape)}; pad with "
                             "pad_to_multiple")

    def forward(self, x: Tensor) -> Tensor:
        """Apply the U-Net (input shape checked)."""
        self._check(x)
        return self.body(x)

    def inverse(self, y: Tensor) -> Tensor:
        """Invert the U-Net (input shape checked)."""
        self._check(y)
        return self.body.inverse(y)
