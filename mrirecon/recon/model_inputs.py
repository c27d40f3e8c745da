"""The model-input adapter: the one place k-space becomes a learned model's input and back.

Inference (:mod:`mrirecon.recon.learned`, :mod:`mrirecon.recon.posterior`) and training
(``train/``) both go through it:

* :func:`prepare_batch`: coil maps from the calibration region (for any coil count, one
  included), the SENSE operator ``A = M F S``, the coil-combined zero-filled start
  ``x0 = A^H y``, and a reversible intensity normalisation: ``y`` and ``x0`` are divided per
  slice by ``scale``, the 99th percentile of ``|x0|``, and the model's output is multiplied back;
* :func:`gradient_channels`: the data-consistency gradient as a callable on real channels, the
  only physics a model receives;
* :func:`padded_inputs`, :func:`call_model`, :func:`run_model`: the start image padded to what
  the network needs, the call (optionally under bfloat16 autocast) and the estimates cropped
  back to complex images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mrirecon.models.protocols import GradFn
from mrirecon.padding import Pad, center_crop, pad_to_multiple
from mrirecon.physics import dc_gradient, from_channels, sense_operator, to_channels
from mrirecon.physics.calibration import acs_calibration_width
from mrirecon.physics.coils import acs_maps
from mrirecon.physics.operators import LinearOperator

#: Percentile of the zero-filled magnitude that normalises each slice.
NORMALISATION_PERCENTILE = 0.99


@dataclass
class ModelBatch:
    """Inputs of a learned model for a batch of slices (all on one device)."""

    x0: torch.Tensor  # (n, 2, y, x) normalised zero-filled estimate, real channels
    y: torch.Tensor  # (n, coils, ky, kx) normalised measured k-space
    op: LinearOperator  # A = M F S for these slices
    scale: torch.Tensor  # (n,) the normalisation of each slice
    maps: torch.Tensor  # (n, coils, y, x) the coil maps of ``op`` (SSDU builds A_Lambda on them)


def prepare_batch(kspace: torch.Tensor, mask: torch.Tensor) -> ModelBatch:
    """Model inputs from undersampled k-space ``(n, coils, ky, kx)`` and its ``mask``.

    One code path for any coil count: the maps come from the calibration region
    (:func:`~mrirecon.physics.calibration.acs_maps`, at least 2 centre lines). For one coil
    that map is ``l / |l|``, the phase of the low-resolution image, so ``x0 = A^H y`` has the
    smooth image phase removed exactly as multi-coil maps remove it, and a model sees the same
    kind of nearly real image either way. (An all-ones map kept the full image phase in
    single-coil inputs; a model trained on multi-coil data then scored about 10 dB below
    zero-filled on them.)
    """
    n, _, ky, kx = kspace.shape
    maps = acs_maps(kspace, acs_calibration_width(mask, (ky, kx)))
    op = sense_operator(maps, mask)
    x0 = op.adjoint(kspace)
    magnitude = x0.abs().reshape(n, -1)
    scale = torch.quantile(magnitude.float(), NORMALISATION_PERCENTILE, dim=1)
    scale = scale.clamp_min(torch.finfo(torch.float32).tiny).to(magnitude.dtype)
    x0 = x0 / scale[:, None, None]
    y = kspace / scale[:, None, None, None]
    return ModelBatch(to_channels(x0, channel_dim=None), y, op, scale, maps)


def gradient_channels(op: LinearOperator, y: torch.Tensor, pad: Pad | None = None) -> GradFn:
    """``x -> A^H (A x - y)`` on real channels ``(n, 2, H, W)``.

    With ``pad`` (what :func:`~mrirecon.padding.pad_to_multiple` added), the model works on the
    zero-padded image (the i-RIM's U-Net needs multiples of a power of two): the gradient is
    taken on the centre crop the operator knows and padded back with zeros.
    """
    def grad(x: torch.Tensor) -> torch.Tensor:
        return to_channels(dc_gradient(op, from_channels(x, None), y), channel_dim=None)

    if pad is None or not any(pad):
        return grad
    left, right, top, bottom = pad

    def padded_grad(x: torch.Tensor) -> torch.Tensor:
        x = center_crop(x, (x.shape[-2] - top - bottom, x.shape[-1] - left - right))
        return F.pad(grad(x), pad)

    return padded_grad


def padded_inputs(model: nn.Module, batch: ModelBatch
                  ) -> tuple[torch.Tensor, GradFn, Callable[[torch.Tensor], torch.Tensor]]:
    """``(x0, grad_fn, crop)``: padded start image, its gradient function and an output crop.

    The start image zero-padded to the model's ``required_multiple``, the data-consistency
    gradient on that padded grid, and a function that crops any ``(..., H, W)`` model output
    back to the slice size.
    """
    size = (batch.x0.shape[-2], batch.x0.shape[-1])
    x0, pad = pad_to_multiple(batch.x0, int(getattr(model, "required_multiple", 1)))
    grad = gradient_channels(batch.op, batch.y, pad)
    return x0, grad, lambda t: center_crop(t, size)


def call_model(model: nn.Module, x0: torch.Tensor, grad: GradFn,
               amp: bool = False) -> list[torch.Tensor]:
    """``model(x0, grad)``, the network under bfloat16 autocast with ``amp`` (CUDA only).

    With ``amp`` the data-consistency gradient and the returned estimates stay float32.
    """
    if not (amp and x0.is_cuda):
        return model(x0, grad)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(x0, lambda x: grad(x.float()))
    return [o.float() for o in out]


def run_model(model: nn.Module, batch: ModelBatch, amp: bool = False) -> list[torch.Tensor]:
    """Every estimate the model returns, as complex images ``(n, y, x)`` in normalised units."""
    x0, grad, crop = padded_inputs(model, batch)
    return [from_channels(crop(e), None) for e in call_model(model, x0, grad, amp)]
