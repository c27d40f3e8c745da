"""A conditional invertible neural network (cINN) for posterior sampling of the magnitude image.

Following Ardizzone et al. 2019 ("Guided image generation with conditional invertible neural
networks") and Denker et al. 2021 ("Conditional invertible neural networks for medical imaging"),
a bijection ``z = f(x; c)`` between the magnitude image ``x`` ``(B, 1, H, W)`` and a latent ``z``
of the same dimension ``D = H W`` is conditioned on the observation ``c``. With a standard normal
base density the model density is, by the change of variables,

    log q(x | c) = sum_i log N(z_i; 0, 1) + log |det dz/dx|,

trained by maximum likelihood (the loss is the negative log-likelihood in bits per dimension,
``-log q / (D ln 2)``; a continuous density, so it can be negative). Drawing ``z ~ N(0, T^2 I)``
and inverting gives posterior samples (temperature ``T``): their mean is a reconstruction and their
pixelwise standard deviation an uncertainty map.

Architecture
------------
* **Condition.** The caller passes the normalised zero-filled image ``x0`` (2 real channels) and
  the data-consistency gradient ``grad_fn`` (seam 2: the model never builds physics). With
  ``conditioner="zero-filled"``: ``c = [Re x0, Im x0, |x0|]`` and ``m(c) = |x0|``. With
  ``conditioner="irim"``: a frozen i-RIM (:class:`~mrirecon.models.irim.IRIM`, weights stored in
  this model's state dict so a cINN checkpoint is self-contained) gives ``e``, and
  ``c = [Re x0, Im x0, |x0|, Re e, Im e, |e|]``, ``m(c) = |e|``.
* **Residual.** With ``residual=True`` the flow models ``u = x - m(c)``; decoding adds ``m`` back.
* **Conditioning network.** conv3x3-ReLU-conv3x3-ReLU on ``c`` at full resolution, then per level
  a stride-2 conv (+ReLU) and a 3x3 projection to ``cond_channels`` features at the resolution of
  that level's couplings.
* **Flow** (multiscale, as in RealNVP / Glow): per level a learnable orthogonal (Haar-initialised)
  2x2 downsampling ``C -> 4C``, then ``blocks_per_level`` x [ActNorm, random orthogonal 1x1 mixing,
  conditional affine coupling fed that level's features]; except at the last level half of the
  channels are factored out as ``z_l`` and the other half continues. For 1 input channel and 3
  levels the latents have 2, 4 and 16 channels at ``H/2``, ``H/4`` and ``H/8``: ``H W`` numbers.
* **Log-determinant.** Downsampling and 1x1 mixing are orthogonal (log|det| = 0); ActNorm and the
  couplings contribute ``H' W' sum log s`` and ``sum s`` (soft-clamped scale).

``forward(x0, grad_fn)`` returns ``[estimate]`` with ``estimate[:, 0]`` the image of the base mode
``z = 0`` and ``estimate[:, 1] = 0``, so code that takes the magnitude of a 2-channel complex
estimate can use the cINN as a point-estimate reconstructor.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar, cast

import torch
from torch import Tensor, nn

from mrirecon.errors import InvalidParameterError, one_line
from mrirecon.models.invertible import ActNorm, AffineCoupling, Orthogonal1x1, OrthogonalDownsample
from mrirecon.models.irim import IRIM, IRIMConfig
from mrirecon.models.irim import upgrade_state_dict as upgrade_irim

__all__ = ["CINN", "CINNConfig"]

from mrirecon.models.protocols import GradFn
from mrirecon.typedconfig import Section

_EPS = 1e-12  # inside the square root of the magnitude of two channels
_CONDITIONERS = ("zero-filled", "irim")


@dataclass
class CINNConfig(Section):
    """Hyperparameters of :class:`CINN` (registry name ``cinn.v1``).

    Attributes
    ----------
    levels
        Multiscale levels; H and W must be multiples of ``2 ** levels``.
    blocks_per_level
        Conditional coupling blocks (ActNorm, orthogonal 1x1, affine coupling) per level.
    hidden
        Hidden channels of each coupling sub-network.
    cond_channels
        Condition feature channels fed to every coupling of a level.
    cond_hidden
        Width of the conditioning network.
    clamp
        Soft clamp of the affine log-scale, ``|s| < clamp``.
    conditioner
        ``"zero-filled"`` (the condition is the zero-filled image) or ``"irim"`` (also a frozen
        i-RIM's reconstruction).
    residual
        Model ``x - m(c)``, with ``m(c)`` the conditioner's magnitude image, instead of ``x``.
    irim_checkpoint
        i-RIM checkpoint (safetensors) for ``conditioner="irim"``.
    irim_config
        That i-RIM's configuration (filled in from the checkpoint when the model is built).
    acceleration_channel
        Add ``log R`` as a constant condition channel, ``R`` the acceleration measured through
        ``grad_fn`` (:func:`sampled_fraction`), so the spread of the samples can follow how
        much of k-space is missing. Needs ``grad_fn``.
    """

    _prefix: ClassVar[str] = "model_config."
    levels: int = 3
    blocks_per_level: int = 4
    hidden: int = 32
    cond_channels: int = 16
    cond_hidden: int = 32
    clamp: float = 1.5
    conditioner: str = "zero-filled"
    residual: bool = True
    irim_checkpoint: str | None = None
    irim_config: dict | None = None
    acceleration_channel: bool = False

    def _validate(self) -> None:
        for name, most in (("levels", 8), ("blocks_per_level", 16), ("hidden", 512),
                           ("cond_channels", 512), ("cond_hidden", 512)):
            self._require_range(name, 1, most)
        self._require(self.clamp > 0, "clamp", "a number > 0")
        self._require(self.conditioner in _CONDITIONERS, "conditioner",
                      "one of " + ", ".join(_CONDITIONERS))
        self._require(self.conditioner != "irim" or self.irim_checkpoint is not None
                      or self.irim_config is not None, "irim_checkpoint",
                      "an irim.v1 checkpoint (or irim_config set) for conditioner 'irim'")


def _magnitude(x: Tensor) -> Tensor:
    """``sqrt(a^2 + b^2 + eps)`` of a 2-channel ``(B, 2, H, W)`` tensor, as ``(B, 1, H, W)``."""
    return torch.sqrt(x[:, :1] ** 2 + x[:, 1:2] ** 2 + _EPS)


def sampled_fraction(x0: Tensor, grad_fn: GradFn) -> Tensor:
    """The fraction of k-space measured, per item ``(B,)``, read off the data-consistency gradient.

    Since ``grad(x) - grad(0) = A^H A x``, for a fixed random probe ``d``,
    ``<d, A^H A d> / <d, d>`` is the sampled fraction (coil maps normalised to unit sum of
    squares; columns of the padding, where the gradient is zero, count as unmeasured).
    """
    g = torch.Generator().manual_seed(0)
    d = torch.randn(x0.shape, generator=g, dtype=x0.dtype).to(x0.device)
    normal = grad_fn(d) - grad_fn(torch.zeros_like(x0))
    return ((d * normal).flatten(1).sum(1) / (d * d).flatten(1).sum(1)).clamp(1e-3, 1.0)


def _frozen_irim(config: CINNConfig, irim: IRIM | None) -> IRIM:
    """The conditioner: ``irim`` as received, or an i-RIM built from ``irim_config``.

    ``irim`` is used as received (its config recorded in ``config.irim_config``); for a
    checkpoint's cINN whose weights are loaded afterwards, an i-RIM is built from
    ``irim_config``. A cINN never reads a file: the build step
    (:func:`mrirecon.models.checkpoint.build_model`) loads ``irim_checkpoint`` and passes it in.
    """
    if irim is None:
        if config.irim_config is None:
            raise InvalidParameterError(
                f"model_config.irim_checkpoint {config.irim_checkpoint} must be loaded by the "
                "build step (mrirecon.models.checkpoint.build_model), or irim_config given")
        return IRIM(IRIMConfig(**config.irim_config))
    if config.irim_config is None:
        config.irim_config = dataclasses.asdict(irim.config)
        return irim
    built = IRIM(IRIMConfig(**config.irim_config))
    try:
        built.load_state_dict(irim.state_dict())
    except RuntimeError as exc:
        raise InvalidParameterError(
            f"{config.irim_checkpoint}: weights do not fit irim_config: "
            f"{one_line(exc)}") from None
    return built


class _Level(nn.Module):
    """One scale: orthogonal downsampling ``c -> 4c`` then conditional coupling blocks."""

    def __init__(self, channels: int, config: CINNConfig, seed: int) -> None:
        super().__init__()
        c = 4 * channels
        self.down = OrthogonalDownsample(channels)
        self.norms = nn.ModuleList(ActNorm(c) for _ in range(config.blocks_per_level))
        self.mixes = nn.ModuleList(
            Orthogonal1x1(c, init="random", generator=torch.Generator().manual_seed(seed + b))
            for b in range(config.blocks_per_level)
        )
        self.couplings = nn.ModuleList(
            AffineCoupling(c, config.hidden, 3, config.clamp,
                           condition_channels=config.cond_channels)
            for _ in range(config.blocks_per_level)
        )

    def blocks(self) -> list[tuple[ActNorm, Orthogonal1x1, AffineCoupling]]:
        """``(norm, mix, coupling)`` of each block, in forward order."""
        return list(zip(cast("list[ActNorm]", list(self.norms)),
                        cast("list[Orthogonal1x1]", list(self.mixes)),
                        cast("list[AffineCoupling]", list(self.couplings)), strict=True))

    def forward_and_logdet(self, x: Tensor, feats: Tensor) -> tuple[Tensor, Tensor]:
        h = self.down(x)
        logdet = h.new_zeros(h.shape[0])
        for norm, mix, coupling in self.blocks():
            h, ld = norm.forward_and_logdet(h)
            logdet = logdet + ld
            h, ld = coupling.forward_and_logdet(mix(h), feats)
            logdet = logdet + ld
        return h, logdet

    def inverse(self, h: Tensor, feats: Tensor) -> Tensor:
        for norm, mix, coupling in reversed(self.blocks()):
            h = norm.inverse(mix.inverse(coupling.inverse(h, feats)))
        return self.down.inverse(h)


class CINN(nn.Module):
    """Conditional INN ``x <-> z`` given ``(x0, grad_fn)``; see the module docstring.

    ``x`` is the real magnitude image ``(B, 1, H, W)`` in the caller's normalised units, ``x0`` the
    normalised zero-filled image ``(B, 2, H, W)`` (real and imaginary channels) and ``grad_fn``
    the data-consistency gradient on real channels (used by the i-RIM conditioner only). H and W
    must be multiples of :attr:`required_multiple`.
    """

    def __init__(self, config: CINNConfig | None = None, irim: IRIM | None = None) -> None:
        super().__init__()
        self.config = config or CINNConfig()
        c = self.config
        self.irim: IRIM | None = None
        if c.conditioner == "irim":
            self.irim = _frozen_irim(c, irim)
            self.irim.requires_grad_(False)
            self.irim.eval()
        cond_in = (6 if c.conditioner == "irim" else 3) + int(c.acceleration_channel)
        w = c.cond_hidden
        self.cond_stem = nn.Sequential(
            nn.Conv2d(cond_in, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
        )
        self.cond_down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(w, w, 3, stride=2, padding=1), nn.ReLU())
            for _ in range(c.levels)
        )
        self.cond_proj = nn.ModuleList(
            nn.Conv2d(w, c.cond_channels, 3, padding=1) for _ in range(c.levels)
        )
        levels, channels = [], 1
        for lev in range(c.levels):
            levels.append(_Level(channels, c, seed=1000 * (lev + 1)))
            channels *= 2  # 4x by downsampling, half of them factored out
        self.levels = nn.ModuleList(levels)

    def level_list(self) -> list[_Level]:
        """The levels, finest first, typed (iterating the ``nn.ModuleList`` gives plain modules)."""
        return cast("list[_Level]", list(self.levels))

    @property
    def required_multiple(self) -> int:
        """H and W must be multiples of this: ``2 ** levels``, or the i-RIM's if larger."""
        multiple = 2 ** self.config.levels
        return multiple if self.irim is None else max(multiple, self.irim.required_multiple)

    def train(self, mode: bool = True) -> CINN:
        """As :meth:`nn.Module.train`, but the frozen i-RIM always stays in eval mode."""
        super().train(mode)
        if self.irim is not None:
            self.irim.eval()
        return self

    # -- condition ----------------------------------------------------------------------------

    def _check(self, x0: Tensor, x: Tensor | None = None) -> None:
        if x0.dim() != 4 or x0.shape[1] != 2:
            raise ValueError(f"x0 must be (B, 2, H, W) real channels, got shape {tuple(x0.shape)}")
        k = self.required_multiple
        if x0.shape[-2] % k or x0.shape[-1] % k:
            raise ValueError(f"cINN with {self.config.levels} levels needs H and W divisible by "
                             f"{k} but got shape {tuple(x0.shape)}; pad to a multiple")
        if x is not None and (x.dim() != 4 or x.shape[1] != 1 or x.shape[0] != x0.shape[0]
                              or x.shape[-2:] != x0.shape[-2:]):
            raise ValueError(f"x must be (B, 1, H, W) = {(x0.shape[0], 1, *x0.shape[-2:])} to "
                             f"match x0, got shape {tuple(x.shape)}")

    def condition(self, x0: Tensor, grad_fn: GradFn | None) -> tuple[Tensor, Tensor]:
        """The condition ``c`` (3 or 6 channels) and the conditioner's magnitude ``m`` (1 ch)."""
        self._check(x0)
        mag0 = _magnitude(x0)
        extra = []
        if self.config.acceleration_channel:
            if grad_fn is None:
                raise ValueError("acceleration_channel needs grad_fn, the data-consistency "
                                 "gradient")
            with torch.no_grad():
                log_r = -torch.log(sampled_fraction(x0, grad_fn))
            extra = [log_r[:, None, None, None].expand_as(mag0)]
        if self.irim is None:
            return torch.cat([x0, mag0, *extra], dim=1), mag0
        if grad_fn is None:
            raise ValueError("conditioner 'irim' needs grad_fn, the data-consistency gradient")
        with torch.no_grad():
            e = self.irim(x0, grad_fn)[-1].detach()
        mag = _magnitude(e)
        return torch.cat([x0, mag0, e, mag, *extra], dim=1), mag

    def features(self, c: Tensor) -> list[Tensor]:
        """One ``(B, cond_channels, H / 2**(l+1), W / 2**(l+1))`` feature map per level ``l``."""
        h = self.cond_stem(c)
        feats = []
        for down, proj in zip(self.cond_down, self.cond_proj, strict=True):
            h = down(h)
            feats.append(proj(h))
        return feats

    def _prepare(self, x0: Tensor, grad_fn: GradFn | None) -> tuple[list[Tensor], Tensor]:
        c, m = self.condition(x0, grad_fn)
        return self.features(c), m if self.config.residual else torch.zeros_like(m)

    # -- flow ---------------------------------------------------------------------------------

    def _encode(self, u: Tensor, feats: list[Tensor]) -> tuple[list[Tensor], Tensor]:
        zs, logdet, h = [], u.new_zeros(u.shape[0]), u
        last = len(self.levels) - 1
        for lev, level in enumerate(self.level_list()):
            h, ld = level.forward_and_logdet(h, feats[lev])
            logdet = logdet + ld
            if lev < last:
                half = h.shape[1] // 2
                zs.append(h[:, half:])
                h = h[:, :half]
        zs.append(h)
        return zs, logdet

    def _decode(self, zs: list[Tensor], feats: list[Tensor]) -> Tensor:
        if len(zs) != len(self.levels):
            raise ValueError(f"expected {len(self.levels)} latents (one per level), got {len(zs)}")
        h = zs[-1]
        levels = self.level_list()
        last = len(levels) - 1
        for lev in range(last, -1, -1):
            if lev < last:
                h = torch.cat([h, zs[lev]], dim=1)
            h = levels[lev].inverse(h, feats[lev])
        return h

    def latent_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """``(channels, h, w)`` of each latent for an ``height x width`` image."""
        shapes, channels = [], 1
        for lev in range(self.config.levels):
            f = 2 ** (lev + 1)
            out = 4 * channels if lev == self.config.levels - 1 else 2 * channels
            shapes.append((out, height // f, width // f))
            channels *= 2
        return shapes

    def encode(self, x: Tensor, x0: Tensor, grad_fn: GradFn | None = None
               ) -> tuple[list[Tensor], Tensor]:
        """``(zs, log|det dz/dx|)``: the latents (one per level) and the log-determinant ``(B,)``.

        In training mode the first call data-initialises the ActNorm layers.
        """
        self._check(x0, x)
        feats, m = self._prepare(x0, grad_fn)
        return self._encode(x - m, feats)

    def decode(self, zs: list[Tensor], x0: Tensor, grad_fn: GradFn | None = None) -> Tensor:
        """The image ``x`` ``(B, 1, H, W)`` with latents ``zs``.

        The exact inverse of :meth:`encode` (never initialises ActNorm).
        """
        feats, m = self._prepare(x0, grad_fn)
        return self._decode(zs, feats) + m

    def log_likelihood(self, x: Tensor, x0: Tensor, grad_fn: GradFn | None = None) -> Tensor:
        """``log q(x | c)`` in nats per image, ``(B,)``: ``sum log N(z; 0, 1) + log|det|``."""
        zs, logdet = self.encode(x, x0, grad_fn)
        gauss = sum(-0.5 * (z**2 + math.log(2 * math.pi)).flatten(1).sum(dim=1) for z in zs)
        return gauss + logdet

    def nll_bits_per_dim(self, x: Tensor, x0: Tensor, grad_fn: GradFn | None = None) -> Tensor:
        """Mean negative log-likelihood in bits per pixel, ``-mean(log q) / (H W ln 2)``."""
        dims = x.shape[-2] * x.shape[-1]
        return -self.log_likelihood(x, x0, grad_fn).mean() / (dims * math.log(2))

    def training_loss(self, x0: Tensor, grad_fn: GradFn | None, target: Tensor) -> Tensor:
        """Maximum-likelihood loss: :meth:`nll_bits_per_dim` of ``target`` ``(B, [1,] H, W)``."""
        if target.dim() == 3:
            target = target[:, None]
        return self.nll_bits_per_dim(target.to(x0.dtype), x0, grad_fn)

    def sample(
        self,
        x0: Tensor,
        grad_fn: GradFn | None,
        num_samples: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        max_batch: int | None = None,
    ) -> Tensor:
        """Posterior samples ``(num_samples, B, H, W)`` with ``z ~ N(0, temperature^2 I)``.

        The condition and its features are computed once for the ``B`` inputs. ``generator``
        may live on the CPU for a CUDA model (the latents are drawn there and moved).
        ``max_batch`` bounds how many images are decoded at once; the latents are drawn first,
        so the samples do not depend on it.
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        feats, m = self._prepare(x0, grad_fn)
        b, (height, width) = x0.shape[0], x0.shape[-2:]
        draw_device = generator.device if generator is not None else x0.device
        zs = [
            temperature * torch.randn((num_samples * b, *shape), generator=generator,
                                      device=draw_device, dtype=x0.dtype).to(x0.device)
            for shape in self.latent_shapes(height, width)
        ]

        def tile(t: Tensor) -> Tensor:  # sample-major: row s * B + b is sample s of input b
            return t.unsqueeze(0).expand(num_samples, *t.shape).reshape(-1, *t.shape[1:])

        feats, m = [tile(f) for f in feats], tile(m)
        step = num_samples * b if max_batch is None else max_batch
        out = [
            self._decode([z[i:i + step] for z in zs], [f[i:i + step] for f in feats])
            + m[i:i + step]
            for i in range(0, num_samples * b, step)
        ]
        return torch.cat(out).reshape(num_samples, b, height, width)

    def forward(self, x0: Tensor, grad_fn: GradFn | None = None) -> list[Tensor]:
        """``[estimate]`` ``(B, 2, H, W)``: the base mode, decoded from ``z = 0``.

        Channel 0 decodes ``z = 0`` (the base mode); channel 1 is zero.
        """
        feats, m = self._prepare(x0, grad_fn)
        b, (height, width) = x0.shape[0], x0.shape[-2:]
        zs = [x0.new_zeros(b, *s) for s in self.latent_shapes(height, width)]
        x = self._decode(zs, feats) + m
        return [torch.cat([x, torch.zeros_like(x)], dim=1)]


def upgrade_state_dict(tensors: dict[str, Tensor], config: CINNConfig) -> dict[str, Tensor]:
    """A cINN state dict in today's layout, from one whose i-RIM stored each block twice.

    :func:`mrirecon.models.irim.upgrade_state_dict` applied under the prefix ``irim.``.
    """
    if config.irim_config is None:
        return tensors
    return upgrade_irim(tensors, IRIMConfig(**config.irim_config), prefix="irim.")
