"""Zero-filled reconstruction: ``A^H y`` combined over coils.

Single-coil: the magnitude ``|F^H y|`` (fastMRI's ESC target convention); multi-coil: the
root-sum-of-squares of the coil images ``sqrt(sum_c |F^H y_c|^2)`` (fastMRI's RSS). Unsampled
k-space is already zero, so no mask is applied again. Of a fully sampled file it returns exactly
the ESC/RSS target.
"""

from __future__ import annotations

import torch

from mrirecon.physics import ifft2c, rss
from mrirecon.recon.base import Reconstructor


class ZeroFilled(Reconstructor):
    """``rss(F^H y)`` (``|F^H y|`` for one coil)."""

    name = "zero-filled"

    def reconstruct_batch(self, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Root-sum-of-squares of the coil images ``F^H y``."""
        return rss(ifft2c(kspace), dim=-3)
