"""Training data: fastMRI-format HDF5 folders -> slices undersampled on the fly.

:class:`SliceDataset` indexes ``(file, slice)`` pairs from file metadata only
(:func:`~mrirecon.io.fastmri_h5.read_kspace` reads shapes and headers, not k-space). Each item
opens its file, reads one slice and closes it again (the lazy
:class:`~mrirecon.io.h5source.H5SliceSource`), so no h5py handle is ever shared between
DataLoader workers and the dataset pickles cheaply into them.

An item is *raw* undersampled k-space, its mask and the reference image, not model inputs:
coil maps and normalisation are made by :func:`mrirecon.recon.learned.prepare_batch` on the
collated batch, exactly as at inference. Layouts follow the table in :mod:`mrirecon.data`.

Masks (STYLE item 9: explicit ``SeedSequence`` seeds, stable across processes and ranks)
----------------------------------------------------------------------------------------
- ``train=False`` (validation): one mask per file, the one ``mrirecon reconstruct --seed S``
  draws (:func:`mrirecon.sampling.draw_mask`, seed :func:`~mrirecon.sampling.seed_from_name`
  of the file name and ``seed``), at the first acceleration; no crop. With ``val_repeats=K``
  every slice appears K times, with the masks of seeds ``seed, ..., seed + K - 1`` (the masks
  ``mrirecon evaluate --mask-repeats K`` scores); items carry their ``mask_seed``.
- ``train=True``: per item, a generator ``rng(seed, epoch, rank, index)``
  (:func:`mrirecon.sampling.seeding.rng`) picks the acceleration from ``accelerations``, the
  crop offset and the mask seed. Ranks, epochs and items differ; DataLoader workers never load
  the same item in an epoch, so keying by the item index already keeps their masks distinct,
  and an item gets the same mask whichever worker loads it, which keeps a resumed run exact
  with any ``num_workers``. Call :meth:`SliceDataset.set_epoch` each epoch.

Random crops along the readout
------------------------------
``ky`` (rows) is the fully sampled readout, so a window of ``crop`` image rows is exact: inverse
FFT along ``ky``, keep the rows, FFT back; the zero-filled image of the cropped k-space is the
crop of the zero-filled image, and the target's rows are cropped identically. The mask is drawn
for the cropped shape afterwards. Crops are only made when the recon size
(:func:`~mrirecon.recon.base.recon_size`) equals the k-space size, because the model output is
the full-grid image centre-cropped to the recon size; otherwise items keep their full size.

Self-supervised items (SSDU, ``ssdu=SsduSplit(...)``)
-----------------------------------------------------
The files are undersampled acquisitions that carry their ``mask`` (fastMRI test files,
converted raw data); no reference is needed or read. Each item is the acquired k-space as
``kspace``, its mask split (:func:`~mrirecon.sampling.ssdu.split_mask`) into the input part
Theta as ``mask`` and the loss part Lambda as ``loss_mask``: in training a new split per item
and epoch from ``rng(seed, epoch, rank, index)`` keys (resume-exact, like the masks), in
validation one fixed split per slice from the file name. A fully sampled file is refused in
training (train it supervised instead). Validation files are all undersampled (then
:attr:`SliceDataset.undersampled` is true: validation scores the held-back k-space loss on
Lambda) or all fully sampled (scored against their references as usual).

Batching
--------
Files may differ in image size; items of different shapes cannot be stacked, so use ``crop``
(with equal ``kx`` and recon sizes) or ``batch_size=1``. :func:`collate` stacks items and
says which files clash when shapes differ. Masks are stacked per item, ``(n, 1 | ky, kx)``:
in training they differ between items, so the loop applies
:func:`~mrirecon.recon.learned.prepare_batch` per distinct mask (or per item).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mrirecon.data import KSpace
from mrirecon.errors import InputFileError, InvalidParameterError
from mrirecon.io.fastmri_h5 import preferred_targets, read_kspace
from mrirecon.recon.base import recon_size
from mrirecon.sampling import (
    Mask,
    MaskKind,
    MaskOptions,
    MaskSpec,
    draw_mask,
    make_mask,
    seed_from_name,
)
from mrirecon.sampling.seeding import rng
from mrirecon.sampling.ssdu import split_mask

__all__ = ["SliceDataset", "SsduSplit", "collate", "find_files"]


@dataclass(frozen=True)
class SsduSplit:
    """How SSDU items split their acquired mask (``loss.ssdu_fraction``, ``loss.ssdu_split``)."""

    fraction: float = 0.4
    kind: str = "uniform"

    def split(self, mask: np.ndarray, seed: int, *keys: int) -> tuple[np.ndarray, np.ndarray]:
        """``(theta, lam)`` of ``mask`` for the seed and keys."""
        parts = split_mask(mask, seed, *keys, loss_fraction=self.fraction, kind=self.kind)
        return parts.theta, parts.lam


def find_files(paths: Iterable[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """Find fastMRI files under ``paths``: files as given, folders searched for ``*.h5``.

    Returns the sorted, de-duplicated list. Raises :class:`~mrirecon.errors.InputFileError`
    for a path that does not exist or when no file is found at all.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: set[Path] = set()
    given = [Path(p) for p in paths]
    for path in given:
        if path.is_dir():
            found.update(p for p in path.rglob("*.h5") if p.is_file())
        elif path.exists():
            found.add(path)
        else:
            raise InputFileError(path, "file or folder not found")
    if not found:
        where = ", ".join(str(p) for p in given) or "(no paths given)"
        raise InputFileError(where, "no .h5 files found")
    return sorted(found)


