"""What one training step minimises: each item's loss, averaged over the batch.

Training masks differ per item, so each item is prepared (with the same
:func:`~mrirecon.recon.model_inputs.prepare_batch` as inference) and run on its own, and the
batch loss is the sum of per-item losses divided by the batch size -- the same gradient as a
stacked batch, with one backward pass. Targets are divided by the item's normalisation, so the
loss is in the model's normalised units.

Supervised items carry a ``target`` image. Self-supervised (SSDU) items carry the acquired
k-space, the input part Theta of its mask as ``mask`` and the loss part Lambda as
``loss_mask``: the model sees only Theta, and its estimates are scored in k-space on Lambda,
plus ``loss.ssdu_theta_weight`` times on Theta (:class:`KSpaceTarget`, on the coil maps of
the Theta inputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mrirecon.errors import InvalidParameterError
from mrirecon.models.protocols import GradFn, LikelihoodModel
from mrirecon.padding import center_crop
from mrirecon.physics import from_channels, sense_operator
from mrirecon.recon.model_inputs import ModelBatch, call_model, padded_inputs, prepare_batch
from mrirecon.train.config import LossConfig, TrainConfig
from mrirecon.train.losses import kspace_loss, reconstruction_loss

__all__ = ["KSpaceTarget", "Objective", "batch_loss", "check_objective", "ssdu_inputs"]


@dataclass
class KSpaceTarget:
    """SSDU's target: the acquired samples, in normalised units, split into Lambda and Theta.

    Attributes
    ----------
    maps
        The coil maps of the model's (Theta) inputs ``(n, coils, y, x)``.
    y
        The acquired k-space divided by the inputs' normalisation ``(n, coils, ky, kx)``.
    lam, theta
        The loss set Lambda and the input set Theta, bool ``(1 | ky, kx)``.
    """

    maps: torch.Tensor
    y: torch.Tensor
    lam: torch.Tensor
    theta: torch.Tensor

    def loss(self, estimates: Sequence[torch.Tensor], steps: str = "all",
             theta_weight: float = 0.0) -> torch.Tensor:
        """Mean over complex estimates ``(n, y, x)`` of the k-space loss on Lambda.

        Plus ``theta_weight`` times the same loss on Theta (see
        :class:`~mrirecon.train.config.LossConfig`); ``steps="last"`` scores the returned
        estimate only.
        """
        if steps == "last":
            estimates = estimates[-1:]
        parts = [(sense_operator(self.maps, self.lam), self.lam, 1.0)]
        if theta_weight > 0:
            parts.append((sense_operator(self.maps, self.theta), self.theta, theta_weight))
        total = sum(w * kspace_loss(op(e), self.y, mask)
                    for e in estimates for op, mask, w in parts)
        return total / len(estimates)  # type: ignore[return-value]


def ssdu_inputs(kspace: torch.Tensor, theta: torch.Tensor,
                lam: torch.Tensor) -> tuple[ModelBatch, KSpaceTarget]:
    """The model's inputs from the Theta samples and the SSDU target.

    Parameters
    ----------
    kspace
        Acquired k-space ``(n, coils, ky, kx)`` (zero where not sampled).
    theta, lam
        The disjoint input and loss masks, bool ``(1 | ky, kx)``
        (:func:`~mrirecon.sampling.ssdu.split_mask`).
    """
    inputs = prepare_batch(torch.where(theta, kspace, torch.zeros((), dtype=kspace.dtype,
                                                                  device=kspace.device)), theta)
    y = kspace / inputs.scale[:, None, None, None]
    return inputs, KSpaceTarget(inputs.maps, y, lam, theta)


def check_objective(model: nn.Module, cfg: TrainConfig) -> None:
    """Refuse an objective the model cannot train with (SSDU for a likelihood model)."""
    if cfg.loss.kind == "ssdu" and isinstance(model, LikelihoodModel):
        raise InvalidParameterError(
            f"loss.kind=ssdu trains RIM and i-RIM models; {cfg.model} learns a posterior from "
            "fully sampled references (use loss.kind=supervised)")


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
    loss
        The run's ``loss`` section: the weights of the reconstruction loss, and SSDU's.
    amp
        Run the forward pass of estimating models under bf16 autocast.
    """

    def __init__(self, model: nn.Module, loss: LossConfig, amp: bool) -> None:
        super().__init__()
        self.model, self.amp = model, amp
        self.weights: dict[str, Any] = {"ssim": loss.ssim, "l1": loss.l1, "mse": loss.mse,
                                        "steps": loss.steps}
        self.theta_weight = loss.ssdu_theta_weight

    def forward(self, x0: torch.Tensor, grad: GradFn,
                crop: Callable[[torch.Tensor], torch.Tensor],
                target: torch.Tensor | KSpaceTarget) -> torch.Tensor:
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
            The normalised magnitude target ``(1, h, w)``, or an SSDU :class:`KSpaceTarget`.

        Returns
        -------
        torch.Tensor
            The loss, a scalar.

        Raises
        ------
        InvalidParameterError
            A likelihood model given a target whose matrix is not the k-space image's.
        """
        if isinstance(target, KSpaceTarget):
            out = call_model(self.model, x0, grad, self.amp)
            return target.loss([from_channels(crop(e), None) for e in out],
                               self.weights["steps"], self.theta_weight)
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
        A ragged training batch: lists ``kspace``, ``mask`` and ``target`` (supervised) or
        ``loss_mask`` (SSDU) of per-item tensors
        (:func:`~mrirecon.train.dataset.collate` with ``ragged=True``).
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
        target: torch.Tensor | KSpaceTarget
        if "loss_mask" in batch:
            inputs, target = ssdu_inputs(kspace, mask, batch["loss_mask"][i].to(device))
        else:
            inputs = prepare_batch(kspace, mask)
            reference = batch["target"][i][None].to(device, non_blocking=True)
            target = reference / inputs.scale[:, None, None].float()
        x0, grad, crop = padded_inputs(model, inputs)
        total = total + net(x0, grad, crop, target)
    return total / n
