"""What a learned model promises, as types: the gradient callable, and the two optional abilities.

Every model is called ``model(x0, grad_fn) -> [estimates]`` with real channels ``(B, 2, H, W)``
and a :data:`GradFn` (``x -> A^H (A x - y)``; networks receive physics, they never import it).
Two abilities are structural, checked with ``isinstance`` on these runtime protocols instead of
``hasattr``:

* :class:`SamplingModel`: draws posterior samples (the cINN);
* :class:`LikelihoodModel`: trained by its own likelihood loss instead of image losses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

#: ``x -> A^H (A x - y)`` on real channels ``(B, 2, H, W)``: the data-consistency gradient.
GradFn = Callable[[Tensor], Tensor]


@runtime_checkable
class SamplingModel(Protocol):
    """A model that draws ``(num_samples, B, H, W)`` images from ``p(x | y)``."""

    def sample(self, x0: Tensor, grad_fn: GradFn | None, num_samples: int,
               temperature: float = 1.0, generator: torch.Generator | None = None,
               max_batch: int | None = None) -> Tensor:
        """Posterior samples for the ``B`` inputs ``x0``."""
        ...


@runtime_checkable
class LikelihoodModel(Protocol):
    """A model whose training objective is its own loss (e.g. negative log-likelihood)."""

    def training_loss(self, x0: Tensor, grad_fn: GradFn | None, target: Tensor) -> Tensor:
        """Scalar loss of ``target`` ``(B, [1,] H, W)`` given the inputs."""
        ...
