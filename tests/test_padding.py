"""The one pad/crop pair: exact inverses, fastMRI's centre, and what the i-RIM's U-Net needs."""

import torch

from mrirecon.models.iunet import IUNet, required_multiple
from mrirecon.padding import center_crop, pad_amounts, pad_to_multiple


def test_pad_crop_round_trip() -> None:
    x = torch.randn(1, 2, 7, 10)
    padded, pad = pad_to_multiple(x, required_multiple(3))
    assert padded.shape[-2:] == (8, 12) and pad == (1, 1, 0, 1)
    assert pad == pad_amounts((7, 10), 4)
    assert torch.equal(center_crop(padded, (7, 10)), x)
    net = IUNet(2, levels=3, hidden=4)
    assert center_crop(net(padded), (7, 10)).shape == x.shape
    same, nothing = pad_to_multiple(padded, 4)
    assert same is padded and nothing == (0, 0, 0, 0)


def test_center_crop_keeps_the_fastmri_centre() -> None:
    x = torch.arange(7 * 6).reshape(7, 6)
    # fastMRI: top = (7 - 4) // 2 = 1, left = (6 - 3) // 2 = 1
    assert torch.equal(center_crop(x, (4, 3)), x[1:5, 1:4])
