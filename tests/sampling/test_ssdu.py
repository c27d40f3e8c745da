"""SSDU's split of an acquired mask into theta / Lambda / hold-out, and its k-space loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrirecon.errors import InvalidParameterError
from mrirecon.sampling import MaskSpec, make_mask
from mrirecon.sampling.ssdu import centre_block, split_mask
from mrirecon.train.losses import kspace_loss


def _line_mask(accel: float = 4, cols: int = 160, seed: int = 0) -> np.ndarray:
    return make_mask(MaskSpec(kind="random", acceleration=accel, shape=(128, cols),
                              seed=seed)).array


def _two_d_mask() -> np.ndarray:
    return make_mask(MaskSpec(kind="poisson", acceleration=4, shape=(64, 64), seed=1)).array


@pytest.mark.parametrize("make", [_line_mask, _two_d_mask])
@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
def test_parts_are_disjoint_cover_omega_and_keep_the_centre(make, kind) -> None:
    omega = make()
    split = split_mask(omega, 7, 3, kind=kind, holdout_fraction=0.2)
    parts = [split.theta, split.lam, split.holdout]
    assert all(p.shape == omega.shape and p.dtype == bool for p in parts)
    np.testing.assert_array_equal(split.theta | split.lam | split.holdout, omega)
    assert not (split.theta & split.lam).any() and not (split.theta & split.holdout).any()
    assert not (split.lam & split.holdout).any()
    centre = centre_block(omega)
    assert centre.sum() >= 4 and (split.theta[centre]).all()
    counts = split.counts()
    assert counts["lambda"] == round(0.4 * omega.sum())
    assert counts["holdout"] == round(0.2 * omega.sum())


def test_the_same_seed_gives_the_same_split_and_keys_give_others() -> None:
    omega = _line_mask()
    a, b = split_mask(omega, 5, 10, 2), split_mask(omega, 5, 10, 2)
    np.testing.assert_array_equal(a.lam, b.lam)
    others = [split_mask(omega, 5, 10, 3).lam, split_mask(omega, 6, 10, 2).lam]
    assert all(not np.array_equal(a.lam, o) for o in others)


def test_a_line_mask_is_split_into_whole_lines() -> None:
    omega = _line_mask()
    assert omega.shape[0] == 1  # (1, W): phase-encode lines
    split = split_mask(omega, 0)
    assert split.lam.shape == (1, 160) and split.lam.sum() == round(0.4 * omega.sum())


def test_gaussian_selection_favours_the_centre() -> None:
    omega = _line_mask(accel=2, cols=256)
    centre = centre_block(omega)
    outer = np.flatnonzero(omega & ~centre)
    expected = np.abs(outer - 128).mean()  # uniform selection's mean distance

    def mean_distance(kind: str) -> float:
        lam = [np.flatnonzero(split_mask(omega, s, kind=kind).lam) for s in range(40)]
        return float(np.mean([np.abs(cols - 128).mean() for cols in lam]))

    assert mean_distance("uniform") == pytest.approx(expected, rel=0.08)
    # 40% of the outer lines are drawn without replacement, so the shift is modest (seen: 0.89)
    assert mean_distance("gaussian") < 0.93 * expected


def test_too_few_lines_to_split_is_one_clear_error() -> None:
    omega = np.zeros((1, 32), bool)
    omega[0, 14:19] = True  # the centre block only, plus one line outside it
    omega[0, 2] = True
    with pytest.raises(InvalidParameterError, match="1 lines outside its 5-line centre, too few"):
        split_mask(omega, 0)
    with pytest.raises(InvalidParameterError, match="loss_fraction"):
        split_mask(_line_mask(), 0, loss_fraction=0.7, holdout_fraction=0.3)
    with pytest.raises(InvalidParameterError, match="unknown SSDU split kind"):
        split_mask(_line_mask(), 0, kind="poisson")


def test_kspace_loss_is_relative_zero_at_the_data_and_differentiable() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.randn(4, 16, 20, dtype=torch.complex64, generator=g)
    lam = torch.from_numpy(_line_mask(cols=20, seed=2))
    assert kspace_loss(y.clone(), y, lam).item() == pytest.approx(0.0, abs=1e-7)
    assert kspace_loss(torch.zeros_like(y), y, lam).item() == pytest.approx(2.0, rel=1e-5)
    x = (y + 0.1 * torch.randn(4, 16, 20, dtype=torch.complex64, generator=g)).requires_grad_()
    loss = kspace_loss(x, y, lam)
    assert loss.item() == pytest.approx(kspace_loss(1e3 * x.detach(), 1e3 * y, lam).item(),
                                        rel=1e-4)  # scale-free
    loss.backward()
    grad = x.grad.abs().sum(dim=(0, 1))  # only the loss set's columns get gradient
    assert (grad[~lam[0]] == 0).all() and (grad[lam[0]] > 0).all()
    with pytest.raises(InvalidParameterError, match="no non-zero measured sample"):
        kspace_loss(x, torch.zeros_like(y), lam)
