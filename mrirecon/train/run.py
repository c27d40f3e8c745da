"""One training run: its folder, the state its steps share, and its saves.

Run folder ``cfg.out``: ``config.yaml`` (resolved configuration, written at start),
``last.safetensors`` (every validation, interrupt and at the end), ``best.safetensors`` (best
validation ``best_metric``: SSIM by default), ``state.pt`` (:mod:`mrirecon.train.state`) and
``log.csv`` (:mod:`mrirecon.train.runlog`). Only rank 0 writes.

``state.pt`` is written (atomically) before ``last.safetensors``: it is the commit point a
resume reads, so a run killed at any moment, even mid-write, resumes from the last complete
save; the killed write's temporary files are removed when the folder is opened again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mrirecon.errors import OutputError
from mrirecon.models.checkpoint import save_checkpoint
from mrirecon.train.config import BEST_METRICS, TrainConfig, config_to_dict, save_config
from mrirecon.train.loader import train_summary
from mrirecon.train.runlog import RunLog
from mrirecon.train.state import save_state

__all__ = ["NORMALISATION", "Run", "checkpoint_meta", "model_config", "run_folder"]

#: How model inputs are normalised (recorded in checkpoints).
NORMALISATION = "99th percentile of |A^H y| per slice"


def model_config(model: nn.Module, cfg: TrainConfig) -> Any:
    """What checkpoints record as the model's configuration.

    Parameters
    ----------
    model
        The trained model.
    cfg
        The run's configuration.

    Returns
    -------
    Any
        The model's own ``config`` (it may fill in entries, e.g. the cINN stores its frozen
        i-RIM's config) or else ``cfg.model_config``.
    """
    return getattr(model, "config", cfg.model_config)


def run_folder(cfg: TrainConfig, overwrite: bool, main: bool) -> Path:
    """Make the run folder ready (on rank 0) and return its path.

    It is checked, created, rid of a killed write's temporary files, and given
    ``config.yaml``. A folder holding only what a run writes before its first checkpoint
    (``config.yaml``, ``log.csv``: a run that failed early) blocks nothing: it is reused.

    Parameters
    ----------
    cfg
        The run's configuration (``out``, ``resume``).
    overwrite
        Allow a non-empty folder without ``cfg.resume``.
    main
        Whether this is rank 0 (the other ranks only get the path).

    Returns
    -------
    Path
        ``cfg.out``.

    Raises
    ------
    OutputError
        ``cfg.out`` is a file, or a folder holding results (any other file) without ``resume``
        or ``overwrite``.
    """
    out = Path(cfg.out)
    if not main:
        return out
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: run folder is a file")
    if cfg.resume is None and not overwrite and _holds_results(out):
        raise OutputError(f"{out}: run folder is not empty; pass --overwrite to replace it or "
                          "--resume to continue it")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.part*"):  # fileutil.atomic_path's temporary names
        with contextlib.suppress(OSError):
            stale.unlink()
    save_config(cfg, out / "config.yaml")
    return out


#: What a run writes before its first checkpoint: a folder holding only these has no results.
_BEFORE_FIRST_SAVE = ("config.yaml", "log.csv")


def _holds_results(out: Path) -> bool:
    """Whether ``out`` holds anything but a failed run's first files and temporary writes."""
    if not out.is_dir():
        return False
    return any(p.name not in _BEFORE_FIRST_SAVE and not p.name.startswith(".")
               or p.is_dir() for p in out.iterdir())


#: The files a run's results are kept in.
CHECKPOINTS = ("last.safetensors", "best.safetensors", "state.pt")


@contextlib.contextmanager
def removed_on_failure(out: Path, main: bool) -> Iterator[None]:
    """A run that fails before its first checkpoint leaves nothing of its own behind.

    The files that appear in ``out`` while the block runs are deleted when it raises (other
    than Ctrl-C, which saves a checkpoint) and no checkpoint exists, and so is ``out`` itself
    if the block made it. Files that were there before are left alone.
    """
    before = set(out.iterdir()) if out.is_dir() else None
    try:
        yield
    except Exception:
        if main and out.is_dir() and not any((out / name).exists() for name in CHECKPOINTS):
            for path in set(out.iterdir()) - (before or set()):
                if path.is_file():
                    with contextlib.suppress(OSError):
                        path.unlink()
            if before is None and not any(out.iterdir()):
                with contextlib.suppress(OSError):
                    out.rmdir()
        raise


