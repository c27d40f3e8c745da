"""The training objective: which loss a model trains on, and the per-item batch mean."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mrirecon.errors import InvalidParameterError
from mrirecon.models.protocols import LikelihoodModel
from mrirecon.train.config import load_config
from mrirecon.train.losses import reconstruction_loss
from mrirecon.train.objective import Objective, batch_loss


class Likelihood(nn.Module):
    """A stand-in likelihood model: its loss is a sentinel of its inputs."""

    required_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x0, grad_fn):  # pragma: no cover - never called by the objective
        raise AssertionError("a likelihood model is trained by training_loss")

    def training_loss(self, x0, grad_fn, target):
        return self.w * (x0.sum() + 100 * target.sum())


class Estimator(nn.Module):
    """A stand-in estimating model: two estimates, the input and the input halved."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x0, grad_fn):
        return [self.w * x0, 0.5 * self.w * x0]


def crop(t: torch.Tensor) -> torch.Tensor:
    return t


CFG = load_config(None, ["loss.ssim=0.5", "loss.l1=1.0", "loss.mse=0.25"])


def test_likelihood_model_trains_on_its_own_loss() -> None:
    model = Likelihood()
    assert isinstance(model, LikelihoodModel) and not isinstance(Estimator(), LikelihoodModel)
    x0, target = torch.rand(1, 2, 8, 8), torch.rand(1, 8, 8)
    loss = Objective(model, CFG.loss, amp=False)(x0, None, crop, target)
    assert float(loss.detach()) == pytest.approx(float(x0.sum() + 100 * target.sum()), rel=1e-6)
    with pytest.raises(InvalidParameterError, match="multiple of 1"):
        Objective(model, CFG.loss, amp=False)(x0, None, crop, torch.rand(1, 6, 6))


def test_estimating_model_trains_on_the_weighted_reconstruction_loss() -> None:
    x0, target = torch.rand(1, 2, 16, 16), torch.rand(1, 16, 16)
    loss = Objective(Estimator(), CFG.loss, amp=False)(x0, None, crop, target)
    image = torch.complex(x0[:, 0], x0[:, 1])
    expected = reconstruction_loss([image, 0.5 * image], target, ssim=0.5, l1=1.0, mse=0.25)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-6)


def test_batch_loss_is_the_mean_of_the_items_losses() -> None:
    g = torch.Generator().manual_seed(0)
    items = [torch.randn(1, 16, 16, generator=g, dtype=torch.complex64) for _ in range(3)]
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[:, 4:12] = True
    batch = {"kspace": items, "mask": [mask] * 3, "target": [torch.rand(16, 16) for _ in items]}
    net = Objective(Likelihood(), CFG.loss, amp=False)
    each = [batch_loss(net, net.model, {k: [v[i]] for k, v in batch.items()}, torch.device("cpu"))
            for i in range(3)]
    total = batch_loss(net, net.model, batch, torch.device("cpu"))
    mean = sum(float(e.detach()) for e in each) / 3
    assert float(total.detach()) == pytest.approx(mean, rel=1e-5)
    total.backward()
    assert net.model.w.grad is not None
