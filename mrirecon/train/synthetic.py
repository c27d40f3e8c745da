"""The domain-randomised training generator: magnitude images -> undersampled k-space items.

:class:`SyntheticDataset` yields the same items as :class:`~mrirecon.train.dataset.SliceDataset`
(raw undersampled k-space, its mask and the fastMRI-style target), made on the fly from the
configured sources (:class:`~mrirecon.train.config.SyntheticConfig`). Item ``i`` of epoch ``e``
on rank ``r`` is a pure function of ``rng(seed, e, r, i)`` (:func:`mrirecon.sampling.seeding.rng`):
the same key gives a bit-identical item in any process, with any ``num_workers``, so a resumed
run is exact, and every epoch, rank and item differs.

Per item, in order (each knob in the config):

1. **structure**: a slice of a source (a volume along any axis, or an image of a stack), or a
   procedural image (:mod:`mrirecon.train.procedural`);
2. **contrast**: label maps get a random intensity per tissue; then gamma, monotone and
   non-monotone remaps and inversion (:mod:`mrirecon.train.augment`), a bias field and blur;
3. **geometry**: flips, rotations, scaling and shifts into a random non-square matrix;
4. **physics** (:mod:`mrirecon.physics.fields`, :func:`mrirecon.physics.simulate.measure`):
   1 to 32 coils (birdcage or surface loops at random positions, radii and phases; a single
   coil is one loop with its own shading), a smooth image phase (polynomial, plus linear ramps
   and sharp off-resonance-like patches), complex Gaussian noise over a wide SNR range; the
   target is the RSS of the noisy, fully sampled coil images (ESC magnitude for one coil);
5. **crop**: a window of ``crop`` readout rows (exact: the readout is fully sampled);
6. **sampling**: a mask of any kind the CLI offers, acceleration and centre fraction drawn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mrirecon.errors import InvalidParameterError
from mrirecon.physics.coils import birdcage_maps, loop_maps, rss
from mrirecon.physics.fields import patch_phase, polynomial_phase, ramp_phase
from mrirecon.physics.simulate import measure
from mrirecon.sampling import MaskKind, MaskSpec, make_mask
from mrirecon.sampling.seeding import rng as keyed_rng
from mrirecon.train import augment
from mrirecon.train.procedural import procedural_image
from mrirecon.train.sources import SliceBank, load_bank

__all__ = ["SyntheticDataset", "draw_maps", "draw_phase"]


def draw_maps(shape: tuple[int, int], coils: int, g: np.random.Generator) -> torch.Tensor:
    """Random coil maps ``(coils, y, x)`` complex64, scaled so the largest RSS is 1.

    Multi-coil: a rotated birdcage of random radius, or surface loops around a random ellipse
    with random spacing, sizes and phase offsets. One coil: a single loop at a random distance
    (its shading) with a random phase offset.
    """
    if coils == 1:
        angle, dist = g.uniform(0, 2 * math.pi), g.uniform(1.1, 3.0)
        centre = np.array([[dist * math.sin(angle), dist * math.cos(angle)]])
        maps = loop_maps(shape, centre, g.uniform(0.8, 3.0), g.uniform(0, 2 * math.pi, 1),
                         normalise=False)
    elif g.random() < 0.4:
        maps = birdcage_maps(shape, coils, radius=g.uniform(1.1, 2.5),
                             rotation=g.uniform(0, 2 * math.pi), normalise=False)
    else:
        base = np.sort(g.uniform(0, 2 * math.pi, coils)) if g.random() < 0.3 else \
            np.arange(coils) * 2 * math.pi / coils + g.uniform(0, 2 * math.pi)
        angles = base + g.normal(0, 0.1, coils)
        ay, ax = g.uniform(0.9, 1.6, 2)
        centres = np.stack([ay * np.sin(angles), ax * np.cos(angles)], axis=1)
        maps = loop_maps(shape, centres, g.uniform(0.3, 1.0, coils),
                         g.uniform(0, 2 * math.pi, coils), normalise=False)
    return (maps / rss(maps, dim=0).max()).to(torch.complex64)


def draw_phase(shape: tuple[int, int], g: np.random.Generator, *, max_phase: Any,
               ramp_cycles: float, patches: float) -> torch.Tensor:
    """A random smooth image phase.

    Polynomial (degree 1-3), plus a ramp (half the items) and off-resonance-like patches
    (probability ``patches``).
    """
    phase = polynomial_phase(shape, g, order=int(g.integers(1, 4)),
                             max_phase=augment.uniform(g, max_phase))
    if ramp_cycles > 0 and g.random() < 0.5:
        phase = phase + ramp_phase(shape, g, ramp_cycles)
    if g.random() < patches:
        phase = phase + patch_phase(shape, g, count=int(g.integers(1, 4)))
    return phase


def _multiple(side: int, m: int, low: int, high: int) -> int:
    """``side`` rounded down to a multiple of ``m``, or up when that falls below ``low``."""
    down = side - side % m
    return down if down >= low or down + m > high else down + m


class SyntheticDataset(Dataset):
    """Domain-randomised items (see the module docstring).

    Parameters
    ----------
    cfg
        A :class:`~mrirecon.train.config.SyntheticConfig`.
    seed, rank
        Base seed and distributed rank (keys of every item's generator).
    crop
        Readout rows kept (``None``: the full matrix).

    Raises
    ------
    InputFileError
        A source is missing, fails its SHA-256 or cannot be read (before any item is made).
    """

    def __init__(self, cfg: Any, *, seed: int = 0, rank: int = 0,
                 crop: int | None = None) -> None:
        self.cfg, self.seed, self.rank, self.epoch = cfg, int(seed), int(rank), 0
        self.crop = None if crop is None else int(crop)
        self.banks: list[SliceBank] = [load_bank(s.path, s.sha256, s.kind) for s in cfg.sources]
        weights = np.array([s.weight for s in cfg.sources] + [cfg.procedural_weight], float)
        self.weights = weights / weights.sum()

    def set_epoch(self, epoch: int) -> None:
        """Select the items of ``epoch`` (call before each epoch, in every process)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self.cfg.items_per_epoch)

    def domain(self) -> dict[str, Any]:
        """What this generator covers (recorded in checkpoints as their declared domain)."""
        c = self.cfg
        return {"coils": [int(c.coils[0]), int(c.coils[1])],
                "matrix": [int(c.matrix[0]), int(c.matrix[1])],
                "accelerations": [float(c.accelerations[0]), float(c.accelerations[1])],
                "center_fractions": [float(c.center_fractions[0]), float(c.center_fractions[1])],
                "mask_kinds": list(c.mask_kinds),
                "sources": [{"file": b.name, "sha256": s.sha256, "kind": s.kind}
                            for b, s in zip(self.banks, c.sources, strict=True)]
                + ([{"file": "procedural", "kind": "procedural"}]
                   if c.procedural_weight > 0 else [])}

    def _matrix(self, g: np.random.Generator) -> tuple[int, int]:
        low, high = (int(v) for v in self.cfg.matrix)
        rows = int(g.integers(low, high + 1))
        aspect = float(self.cfg.max_aspect)
        lo = max(low, int(math.ceil(rows / aspect)))
        hi = min(high, int(rows * aspect))
        cols = int(g.integers(lo, max(lo, hi) + 1))
        m = int(self.cfg.matrix_multiple)
        return _multiple(rows, m, low, high), _multiple(cols, m, low, high)

    def _magnitude(self, g: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray,
                                                                                  str]:
        c = self.cfg
        pick = int(g.choice(len(self.weights), p=self.weights))
        if pick == len(self.banks):
            image, name = procedural_image((256, 256), g), "procedural"
        else:
            bank = self.banks[pick]
            image, name = bank.slice(int(g.integers(len(bank.slices)))), bank.name
            image = augment.synthesise(image, g) if bank.kind == "labels" else \
                augment.normalise(image)
        image = augment.remap_contrast(image, g, gamma=c.gamma, remap=c.remap,
                                       nonmonotone=c.nonmonotone, invert=c.invert)
        image = augment.place(image, shape, g, zoom=tuple(c.zoom), rotation=c.rotation)
        image = image * augment.bias_field(shape, g, c.bias)
        image = augment.blur(image, augment.uniform(g, c.blur))
        return np.clip(image, 0, None), name

    def _coils(self, g: np.random.Generator) -> int:
        low, high = (int(v) for v in self.cfg.coils)
        if low == 1 and (high == 1 or g.random() < self.cfg.single_coil):
            return 1
        low = max(low, 2)
        return int(round(math.exp(g.uniform(math.log(low), math.log(high + 0.499)))))

    def _mask(self, g: np.random.Generator, shape: tuple[int, int]) -> tuple[Any, str, float]:
        c = self.cfg
        kind = MaskKind(c.mask_kinds[int(g.integers(len(c.mask_kinds)))])
        accel = augment.uniform(g, c.accelerations)
        if kind.needs_integer_acceleration:
            accel = float(max(2, round(accel)))
        fraction = min(augment.uniform(g, c.center_fractions), 0.7 / accel)
        seed = int(g.integers(2**32))
        try:
            return make_mask(MaskSpec(kind, accel, shape, fraction, seed=seed)), kind.value, accel
        except InvalidParameterError:  # the shape cannot reach R with that centre: fastMRI's
            spec = MaskSpec(MaskKind.RANDOM, accel, shape, None, seed=seed)
            return make_mask(spec), MaskKind.RANDOM.value, accel

    def __getitem__(self, i: int) -> dict[str, Any]:
        """Item ``i``: undersampled k-space, its mask and the target (module docstring)."""
        item, g = self._fully_sampled(i)
        kspace = item.pop("kspace")
        mask, kind, accel = self._mask(g, (kspace.shape[-2], kspace.shape[-1]))
        mask_t = torch.from_numpy(np.ascontiguousarray(mask.array))
        under = torch.where(mask_t, kspace, torch.zeros((), dtype=kspace.dtype))
        return {"kspace": under.to(torch.complex64).contiguous(), "mask": mask_t, **item,
                "acceleration": accel, "mask_seed": self.seed, "mask_kind": kind}

    def fully_sampled(self, i: int) -> dict[str, Any]:
        """Item ``i`` before undersampling (e.g. to write a calibration set).

        Keys ``kspace`` (complex128, fully sampled), ``target``, ``file``, ``slice``,
        ``crop_top`` and ``coils``; the same draws as ``self[i]`` up to the mask.
        """
        return self._fully_sampled(i)[0]

    def _fully_sampled(self, i: int) -> tuple[dict[str, Any], np.random.Generator]:
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} is out of range for {len(self)} items")
        c = self.cfg
        g = keyed_rng(self.seed, self.epoch, self.rank, int(i))
        shape = self._matrix(g)
        magnitude, source = self._magnitude(g, shape)
        coils = self._coils(g)
        maps = draw_maps(shape, coils, g)
        phase = draw_phase(shape, g, max_phase=c.max_phase, ramp_cycles=c.ramp_cycles,
                           patches=c.patches)
        image = torch.polar(torch.as_tensor(magnitude), phase.float())
        peak = float((torch.as_tensor(magnitude) * rss(maps, dim=0)).max())
        sigma = augment.uniform(g, c.noise, log=True) * max(peak, 1e-6)
        top = 0
        if self.crop is not None and self.crop < shape[0]:
            # a window of readout rows: cropping S x before the FFT is exactly cropping the
            # rows of F S x (the readout is fully sampled), and white noise stays white
            top = int(g.integers(shape[0] - self.crop + 1))
            rows = slice(top, top + self.crop)
            image, maps = image[rows], maps[:, rows]
        kspace, target = measure(image, maps, sigma, g)
        return {"kspace": kspace, "target": target.float().contiguous(),
                "file": f"synthetic/{source}", "slice": int(i), "crop_top": top,
                "coils": coils}, g
