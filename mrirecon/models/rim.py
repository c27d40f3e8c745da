"""Recurrent Inference Machine (Putzky & Welling 2017; Lønning et al. 2019).

A RIM unrolls a fixed number ``T`` of learned update steps of maximum-a-posteriori inference.
Classical MAP inference would iterate x_{t+1} = x_t + γ_t (∇ log p(y|x_t) + ∇ log p_θ(x_t)); the
RIM learns the whole update instead::

    x_{t+1} = x_t + g_φ(x_t, ∇_t, s_t),        ∇_t = grad_fn(x_t)

where ``s_t`` is a hidden memory carried by convolutional GRUs from step to step. It is trained by
back-propagation through all steps with the loss summed (or averaged) over every step's estimate,
L = Σ_t ℓ(x_true, x_t), which is why :meth:`RIM.forward` returns all ``T`` estimates.

Networks receive physics, they never build it (seam 2 of ``ARCHITECTURE.md``): the caller passes
``grad_fn``, usually the data-consistency gradient A^H(A x - y) written in real channels, and this
module never builds an FFT or reads a file.

Tensor layout: estimates and gradients are real ``(B, C, H, W)`` with ``C = 2`` (real and
imaginary part of the complex image) at the network boundary; see ``mrirecon/data/__init__.py``.

References
----------
Putzky P, Welling M. Recurrent Inference Machines for Solving Inverse Problems. arXiv:1706.04008,
2017. Lønning K, Putzky P, Sonke JJ, Reneman L, Caan MWA, Welling M. Recurrent inference machines
for reconstructing heterogeneous MRI data. Medical Image Analysis 53:64-78, 2019.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from mrirecon.errors import InvalidParameterError
from mrirecon.models.protocols import GradFn
from mrirecon.typedconfig import Section

"""A gradient callable: estimate ``(B, C, H, W)`` -> gradient of the same shape."""


@dataclass
class RIMConfig(Section):
    """Hyper-parameters of :class:`RIM` (registered as ``"rim.v1"``).

    Parameters
    ----------
    steps
        Number of unrolled inference steps ``T`` (estimates returned by ``forward``).
    hidden
        Feature channels of the convolutions and of both ConvGRU memories (64 in the paper).
    shared_weights
        One cell shared by every step (the paper's RIM) if ``True``; one cell per step otherwise,
        which has ``steps`` times the parameters.
    channels
        Real channels of the estimate (2: real and imaginary part of a complex image).
    """

    _prefix: ClassVar[str] = "model_config."
    steps: int = 8
    hidden: int = 64
    shared_weights: bool = True
    channels: int = 2

    def _validate(self) -> None:
        for name, most in (("steps", 64), ("hidden", 512), ("channels", 64)):
            self._require_range(name, 1, most)


class ConvGRUCell(nn.Module):
    """Convolutional gated recurrent unit (Cho et al. 2014 with convolutions for products).

    With input ``x`` and previous state ``h``::

        r = σ(W_r * [x, h]),   z = σ(W_z * [x, h])
        n = tanh(W_n * [x, r ⊙ h])
        h' = (1 - z) ⊙ h + z ⊙ n

    Parameters
    ----------
    input_channels
        Channels of ``x``.
    hidden_channels
        Channels of the state ``h``.
    kernel_size
        Odd size of the square convolution kernels (padding keeps the spatial size).
    """

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise InvalidParameterError(f"ConvGRUCell kernel_size must be odd, got {kernel_size}")
        self.hidden_channels = hidden_channels
        padding = kernel_size // 2
        both = input_channels + hidden_channels
        self.gates = nn.Conv2d(both, 2 * hidden_channels, kernel_size, padding=padding)
        self.candidate = nn.Conv2d(both, hidden_channels, kernel_size, padding=padding)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        """Return the new state ``(B, hidden, H, W)``; a missing ``h`` starts from zeros."""
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])
        r, z = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        n = torch.tanh(self.candidate(torch.cat([x, r * h], dim=1)))
        return (1 - z) * h + z * n


class RIMCell(nn.Module):
    """One RIM update network g_φ (the reference cell of Lønning et al. 2019).

    conv 5×5 → hidden, ReLU, ConvGRU(hidden), conv 3×3 (dilation 2) → hidden, ReLU,
    ConvGRU(hidden), conv 3×3 → ``channels`` (the update). Its input is the concatenation of the
    estimate and its gradient (``2 * channels`` channels).
    """

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(2 * channels, hidden, 5, padding=2)
        self.gru1 = ConvGRUCell(hidden, hidden)
        self.conv_mid = nn.Conv2d(hidden, hidden, 3, padding=2, dilation=2)
        self.gru2 = ConvGRUCell(hidden, hidden)
        self.conv_out = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(
        self, inputs: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Map ``(estimate, gradient)`` channels and the memory to ``(update, new memory)``."""
        h1, h2 = state if state is not None else (None, None)
        h1 = self.gru1(torch.relu(self.conv_in(inputs)), h1)
        h2 = self.gru2(torch.relu(self.conv_mid(h1)), h2)
        return self.conv_out(h2), (h1, h2)


class RIM(nn.Module):
    """Recurrent Inference Machine: ``steps`` learned updates x_{t+1} = x_t + g_φ(x_t, ∇_t, s_t).

    Parameters
    ----------
    config
        Hyper-parameters; see :class:`RIMConfig`.

    Notes
    -----
    The gradient is recomputed from the current estimate at every step and is *not* detached,
    so training back-propagates through the physics as well (as in the reference code). With
    ``shared_weights`` one :class:`RIMCell` serves every step; otherwise ``cells[t]`` serves
    step ``t``. The memory starts at zero for every call of :meth:`forward`.
    """

    def __init__(self, config: RIMConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else RIMConfig()
        n_cells = 1 if self.config.shared_weights else self.config.steps
        self.cells = nn.ModuleList(
            RIMCell(self.config.channels, self.config.hidden) for _ in range(n_cells)
        )

    def forward(self, x0: Tensor, grad_fn: GradFn) -> list[Tensor]:
        """Run all steps from the initial estimate ``x0``.

        Parameters
        ----------
        x0
            Initial estimate, real ``(B, channels, H, W)`` (e.g. the zero-filled image).
        grad_fn
            Gradient of the data term at an estimate, same shape in and out; typically
            A^H(A x - y) in real channels. Called once per step.

        Returns
        -------
        list of Tensor
            The estimates x_1 ... x_T, each of the shape of ``x0``; the last is the output.
        """
        channels = self.config.channels
        if x0.ndim != 4 or x0.shape[1] != channels:
            raise InvalidParameterError(
                f"RIM expects an estimate of shape (B, {channels}, H, W), got {tuple(x0.shape)}"
            )
        x, state, estimates = x0, None, []
        for t in range(self.config.steps):
            grad = grad_fn(x)
            if grad.shape != x.shape:
                raise InvalidParameterError(
                    f"grad_fn returned shape {tuple(grad.shape)} for an estimate of shape "
                    f"{tuple(x.shape)}; they must match"
                )
            cell = self.cells[0 if self.config.shared_weights else t]
            update, state = cell(torch.cat([x, grad], dim=1), state)
            x = x + update
            estimates.append(x)
        return estimates
