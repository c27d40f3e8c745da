"""Invertible building blocks and a memory-free invertible sequence.

Every block maps ``(B, C, H, W)`` real tensors bijectively and exposes ``forward``, ``inverse`` and
``forward_and_logdet`` (log|det J| per sample, shape ``(B,)``). References: additive coupling (Dinh
et al. 2015, NICE), affine coupling (Dinh et al. 2017, RealNVP), ActNorm and invertible 1x1
convolutions (Kingma & Dhariwal 2018, Glow), orthogonal learnable resampling initialised to the Haar
transform (Etmann, Ke & Schönlieb 2020, iUNets), and back-propagation by inversion without stored
activations (Putzky & Welling 2019, "Invert to Learn to Invert").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ActNorm", "AdditiveCoupling", "AffineCoupling", "InvertibleModule", "InvertibleSequence",
    "Orthogonal1x1", "OrthogonalDownsample", "OrthogonalUpsample", "expm", "saved_tensor_bytes",
]


def _check_4d(x: Tensor, channels: int, who: str) -> None:
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{who} expects (B, {channels}, H, W) but got shape {tuple(x.shape)}")


def _subnet(cin: int, hidden: int, cout: int, kernel_size: int) -> nn.Sequential:
    """conv-ReLU-conv with a zero-initialised last conv, so a coupling starts as the identity."""
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd to keep the shape, got {kernel_size}")
    last = nn.Conv2d(hidden, cout, kernel_size, padding=kernel_size // 2)
    nn.init.zeros_(last.weight)
    assert last.bias is not None  # nn.Conv2d has a bias by default
    nn.init.zeros_(last.bias)
    first = nn.Conv2d(cin, hidden, kernel_size, padding=kernel_size // 2)
    return nn.Sequential(first, nn.ReLU(), last)


def _split_size(channels: int, split: int | None) -> int:
    split = channels // 2 if split is None else split
    if not 1 <= split < channels:
        raise ValueError(
            f"a coupling needs 1 <= split < channels so both parts are non-empty; "
            f"got channels={channels}, split={split}"
        )
    return split


class InvertibleModule(nn.Module):
    """A bijection with an explicit inverse.

    Volume-preserving blocks need not override :meth:`forward_and_logdet`, whose default returns
    zeros.
    """

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Map ``x`` to ``y``; subclasses implement it."""
        raise NotImplementedError

    def inverse(self, y: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Map ``y`` back to ``x``; subclasses implement it."""
        raise NotImplementedError

    def forward_and_logdet(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(forward(x), log|det dy/dx|)`` with the log-determinant per sample, ``(B,)``."""
        return self.forward(x), x.new_zeros(x.shape[0])

    def get_context(self) -> Any:
        """State bound for one pass besides the weights (e.g. a gradient function).

        The memory-free backward restores it, because other passes may have rebound it since.
        """
        return None

    def set_context(self, context: Any) -> None:
        """Restore what :meth:`get_context` returned."""


class AdditiveCoupling(InvertibleModule):
    """Additive coupling (Dinh et al. 2015, NICE), volume preserving (det J = 1).

    With ``x = (u, v)`` split on channels, ``u' = u + f(v)``, ``v' = v``; inverse
    ``u = u' - f(v')``.

    Parameters
    ----------
    channels : int
        Number of input channels (>= 2).
    hidden : int
        Width of ``f`` (conv-ReLU-conv; the last conv is zero-initialised: identity at start).
    kernel_size : int
        Odd convolution kernel size.
    split : int, optional
        Number of channels in ``u`` (the first channels); default ``channels // 2``.
    """

    def __init__(
        self, channels: int, hidden: int = 32, kernel_size: int = 3, split: int | None = None
    ):
        super().__init__()
        self.channels, self.split = channels, _split_size(channels, split)
        self.f = _subnet(channels - self.split, hidden, self.split, kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        """Couple: ``(u, v) -> (u + f(v), v)``."""
        _check_4d(x, self.channels, type(self).__name__)
        u, v = x[:, : self.split], x[:, self.split :]
        return torch.cat([u + self.f(v), v], dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        """Undo the coupling: ``(u', v') -> (u' - f(v'), v')``."""
        _check_4d(y, self.channels, type(self).__name__)
        u, v = y[:, : self.split], y[:, self.split :]
        return torch.cat([u - self.f(v), v], dim=1)


class AffineCoupling(InvertibleModule):
    """Affine coupling (Dinh et al. 2017, RealNVP), optionally conditioned (cINN).

    ``u' = u * exp(s(v, c)) + t(v, c)``, ``v' = v``, with the soft clamp
    ``s = clamp * tanh(raw / clamp)`` bounding the scale; ``log|det J| = sum s``.

    Parameters
    ----------
    channels, hidden, kernel_size, split
        As for :class:`AdditiveCoupling`.
    clamp : float
        Bound on ``|s|`` (> 0).
    condition_channels : int
        Channels of the condition tensor ``c`` (same H, W), concatenated to ``v``; 0 for none.
    """

    def __init__(
        self,
        channels: int,
        hidden: int = 32,
        kernel_size: int = 3,
        clamp: float = 2.0,
        split: int | None = None,
        condition_channels: int = 0,
    ):
        super().__init__()
        if clamp <= 0:
            raise ValueError(f"clamp must be positive, got {clamp}")
        self.channels, self.split = channels, _split_size(channels, split)
        self.clamp, self.condition_channels = float(clamp), condition_channels
        cin = channels - self.split + condition_channels
        self.net = _subnet(cin, hidden, 2 * self.split, kernel_size)

    def _scale_shift(self, v: Tensor, condition: Tensor | None) -> tuple[Tensor, Tensor]:
        if self.condition_channels:
            if condition is None:
                raise ValueError(f"this coupling needs a condition with {self.condition_channels} "
                                 "channels but got none")
            expected = (v.shape[0], self.condition_channels, *v.shape[2:])
            if tuple(condition.shape) != expected:
                raise ValueError(f"condition has shape {tuple(condition.shape)} but {expected} "
                                 "was expected")
            v = torch.cat([v, condition], dim=1)
        elif condition is not None:
            raise ValueError("condition given to a coupling built with condition_channels=0")
        raw, t = self.net(v).chunk(2, dim=1)
        return self.clamp * torch.tanh(raw / self.clamp), t

    def forward_and_logdet(
        self, x: Tensor, condition: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(u * exp(s) + t, v)`` given ``condition``, and ``log|det J| = sum s`` per sample."""
        _check_4d(x, self.channels, type(self).__name__)
        u, v = x[:, : self.split], x[:, self.split :]
        s, t = self._scale_shift(v, condition)
        return torch.cat([u * torch.exp(s) + t, v], dim=1), s.sum(dim=(1, 2, 3))

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """The coupled output of :meth:`forward_and_logdet`, without the log-determinant."""
        return self.forward_and_logdet(x, condition)[0]

    def inverse(self, y: Tensor, condition: Tensor | None = None) -> Tensor:
        """Undo the coupling: ``u = (u' - t) * exp(-s)``, ``s, t`` from ``v`` and ``condition``."""
        _check_4d(y, self.channels, type(self).__name__)
        u, v = y[:, : self.split], y[:, self.split :]
        s, t = self._scale_shift(v, condition)
        return torch.cat([(u - t) * torch.exp(-s), v], dim=1)


def expm(a: Tensor) -> Tensor:
    """Matrix exponential by scaling and squaring with a degree-12 Taylor series.

    The series is used on ``||a||_1 <= 1/4`` (truncation error < 1e-17). Used instead of
    :func:`torch.linalg.matrix_exp`, whose float64 result for norms around 0.02-0.05 is off by
    up to ~1e-11 (measured with torch 2.13), which breaks exact orthogonality and float64 round
    trips.
    """
    norm = float(a.detach().abs().sum(dim=0).max()) if a.numel() else 0.0
    k = max(0, math.ceil(math.log2(norm / 0.25))) if norm > 0.25 else 0
    a = a / 2**k
    term = out = torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
    for i in range(1, 13):
        term = term @ a / i
        out = out + term
    for _ in range(k):
        out = out @ out
    return out


class _OrthogonalMatrix(nn.Module):
    """``Q = Q0 @ expm(A - A^T)``, orthogonal for every learnable ``A``.

    ``A`` is strictly upper triangular (learnable, zero at start) and ``Q0`` a fixed orthogonal
    buffer, so ``Q`` is orthogonal for every ``A``.
    """

    base: Tensor  # registered buffer

    def __init__(self, base: Tensor):
        super().__init__()
        self.register_buffer("base", base)
        self.skew = nn.Parameter(torch.zeros_like(base))

    def forward(self) -> Tensor:
        a = self.skew.triu(1)
        return self.base @ expm(a - a.transpose(0, 1))


def haar_matrix() -> Tensor:
    """The orthonormal 2x2 Haar analysis matrix over pixels ``(0,0), (0,1), (1,0), (1,1)``.

    Rows: average, horizontal detail (column difference), vertical detail (row difference),
    diagonal.
    """
    rows = [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]
    return 0.5 * torch.tensor(rows, dtype=torch.get_default_dtype())


class OrthogonalDownsample(InvertibleModule):
    """Learnable orthogonal downsampling (Etmann et al. 2020), volume preserving (|det| = 1).

    ``(B, C, H, W) -> (B, 4C, H/2, W/2)`` by a stride-2 2x2 convolution whose kernel, read as a
    ``4C x 4C`` matrix, is orthogonal; the inverse is the transposed convolution with the same
    kernel. Initialised to the Haar transform of each channel: output ``4c + k`` is Haar
    component ``k`` (see :func:`haar_matrix`) of input channel ``c``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.q = _OrthogonalMatrix(torch.kron(torch.eye(channels), haar_matrix()))

    def weight_matrix(self) -> Tensor:
        """The orthogonal ``4C x 4C`` matrix (columns ordered ``c*4 + dy*2 + dx``)."""
        return self.q()

    def _kernel(self) -> Tensor:
        return self.weight_matrix().reshape(4 * self.channels, self.channels, 2, 2)

    def forward(self, x: Tensor) -> Tensor:
        """Stride-2 convolution by the orthogonal kernel: ``(B, C, H, W) -> (B, 4C, H/2, W/2)``."""
        _check_4d(x, self.channels, type(self).__name__)
        if x.shape[-2] % 2 or x.shape[-1] % 2:
            raise ValueError(f"{type(self).__name__} needs even H and W but got shape "
                             f"{tuple(x.shape)}")
        return F.conv2d(x, self._kernel(), stride=2)

    def inverse(self, y: Tensor) -> Tensor:
        """Transposed convolution by the same kernel: ``(B, 4C, H, W) -> (B, C, 2H, 2W)``."""
        _check_4d(y, 4 * self.channels, f"{type(self).__name__}.inverse")
        return F.conv_transpose2d(y, self._kernel(), stride=2)


class OrthogonalUpsample(InvertibleModule):
    """Orthogonal upsampling ``(B, 4C, H, W) -> (B, C, 2H, 2W)``.

    The inverse direction of an :class:`OrthogonalDownsample` over ``channels = C`` (its own, or
    ``downsample`` to tie weights).
    """

    def __init__(self, channels: int, downsample: OrthogonalDownsample | None = None):
        super().__init__()
        self.down = OrthogonalDownsample(channels) if downsample is None else downsample

    def forward(self, x: Tensor) -> Tensor:
        """Upsample: the inverse of the downsampling."""
        return self.down.inverse(x)

    def inverse(self, y: Tensor) -> Tensor:
        """Downsample with the (possibly tied) :class:`OrthogonalDownsample`."""
        return self.down(y)


class Orthogonal1x1(InvertibleModule):
    """Orthogonal 1x1 convolution (channel mixing), volume preserving.

    The orthogonal variant of Glow's invertible 1x1 convolution (Kingma & Dhariwal 2018).

    Parameters
    ----------
    channels : int
        Number of channels.
    init : {"identity", "reverse", "random"}
        Starting matrix: identity, channel reversal (so consecutive couplings alternate halves,
        as in NICE), or a random rotation, the exponential of a random skew-symmetric matrix drawn
        with ``generator``. Fixed bases are exact (0/1 entries), so orthogonality holds to the
        working precision in float32 and float64.
    generator : torch.Generator, optional
        Source of randomness for ``init="random"``.
    """

    def __init__(
        self, channels: int, init: str = "identity", generator: torch.Generator | None = None
    ):
        super().__init__()
        if init not in ("identity", "reverse", "random"):
            raise ValueError(f"init must be 'identity', 'reverse' or 'random', got {init!r}")
        base = torch.eye(channels)
        self.channels = channels
        self.q = _OrthogonalMatrix(base.flip(0) if init == "reverse" else base)
        if init == "random":  # a random rotation, exactly orthogonal in whatever dtype is used
            with torch.no_grad():
                self.q.skew.copy_(torch.randn(channels, channels, generator=generator))

    def weight_matrix(self) -> Tensor:
        """The orthogonal ``C x C`` mixing matrix."""
        return self.q()

    def forward(self, x: Tensor) -> Tensor:
        """Mix the channels by the orthogonal matrix ``Q``."""
        _check_4d(x, self.channels, type(self).__name__)
        return torch.einsum("oc,bchw->bohw", self.weight_matrix(), x)

    def inverse(self, y: Tensor) -> Tensor:
        """Mix the channels by ``Q^T = Q^-1``."""
        _check_4d(y, self.channels, type(self).__name__)
        return torch.einsum("co,bchw->bohw", self.weight_matrix(), y)


class ActNorm(InvertibleModule):
    """Per-channel affine normalisation ``y = (x + b) * exp(log_s)`` (Kingma & Dhariwal 2018, Glow).

    Initialised from the data on the first forward in training mode so that the output has zero
    mean and unit standard deviation per channel. ``log|det J| = H * W * sum(log|s|)``.
    """

    initialized: Tensor  # registered buffer (a boolean scalar)

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.channels, self.eps = channels, eps
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))

    def _maybe_initialize(self, x: Tensor) -> None:
        if self.training and not bool(self.initialized):
            with torch.no_grad():
                self.bias.copy_(-x.mean(dim=(0, 2, 3)))
                std = x.std(dim=(0, 2, 3), unbiased=False)
                self.log_scale.copy_(-torch.log(std + self.eps))
                self.initialized.fill_(True)

    def forward_and_logdet(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(x + b) * exp(log_s)`` (initialised from ``x`` on first training use), log|det J|."""
        _check_4d(x, self.channels, type(self).__name__)
        self._maybe_initialize(x)
        y = (x + self.bias.view(1, -1, 1, 1)) * torch.exp(self.log_scale).view(1, -1, 1, 1)
        logdet = x.shape[-2] * x.shape[-1] * self.log_scale.sum()
        return y, logdet.expand(x.shape[0])

    def forward(self, x: Tensor) -> Tensor:
        """The normalised output of :meth:`forward_and_logdet`."""
        return self.forward_and_logdet(x)[0]

    def inverse(self, y: Tensor) -> Tensor:
        """Undo the normalisation: ``y * exp(-log_s) - b``."""
        _check_4d(y, self.channels, type(self).__name__)
        return y * torch.exp(-self.log_scale).view(1, -1, 1, 1) - self.bias.view(1, -1, 1, 1)


class _MemoryFree(torch.autograd.Function):
    """Run a sequence without storing activations (Putzky & Welling 2019).

    The backward pass rebuilds them by inversion.
    """

    @staticmethod
    def forward(ctx, x: Tensor, seq: InvertibleSequence, with_logdet: bool, *params: Tensor):
        ctx.seq, ctx.with_logdet, ctx.params = seq, with_logdet, params
        # the blocks' bound context (the i-RIM's gradient function of *these* data): several
        # forward passes may run before one backward (a batch of items with their own masks)
        ctx.contexts = [block.get_context() for block in seq.block_list()]
        y, logdet = x, x.new_zeros(x.shape[0])
        for block in seq.block_list():
            if with_logdet:
                y, ld = block.forward_and_logdet(y)
                logdet = logdet + ld
            else:
                y = block(y)
        y = y.detach()
        ctx.save_for_backward(y)
        return (y, logdet) if with_logdet else y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y: Tensor, grad_logdet: Tensor | None = None):
        (y,) = ctx.saved_tensors
        index = {id(p): i for i, p in enumerate(ctx.params)}
        grads: list[Tensor | None] = [None] * len(ctx.params)
        blocks = list(ctx.seq.blocks)
        for block, context in zip(blocks, ctx.contexts, strict=True):
            block.set_context(context)
        for k in range(len(blocks) - 1, -1, -1):
            block = blocks[k]
            need_x = k > 0 or ctx.needs_input_grad[0]
            with torch.no_grad():
                x = block.inverse(y)
            x = x.detach().requires_grad_(need_x)
            douts: tuple[Tensor | None, ...]
            with torch.enable_grad():
                if ctx.with_logdet:
                    outs, douts = block.forward_and_logdet(x), (grad_y, grad_logdet)
                else:
                    outs, douts = (block(x),), (grad_y,)
            pairs = [(o, g) for o, g in zip(outs, douts, strict=True) if o.requires_grad]
            params = [p for p in block.parameters() if id(p) in index]
            wrt = ([x] if need_x else []) + params
            got: Sequence[Tensor | None]
            if pairs and wrt:
                got = torch.autograd.grad([o for o, _ in pairs], wrt, [g for _, g in pairs],
                                          allow_unused=True)
            else:
                got = (None,) * len(wrt)
            if need_x:
                grad_y = torch.zeros_like(x) if got[0] is None else got[0]
                got = got[1:]
            for p, g in zip(params, got, strict=True):
                if g is not None:
                    i = index[id(p)]
                    prev = grads[i]
                    grads[i] = g if prev is None else prev + g
            y = x.detach()
        grad_x = grad_y if ctx.needs_input_grad[0] else None
        return (grad_x, None, None, *grads)


class InvertibleSequence(InvertibleModule):
    """Blocks applied in order; the inverse applies their inverses in reverse order.

    With ``memory_free=True`` (and gradients enabled) only the output is stored for backward; the
    backward pass rebuilds each block's input by inversion and re-runs that block with gradients
    (Putzky & Welling 2019): activation memory constant in depth at about twice the compute.
    Gradients reach the input and the blocks' parameters; tensors that blocks capture in closures
    (e.g. measured data inside a data-consistency gradient) receive none in this mode. Blocks must
    take no extra forward arguments. Double backward is not supported in this mode.
    """

    def __init__(self, blocks: Sequence[InvertibleModule], memory_free: bool = False):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.memory_free = memory_free

    def block_list(self) -> list[InvertibleModule]:
        """The blocks in order, typed (iterating the ``nn.ModuleList`` gives plain modules)."""
        return cast("list[InvertibleModule]", list(self.blocks))

    def _memory_free_params(self, x: Tensor) -> list[Tensor] | None:
        if not (self.memory_free and torch.is_grad_enabled()):
            return None
        params: list[Tensor] = [p for p in self.parameters() if p.requires_grad]
        return params if (params or x.requires_grad) else None

    def forward(self, x: Tensor) -> Tensor:
        """Apply the blocks in order (memory-free when enabled and gradients are on)."""
        params = self._memory_free_params(x)
        if params is not None:
            return _MemoryFree.apply(x, self, False, *params)
        for block in self.blocks:
            x = block(x)
        return x

    def forward_and_logdet(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Apply the blocks in order and sum their log-determinants."""
        params = self._memory_free_params(x)
        if params is not None:
            return _MemoryFree.apply(x, self, True, *params)
        logdet = x.new_zeros(x.shape[0])
        for block in self.block_list():
            x, ld = block.forward_and_logdet(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: Tensor) -> Tensor:
        """Apply the blocks' inverses in reverse order."""
        for block in reversed(self.block_list()):
            y = block.inverse(y)
        return y


def saved_tensor_bytes(fn: Callable[[], object]) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn()`` runs.

    Uses :func:`torch.autograd.graph.saved_tensors_hooks`; tensors sharing a storage are counted
    once (by device and storage ``data_ptr``), at the storage's full size. Parameters saved by
    layers count too.
    """
    storages: dict[tuple[str, int], int] = {}

    def pack(t: Tensor) -> Tensor:
        s = t.untyped_storage()
        key = (str(t.device), s.data_ptr())
        storages[key] = max(storages.get(key, 0), s.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    total = sum(storages.values())
    del out
    return total

