"""Posterior sampling: a conditional invertible network (``cinn.v1``) as a reconstructor.

A sampler is a :class:`~mrirecon.recon.learned.LearnedReconstructor` whose model can draw
images ``x ~ p(x | y)`` (a :class:`~mrirecon.models.protocols.SamplingModel`). Called like any
reconstructor it returns the posterior mean of ``samples`` draws, exactly
``sampler.sample(kspace).mean`` (so ``evaluate`` scores it like the other methods, with the same
draws whether or not it asks for the standard deviation); :meth:`PosteriorSampler.sample`
returns the mean, the pixelwise standard deviation (the uncertainty map) and, on request, the
samples themselves.

Draws are made ``sample_batch`` at a time for each batch of slices and accumulated in float64
(sum and sum of squares), so memory does not grow with the number of samples unless they are
kept. One ``torch.Generator`` per volume, seeded with ``seed`` and shared by its slice batches,
makes the draws reproducible for the same seed, batch size and sample batch; the seed is
recorded in the provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from mrirecon.data import KSpace, Volume
from mrirecon.data.masks import mask_statistics
from mrirecon.errors import InvalidParameterError, MriReconError, one_line
from mrirecon.models.protocols import SamplingModel
from mrirecon.recon.learned import LearnedReconstructor
from mrirecon.recon.model_inputs import padded_inputs, prepare_batch
from mrirecon.recon.uncertainty import Calibration

__all__ = ["Posterior", "PosteriorSampler", "check_sampling"]

#: Samples the mean is taken over when a sampler is used as a plain reconstructor.
DEFAULT_SAMPLES = 16


@dataclass
class Posterior:
    """What :meth:`PosteriorSampler.sample` returns (image units, recon matrix).

    Attributes
    ----------
    mean, std
        Volumes ``(slices, rows, cols)``: the pixelwise mean and standard deviation (ddof 1) of
        the samples, with the input's geometry.
    samples
        ``(slices, n, rows, cols)`` float32, or ``None`` unless asked for.
    """

    mean: Volume
    std: Volume
    samples: np.ndarray | None = None


def check_sampling(samples: int, temperature: float, sample_batch: int | None) -> None:
    """Reject settings no sampler can use (one clear message each)."""
    if samples < 2:
        raise InvalidParameterError(
            f"--samples must be >= 2 (a standard deviation needs two draws), got {samples}")
    if not temperature > 0:
        raise InvalidParameterError(f"--temperature must be > 0, got {temperature}")
    if sample_batch is not None and sample_batch < 1:
        raise InvalidParameterError(f"--sample-batch must be >= 1, got {sample_batch}")


class PosteriorSampler(LearnedReconstructor):
    """A sampling model behind the reconstructor protocol (see the module docstring).

    Parameters
    ----------
    samples, temperature, sample_batch, seed
        Defaults for :meth:`sample` and for the plain call (posterior mean).
    """

    def __init__(self, model: nn.Module, name: str, *, device: Any = "cpu",
                 batch_size: int | None = None, metadata: dict[str, Any] | None = None,
                 amp: bool = False, samples: int = DEFAULT_SAMPLES, temperature: float = 1.0,
                 sample_batch: int | None = None, seed: int = 0) -> None:
        # the flow always runs in float32 (amp is not used: log-determinants and inverses need
        # the precision)
        super().__init__(model, name, device=device, batch_size=batch_size, metadata=metadata)
        stored = (self.metadata.get("extra") or {}).get("calibration")
        #: The checkpoint's std calibration (:mod:`mrirecon.recon.uncertainty`), or ``None``.
        self.calibration = None if stored is None else Calibration.from_dict(stored)
        #: Apply :attr:`calibration` to the std maps (``False``: the raw std of the draws).
        self.calibrated = self.calibration is not None
        self._acceleration: float | None = None  # of the input sampled last
        self.samples, self.temperature, self.seed = 2, 1.0, 0
        self._batch_request: int | None = None  # None: all samples at once
        self.configure(samples=samples, temperature=temperature, sample_batch=sample_batch,
                       seed=seed)

    def configure(self, *, samples: int | None = None, temperature: float | None = None,
                  sample_batch: int | None = None, seed: int | None = None) -> None:
        """Change the sampling settings (checked); ``None`` keeps a setting."""
        samples = self.samples if samples is None else int(samples)
        temperature = self.temperature if temperature is None else float(temperature)
        request = self._batch_request if sample_batch is None else int(sample_batch)
        check_sampling(samples, temperature, request)
        self.samples, self.temperature, self._batch_request = samples, temperature, request
        self.seed = self.seed if seed is None else int(seed)

    @property
    def std_scale(self) -> float:
        """The factor the std maps get (at the last sampled input's rate), or 1."""
        if not (self.calibrated and self.calibration):
            return 1.0
        return self.calibration.scale_for(self._acceleration)

    @property
    def calibration_note(self) -> str:
        """One line on the std maps (of the last sampled input): how they are calibrated."""
        if self.calibrated and self.calibration is not None:
            return self.calibration.note(self._acceleration)
        return "uncalibrated: the raw std of the draws"

    @property
    def sample_batch(self) -> int:
        """Samples drawn at once: the requested number, at most all of them."""
        return min(self._batch_request or self.samples, self.samples)

    def parameters(self) -> dict[str, Any]:
        """The model's parameters plus the sampling settings."""
        return {**super().parameters(), "samples": self.samples,
                "temperature": self.temperature, "sample_batch": self.sample_batch,
                "seed": self.seed}

    def __call__(self, kspace: KSpace) -> Volume:
        """The posterior mean: ``self.sample(kspace).mean``, the same draws."""
        return self.sample(kspace).mean

    def reconstruct_batch(self, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Posterior mean of one batch of slices on its own.

        A fresh generator from ``seed``: the draws of a volume holding just these slices.
        """
        return self._draw(kspace, mask, torch.Generator().manual_seed(self.seed), False)[0]

    def sample(self, kspace: KSpace, *, keep_samples: bool = False) -> Posterior:
        """Mean, standard deviation and (``keep_samples``) the draws for every slice."""
        generator = torch.Generator().manual_seed(self.seed)

        def fn(k: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return self._draw(k, mask, generator, keep_samples)

        outputs, seconds = self.run_slices(kspace, fn)
        self._acceleration = None if kspace.mask is None else float(
            mask_statistics(kspace.mask, kspace.shape[-2:])["achieved_acceleration"])
        cal = self.calibration if self.calibrated else None
        record = {"posterior": {"samples": self.samples, "temperature": self.temperature,
                                "seed": self.seed, "sample_batch": self.sample_batch},
                  "calibration": ({"calibrated": False} if cal is None else
                                  {"calibrated": True, "method": cal.method,
                                   "scale": self.std_scale,
                                   "by_acceleration": cal.by_acceleration,
                                   "data": cal.data, "created": cal.created}),
                  "sampled_slices_per_second": round(
                      self.samples * kspace.n_slices / max(seconds, 1e-9), 3)}
        mean = self.volume(kspace, outputs[0], seconds, statistic="posterior mean", **record)
        std = self.volume(kspace, outputs[1] * np.float32(self.std_scale), seconds,
                          statistic="posterior std", **record)
        return Posterior(mean, std, outputs[2] if keep_samples else None)

    def _draw(self, kspace: torch.Tensor, mask: torch.Tensor, generator: torch.Generator,
              keep: bool) -> tuple[torch.Tensor, ...]:
        """``(mean, std[, samples (n, S, y, x)])`` of one batch of slices, in image units."""
        model = self.model
        assert isinstance(model, SamplingModel)  # load_reconstructor picks this class for those
        batch = prepare_batch(kspace, mask)
        x0, grad, crop = padded_inputs(model, batch)
        total: torch.Tensor | None = None
        sq: torch.Tensor | None = None
        kept = []
        done = 0
        while done < self.samples:
            n = min(self.sample_batch, self.samples - done)
            try:
                draws = model.sample(x0, grad, n, temperature=self.temperature,
                                          generator=generator)
            except torch.OutOfMemoryError:
                raise MriReconError(
                    f"--sample-batch {self.sample_batch} does not fit in memory on "
                    f"{self.device} ({x0.shape[0]} slices of {tuple(x0.shape[-2:])} at once); "
                    "use a smaller --sample-batch or --batch-size") from None
            except RuntimeError as exc:
                if "alloc" not in str(exc).lower() and "memory" not in str(exc).lower():
                    raise
                raise MriReconError(
                    f"--sample-batch {self.sample_batch} does not fit in memory on "
                    f"{self.device}: {one_line(exc)}; use a smaller --sample-batch "
                    "or --batch-size") from None
            draws = crop(draws).double() * batch.scale[None, :, None, None].double()
            total = draws.sum(0) if total is None else total + draws.sum(0)
            sq = (draws**2).sum(0) if sq is None else sq + (draws**2).sum(0)
            if keep:
                kept.append(draws.float().transpose(0, 1))
            done += n
        assert total is not None and sq is not None  # samples >= 2, see check_sampling
        mean = total / self.samples
        var = (sq - self.samples * mean**2) / (self.samples - 1)
        out = (mean.float(), var.clamp_min(0).sqrt().float())
        return (*out, torch.cat(kept, dim=1)) if keep else out