class SliceDataset(Dataset):
    """Slices of fastMRI-format files, undersampled on the fly (see the module docstring).

    Parameters
    ----------
    files
        fastMRI k-space files (see :func:`find_files`), fully sampled; single- and multi-coil
        files may be mixed (training batches are ragged, see :func:`collate`).
    accelerations
        Training draws one per item; validation uses the first.
    center_fractions
        One per acceleration; ``None`` for fastMRI's ``0.32 / R``.
    mask_kind
        A :class:`~mrirecon.sampling.MaskKind` or its value.
    train
        Random per-item masks and crops (``True``) or the deterministic per-file validation
        mask (``False``).
    seed
        Base seed of every mask.
    crop
        Rows of the random readout crop (training only; ``None`` or ``>= ky``: no crop).
    rank
        This process's rank in distributed training (part of every training mask's seed;
        passed explicitly, so DataLoader workers need no process group).
    val_repeats
        Validation only: masks per file and acceleration (seeds ``seed`` ...
        ``seed + val_repeats - 1``); item ``r * n_slices + i`` is slice item ``i`` under mask
        ``r``, which is seed ``seed + r % val_repeats`` at ``val_accelerations[r // val_repeats]``.
    val_accelerations
        Validation only: the accelerations scored (default: the first of ``accelerations``).
    ssdu
        Self-supervised items from undersampled files (see the module docstring), or ``None``.

    Items are dicts: ``kspace`` complex64 ``(coils, ky, kx)`` (zero where not sampled),
    ``mask`` bool ``(1 | ky, kx)``, ``target`` float32 ``(rows, cols)`` (the file's target in
    :func:`~mrirecon.io.fastmri_h5.preferred_targets` order, else the RSS of the fully sampled
    image, centre-cropped to the recon size and then cropped like the k-space), ``file`` (str),
    ``slice`` (int), ``acceleration`` (float, requested), ``crop_top`` (first kept image
    row; 0 without a crop), ``mask_seed`` (validation: the seed of the file's mask; training:
    the base ``seed``), ``mask_kind`` and ``coils``: the keys of
    :class:`~mrirecon.train.synthetic.SyntheticDataset` items, so the two mix in one batch.
    """

    def __init__(self, files: Sequence[str | os.PathLike], *,
                 accelerations: Sequence[float] = (4,),
                 center_fractions: Sequence[float] | None = None,
                 mask_kind: MaskKind | str = "random", train: bool, seed: int = 0,
                 crop: int | None = None, rank: int = 0, val_repeats: int = 1,
                 val_accelerations: Sequence[float] | None = None,
                 ssdu: SsduSplit | None = None) -> None:
        self.files = [Path(f) for f in files]
        if not self.files:
            raise InvalidParameterError("SliceDataset needs at least one file")
        self.accelerations = tuple(float(a) for a in accelerations)
        if not self.accelerations:
            raise InvalidParameterError("accelerations must hold at least one value")
        if center_fractions is not None and len(center_fractions) != len(self.accelerations):
            raise InvalidParameterError(
                f"{len(center_fractions)} centre fractions for {len(self.accelerations)} "
                "accelerations; give one per acceleration (or none for 0.32 / R)")
        self.center_fractions = None if center_fractions is None else tuple(
            float(c) for c in center_fractions)
        self.mask_kind = MaskKind(mask_kind)
        self.train, self.seed, self.epoch, self.rank = bool(train), int(seed), 0, int(rank)
        if crop is not None and int(crop) < 1:
            raise InvalidParameterError(f"crop must be a positive number of rows, got {crop}")
        self.crop = None if crop is None else int(crop)
        if int(val_repeats) < 1:
            raise InvalidParameterError(f"val_repeats must be >= 1, got {val_repeats}")
        self.val_repeats = int(val_repeats)
        self.val_accelerations = tuple(float(a) for a in (val_accelerations
                                                          or self.accelerations[:1]))
        self.repeats = 1 if self.train else self.val_repeats * len(self.val_accelerations)
        fractions = self.center_fractions or (None,) * len(self.accelerations)
        for accel, fraction in zip(self.accelerations, fractions, strict=True):
            MaskSpec(self.mask_kind, accel, (1, 1), fraction)  # fail early on a bad spec
        self.kspaces = [read_kspace(f) for f in self.files]
        self.ssdu = ssdu
        #: Whether the files are undersampled acquisitions and items their SSDU splits.
        self.undersampled = self._check_files()
        if self.undersampled:
            self.repeats = 1
        self.index = [(i, s) for i, k in enumerate(self.kspaces) for s in range(k.n_slices)]
        self._val_masks: dict[tuple[int, int, float], Mask] = {}

    def _check_files(self) -> bool:
        """Whether the files are undersampled acquisitions for SSDU (else fully sampled)."""
        masked = [k.mask is not None for k in self.kspaces]
        if self.ssdu is None:
            for path, has_mask in zip(self.files, masked, strict=True):
                if has_mask:
                    raise InputFileError(path, "carries its own sampling mask (an undersampled "
                                         "acquisition); supervised training needs fully "
                                         "sampled k-space: learn from it with loss.kind=ssdu")
            return False
        if self.train or any(masked):
            for path, has_mask in zip(self.files, masked, strict=True):
                if not has_mask:
                    raise InputFileError(path, _fully_sampled_message(self.train))
        for path, k in zip(self.files, self.kspaces, strict=True):
            if k.mask is not None:  # a mask too sparse to split fails here, not in a worker
                try:
                    self.ssdu.split(np.asarray(k.mask, dtype=bool), self.seed)
                except InvalidParameterError as exc:
                    raise InputFileError(path, str(exc)) from None
        return any(masked)

    def set_epoch(self, epoch: int) -> None:
        """Select the training masks of ``epoch`` (call before each epoch, in every process)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.index) * self.repeats

    def _locate(self, i: int) -> tuple[int, int]:
        """``(repeat, slice item)`` of item ``i``.

        Item ``r * len(index) + j`` is slice ``j`` under validation mask ``r``.
        """
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range for {len(self)} slices")
        return divmod(i % len(self), len(self.index))

    def volume_of(self, i: int) -> tuple[int, int]:
        """``(file index, repeat)`` of item ``i``: the volume it is scored in."""
        repeat, j = self._locate(i)
        return self.index[j][0], repeat

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self.undersampled:
            return self._ssdu_item(i)
        repeat, i = self._locate(i)
        f, s = self.index[i]
        kspace, path = self.kspaces[f], self.files[f]
        full = torch.from_numpy(kspace.slice(s))
        target = _target(kspace, s, full)
        top = 0
        if self.train:
            g = rng(self.seed, self.epoch, self.rank, i)
            pick = int(g.integers(len(self.accelerations)))
            accel = self.accelerations[pick]
            cf = None if self.center_fractions is None else self.center_fractions[pick]
            ky = full.shape[-2]
            if self.crop is not None and self.crop < ky and recon_size(kspace) == full.shape[-2:]:
                top = int(g.integers(ky - self.crop + 1))
                full = crop_rows(full, top, self.crop)
                target = target[top : top + self.crop]
            spec = MaskSpec(self.mask_kind, accel, (full.shape[-2], full.shape[-1]), cf,
                            seed=int(g.integers(2**32)))
            mask = make_mask(spec).array
        else:
            accel = self.val_accelerations[repeat // self.val_repeats]
            seed = self.seed + repeat % self.val_repeats
            mask = self._validation_mask(f, seed, accel).array
        mask_t = torch.from_numpy(np.ascontiguousarray(mask))
        under = torch.where(mask_t, full, torch.zeros((), dtype=full.dtype))
        return {"kspace": under, "mask": mask_t, "target": target, "file": str(path),
                "slice": s, "acceleration": accel, "crop_top": top,
                "mask_seed": self.seed + repeat % self.val_repeats,
                "mask_kind": self.mask_kind.value, "coils": int(under.shape[0])}

    def _ssdu_item(self, i: int) -> dict[str, Any]:
        """An acquired slice with its mask split into Theta (``mask``) and Lambda."""
        _, i = self._locate(i)
        f, s = self.index[i]
        kspace, path = self.kspaces[f], self.files[f]
        assert self.ssdu is not None and kspace.mask is not None  # undersampled says so
        acquired = np.asarray(kspace.mask, dtype=bool)
        data = torch.from_numpy(kspace.slice(s))
        top = 0
        if self.train:
            g = rng(self.seed, self.epoch, self.rank, i)
            ky = data.shape[-2]
            if (self.crop is not None and self.crop < ky and acquired.shape[0] == 1
                    and recon_size(kspace) == data.shape[-2:]):
                top = int(g.integers(ky - self.crop + 1))
                data = crop_rows(data, top, self.crop)
            theta, lam = self.ssdu.split(acquired, self.seed, self.epoch, self.rank, i)
        else:
            theta, lam = self.ssdu.split(acquired, seed_from_name(path.name, self.seed), s)
        data = torch.where(torch.from_numpy(acquired), data, torch.zeros((), dtype=data.dtype))
        accel = acquired.size / max(int(acquired.sum()), 1)
        return {"kspace": data, "mask": torch.from_numpy(np.ascontiguousarray(theta)),
                "loss_mask": torch.from_numpy(np.ascontiguousarray(lam)), "file": str(path),
                "slice": s, "acceleration": accel, "crop_top": top, "mask_seed": self.seed,
                "mask_kind": "acquired", "coils": int(data.shape[0])}

    def _validation_mask(self, f: int, seed: int, accel: float) -> Mask:
        if (f, seed, accel) not in self._val_masks:
            cf = None
            if self.center_fractions is not None and accel in self.accelerations:
                cf = self.center_fractions[self.accelerations.index(accel)]
            options = MaskOptions(kind=self.mask_kind, acceleration=accel,
                                  center_fraction=cf, seed=seed)
            self._val_masks[f, seed, accel] = draw_mask(self.kspaces[f].shape[-2:], options,
                                                          self.files[f].name)
        return self._val_masks[f, seed, accel]

    def domain(self) -> dict[str, Any]:
        """What these files cover (a checkpoint's declared domain).

        See :mod:`mrirecon.models.domain`. Undersampled (SSDU) files declare the accelerations
        their own masks achieve and no mask kind (they are as acquired).
        """
        coils = [k.n_coils for k in self.kspaces]
        sides = [side for k in self.kspaces for side in k.shape[-2:]]
        accels, kinds = list(self.accelerations), [self.mask_kind.value]
        if self.undersampled:
            accels = [k.mask.size / max(int(np.count_nonzero(k.mask)), 1)
                      for k in self.kspaces if k.mask is not None]
            kinds = []
        return {"coils": [min(coils), max(coils)], "matrix": [min(sides), max(sides)],
                "accelerations": [round(min(accels), 4), round(max(accels), 4)],
                "mask_kinds": kinds, "sources": [{"file": p.name} for p in self.files]}


def _fully_sampled_message(train: bool) -> str:
    if train:
        return ("is fully sampled (it has no mask): SSDU (loss.kind=ssdu) learns from "
                "undersampled acquisitions that carry their mask; train on fully sampled "
                "files with loss.kind=supervised instead")
    return ("is fully sampled while other validation files carry masks; give data.val "
            "either all fully sampled (scored against references) or all undersampled "
            "(held-back k-space loss)")


def crop_rows(kspace: torch.Tensor, top: int, rows: int) -> torch.Tensor:
    """k-space ``(..., ky, kx)`` of image rows ``top : top + rows``.

    Exact, since ``ky`` is fully sampled. Centred orthonormal 1-D transforms along ``ky``, as in
    :func:`mrirecon.physics.fft2c`.
    """
    image = torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(kspace, dim=-2), dim=-2,
                                              norm="ortho"), dim=-2)
    image = image[..., top : top + rows, :]
    return torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(image, dim=-2), dim=-2,
                                            norm="ortho"), dim=-2).contiguous()


def collate(items: Sequence[dict[str, Any]], ragged: bool = False) -> dict[str, Any]:
    """Stack items into a batch: tensors gain a leading axis, other fields become lists.

    Items whose tensors differ in shape (coil counts, matrices) raise
    :class:`~mrirecon.errors.InvalidParameterError` naming the files, or with ``ragged`` stay a
    list of tensors (the training loop runs item by item anyway).
    """
    if not items:
        raise InvalidParameterError("cannot collate an empty batch")
    batch: dict[str, Any] = {}
    for key, first in items[0].items():
        values = [item[key] for item in items]
        if isinstance(first, torch.Tensor):
            shapes = [tuple(v.shape) for v in values]
            if len(set(shapes)) > 1 and ragged:
                batch[key] = values
                continue
            if len(set(shapes)) > 1:
                seen = ", ".join(f"{Path(it['file']).name}[{it['slice']}] {sh}"
                                 for it, sh in zip(items, shapes, strict=True))
                raise InvalidParameterError(
                    f"cannot batch {key} of different shapes ({seen}); set a crop or use "
                    "batch_size 1")
            batch[key] = torch.stack(values)
        else:
            batch[key] = values
    return batch


def _target(kspace: KSpace, s: int, full: torch.Tensor) -> torch.Tensor:
    """Reference image of slice ``s``, centre-cropped to the recon size (float32)."""
    from mrirecon.padding import center_crop
    from mrirecon.physics import ifft2c, rss

    for name in preferred_targets(single_coil=not kspace.is_multicoil):
        if name in kspace.targets:
            image = torch.from_numpy(np.asarray(kspace.targets[name][s], dtype=np.float32))
            break
    else:
        image = rss(ifft2c(full), dim=-3).float()
    rows, cols = recon_size(kspace)
    size = (min(rows, image.shape[-2]), min(cols, image.shape[-1]))
    return center_crop(image, size).contiguous()

