"""The invertible Recurrent Inference Machine (Putzky & Welling 2019, "Invert to Learn to Invert").

The estimate ``x`` (2 real channels of the complex image) is lifted to a wider state
``h = [x, 0, ..., 0]`` with ``state_channels`` channels. Each of the ``steps`` steps is invertible:

1. :class:`GradientStep`: an additive coupling that adds a learned function of ``x`` and of the
   data-consistency gradient ``grad(x) = A^H (A x - y)`` to the other channels,
   ``h[2:] += f_t([x, grad(x)])``; ``x = h[:2]`` passes unchanged, so the step inverts exactly
   by subtracting the same term;
2. an invertible U-Net :class:`~mrirecon.models.iunet.IUNet` ``G_t`` on the whole state.

The estimate after the last step is ``h[:2]``. Because every step is invertible, training can
rebuild activations by inversion instead of storing them (``memory_free``): the memory of a
training step stays constant in the number of steps and in the U-Net depth. The whole-model
:meth:`IRIM.inverse` undoes the steps in reverse order, ``G_T^-1`` first; the reference code
(2020) applied them in forward order, which is only correct when all steps share one cell.

The model never builds physics: the caller passes ``grad_fn`` on real channels (seam 2 of the
architecture).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, cast

import torch
from torch import Tensor, nn

from mrirecon.models.invertible import InvertibleModule, InvertibleSequence
from mrirecon.models.iunet import IUNet
from mrirecon.models.protocols import GradFn
from mrirecon.typedconfig import Section


@dataclass
class IRIMConfig(Section):
    """Hyperparameters of :class:`IRIM` (registry name ``irim.v1``).

    Attributes
    ----------
    steps
        Number of inference steps ``T``.
    state_channels
        Channels of the lifted state (even, >= 4: the estimate's 2 plus room for the gradient).
    levels, blocks_per_level, hidden
        Shape of each step's invertible U-Net.
    grad_hidden
        Hidden channels of the gradient step's function ``f_t``.
    shared_weights
        One cell for all steps (``True``) or distinct cells per step.
    memory_free
        Rebuild activations by inversion in backward instead of storing them.
    """

    _prefix: ClassVar[str] = "model_config."
    steps: int = 8
    state_channels: int = 8
    levels: int = 3
    blocks_per_level: int = 2
    hidden: int = 32
    grad_hidden: int = 16
    shared_weights: bool = False
    memory_free: bool = True

    def _validate(self) -> None:
        for name, most in (("steps", 64), ("levels", 8), ("blocks_per_level", 16),
                           ("hidden", 512), ("grad_hidden", 512)):
            self._require_range(name, 1, most)
        self._require(4 <= self.state_channels <= 256 and self.state_channels % 2 == 0,
                      "state_channels", "an even integer from 4 to 256")


class GradientStep(InvertibleModule):
    """``h -> [x, h[2:] + f([x, grad(x)])]`` with ``x = h[:2]``: the i-RIM's invertible update.

    ``grad_fn`` is set by :class:`IRIM` before each pass (it depends on the measured data).
    """

    def __init__(self, state_channels: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(4, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, state_channels - 2, 3, padding=1),
        )
        self.grad_fn: GradFn | None = None

    def _update(self, x: Tensor) -> Tensor:
        if self.grad_fn is None:
            raise RuntimeError("GradientStep needs a gradient function; call it through IRIM")
        return self.net(torch.cat([x, self.grad_fn(x)], dim=1))

    def get_context(self) -> GradFn | None:
        """The bound gradient function."""
        return self.grad_fn

    def set_context(self, context: GradFn | None) -> None:
        """Rebind the gradient function (for the memory-free backward)."""
        self.grad_fn = context

    def forward(self, h: Tensor) -> Tensor:
        """Add ``f([x, grad(x)])`` to the channels after the estimate ``x = h[:2]``."""
        x = h[:, :2]
        return torch.cat([x, h[:, 2:] + self._update(x)], dim=1)

    def inverse(self, h: Tensor) -> Tensor:
        """Subtract the same ``f([x, grad(x)])``; ``x = h[:2]`` is unchanged by the step."""
        x = h[:, :2]
        return torch.cat([x, h[:, 2:] - self._update(x)], dim=1)


class IRIM(nn.Module):
    """Invertible RIM: ``T`` x (gradient step, invertible U-Net) on a lifted state.

    ``forward(x0, grad_fn)`` takes the initial estimate ``(B, 2, H, W)`` (real and imaginary
    channels) and returns a one-element list with the final estimate (the RIM's interface returns
    every step; the i-RIM is trained on its last). ``H`` and ``W`` must be multiples of
    ``IUNet.required_multiple``; pad with :func:`mrirecon.padding.pad_to_multiple`.
    """

    sequence: InvertibleSequence  # set with object.__setattr__: not a registered submodule

    def __init__(self, config: IRIMConfig | None = None) -> None:
        super().__init__()
        self.config = config or IRIMConfig()
        c = self.config
        n_cells = 1 if c.shared_weights else c.steps

        def unet() -> IUNet:
            return IUNet(c.state_channels, levels=c.levels, blocks_per_level=c.blocks_per_level,
                         hidden=c.hidden)

        grad_steps = [GradientStep(c.state_channels, c.grad_hidden) for _ in range(n_cells)]
        unets = [unet() for _ in range(n_cells)]
        self.grad_steps = nn.ModuleList(grad_steps)
        self.unets = nn.ModuleList(unets)
        blocks: list[InvertibleModule] = []
        for t in range(c.steps):
            k = 0 if c.shared_weights else t
            blocks += [grad_steps[k], unets[k]]
        # the order of the blocks, not a second owner of them: kept out of the registered
        # submodules, so each weight is in the state dict (and a checkpoint) once
        object.__setattr__(self, "sequence",
                           InvertibleSequence(blocks, memory_free=c.memory_free))

    @property
    def required_multiple(self) -> int:
        """H and W must be multiples of this: ``2 ** (levels - 1)``, for the U-Nets."""
        return 2 ** (self.config.levels - 1)

    def _bind(self, grad_fn: GradFn) -> None:
        for step in cast("list[GradientStep]", list(self.grad_steps)):
            step.grad_fn = grad_fn

    def lift(self, x0: Tensor) -> Tensor:
        """``[x0, 0, ..., 0]``: the estimate in the first two of ``state_channels`` channels."""
        pad = x0.new_zeros(x0.shape[0], self.config.state_channels - 2, *x0.shape[2:])
        return torch.cat([x0, pad], dim=1)

    def forward(self, x0: Tensor, grad_fn: GradFn) -> list[Tensor]:
        """Run the ``T`` steps from ``x0``; a one-element list with the final estimate."""
        self._bind(grad_fn)
        return [self.sequence(self.lift(x0))[:, :2]]

    def forward_state(self, h0: Tensor, grad_fn: GradFn) -> Tensor:
        """The full final state (for invertibility checks)."""
        self._bind(grad_fn)
        return self.sequence(h0)

    def inverse(self, h: Tensor, grad_fn: GradFn) -> Tensor:
        """The initial state that :meth:`forward_state` maps to ``h`` (steps undone last first)."""
        self._bind(grad_fn)
        return self.sequence.inverse(h)


def upgrade_state_dict(tensors: dict[str, Tensor], config: IRIMConfig | None = None,
                       prefix: str = "") -> dict[str, Tensor]:
    """An i-RIM state dict from a checkpoint written before each weight was stored once.

    Those files hold every block twice: under ``grad_steps``/``unets`` and again under
    ``sequence.blocks.{j}`` (block ``2t`` the gradient step and ``2t + 1`` the U-Net of step
    ``t``). The second copy is dropped when it equals the first, and renamed to it when the
    first is missing; ``prefix`` locates the i-RIM inside a larger model (``"irim."`` in a cINN).

    Raises
    ------
    ValueError
        The two copies of one weight differ (the file is inconsistent).
    """
    shared = bool(config.shared_weights) if config is not None else False
    head = f"{prefix}sequence.blocks."
    out = {k: v for k, v in tensors.items() if not k.startswith(head)}
    for key, value in tensors.items():
        if not key.startswith(head):
            continue
        index, rest = key[len(head):].split(".", 1)
        j = int(index)
        owner = "grad_steps" if j % 2 == 0 else "unets"
        name = f"{prefix}{owner}.{0 if shared else j // 2}.{rest}"
        if name not in out:
            out[name] = value
        elif not torch.equal(out[name], value):
            raise ValueError(f"{key} and {name} hold different weights")
    return out
