"""Constants and functions shared by several test modules (fixtures stay in ``conftest.py``).

Test modules import this as ``from helpers import ...``: ``tests/`` is on ``sys.path`` because
pytest inserts the folder of the rootdir ``conftest.py`` (there is no ``tests/__init__.py``).
Nothing here is a test or a fixture, and no test module imports another test module or
``conftest``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from mrirecon.models.invertible import InvertibleModule

#: Tiny learned models for tests that need a checkpoint of each kind, not a trained one.
TINY_MODELS = {
    "rim.v1": {"steps": 2, "hidden": 8},
    "irim.v1": {"steps": 2, "state_channels": 6, "levels": 2, "blocks_per_level": 1,
                "hidden": 8, "grad_hidden": 8},
    "cinn.v1": {"levels": 2, "blocks_per_level": 1, "hidden": 8, "cond_channels": 4,
                "cond_hidden": 8},
}


def randomize(module: nn.Module, seed: int = 0, scale: float = 0.3) -> nn.Module:
    """Perturb every parameter (zero-initialised last layers, skew-symmetric orthogonal parameters,
    ActNorm scale and bias) so that no block is the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device))
    return module


class ClosureStep(InvertibleModule):
    """An i-RIM-like gradient step driven by a closure: the first ``k`` (estimate) channels pass
    unchanged and a learnable mix of ``grad_fun(estimate)`` is added to the other channels."""

    def __init__(self, channels: int, k: int, grad_fun: Callable[[Tensor], Tensor]):
        super().__init__()
        self.k, self.grad_fun = k, grad_fun
        self.mix = nn.Conv2d(k, channels - k, 1)

    def _delta(self, est: Tensor) -> Tensor:
        return self.mix(self.grad_fun(est))

    def forward(self, x: Tensor) -> Tensor:
        est = x[:, : self.k]
        return torch.cat([est, x[:, self.k :] + self._delta(est)], dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        est = y[:, : self.k]
        return torch.cat([est, y[:, self.k :] - self._delta(est)], dim=1)


def least_squares_gradient(k: int, n: int, seed: int = 1) -> Callable[[Tensor], Tensor]:
    """``z -> A^T (A z - y)`` per pixel with a fixed random ``A`` and data ``y`` (no grad)."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(2 * k, k, generator=gen, dtype=torch.float64)
    y = torch.randn(1, 2 * k, n, n, generator=gen, dtype=torch.float64)

    def grad_fun(z: Tensor) -> Tensor:
        a_ = a.to(z)
        return torch.einsum("ij,bihw->bjhw", a_, torch.einsum("ij,bjhw->bihw", a_, z) - y.to(z))

    return grad_fun


class Counting:
    """A reconstructor built elsewhere (the protocol by its shape) that counts its calls."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0
        self.name, self.needs_coils = inner.name, inner.needs_coils

    def __call__(self, kspace):
        self.calls += 1
        return self.inner(kspace)

    def domain_notes(self, kspace) -> list[str]:
        return self.inner.domain_notes(kspace)
