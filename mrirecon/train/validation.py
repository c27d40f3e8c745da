"""The validation pass: PSNR, SSIM and NMSE of the model over the validation volumes.

Scored as ``mrirecon evaluate`` scores (fastMRI per-volume protocol,
:func:`~mrirecon.metrics.volume_metrics`), on the same model inputs as inference. A
:class:`~mrirecon.models.protocols.SamplingModel` (the cINN) is scored on its posterior mean.

Undersampled validation files (an SSDU run without fully sampled validation data) have no
reference image: they are scored by the held-back k-space loss, the model run on each slice's
fixed Theta and its returned estimate scored on Lambda
(:class:`~mrirecon.train.objective.KSpaceTarget`), the mean over slices.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mrirecon.metrics import volume_metrics
from mrirecon.models.protocols import SamplingModel
from mrirecon.padding import center_crop
from mrirecon.recon.model_inputs import ModelBatch, padded_inputs, prepare_batch, run_model
from mrirecon.train.dataset import SliceDataset, collate
from mrirecon.train.objective import ssdu_inputs

__all__ = ["VALIDATION_SAMPLES", "held_back_loss", "point_estimate", "validate"]

#: Draws whose mean is a sampler's (cINN's) validation estimate.
VALIDATION_SAMPLES = 8


def point_estimate(model: nn.Module, inputs: ModelBatch) -> torch.Tensor:
    """The magnitude estimate scored in validation.

    Parameters
    ----------
    model
        The model being validated.
    inputs
        Its inputs (:func:`~mrirecon.recon.model_inputs.prepare_batch`).

    Returns
    -------
    torch.Tensor
        ``(n, H, W)`` in normalised units: a sampler's posterior mean of
        :data:`VALIDATION_SAMPLES` draws (fixed seed), otherwise the model's last estimate.
    """
    if not isinstance(model, SamplingModel):
        return run_model(model, inputs)[-1].abs()
    x0, grad, crop = padded_inputs(model, inputs)
    generator = torch.Generator().manual_seed(0)
    return crop(model.sample(x0, grad, VALIDATION_SAMPLES, generator=generator).mean(0))


@torch.inference_mode()
def validate(model: nn.Module, dataset: SliceDataset, device: torch.device,
             batch_size: int = 8) -> dict[str, float]:
    """Mean PSNR, SSIM and NMSE over the validation volumes (fastMRI per-volume protocol).

    With ``dataset.repeats`` masks per file each (file, mask) pair is a volume, as in
    ``mrirecon evaluate --mask-repeats``. The model is left in training mode.

    Parameters
    ----------
    model
        The model to score.
    dataset
        The validation slices (``train=False``: fixed masks).
    device
        Where the model runs.
    batch_size
        Slices of one volume run together.

    Returns
    -------
    dict
        ``{"psnr", "ssim", "nmse"}``, each the mean over volumes, or for undersampled files
        (``dataset.undersampled``) ``{"kspace_loss"}`` (:func:`held_back_loss`).
    """
    if dataset.undersampled:
        return {"kspace_loss": held_back_loss(model, dataset, device)}
    model.eval()
    per_volume: dict[tuple[int, int], list[int]] = {}
    for i in range(len(dataset)):
        per_volume.setdefault(dataset.volume_of(i), []).append(i)
    results: list[dict[str, Any]] = []
    for indices in per_volume.values():
        recons, targets = [], []
        for first in range(0, len(indices), batch_size):
            items = collate([dataset[i] for i in indices[first : first + batch_size]])
            inputs = prepare_batch(items["kspace"].to(device), items["mask"][0].to(device))
            image = point_estimate(model, inputs) * inputs.scale[:, None, None]
            recons.append(center_crop(image, tuple(items["target"].shape[-2:])).float().cpu())
            targets.append(items["target"])
        results.append(volume_metrics(torch.cat(targets), torch.cat(recons)))
    model.train()
    return {k: float(sum(r[k] for r in results) / len(results)) for k in ("psnr", "ssim", "nmse")}


@torch.inference_mode()
def held_back_loss(model: nn.Module, dataset: SliceDataset, device: torch.device) -> float:
    """Mean k-space loss on Lambda of the model's estimate from Theta, over the slices.

    Parameters
    ----------
    model
        The model to score (left in training mode).
    dataset
        Undersampled validation slices (``dataset.undersampled``: fixed splits).
    device
        Where the model runs.
    """
    model.eval()
    total = 0.0
    for i in range(len(dataset)):
        item = dataset[i]
        inputs, target = ssdu_inputs(item["kspace"][None].to(device), item["mask"].to(device),
                                     item["loss_mask"].to(device))
        total += float(target.loss(run_model(model, inputs), steps="last"))
    model.train()
    return total / len(dataset)
