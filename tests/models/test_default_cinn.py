"""The shipped default cINN on the shipped sample scan: real properties of its posterior."""

from __future__ import annotations

import numpy as np
import pytest

from mrirecon.inference import MaskOptions, choose_mask, prepare_kspace, undersample
from mrirecon.models.checkpoint import read_metadata
from mrirecon.models.default import default_sampler, sample_scan
from mrirecon.recon.methods import build_reconstructor


def posterior(accel: float, samples: int, seed: int):
    kspace = prepare_kspace(sample_scan())
    mask = choose_mask(kspace, MaskOptions(acceleration=accel), sample_scan().name)
    sampler = build_reconstructor("zero-filled", model=default_sampler(), batch_size=3)
    sampler.configure(samples=samples, seed=seed)
    return sampler.sample(undersample(kspace, mask))


def test_shipped_cinn_is_small_self_contained_and_conditioned_on_the_irim() -> None:
    assert default_sampler().stat().st_size <= 25 * 2**20
    meta = read_metadata(default_sampler())
    assert meta["name"] == "cinn.v1" and meta["config"]["conditioner"] == "irim"
    assert meta["config"]["irim_config"] is not None  # the i-RIM's weights travel inside


@pytest.mark.slow
def test_std_map_is_larger_at_8x_than_at_4x() -> None:
    std4 = posterior(4, 16, 0).std.data
    std8 = posterior(8, 16, 0).std.data
    assert std8.mean() > 1.1 * std4.mean()


@pytest.mark.slow
def test_sample_mean_converges_as_n_grows() -> None:
    def spread(n: int) -> float:  # distance between the means of two independent draws of n
        a, b = posterior(4, n, 1).mean.data, posterior(4, n, 2).mean.data
        return float(np.sqrt(np.mean((a - b) ** 2)))

    few, many = spread(4), spread(32)
    assert many < 0.6 * few  # ~1/sqrt(n): sqrt(4/32) = 0.35
