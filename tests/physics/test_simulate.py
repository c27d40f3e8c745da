"""Simulation of k-space from magnitude images: physics properties on a real MR image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrirecon.physics import rss
from mrirecon.physics.simulate import (
    SimulationParams,
    birdcage_maps,
    resample_inplane,
    simulate_kspace,
)


@pytest.fixture(scope="module")
def mr_image() -> np.ndarray:
    pydicom = pytest.importorskip("pydicom")
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    return ds.pixel_array.astype(np.float32)[None]  # (1, 64, 64)


def test_birdcage_maps_have_unit_rss_and_differ() -> None:
    maps = birdcage_maps((40, 48), 8)
    torch.testing.assert_close(rss(maps, dim=0), torch.ones(40, 48), atol=1e-5, rtol=0)
    assert maps.shape == (8, 40, 48)
    assert (maps[0].abs() - maps[4].abs()).abs().max() > 0.1  # opposite coils see differently


def test_noiseless_rss_target_equals_the_magnitude(mr_image: np.ndarray) -> None:
    kspace, target = simulate_kspace(mr_image, SimulationParams(coils=8, noise=0.0, seed=3))
    assert kspace.shape == (1, 8, 64, 64) and kspace.dtype == np.complex64
    np.testing.assert_allclose(target, mr_image, rtol=1e-4, atol=1e-3 * mr_image.max())


def test_noise_level_and_seed(mr_image: np.ndarray) -> None:
    params = SimulationParams(coils=4, noise=0.02, seed=1)
    k1, _ = simulate_kspace(mr_image, params)
    k2, _ = simulate_kspace(mr_image, params)
    np.testing.assert_array_equal(k1, k2)
    clean, _ = simulate_kspace(mr_image, SimulationParams(coils=4, noise=0.0, seed=1))
    noise = (k1 - clean).ravel()
    assert np.std(noise) == pytest.approx(0.02 * mr_image.max(), rel=0.05)
    k3, _ = simulate_kspace(mr_image, SimulationParams(coils=4, noise=0.02, seed=2))
    assert not np.array_equal(k1, k3)


def test_phase_is_smooth_and_nontrivial(mr_image: np.ndarray) -> None:
    kspace, _ = simulate_kspace(mr_image, SimulationParams(coils=1, noise=0.0, seed=5))
    from mrirecon.physics import ifft2c

    image = ifft2c(torch.as_tensor(kspace))[0, 0]
    inside = torch.as_tensor(mr_image[0] > 0.2 * mr_image.max())
    phase = torch.angle(image)[inside]
    assert phase.std() > 0.05
    np.testing.assert_allclose(image.abs().numpy(), mr_image[0], atol=1e-3 * mr_image.max())


def test_resample_keeps_field_of_view() -> None:
    data = np.random.default_rng(0).random((2, 64, 48)).astype(np.float32)
    affine = np.diag([3.0, 0.5, 0.8, 1.0])
    affine[:3, 3] = [10, 20, 30]
    out, new = resample_inplane(data, affine, 32)
    assert out.shape == (2, 32, 32)

    def edges(aff, n_rows, n_cols):  # outer pixel edges of row and column axes, in mm
        first = aff @ [0, -0.5, -0.5, 1]
        last = aff @ [0, n_rows - 0.5, n_cols - 0.5, 1]
        return first[:3], last[:3]

    for a, b in zip(edges(affine, 64, 48), edges(new, 32, 32), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-9)
    assert out.mean() == pytest.approx(data.mean(), rel=0.02)
