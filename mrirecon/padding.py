"""The package's one pad/crop pair on the last two axes (images, channels, k-space rows).

:func:`pad_to_multiple` zero-pads evenly (the extra pixel on the right/bottom) and
:func:`center_crop` crops around the centre as fastMRI's ``center_crop`` does; the two are exact
inverses: ``center_crop(pad_to_multiple(x, m)[0], x.shape[-2:]) == x``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

Pad = tuple[int, int, int, int]  # (left, right, top, bottom), as torch.nn.functional.pad takes


def pad_amounts(size: tuple[int, int], multiple: int) -> Pad:
    """What :func:`pad_to_multiple` adds to an ``(H, W)`` ``size``."""
    ph, pw = (-size[0]) % multiple, (-size[1]) % multiple
    return (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, Pad]:
    """Zero-pad the last two axes of ``x`` up to multiples of ``multiple``; ``(padded, pad)``."""
    pad = pad_amounts((x.shape[-2], x.shape[-1]), multiple)
    return (F.pad(x, pad) if any(pad) else x), pad


def center_crop(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop the last two axes to ``size`` around the centre (fastMRI's ``center_crop``)."""
    rows, cols = size
    top = (image.shape[-2] - rows) // 2
    left = (image.shape[-1] - cols) // 2
    return image[..., top : top + rows, left : left + cols]
