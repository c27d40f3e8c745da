"""The model-input adapter hands a model the same kind of image for 1 and N coils."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file

from mrirecon.physics import ifft2c
from mrirecon.physics.simulate import SimulationParams, simulate_kspace
from mrirecon.recon.model_inputs import prepare_batch
from mrirecon.sampling import MaskSpec, make_mask


def imaginary_fraction(x0: torch.Tensor) -> float:
    """Energy of the imaginary channel over the whole (real channels ``(n, 2, y, x)``)."""
    return float(x0[:, 1].square().sum() / x0.square().sum())


@pytest.mark.parametrize("coils", [1, 4])
def test_zero_filled_start_is_phase_free_whatever_the_coil_count(coils: int) -> None:
    """A real MR slice with a smooth phase of up to +-pi/2: the start ``A^H y`` keeps under 3% of
    its energy in the imaginary channel for one coil as for four (the maps absorb the phase),
    while the raw single-coil image (an all-ones map) keeps much more; for one coil ``|x0|`` is
    the zero-filled magnitude."""
    image = pydicom.dcmread(get_testdata_file("MR_small.dcm", download=False)).pixel_array
    image = image.astype(np.float32)[None] / image.max()
    kspace, _ = simulate_kspace(image, SimulationParams(coils=coils, seed=3,
                                                        max_phase=math.pi / 2))
    mask = torch.as_tensor(make_mask(MaskSpec(kind="random", acceleration=4, shape=(64, 64),
                                              center_fraction=0.125, seed=0)).array)
    under = torch.as_tensor(kspace) * mask
    batch = prepare_batch(under, mask)
    assert imaginary_fraction(batch.x0) < 0.03
    raw = ifft2c(under)[:, 0]
    raw = torch.stack([raw.real, raw.imag], dim=1)
    if coils == 1:  # the map is a pure phase: the magnitude is the zero-filled one
        assert imaginary_fraction(raw) > 5 * imaginary_fraction(batch.x0)
        magnitude = batch.x0.square().sum(1).sqrt() * batch.scale[:, None, None]
        torch.testing.assert_close(magnitude, ifft2c(under)[:, 0].abs().to(magnitude.dtype),
                                   rtol=1e-3, atol=1e-5)
