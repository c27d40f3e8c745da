"""A posterior sampler behind the reconstructor protocol: its plain call is its sampled mean."""

from __future__ import annotations

import numpy as np
import torch

from mrirecon.inference import prepare_kspace, undersample
from mrirecon.models.registry import build
from mrirecon.recon.posterior import PosteriorSampler
from mrirecon.recon.protocols import ReconstructorProtocol, Sampler
from mrirecon.sampling import MaskOptions, draw_mask


def _sampler(batch_size: int) -> PosteriorSampler:
    torch.manual_seed(0)
    model = build("cinn.v1", {"levels": 2, "blocks_per_level": 1, "hidden": 4,
                              "cond_channels": 4, "cond_hidden": 4})
    return PosteriorSampler(model.eval(), "cinn.v1", batch_size=batch_size, samples=3, seed=7)


def test_plain_call_equals_sample_mean_on_every_slice_batch(simulated_scans) -> None:
    """24 slices at batch size 8: the plain call used to reseed per batch, so slices 8-23
    differed from ``sample().mean`` (and ``evaluate`` without ``--samples`` scored other draws)."""
    path = simulated_scans / "example4d.h5"
    kspace = prepare_kspace(path)
    assert kspace.n_slices == 24
    under = undersample(kspace, draw_mask(kspace.shape[-2:], MaskOptions(acceleration=4),
                                          path.name))
    sampler = _sampler(batch_size=8)
    assert isinstance(sampler, Sampler) and isinstance(sampler, ReconstructorProtocol)
    plain = sampler(under).data
    posterior = sampler.sample(under)
    np.testing.assert_array_equal(plain, posterior.mean.data)
    assert posterior.std.data[8:].max() > 0  # later batches really are sampled
    # the same seed gives the same volume whatever the slice batching does to the call order
    np.testing.assert_array_equal(_sampler(batch_size=8)(under).data, plain)
