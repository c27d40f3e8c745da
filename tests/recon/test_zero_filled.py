"""The Reconstructor protocol and zero-filled reconstruction on simulated real images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file

from mrirecon.data import KSpace
from mrirecon.errors import InvalidParameterError
from mrirecon.io import load
from mrirecon.physics.simulate import SimulationParams, simulate_kspace
from mrirecon.recon.base import Reconstructor
from mrirecon.recon.zero_filled import ZeroFilled
from mrirecon.sampling import MaskSpec, make_mask


@pytest.fixture(scope="module")
def volume():
    return load(get_testdata_file("MR_small.dcm", download=False))


def simulated(volume, coils: int) -> tuple[np.ndarray, np.ndarray]:
    data = np.repeat(volume.data, 3, axis=0) * np.array([1.0, 0.5, 2.0])[:, None, None]
    return simulate_kspace(data, SimulationParams(coils=coils, noise=0.01, seed=4))


@pytest.mark.parametrize("coils", [1, 6])
def test_fully_sampled_zero_filled_equals_target(volume, coils: int) -> None:
    kspace, target = simulated(volume, coils)
    out = ZeroFilled()(KSpace(kspace, affine=volume.affine, source="x"))
    np.testing.assert_allclose(out.data, target, rtol=1e-5, atol=1e-4 * target.max())
    np.testing.assert_array_equal(out.affine, volume.affine)
    assert out.provenance["method"] == "zero-filled"


def test_batching_does_not_change_the_result(volume, device: str) -> None:
    kspace, _ = simulated(volume, 4)
    mask = make_mask(MaskSpec(kind="random", acceleration=4, shape=kspace.shape[-2:], seed=1))
    ks = KSpace(np.where(mask.array, kspace, 0), mask=mask.array)
    one = ZeroFilled(device=device, batch_size=1)(ks).data
    many = ZeroFilled(device=device, batch_size=8)(ks).data
    np.testing.assert_allclose(one, many, rtol=1e-6)
    assert one.shape == (3, 64, 64) and one.dtype == np.float32


def test_crop_to_recon_size_moves_the_origin(volume) -> None:
    kspace, target = simulated(volume, 2)
    ks = KSpace(kspace, recon_matrix=(32, 40, 1), affine=volume.affine)
    out = ZeroFilled()(ks)
    assert out.shape == (3, 32, 40)
    np.testing.assert_allclose(out.data, target[:, 16:48, 12:52], rtol=1e-5,
                               atol=1e-4 * target.max())
    # voxel (0, 0, 0) of the crop is voxel (0, 16, 12) of the full image
    np.testing.assert_allclose(out.affine @ [0, 0, 0, 1], volume.affine @ [0, 16, 12, 1])


def test_methods_needing_coils_refuse_single_coil() -> None:
    class NeedsCoils(Reconstructor):
        name, needs_coils = "coil-method", True

        def reconstruct_batch(self, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            raise AssertionError("not reached")

    with pytest.raises(InvalidParameterError, match="coil-method needs multi-coil data"):
        NeedsCoils()(KSpace(np.zeros((1, 1, 8, 8), np.complex64), source="single.h5"))
    with pytest.raises(InvalidParameterError, match="batch size must be >= 1"):
        ZeroFilled(batch_size=0)
