"""Self-supervised splits of an acquired mask (SSDU; Yaman et al., MRM 2020; ZS-SSL, ICLR 2022).

The acquired samples ``Omega`` of one undersampled scan are split into disjoint sets:

* ``theta``: what the network's data consistency sees (its input k-space and mask);
* ``lam`` (Lambda): where the loss is measured, in k-space, against the measured samples;
* ``holdout``: with ``holdout_fraction > 0``, a third set kept from both, for early stopping
  of scan-specific adaptation (ZS-SSL).

``theta | lam | holdout == Omega`` and the three are pairwise disjoint. The fully sampled centre
block (the calibration region, whose lines every coil-map estimate and the low frequencies
need) always stays in ``theta``. The other samples are drawn without replacement, uniformly or
with a variable density (``"gaussian"``: probability proportional to a Gaussian of the distance
from the k-space centre, ``sigma = 0.25`` of the matrix per axis, as Yaman et al. propose). The
fractions are of ``|Omega|``, the SSDU convention (``rho = |Lambda| / |Omega|``, 0.4 by default).

A line mask ``(1, W)`` is split by columns (whole phase-encode lines, as they are measured); a
2-D mask ``(H, W)`` by samples. Every split comes from an explicit seed
(:func:`~mrirecon.sampling.seeding.rng` with the caller's keys), never the global state, so a
training step or an adaptation step draws the same split on resume and on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrirecon.errors import InvalidParameterError
from mrirecon.sampling.seeding import rng
from mrirecon.sampling.spec import Seed

__all__ = ["SPLIT_KINDS", "MaskSplit", "centre_block", "split_mask"]

#: How the non-centre samples are drawn into Lambda (and the hold-out set).
SPLIT_KINDS = ("uniform", "gaussian")
#: Gaussian selection's standard deviation, as a fraction of the matrix along each axis.
GAUSSIAN_SIGMA = 0.25


@dataclass(frozen=True)
class MaskSplit:
    """Disjoint parts of an acquired mask, each a bool array of the mask's shape."""

    theta: np.ndarray
    lam: np.ndarray
    holdout: np.ndarray

    def counts(self) -> dict[str, int]:
        """Samples (or lines, for a line mask) in each part."""
        return {"theta": int(self.theta.sum()), "lambda": int(self.lam.sum()),
                "holdout": int(self.holdout.sum())}


def centre_block(mask: np.ndarray) -> np.ndarray:
    """The fully sampled block through the k-space centre (``(rows//2, cols//2)``), as a mask.

    For a line mask ``(1, W)``: the contiguous sampled columns through column ``W // 2``. For a
    2-D mask: the box spanned by the contiguous sampled run through the centre along the centre
    row and along the centre column. Empty when the centre is not sampled.
    """
    mask = np.asarray(mask, dtype=bool)
    rows, cols = mask.shape
    block = np.zeros_like(mask)
    if not mask[rows // 2, cols // 2]:
        return block
    c0, c1 = _run(mask[rows // 2], cols // 2)
    r0, r1 = (0, rows) if rows == 1 else _run(mask[:, cols // 2], rows // 2)
    block[r0:r1, c0:c1] = mask[r0:r1, c0:c1]
    return block


def split_mask(mask: np.ndarray, seed: Seed, *keys: int, loss_fraction: float = 0.4,
               holdout_fraction: float = 0.0, kind: str = "uniform") -> MaskSplit:
    """Split an acquired ``mask`` (``(1, W)`` lines or ``(H, W)`` samples) into theta/lam/holdout.

    Parameters
    ----------
    mask
        The acquired sampling mask ``Omega``.
    seed, keys
        The split's random stream (:func:`~mrirecon.sampling.seeding.rng`), e.g. the run seed
        and ``(step, item)``.
    loss_fraction, holdout_fraction
        ``|Lambda| / |Omega|`` and ``|holdout| / |Omega|``, rounded, each at least one sample
        when positive.
    kind
        ``"uniform"`` or ``"gaussian"`` (module docstring).

    Raises
    ------
    InvalidParameterError
        Fractions outside ``[0, 1)`` or summing to 1 or more, an unknown ``kind``, a mask that
        is not 2-D, or too few samples outside the centre block to split.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise InvalidParameterError(f"SSDU splits a (1, W) or (H, W) mask, got shape {mask.shape}")
    if kind not in SPLIT_KINDS:
        raise InvalidParameterError(f"unknown SSDU split kind {kind!r}; expected one of "
                                    f"{', '.join(SPLIT_KINDS)}")
    for name, value in (("loss_fraction", loss_fraction), ("holdout_fraction", holdout_fraction)):
        if not 0 <= value < 1:
            raise InvalidParameterError(f"SSDU {name} must be in [0, 1), got {value}")
    if loss_fraction <= 0 or loss_fraction + holdout_fraction >= 1:
        raise InvalidParameterError(
            f"SSDU needs 0 < loss_fraction and loss_fraction + holdout_fraction < 1, got "
            f"{loss_fraction} + {holdout_fraction}")
    acquired = int(mask.sum())
    n_lam = max(1, round(loss_fraction * acquired))
    n_hold = max(1, round(holdout_fraction * acquired)) if holdout_fraction > 0 else 0
    centre = centre_block(mask)
    free = np.flatnonzero(mask & ~centre)
    unit = "lines" if mask.shape[0] == 1 else "samples"
    if free.size < n_lam + n_hold + 1:  # at least one outer sample stays in theta
        raise InvalidParameterError(
            f"the acquired mask has {free.size} {unit} outside its {int(centre.sum())}-{unit[:-1]} "
            f"centre, too few to split into a loss set of {n_lam}"
            + (f" and a hold-out set of {n_hold}" if n_hold else "")
            + f" with {unit} left for the network; SSDU needs at least {n_lam + n_hold + 1}")
    weights = _weights(mask.shape, kind)[free]
    chosen = rng(seed, *keys).choice(free, size=n_lam + n_hold, replace=False,
                                     p=weights / weights.sum())
    lam, holdout = np.zeros_like(mask), np.zeros_like(mask)
    lam.flat[chosen[:n_lam]] = True
    holdout.flat[chosen[n_lam:]] = True
    return MaskSplit(theta=mask & ~lam & ~holdout, lam=lam, holdout=holdout)


def _run(line: np.ndarray, centre: int) -> tuple[int, int]:
    """``[start, stop)`` of the contiguous sampled run through ``centre``."""
    start = stop = centre
    while start > 0 and line[start - 1]:
        start -= 1
    while stop < len(line) and line[stop]:
        stop += 1
    return start, stop


def _weights(shape: tuple[int, ...], kind: str) -> np.ndarray:
    """Selection weight of every position (flattened): 1, or a centred Gaussian."""
    if kind == "uniform":
        return np.ones(int(np.prod(shape)))
    rows, cols = shape
    r = (np.arange(rows) - rows // 2) / (GAUSSIAN_SIGMA * rows) if rows > 1 else np.zeros(1)
    c = (np.arange(cols) - cols // 2) / (GAUSSIAN_SIGMA * cols)
    return np.exp(-0.5 * (r[:, None] ** 2 + c[None, :] ** 2)).ravel()
