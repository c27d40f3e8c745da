"""Training configuration: typed dataclasses, read from YAML and dotted ``key=value`` overrides.

``mrirecon train CONFIG.yaml --set optim.lr=1e-4 --set mask.accelerations=[4,8]`` becomes
``load_config("CONFIG.yaml", ["optim.lr=1e-4", "mask.accelerations=[4,8]"])``.

Precedence: dataclass defaults < YAML file < overrides (later overrides win). Every key is
checked: an unknown key at any level is an :class:`~mrirecon.errors.InvalidParameterError`
that lists the valid keys of its section, values are coerced to the field's type (``"1e-4"``,
which YAML 1.1 reads as a string, becomes a float; a scalar becomes a one-item list; ``null``
or ``none`` clears an optional field) and a value of the wrong kind is rejected with the key,
the expected kind and what was received.

``model_config`` is checked against the configuration dataclass of the registered ``model``
(:func:`mrirecon.models.registry.config_for`) and stored *resolved*, with every default filled
in, so the saved configuration (:func:`save_config`, also stored in every checkpoint) rebuilds
the same network and run: ``load_config(path) == cfg`` after ``save_config(cfg, path)``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from mrirecon.errors import InputFileError, InvalidParameterError
from mrirecon.fileutil import atomic_path
from mrirecon.sampling.spec import MaskKind
from mrirecon.sampling.ssdu import SPLIT_KINDS
from mrirecon.typedconfig import Section, build, plain

_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
SCHEDULES = ("cosine", "constant")


#: Validation metrics that can pick ``best.safetensors``: +1 where larger is better, -1 where
#: smaller is.
BEST_METRICS = {"ssim": 1.0, "psnr": 1.0, "nmse": -1.0, "kspace_loss": -1.0}
#: Training objectives: against fully sampled references, or self-supervised in k-space.
LOSS_KINDS = ("supervised", "ssdu")


@dataclass
class MaskConfig(Section):
    """Undersampling drawn on the fly for training (key ``mask``).

    Attributes
    ----------
    kind
        A :class:`~mrirecon.sampling.spec.MaskKind` value (``random``, ``equispaced``, ...).
    accelerations
        Accelerations ``R`` (> 1); each training item draws one of them.
    center_fractions
        Fully sampled centre fraction per acceleration (same length), or ``None`` for fastMRI's
        ``0.32 / R`` (:func:`~mrirecon.sampling.spec.default_center_fraction`).
    seed
        Base seed (>= 0) of the per-item mask generators and of the validation masks.
    val_repeats
        Validation masks per file (>= 1): seeds ``seed`` ... ``seed + val_repeats - 1``, each
        (file, mask) scored as a volume, so checkpoints are not chosen on one mask's luck.
    val_accelerations
        Accelerations (> 1) validation scores, each (file, mask, R) a volume, averaged; ``None``
        for the first of ``accelerations`` only.
    """

    _prefix: ClassVar[str] = "mask."
    kind: str = "random"
    accelerations: list[float] = field(default_factory=lambda: [4.0, 8.0])
    center_fractions: list[float] | None = None
    seed: int = 0
    val_repeats: int = 1
    val_accelerations: list[float] | None = None

    def _validate(self) -> None:
        kinds = [k.value for k in MaskKind]
        self._require(self.kind in kinds, "kind", "one of " + ", ".join(kinds))
        accs = self.accelerations
        self._require(bool(accs) and all(r > 1 for r in accs), "accelerations",
                      "a non-empty list of numbers > 1")
        cfs = self.center_fractions
        if cfs is not None:
            self._require(len(cfs) == len(accs) and all(0 < c < 1 for c in cfs),
                          "center_fractions",
                          f"null or {len(accs)} fraction(s) in (0, 1), one per acceleration")
        self._require(0 <= self.seed < 2**63, "seed", "an integer from 0 to 2**63 - 1")
        self._require(self.val_repeats >= 1, "val_repeats", "an integer >= 1")
        vals = self.val_accelerations
        self._require(vals is None or (bool(vals) and all(r > 1 for r in vals)),
                      "val_accelerations", "null or a non-empty list of numbers > 1")


@dataclass
class OptimConfig(Section):
    """Optimiser (AdamW) and learning-rate schedule (key ``optim``).

    Attributes
    ----------
    lr
        Peak learning rate (> 0).
    weight_decay
        Decoupled weight decay (>= 0).
    schedule
        ``cosine``: linear warm-up over ``warmup_steps`` then cosine decay to 0 at the last
        step; ``constant``: warm-up then constant.
    warmup_steps
        Steps of linear warm-up from 0 (>= 0).
    grad_clip
        Maximum global gradient norm (> 0), or ``None`` for no clipping.
    """

    _prefix: ClassVar[str] = "optim."
    lr: float = 1e-4
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_steps: int = 0
    grad_clip: float | None = 1.0

    def _validate(self) -> None:
        self._require(self.lr > 0, "lr", "> 0")
        self._require(self.weight_decay >= 0, "weight_decay", ">= 0")
        self._require(self.schedule in SCHEDULES, "schedule", "one of " + ", ".join(SCHEDULES))
        self._require(self.warmup_steps >= 0, "warmup_steps", ">= 0")
        self._require(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "null or > 0")


#: Kinds of generator source: magnitude images, or integer tissue-label maps.
SOURCE_KINDS = ("image", "labels")


@dataclass
class SourceConfig(Section):
    """One magnitude-image source of the generator (an item of ``data.synthetic.sources``).

    Attributes
    ----------
    path
        A NIfTI volume (``.nii``/``.nii.gz``; 2-D slices along all three axes) or a ``.npy``
        stack ``(n, rows, cols)`` / image ``(rows, cols)``.
    sha256
        The file's pinned SHA-256 (hex); a missing file or another digest stops training.
    kind
        ``image`` (intensities) or ``labels`` (integer tissue labels: every item draws a random
        intensity per label, SynthSeg-style).
    weight
        Relative probability (> 0) that an item draws from this source.
    """

    _prefix: ClassVar[str] = "data.synthetic.sources[]."
    path: str = ""
    sha256: str = ""
    kind: str = "image"
    weight: float = 1.0

    def _validate(self) -> None:
        self._require(bool(self.path), "path", "a file path")
        self._require(re.fullmatch(r"[0-9a-fA-F]{64}", self.sha256) is not None, "sha256",
                      "64 hex digits (the file's pinned SHA-256)")
        self._require(self.kind in SOURCE_KINDS, "kind", " or ".join(SOURCE_KINDS))
        self._require(self.weight > 0, "weight", "> 0")


def _range(low: float, high: float) -> Any:
    return field(default_factory=lambda: [low, high])


@dataclass
class SyntheticConfig(Section):
    """The domain-randomised on-the-fly generator (key ``data.synthetic``).

    Configures :class:`mrirecon.train.synthetic.SyntheticDataset`. Ranges are ``[min, max]``,
    drawn uniformly per item unless noted.

    Attributes
    ----------
    sources
        Magnitude-image sources (:class:`SourceConfig`); at least one.
    procedural_weight
        Relative probability (>= 0, against the sources' weights) of a procedural image
        (random ellipses, textures, gratings) instead of a source slice.
    items_per_epoch
        Items an epoch yields (>= 1); every item is new: its seed is (seed, epoch, rank, item).
    matrix
        Image rows and columns, each drawn in this range (>= 16): non-square matrices.
    max_aspect
        Largest ratio (>= 1) of the longer to the shorter side.
    matrix_multiple
        Both sides are rounded to a multiple of this inside ``matrix`` (>= 1; 8 for the cINN,
        whose flow trains on unpadded images, multiples of ``2 ** levels``).
    zoom
        Object size relative to the field of view (> 0; above 1 crops the object).
    rotation
        Largest small rotation in degrees (>= 0), on top of a random multiple of 90 and flips.
    gamma
        Range of the random gamma of the intensities (> 0).
    remap, nonmonotone, invert
        Probabilities (in [0, 1]) of a monotone piecewise-linear intensity remap, a
        non-monotone one, and an inversion of the object's contrast.
    bias
        Largest amplitude (>= 0) of the log bias field (a smooth multiplicative shading).
    blur
        Gaussian blur sigma in pixels (>= 0).
    coils
        Coil counts (>= 1), log-uniform over the multi-coil part of the range.
    single_coil
        Probability (in [0, 1]) of a single-coil item (when ``coils`` includes 1).
    noise
        Noise std per k-space sample relative to the image maximum (> 0), log-uniform.
    max_phase
        Amplitude range (radians, >= 0) of the smooth polynomial image phase.
    ramp_cycles
        Largest linear phase ramp (cycles across the FOV, >= 0).
    patches
        Probability (in [0, 1]) of sharp off-resonance-like phase patches.
    mask_kinds
        Mask kinds drawn uniformly (every kind the CLI offers by default).
    accelerations
        Acceleration range (> 1); equispaced and magic kinds round it to an integer.
    center_fractions
        Centre-fraction range (in (0, 1)); capped at ``0.7 / R`` so the mask can reach ``R``.
    """

    _prefix: ClassVar[str] = "data.synthetic."
    sources: list[SourceConfig] = field(default_factory=list)
    procedural_weight: float = 0.15
    items_per_epoch: int = 2000
    matrix: list[int] = field(default_factory=lambda: [64, 384])
    max_aspect: float = 2.0
    matrix_multiple: int = 1
    zoom: list[float] = _range(0.7, 1.25)
    rotation: float = 15.0
    gamma: list[float] = _range(0.6, 1.7)
    remap: float = 0.4
    nonmonotone: float = 0.15
    invert: float = 0.15
    bias: float = 0.4
    blur: list[float] = _range(0.0, 1.0)
    coils: list[int] = field(default_factory=lambda: [1, 32])
    single_coil: float = 0.3
    noise: list[float] = _range(0.002, 0.06)
    max_phase: list[float] = _range(0.3, 3.14)
    ramp_cycles: float = 1.0
    patches: float = 0.4
    mask_kinds: list[str] = field(default_factory=lambda: [k.value for k in MaskKind])
    accelerations: list[float] = _range(2.0, 12.0)
    center_fractions: list[float] = _range(0.02, 0.16)

    def _validate(self) -> None:
        self._require(bool(self.sources), "sources", "a non-empty list of source files")
        self._require(self.procedural_weight >= 0, "procedural_weight", ">= 0")
        self._require(self.items_per_epoch >= 1, "items_per_epoch", "an integer >= 1")
        self._check_range("matrix", 16)
        self._require(self.max_aspect >= 1, "max_aspect", ">= 1")
        self._require(1 <= self.matrix_multiple <= self.matrix[0], "matrix_multiple",
                      "an integer in [1, the smallest matrix]")
        self._check_range("zoom", 0, strict=True)
        self._require(self.rotation >= 0, "rotation", ">= 0")
        self._check_range("gamma", 0, strict=True)
        for name in ("remap", "nonmonotone", "invert", "single_coil", "patches"):
            self._require(0 <= getattr(self, name) <= 1, name, "a probability in [0, 1]")
        self._require(self.bias >= 0, "bias", ">= 0")
        self._check_range("blur", 0)
        self._check_range("coils", 1)
        self._check_range("noise", 0, strict=True)
        self._check_range("max_phase", 0)
        self._require(self.ramp_cycles >= 0, "ramp_cycles", ">= 0")
        kinds = [k.value for k in MaskKind]
        self._require(bool(self.mask_kinds) and all(k in kinds for k in self.mask_kinds),
                      "mask_kinds", "a non-empty list of " + ", ".join(kinds))
        self._check_range("accelerations", 1, strict=True)
        self._check_range("center_fractions", 0, strict=True)
        self._require(self.center_fractions[1] < 1, "center_fractions", "fractions in (0, 1)")

    def _check_range(self, name: str, low: float, strict: bool = False) -> None:
        values = getattr(self, name)
        bound = f"> {low}" if strict else f">= {low}"
        ok = len(values) == 2 and all(v > low if strict else v >= low for v in values)
        self._require(ok, name, f"[min, max] with both {bound}")
        self._require(values[0] <= values[1], name, "[min, max] with min <= max")


@dataclass
class DataConfig(Section):
    """Where the data are and how they are batched (key ``data``).

    Attributes
    ----------
    train, val
        fastMRI-format HDF5 files or folders (a single path is read as a one-item list). The
        training loop requires ``train`` or ``synthetic`` (or both, mixed); ``val`` may be
        empty (no validation). Files may mix coil counts (single- and multi-coil).
    synthetic
        The on-the-fly domain-randomised generator (:class:`SyntheticConfig`), or ``None``.
    crop
        Training crop of the readout (image rows, > 0), or ``None`` for the full size.
    batch_size
        Slices per optimisation step (>= 1).
    num_workers
        DataLoader worker processes (>= 0).
    """

    _prefix: ClassVar[str] = "data."
    train: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    synthetic: SyntheticConfig | None = None
    crop: int | None = None
    batch_size: int = 1
    num_workers: int = 0

    def _validate(self) -> None:
        self._require(self.crop is None or self.crop > 0, "crop", "null or an integer > 0")
        self._require(self.batch_size >= 1, "batch_size", "an integer >= 1")
        self._require(self.num_workers >= 0, "num_workers", "an integer >= 0")


@dataclass
class LossConfig(Section):
    """Loss (key ``loss``): supervised image loss, or self-supervised (SSDU) k-space loss.

    ``kind: supervised``: ``ssim * (1 - SSIM) + l1 * L1 + mse * MSE`` over the RIM steps
    against the fully sampled reference (:func:`mrirecon.train.losses.reconstruction_loss`).
    ``kind: ssdu``: self-supervision via data undersampling (Yaman et al., MRM 2020): each item's
    acquired lines split into Theta (the model's input) and Lambda (``ssdu_fraction`` of them),
    and the loss is :func:`mrirecon.train.losses.kspace_loss` on Lambda, plus
    ``ssdu_theta_weight`` times the same loss on Theta, averaged like the supervised one over
    the steps; the training files are undersampled acquisitions (fastMRI files with a
    ``mask``) and need no reference.

    The Theta term is ours, not Yaman et al.'s: their unrolled network ends each iteration in
    an exact data-consistency solve, which holds the estimate to the Theta samples; a RIM's
    data consistency is only a gradient it reads, so with the Lambda loss alone nothing keeps
    the estimate on the samples it was given. Measured (1-coil EPI head, 3x acquisitions,
    RIM 4 steps, 200 steps of batch 4): Lambda alone 10.8 dB against zero-filled's 20.2 on
    held-out slices, Lambda + 0.5 Theta 29.0 dB, supervised 28.8 dB.

    Attributes
    ----------
    kind
        ``supervised`` or ``ssdu``.
    ssim, l1, mse
        Non-negative weights of the supervised loss, not all zero.
    steps
        ``"all"`` (the mean over every step's estimate) or ``"last"`` (the returned estimate
        only).
    ssdu_fraction
        SSDU: the fraction (in (0, 1)) of the acquired samples drawn into Lambda.
    ssdu_split
        SSDU: how Lambda is drawn outside the centre, ``uniform`` or ``gaussian`` (variable
        density, favouring the centre).
    ssdu_theta_weight
        SSDU: weight (>= 0) of the k-space loss on Theta, the samples the model is given.
    """

    _prefix: ClassVar[str] = "loss."
    kind: str = "supervised"
    ssim: float = 1.0
    l1: float = 0.0
    mse: float = 0.0
    steps: str = "all"
    ssdu_fraction: float = 0.4
    ssdu_split: str = "uniform"
    ssdu_theta_weight: float = 0.5

    def _validate(self) -> None:
        self._require(self.kind in LOSS_KINDS, "kind", " or ".join(LOSS_KINDS))
        self._require(self.ssim >= 0, "ssim", ">= 0")
        self._require(self.l1 >= 0, "l1", ">= 0")
        self._require(self.mse >= 0, "mse", ">= 0")
        self._require(self.ssim + self.l1 + self.mse > 0, "l1",
                      "> 0 when loss.ssim and loss.mse are 0")
        self._require(self.steps in ("all", "last"), "steps", "'all' or 'last'")
        self._require(0 < self.ssdu_fraction < 1, "ssdu_fraction", "a fraction in (0, 1)")
        self._require(self.ssdu_split in SPLIT_KINDS, "ssdu_split", " or ".join(SPLIT_KINDS))
        self._require(self.ssdu_theta_weight >= 0, "ssdu_theta_weight", ">= 0")


@dataclass
class TrainConfig(Section):
    """Everything a training run needs; the top level of the YAML file.

    Attributes
    ----------
    model
        Registered model name (:data:`mrirecon.models.registry.REGISTRY`).
    model_config
        Overrides of the model's configuration; stored resolved (every field).
    data, mask, optim, loss
        Sections: :class:`DataConfig`, :class:`MaskConfig`, :class:`OptimConfig`,
        :class:`LossConfig`.
    out
        Run directory (configuration, checkpoints, logs).
    epochs, max_steps
        Training stops at whichever limit comes first (each ``None`` or >= 1, not both ``None``).
    max_minutes
        Wall-clock budget (> 0) after which the run checkpoints and stops, or ``None``.
    device
        ``auto`` (CUDA if present), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    amp
        Mixed precision on CUDA.
    seed
        Seed (>= 0) of initialisation and data order.
    val_every, log_every
        Validate / log every this many steps (>= 1).
    best_metric
        Validation metric that picks ``best.safetensors``: ``ssim`` (default) or ``psnr``
        (higher is better) or ``nmse`` (lower is better); ``kspace_loss`` (lower is better)
        when SSDU validates on undersampled files (the held-back k-space loss), which such a
        run selects by whatever is configured here.
    resume
        Checkpoint to resume from, or ``None``.
    init
        A checkpoint whose weights start a new run (fine-tuning), or ``None``; the model's
        architecture (``model_config``) is taken from it, except ``memory_free``, which is this
        configuration's, and the optimiser, schedule and step count start fresh. Ignored when
        resuming.
    """

    model: str = "irim.v1"
    model_config: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    out: str = "runs/train"
    epochs: int | None = 10
    max_steps: int | None = None
    max_minutes: float | None = None
    device: str = "auto"
    amp: bool = False
    seed: int = 0
    val_every: int = 1000
    log_every: int = 50
    best_metric: str = "ssim"
    resume: str | None = None
    init: str | None = None

    def __post_init__(self) -> None:
        if self.model_config is None:
            self.model_config = {}
        super().__post_init__()
        self.model_config = _resolve_model_config(self.model, self.model_config)

    def _validate(self) -> None:
        self._require(self.epochs is not None or self.max_steps is not None, "epochs",
                      "set when max_steps is null")
        for name in ("epochs", "max_steps"):
            self._require(getattr(self, name) is None or getattr(self, name) >= 1, name,
                          "null or an integer >= 1")
        self._require(self.max_minutes is None or self.max_minutes > 0, "max_minutes",
                      "null or > 0")
        self._require(_DEVICE.fullmatch(self.device) is not None, "device",
                      "auto, cpu, cuda, cuda:N or mps")
        self._require(0 <= self.seed < 2**63, "seed", "an integer from 0 to 2**63 - 1")
        self._require(self.best_metric in BEST_METRICS, "best_metric",
                      "ssim, psnr, nmse or kspace_loss")
        self._require(self.val_every >= 1, "val_every", "an integer >= 1")
        self._require(self.log_every >= 1, "log_every", "an integer >= 1")


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML configuration (or start from the defaults) and apply dotted overrides.

    Parameters
    ----------
    path
        YAML file holding a mapping of configuration keys, or ``None`` for the defaults.
    overrides
        ``key=value`` or ``section.key=value`` strings (``optim.lr=1e-4``,
        ``mask.accelerations=[4, 8]``, ``model_config.steps=4``); each value is parsed as
        YAML. They are applied in order after the file, so they win over it.

    Raises
    ------
    InputFileError
        The file is missing, unreadable, not valid YAML or not a mapping.
    InvalidParameterError
        A malformed override, an unknown key (the message lists the valid ones), a value of
        the wrong type or out of range.
    """
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as fh:
                loaded = yaml.safe_load(fh)
        except OSError as exc:
            raise InputFileError(path, f"cannot read configuration ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise InputFileError(path, "configuration is not UTF-8 text") from None
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            raise InputFileError(path, f"invalid YAML{line}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise InputFileError(path, "expected a mapping of configuration keys, got "
                                 f"{type(loaded).__name__}")
        tree = loaded or {}
    for item in overrides:
        _apply_override(tree, item)
    return config_from_dict(tree)


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a nested mapping (e.g. a checkpoint's)."""
    if not isinstance(data, Mapping):
        raise InvalidParameterError(f"configuration must be a mapping, got {data!r}")
    return build(TrainConfig, data)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The configuration as a nested dictionary of plain YAML/JSON values."""
    return plain(dataclasses.asdict(cfg))


def save_config(cfg: TrainConfig, path: str | os.PathLike) -> None:
    """Write ``cfg`` as YAML to ``path`` atomically, replacing it; :func:`load_config` reads it."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _apply_override(tree: dict[str, Any], item: str) -> None:
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(p.strip() for p in parts):
        raise InvalidParameterError(
            f"malformed override {item!r}; expected key=value, e.g. optim.lr=1e-4"
        )
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise InvalidParameterError(f"override {item!r}: value is not valid YAML") from None
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise InvalidParameterError(f"cannot set {key.strip()!r}: {where!r} is not a section")
        node = child
    node[parts[-1].strip()] = value


def _resolve_model_config(model: str, overrides: dict[str, Any]) -> dict[str, Any]:
    from mrirecon.models import registry  # imports torch: only when a config is validated

    return plain(registry.config_to_dict(registry.config_for(model, overrides)))