def checkpoint_meta(cfg: TrainConfig, train_set: Any) -> dict[str, Any]:
    """What every checkpoint of the run records besides its step and metrics.

    Parameters
    ----------
    cfg
        The run's configuration.
    train_set
        The training set (:func:`mrirecon.train.loader.datasets`).

    Returns
    -------
    dict
        ``train_data``, ``domain``, ``mask``, ``normalisation`` and ``objective`` (the loss
        kind and, for SSDU, its split).
    """
    loss = config_to_dict(cfg)["loss"]
    objective = {"kind": cfg.loss.kind}
    if cfg.loss.kind == "ssdu":
        objective.update(fraction=loss["ssdu_fraction"], split=loss["ssdu_split"],
                         theta_weight=loss["ssdu_theta_weight"],
                         reference="Yaman et al., MRM 2020")
    return {"train_data": train_summary(train_set), "domain": train_set.domain(),
            "mask": config_to_dict(cfg)["mask"], "normalisation": NORMALISATION,
            "objective": objective}


@dataclass
class Run:
    """The state a run's steps, validations and saves share.

    Attributes
    ----------
    cfg
        The run's configuration.
    model
        The model being trained.
    optimizer
        Its optimiser.
    scheduler
        Its learning-rate scheduler.
    log
        The run's records.
    out
        The run folder.
    meta
        What every checkpoint records (:func:`checkpoint_meta`).
    total
        Steps in the run.
    steps_per_epoch
        Steps in one epoch.
    main
        Whether this process is rank 0 (the one that writes files).
    step
        Steps done.
    epoch
        The current epoch.
    best
        The best validation score so far (``best_metric``, larger is better) or ``None``.
    best_record
        ``{"step", "psnr", "ssim", "nmse"}`` of that validation or ``None``.
    val
        The latest validation metrics or ``None``.
    seconds_before
        Training time of the runs this one resumes.
    start
        :func:`time.perf_counter` when this process's part of the run started.
    """

    cfg: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    log: RunLog
    out: Path
    meta: dict[str, Any]
    total: int
    steps_per_epoch: int
    main: bool
    step: int = 0
    epoch: int = 0
    best: float | None = None
    best_record: dict[str, Any] | None = None
    val: dict[str, float] | None = None
    seconds_before: float = 0.0
    start: float = field(default_factory=time.perf_counter)

    @property
    def paths(self) -> dict[str, Path]:
        """``last``, ``best`` and ``state`` files of the run folder."""
        return {"last": self.out / "last.safetensors", "best": self.out / "best.safetensors",
                "state": self.out / "state.pt"}

    def elapsed(self) -> float:
        """Training seconds of the whole run, resumed parts included."""
        return self.seconds_before + time.perf_counter() - self.start

    def out_of_time(self) -> bool:
        """Whether this process has used up ``cfg.max_minutes``."""
        limit = self.cfg.max_minutes
        return limit is not None and time.perf_counter() - self.start > 60 * limit

    def optimise(self, loss: torch.Tensor) -> float:
        """One optimiser step on ``loss`` (with gradient clipping when configured).

        Parameters
        ----------
        loss
            The batch loss (:func:`mrirecon.train.objective.batch_loss`).

        Returns
        -------
        float
            The learning rate the step used.
        """
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return lr

    def _save_weights(self, path: Path) -> None:
        save_checkpoint(path, self.model, name=self.cfg.model,
                        config=model_config(self.model, self.cfg), overwrite=True,
                        extra={**self.meta, "step": self.step, "val_metrics": self.val})

    def save_last(self) -> None:
        """Save ``state.pt`` and then ``last.safetensors`` (rank 0 only)."""
        if not self.main:
            return
        # state.pt first: it is the commit point a resume reads (weights included)
        save_state(self.paths["state"], model=self.model, model_name=self.cfg.model,
                   optimizer=self.optimizer, scheduler=self.scheduler, step=self.step,
                   epoch=self.epoch, best=self.best,
                   extra={"seconds": self.elapsed(), "best_record": self.best_record})
        self._save_weights(self.paths["last"])

    def record_validation(self, val: dict[str, float]) -> None:
        """Keep the metrics of a validation of the current step; save the best.

        When they score better than every earlier validation on ``cfg.best_metric``, they
        become the best and ``best.safetensors`` is saved.

        Parameters
        ----------
        val
            ``{"psnr", "ssim", "nmse"}``, or ``{"kspace_loss"}`` on undersampled validation
            files (:func:`mrirecon.train.validation.validate`).
        """
        self.val = val
        score = BEST_METRICS[self.cfg.best_metric] * val[self.cfg.best_metric]
        if self.best is None or score > self.best:
            self.best, self.best_record = score, {"step": self.step, **val}
            self._save_weights(self.paths["best"])

    def checkpoints(self) -> dict[str, str]:
        """The run folder's saved files by kind (empty on ranks other than 0)."""
        return {k: str(p) for k, p in self.paths.items() if self.main and p.exists()}
