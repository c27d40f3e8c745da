"""Linear operators on native complex tensors, with adjoints and composition.

A :class:`LinearOperator` ``A`` maps a tensor ``x`` to ``A(x)`` and its adjoint ``A.H`` satisfies
``<A x, y> = <x, A^H y>`` for the inner product ``<a, b> = sum(conj(a) * b)``. Operators compose
with ``@`` (``(A @ B)(x) = A(B(x))``) and form the normal operator ``A.normal = A^H A``. This is
the same algebra as ``sigpy.linop``; every operator is checked with :func:`adjoint_mismatch`.
Operators broadcast over leading batch dimensions and run wherever their tensors live (CPU or
CUDA); all of them are differentiable with autograd.
"""

from __future__ import annotations

import torch


class LinearOperator:
    """A linear map ``x -> A x`` with adjoint ``A^H``.

    Subclasses implement :meth:`forward` and :meth:`adjoint`; everything else (``.H``, ``@``,
    ``.normal``, calling) is shared.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``A x``; subclasses implement it."""
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``A^H y``; subclasses implement it."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``A x``, the same as :meth:`forward`."""
        return self.forward(x)

    @property
    def H(self) -> LinearOperator:  # noqa: N802 - the conventional name for the adjoint
        """The adjoint operator ``A^H`` (``A.H.H`` is ``A`` again)."""
        return AdjointOperator(self)

    @property
    def normal(self) -> LinearOperator:
        """The normal operator ``A^H A``."""
        return self.H @ self

    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        left = self.operators if isinstance(self, Composition) else (self,)
        right = other.operators if isinstance(other, Composition) else (other,)
        return Composition(*left, *right)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AdjointOperator(LinearOperator):
    """The adjoint of another operator: forward and adjoint swapped."""

    def __init__(self, op: LinearOperator) -> None:
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped operator's adjoint."""
        return self.op.adjoint(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """The wrapped operator's forward."""
        return self.op.forward(y)

    @property
    def H(self) -> LinearOperator:  # noqa: N802
        """The wrapped operator itself (the adjoint of the adjoint)."""
        return self.op

    def __repr__(self) -> str:
        return f"{self.op!r}.H"


class Composition(LinearOperator):
    """``A1 @ A2 @ ... @ An``: applies ``An`` first; the adjoint applies ``A1^H`` first."""

    def __init__(self, *operators: LinearOperator) -> None:
        if not operators:
            raise ValueError("Composition needs at least one operator")
        self.operators = tuple(operators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the operators right to left (``An`` first)."""
        for op in reversed(self.operators):
            x = op.forward(x)
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the adjoints left to right (``A1^H`` first)."""
        for op in self.operators:
            y = op.adjoint(y)
        return y

    def __repr__(self) -> str:
        return " @ ".join(repr(op) for op in self.operators)


def inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The complex inner product ``<a, b> = sum(conj(a) * b)`` over all elements."""
    return torch.vdot(a.reshape(-1), b.reshape(-1))


def adjoint_mismatch(op: LinearOperator, x: torch.Tensor, y: torch.Tensor) -> float:
    """Relative adjointness error ``|<A x, y> - <x, A^H y>| / (|A x| |y|)``.

    Zero (to rounding) for a correct adjoint; used by the tests of every operator and handy for
    anyone writing a new one. ``A x`` must have ``y``'s shape and ``A^H y`` ``x``'s (and the
    dtypes must match): the inner products flatten, so an adjoint that returns its axes swapped
    would otherwise pass.

    Raises
    ------
    ValueError
        A shape or dtype that differs from the pairing's.
    """
    ax = op.forward(x)
    aty = op.adjoint(y)
    for what, got, want in (("A x", ax, y), ("A^H y", aty, x)):
        if got.shape != want.shape or got.dtype != want.dtype:
            raise ValueError(f"{type(op).__name__}: {what} is {tuple(got.shape)} {got.dtype}, "
                             f"expected {tuple(want.shape)} {want.dtype}")
    lhs = inner(ax, y)
    rhs = inner(x, aty)
    scale = torch.linalg.vector_norm(ax) * torch.linalg.vector_norm(y)
    return float(torch.abs(lhs - rhs) / scale)
