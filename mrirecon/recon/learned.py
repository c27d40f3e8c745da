"""Learned reconstruction (RIM, i-RIM) behind the Reconstructor protocol.

:func:`prepare_batch` is the one place where k-space becomes a model's input, shared by
inference and training: coil maps from the calibration region (for any coil count, one
included), the SENSE operator ``A = M F S``, the coil-combined zero-filled start
``x0 = A^H y``, and a reversible intensity normalisation: both ``y`` and ``x0`` are divided
per slice by ``scale``, the 99th percentile of ``|x0|``, and the model's output is multiplied
back. Models see real channels only and receive the data-consistency gradient as a callable
(:func:`gradient_channels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mrirecon.physics import (
    dc_gradient,
    from_channels,
    sense_operator,
    to_channels,
)
from mrirecon.physics.calibration import MAX_CALIBRATION_LINES, acs_maps, calibration_width
from mrirecon.physics.operators import LinearOperator
from mrirecon.recon.base import Reconstructor

#: Percentile of the zero-filled magnitude that normalises each slice.
NORMALISATION_PERCENTILE = 0.99


@dataclass
class ModelBatch:
    """Inputs of a learned model for a batch of slices (all on one device)."""

    x0: torch.Tensor  # (n, 2, y, x) normalised zero-filled estimate, real channels
    y: torch.Tensor  # (n, coils, ky, kx) normalised measured k-space
    op: LinearOperator  # A = M F S for these slices
    scale: torch.Tensor  # (n,) the normalisation of each slice


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
    width = min(calibration_width(mask, (ky, kx)), MAX_CALIBRATION_LINES)
    maps = acs_maps(kspace, max(width, 2))
    op = sense_operator(maps, mask)
    x0 = op.adjoint(kspace)
    magnitude = x0.abs().reshape(n, -1)
    scale = torch.quantile(magnitude.float(), NORMALISATION_PERCENTILE, dim=1)
    scale = scale.clamp_min(torch.finfo(torch.float32).tiny).to(magnitude.dtype)
    x0 = x0 / scale[:, None, None]
    y = kspace / scale[:, None, None, None]
    return ModelBatch(to_channels(x0, channel_dim=None), y, op, scale)


def gradient_channels(op: LinearOperator, y: torch.Tensor, size: tuple[int, int] | None = None):
    """``x -> A^H (A x - y)`` on real channels ``(n, 2, H, W)``.

    With ``size``, the model works on an image zero-padded to ``(H, W)`` (the i-RIM's U-Net needs
    multiples of a power of two): the gradient is taken on the centre ``size`` crop and padded
    back with zeros.
    """

    def grad(x: torch.Tensor) -> torch.Tensor:
        if size is not None:
            x, pad = _crop(x, size)
        g = to_channels(dc_gradient(op, from_channels(x, None), y), channel_dim=None)
        return F.pad(g, pad) if size is not None else g

    return grad


def _pad_amounts(size: tuple[int, int], multiple: int) -> tuple[int, int, int, int]:
    h, w = size
    ph, pw = (-h) % multiple, (-w) % multiple
    return (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)


def _crop(x: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, ...]]:
    h, w = size
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    pad = (left, x.shape[-1] - w - left, top, x.shape[-2] - h - top)
    return x[..., top : top + h, left : left + w], pad


def padded_inputs(model: nn.Module, batch: ModelBatch) -> tuple[torch.Tensor, Any, Any]:
    """``(x0, grad_fn, crop)``: the start image zero-padded to the model's
    ``required_multiple``, the data-consistency gradient on that padded grid, and a function
    that crops any ``(..., H, W)`` model output back to the slice size."""
    size = tuple(batch.x0.shape[-2:])
    multiple = int(getattr(model, "required_multiple", 1))
    pad = _pad_amounts(size, multiple)
    x0 = F.pad(batch.x0, pad) if any(pad) else batch.x0
    grad = gradient_channels(batch.op, batch.y, size if any(pad) else None)
    return x0, grad, lambda t: _crop(t, size)[0]


def call_model(model: nn.Module, x0: torch.Tensor, grad: Any,
               amp: bool = False) -> list[torch.Tensor]:
    """``model(x0, grad)``; with ``amp`` (CUDA only) the network runs under bfloat16 autocast
    while the data-consistency gradient and the returned estimates stay float32."""
    if not (amp and x0.is_cuda):
        return model(x0, grad)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(x0, lambda x: grad(x.float()))
    return [o.float() for o in out]


def run_model(model: nn.Module, batch: ModelBatch, amp: bool = False) -> list[torch.Tensor]:
    """Every estimate the model returns, as complex images ``(n, y, x)`` in normalised units."""
    x0, grad, crop = padded_inputs(model, batch)
    return [from_channels(crop(e), None) for e in call_model(model, x0, grad, amp)]


class LearnedReconstructor(Reconstructor):
    """A trained model (from a checkpoint) as a :class:`~mrirecon.recon.base.Reconstructor`.

    Returns the magnitude of the model's last estimate, times each slice's normalisation.
    ``amp``: run the network under bfloat16 autocast on CUDA (ignored on CPU).
    """

    def __init__(self, model: nn.Module, name: str, *, device: Any = "cpu",
                 batch_size: int = 8, metadata: dict[str, Any] | None = None,
                 amp: bool = False) -> None:
        super().__init__(device=device, batch_size=batch_size)
        self.model = model.to(self.device).eval()
        self.name = name
        self.metadata = metadata or {}
        self.amp = bool(amp) and self.device.type == "cuda"

    def parameters(self) -> dict[str, Any]:
        meta = self.metadata
        return {"model": meta.get("name", self.name), "config": meta.get("config"),
                "checkpoint_sha256": meta.get("sha256"), "checkpoint": meta.get("path"),
                "precision": "bf16-autocast" if self.amp else "float32"}

    def domain_notes(self, kspace: Any) -> list[str]:
        """How ``kspace`` (undersampled, its mask in the provenance) falls outside the domain
        the checkpoint declares (:func:`mrirecon.models.domain.outside`); empty when inside or
        when the checkpoint declares none."""
        from mrirecon.models.domain import outside

        domain = (self.metadata.get("extra") or {}).get("domain")
        mask = kspace.provenance.get("mask") or {}
        return outside(domain, coils=kspace.n_coils, shape=tuple(kspace.shape[-2:]),
                       acceleration=mask.get("achieved_acceleration"),
                       mask_kind=mask.get("kind"))

    def reconstruct_batch(self, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch = prepare_batch(kspace, mask)
        image = run_model(self.model, batch, self.amp)[-1]
        return image.abs() * batch.scale[:, None, None]


def load_reconstructor(path: Any, *, device: Any = "cpu", batch_size: int = 8,
                       amp: bool = False) -> LearnedReconstructor:
    """A :class:`LearnedReconstructor` from a checkpoint file (safetensors; never unpickled)."""
    from mrirecon.models.checkpoint import load_checkpoint

    model, meta = load_checkpoint(path, device=device)
    cls = LearnedReconstructor
    if hasattr(model, "sample"):
        from mrirecon.recon.posterior import PosteriorSampler as cls
    return cls(model, str(meta.get("name", "model")), device=device, batch_size=batch_size,
               metadata={**meta, "path": str(path)}, amp=amp)
