"""The training data a run iterates: HDF5 slices and/or generated items, epoch by epoch.

The data order of epoch ``e`` is a :class:`~torch.utils.data.DistributedSampler` permutation
seeded by ``(seed, e)`` (each rank its own share), and the datasets seed each item's mask by
``(seed, epoch, rank, index)``, not by the DataLoader worker, so any ``num_workers`` gives the
same batches and a run resumed mid-epoch skips exactly the items already done.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler

from mrirecon.errors import InvalidParameterError
from mrirecon.models.domain import merge as merge_domains
from mrirecon.train.config import TrainConfig
from mrirecon.train.dataset import SliceDataset, SsduSplit, collate, find_files
from mrirecon.train.synthetic import SyntheticDataset

__all__ = ["EpochLoader", "Mixture", "datasets", "train_summary"]


class Mixture(ConcatDataset):
    """HDF5 slices and generated items in one training set (each keeps its own seeding)."""

    def set_epoch(self, epoch: int) -> None:
        """Select every part's items of ``epoch``.

        Parameters
        ----------
        epoch
            The epoch about to start.
        """
        for part in self.datasets:
            part.set_epoch(epoch)  # type: ignore[attr-defined]

    def domain(self) -> dict[str, Any]:
        """What the parts cover together (:func:`mrirecon.models.domain.merge`)."""
        return merge_domains([part.domain() for part in self.datasets])  # type: ignore


def datasets(cfg: TrainConfig, rank: int) -> tuple[Any, SliceDataset | None]:
    """The training set and (on rank 0, when configured) the validation set.

    Parameters
    ----------
    cfg
        The run's configuration (``data`` and ``mask`` sections).
    rank
        This process's rank (seeds its masks; only rank 0 validates).

    Returns
    -------
    tuple
        The training set (a :class:`SliceDataset`, a
        :class:`~mrirecon.train.synthetic.SyntheticDataset` or a :class:`Mixture` of both) and
        the validation :class:`SliceDataset` or ``None``.

    Raises
    ------
    MriReconError
        No training data configured, no files found, or a file that cannot be read.
    """
    if not cfg.data.train and cfg.data.synthetic is None:
        raise InvalidParameterError("data.train is empty and data.synthetic is not set; give "
                                    "training files or folders, or a generator")
    ssdu = None
    if cfg.loss.kind == "ssdu":
        if cfg.data.synthetic is not None:
            raise InvalidParameterError(
                "data.synthetic generates fully sampled items; SSDU (loss.kind=ssdu) learns "
                "from undersampled acquisitions in data.train: drop data.synthetic, or train "
                "on the generator with loss.kind=supervised")
        ssdu = SsduSplit(cfg.loss.ssdu_fraction, cfg.loss.ssdu_split)
    common: dict[str, Any] = {"accelerations": cfg.mask.accelerations,
              "center_fractions": cfg.mask.center_fractions, "mask_kind": cfg.mask.kind,
              "seed": cfg.mask.seed, "ssdu": ssdu}
    parts: list[Any] = []
    if cfg.data.train:
        parts.append(SliceDataset(find_files(cfg.data.train), train=True, crop=cfg.data.crop,
                                  rank=rank, **common))
    if cfg.data.synthetic is not None:
        parts.append(SyntheticDataset(cfg.data.synthetic, seed=cfg.mask.seed, rank=rank,
                                      crop=cfg.data.crop))
    train_set = parts[0] if len(parts) == 1 else Mixture(parts)
    val_set = (SliceDataset(find_files(cfg.data.val), train=False,
                            val_repeats=cfg.mask.val_repeats,
                            val_accelerations=cfg.mask.val_accelerations, **common)
               if cfg.data.val and rank == 0 else None)
    return train_set, val_set


def train_summary(train_set: Any) -> dict[str, Any]:
    """``train_data`` of checkpoints: HDF5 files and slices, and generated items per epoch.

    Parameters
    ----------
    train_set
        The training set (:func:`datasets`).

    Returns
    -------
    dict
        ``files`` and ``slices`` for HDF5 data, ``synthetic_items_per_epoch`` for generated.
    """
    parts: list[Any] = (list(train_set.datasets) if isinstance(train_set, ConcatDataset)
                        else [train_set])
    out: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, SliceDataset):
            out.update(files=[p.name for p in part.files], slices=len(part))
        else:
            out["synthetic_items_per_epoch"] = len(part)
    return out


class _EpochSampler:
    """Indices of one epoch (a :class:`DistributedSampler` permutation), minus those done."""

    def __init__(self, base: DistributedSampler) -> None:
        self.base, self.skip = base, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.base.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.base)[self.skip:])

    def __len__(self) -> int:
        return max(len(self.base) - self.skip, 0)


def _ragged_collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Training batches: items may differ in coils and matrix (each is run on its own)."""
    return collate(items, ragged=True)


class EpochLoader:
    """The training batches of one rank, one epoch at a time, resumable at any step.

    Parameters
    ----------
    train_set
        The training set (:func:`datasets`).
    cfg
        The run's configuration (``seed``, ``data.batch_size``, ``data.num_workers``).
    rank
        This process's rank.
    world
        The number of processes (each gets its own share of every epoch).
    device
        Where the model trains (pinned memory for CUDA).
    """

    def __init__(self, train_set: Any, cfg: TrainConfig, rank: int, world: int,
                 device: torch.device) -> None:
        self.train_set, self.batch_size = train_set, cfg.data.batch_size
        self.sampler = _EpochSampler(DistributedSampler(train_set, num_replicas=world,
                                                        rank=rank, shuffle=True,
                                                        seed=cfg.seed))
        self.loader = DataLoader(train_set, batch_size=cfg.data.batch_size,
                                 sampler=self.sampler, num_workers=cfg.data.num_workers,
                                 collate_fn=_ragged_collate, pin_memory=device.type == "cuda")
        #: Steps (batches) in one epoch of this rank.
        self.steps_per_epoch = math.ceil(len(self.sampler.base) / cfg.data.batch_size)

    def batches(self, step: int) -> tuple[int, DataLoader]:
        """The epoch of ``step`` and the batches from ``step`` to the end of that epoch.

        Parameters
        ----------
        step
            Steps done so far (the run's position).

        Returns
        -------
        tuple
            The epoch and an iterable of its remaining batches.
        """
        epoch = step // self.steps_per_epoch
        self.train_set.set_epoch(epoch)
        self.sampler.set_epoch(epoch, (step % self.steps_per_epoch) * self.batch_size)
        return epoch, self.loader
