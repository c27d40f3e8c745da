"""Training loss of the learned reconstructions: SSIM, L1 and MSE on magnitudes, over steps.

For the estimates ``e_t`` of a recurrent model (RIM/i-RIM, one per step) and a real target
``x``, all in the normalised units of :func:`mrirecon.recon.learned.prepare_batch`::

    l_t = w_ssim * (1 - mean_i SSIM(x_i, |e_t,i|; R_i)) + w_l1 * mean |(|e_t| - x)|
          + w_mse * mean (|e_t| - x)^2
    L   = 1/T sum_t l_t        (steps="all")      or      L = l_T   (steps="last")

with ``R_i = max(x_i)`` the per-sample data range, as fastMRI's ``SSIMLoss`` takes it, and SSIM
the differentiable :func:`mrirecon.metrics.ssim_per_slice` (7x7 uniform window, the
scikit-image convention). Averaging over every step is the RIM training objective of Putzky &
Welling (2017) and Lønning et al. (2019); ``"last"`` spends the model's capacity on the
estimate it returns. The MSE term is what PSNR measures.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mrirecon.errors import InvalidParameterError
from mrirecon.metrics import WIN_SIZE, ssim_per_slice

__all__ = ["kspace_loss", "reconstruction_loss"]


def reconstruction_loss(estimates: Sequence[torch.Tensor], target: torch.Tensor, *,
                        ssim: float, l1: float, mse: float = 0.0,
                        steps: str = "all") -> torch.Tensor:
    """Weighted ``1 - SSIM``, L1 and MSE of the magnitudes.

    Averaged over the estimates (or of the last estimate only).

    Parameters
    ----------
    estimates
        Complex (or real) images ``(n, y, x)``, one per model step.
    target
        Real reference ``(n, y, x)`` in the same units.
    ssim, l1, mse
        Non-negative weights of the three terms.
    steps
        ``"all"``: the mean over every estimate; ``"last"``: the final estimate only.

    Returns
    -------
    torch.Tensor
        A scalar; 0 for estimates equal to the target.

    Raises
    ------
    InvalidParameterError
        No estimates, a shape mismatch, or images smaller than the 7-pixel SSIM window while
        ``ssim > 0``.
    """
    if not estimates:
        raise InvalidParameterError("reconstruction_loss needs at least one estimate")
    if steps not in ("all", "last"):
        raise InvalidParameterError(f"steps must be 'all' or 'last', got {steps!r}")
    if steps == "last":
        estimates = estimates[-1:]
    if target.ndim != 3:
        raise InvalidParameterError(f"target must be (n, y, x), got shape {tuple(target.shape)}")
    if ssim > 0 and min(target.shape[-2:]) < WIN_SIZE:
        raise InvalidParameterError(
            f"SSIM needs images of at least {WIN_SIZE}x{WIN_SIZE} pixels, got "
            f"{tuple(target.shape[-2:])}; use a larger crop or loss.ssim=0")
    target = target.float()
    data_range = target.detach().amax(dim=(-2, -1))
    total = target.new_zeros(())
    for e in estimates:
        if e.shape != target.shape:
            raise InvalidParameterError(
                f"estimate of shape {tuple(e.shape)} does not match target {tuple(target.shape)}")
        magnitude = e.abs().float()
        if ssim > 0:
            total = total + ssim * (1 - ssim_per_slice(target, magnitude, data_range).mean())
        if l1 > 0:
            total = total + l1 * (magnitude - target).abs().mean()
        if mse > 0:
            total = total + mse * (magnitude - target).square().mean()
    return total / len(estimates)


def kspace_loss(predicted: torch.Tensor, measured: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
    """SSDU's normalised L2 + L1 in k-space on the loss set (Yaman et al., MRM 2020).

    ``||y_L - (A x)_L||_2 / ||y_L||_2 + ||y_L - (A x)_L||_1 / ||y_L||_1``, with ``_L`` the
    samples where ``mask`` is true and the L1 norm the sum of complex moduli. Both terms are
    relative, so the loss does not depend on the data's scale; it is 0 when the prediction
    matches the measured samples, and about 2 for a prediction of zeros.

    Parameters
    ----------
    predicted
        ``A x``: the estimate's k-space ``(..., coils, ky, kx)``, complex.
    measured
        The measured k-space, same shape.
    mask
        Bool, broadcastable to the k-space (``(1 | ky, kx)``): the loss set Lambda.

    Raises
    ------
    InvalidParameterError
        Shapes that differ, or a loss set holding no non-zero measured sample.
    """
    if predicted.shape != measured.shape:
        raise InvalidParameterError(f"predicted k-space {tuple(predicted.shape)} and measured "
                                    f"{tuple(measured.shape)} differ in shape")
    weight = mask.to(device=measured.device, dtype=torch.bool)
    y = torch.where(weight, measured, torch.zeros((), dtype=measured.dtype,
                                                   device=measured.device))
    residual = torch.where(weight, measured - predicted,
                           torch.zeros((), dtype=measured.dtype, device=measured.device))
    l2, l1 = torch.linalg.vector_norm(y), y.abs().sum()
    if l1 == 0:
        raise InvalidParameterError("the SSDU loss set holds no non-zero measured sample")
    return torch.linalg.vector_norm(residual) / l2 + residual.abs().sum() / l1
