"""What one training step minimises: each item's loss, averaged over the batch.

Training masks differ per item, so each item is prepared (with the same
:func:`~mrirecon.recon.model_inputs.prepare_batch` as inference) and run on its own, and the
batch loss is the sum of per-item losses divided by the batch size -- the same gradient as a
stacked batch, with one backward pass. Targets are divided by the item's normalisation, so the
loss is in the model's normalised units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from mrirecon.errors import InvalidParameterError
from mrirecon.models.protocols import GradFn, LikelihoodModel
from mrirecon.padding import center_crop
from mrirecon.physics import from_channels
from mrirecon.recon.model_inputs import call_model, padded_inputs, prepare_batch
from mrirecon.train.config import TrainConfig
from mrirecon.train.losses import reconstruction_loss

__all__ = ["Objective", "batch_loss"]


class Objective(nn.Module):
    """One item's training loss as a single forward pass (the module DDP wraps).

    A :class:`~mrirecon.models.protocols.LikelihoodModel` (the cINN: bits per dimension)
    supplies its own loss; for the others (RIM, i-RIM) it is
    :func:`~mrirecon.train.losses.reconstruction_loss` of the estimates. With ``amp`` the
    estimating models run under bf16 autocast on CUDA while physics and loss stay float32;
    likelihood models always run in float32 (log-determinants need the precision).

    Parameters
    ----------
    model
        The model being trained.
    cfg
        The run's configuration; its ``loss`` section weights the reconstruction loss.
    amp
        Run the forward pass of estimating models under bf16 autocast.
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig, amp: bool) -> None:
        super().__init__()
        self.model, self.amp = model, amp
        self.weights: dict[str, Any] = {"ssim": cfg.loss.ssim, "l1": cfg.loss.l1,
                                        "mse": cfg.loss.mse, "steps": cfg.loss.steps}

    def forward(self, x0: torch.Tensor, grad: GradFn,
                crop: Callable[[torch.Tensor], torch.Tensor],
                target: torch.Tensor) -> torch.Tensor:
        """The scalar loss of one item.

        Parameters
        ----------
        x0
            The padded, normalised start image ``(1, 2, H, W)``
            (:func:`~mrirecon.recon.model_inputs.padded_inputs`).
        grad
            The data-consistency gradient on the padded image.
        crop
            Crops the padded estimates back to the k-space image.
        target
            The normalised magnitude target ``(1, h, w)``.

        Returns
        -------
        torch.Tensor
            The loss, a scalar.

        Raises
        ------
        InvalidParameterError
            A likelihood model given a target whose matrix is not the k-space image's.
        """
        if isinstance(self.model, LikelihoodModel):
            if tuple(x0.shape[-2:]) != tuple(target.shape[-2:]):
                raise InvalidParameterError(
                    f"{type(self.model).__name__} trains on images whose recon matrix equals the "
                    f"k-space matrix and is a multiple of {self.model.required_multiple} "
                    f"(got target {tuple(target.shape[-2:])}, k-space image "
                    f"{tuple(x0.shape[-2:])}); use data.crop or data made with mrirecon simulate")
            return self.model.training_loss(x0, grad, target)
        out = call_model(self.model, x0, grad, self.amp)
        size = (target.shape[-2], target.shape[-1])
        estimates = [center_crop(from_channels(crop(e), None), size) for e in out]
        return reconstruction_loss(estimates, target, **self.weights)


def batch_loss(net: nn.Module, model: nn.Module, batch: dict[str, Any],
               device: torch.device) -> torch.Tensor:
    """Mean over the batch of each item's loss (each item has its own mask).

    Parameters
    ----------
    net
        The :class:`Objective` (or DDP around it) that computes one item's loss.
    model
        The model being trained (its padding needs shape the inputs).
    batch
        A ragged training batch: lists ``kspace``, ``mask`` and ``target`` of per-item
        tensors (:func:`~mrirecon.train.dataset.collate` with ``ragged=True``).
    device
        Where the model runs.

    Returns
    -------
    torch.Tensor
        The batch loss, a scalar that still carries the graph for ``backward``.
    """
    n = len(batch["kspace"])
    total = torch.zeros((), device=device)
    for i in range(n):
        kspace = batch["kspace"][i][None].to(device, non_blocking=True)
        mask = batch["mask"][i].to(device, non_blocking=True)
        target = batch["target"][i][None].to(device, non_blocking=True)
        inputs = prepare_batch(kspace, mask)
        x0, grad, crop = padded_inputs(model, inputs)
        total = total + net(x0, grad, crop, target / inputs.scale[:, None, None].float())
    return total / n
