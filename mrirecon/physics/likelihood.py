"""The data-consistency term of the forward model and its gradient.

For measurements ``y = A x + n`` with Gaussian noise, the negative log-likelihood is (up to
constants) ``f(x) = 1/2 ||A x - y||^2`` and its gradient with respect to ``conj(x)`` (what
PyTorch's autograd returns for complex ``x``) is ``A^H (A x - y)``. Networks never import physics:
they receive :func:`gradient_fn`'s callable (the reference i-RIM's ``grad_fun``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mrirecon.physics.operators import LinearOperator


def data_consistency(op: LinearOperator, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1/2 ||A x - y||^2`` over all elements and batch entries (a real scalar)."""
    return 0.5 * torch.sum(torch.abs(op(x) - y) ** 2)


def dc_gradient(op: LinearOperator, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``A^H (A x - y)``, the gradient of :func:`data_consistency`."""
    return op.adjoint(op.forward(x) - y)


def gradient_fn(op: LinearOperator, y: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> A^H (A x - y)`` for fixed ``A`` and ``y``: what learned models are given."""

    def grad(x: torch.Tensor) -> torch.Tensor:
        return dc_gradient(op, x, y)

    return grad
