"""Learned reconstruction (RIM, i-RIM) behind the Reconstructor protocol.

The model's inputs come from :mod:`mrirecon.recon.model_inputs`, shared with training;
checkpoints become reconstructors in :func:`mrirecon.recon.methods.build_reconstructor`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mrirecon.models.domain import outside
from mrirecon.recon.base import Reconstructor
from mrirecon.recon.model_inputs import prepare_batch, run_model


class LearnedReconstructor(Reconstructor):
    """A trained model (from a checkpoint) as a :class:`~mrirecon.recon.base.Reconstructor`.

    Returns the magnitude of the model's last estimate, times each slice's normalisation.
    ``amp``: run the network under bfloat16 autocast on CUDA (ignored on CPU).
    """

    def __init__(self, model: nn.Module, name: str, *, device: Any = "cpu",
                 batch_size: int | None = None, metadata: dict[str, Any] | None = None,
                 amp: bool = False) -> None:
        super().__init__(device=device, batch_size=batch_size)
        self.model = model.to(self.device).eval()
        self.name = name
        self.metadata = metadata or {}
        self.amp = bool(amp) and self.device.type == "cuda"

    def parameters(self) -> dict[str, Any]:
        """Model name and config, checkpoint hash and path, and precision."""
        meta = self.metadata
        return {"model": meta.get("name", self.name), "config": meta.get("config"),
                "checkpoint_sha256": meta.get("sha256"), "checkpoint": meta.get("path"),
                "precision": "bf16-autocast" if self.amp else "float32"}

    def domain_notes(self, kspace: Any) -> list[str]:
        """How ``kspace`` falls outside the domain the checkpoint declares.

        ``kspace`` is undersampled, its mask in the provenance; the check is
        :func:`mrirecon.models.domain.outside`. Empty when inside or when the checkpoint
        declares none.
        """
        domain = (self.metadata.get("extra") or {}).get("domain")
        mask = kspace.provenance.get("mask") or {}
        return outside(domain, coils=kspace.n_coils, shape=tuple(kspace.shape[-2:]),
                       acceleration=mask.get("achieved_acceleration"),
                       mask_kind=mask.get("kind"))

    def reconstruct_batch(self, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Magnitude of the model's last estimate, times each slice's normalisation."""
        return estimate(self.model, kspace, mask, self.amp)


def estimate(model: nn.Module, kspace: torch.Tensor, mask: torch.Tensor,
             amp: bool = False) -> torch.Tensor:
    """``model``'s last estimate from undersampled ``kspace``, as magnitudes ``(n, y, x)``.

    In the k-space's units (each slice's normalisation multiplied back).
    """
    batch = prepare_batch(kspace, mask)
    image = run_model(model, batch, amp)[-1]
    return image.abs() * batch.scale[:, None, None]
