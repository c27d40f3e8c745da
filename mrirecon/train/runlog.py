"""A run's records: ``log.csv``, TensorBoard when installed, and the progress callback.

``log.csv`` has the columns :data:`LOG_COLUMNS`: a row every ``log_every`` steps (and at the
last step) with the mean loss since the previous row, and a row per validation with its
metrics. Rows are appended and flushed one by one, so the file is whole at any moment; a
resumed run first drops the rows a killed run logged after its last save.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrirecon.fileutil import atomic_path

__all__ = ["LOG_COLUMNS", "RunLog"]

LOG_COLUMNS = ["step", "epoch", "loss", "lr", "seconds", "val_psnr", "val_ssim", "val_nmse",
               "val_kspace_loss"]


def _truncate_log(path: Path, step: int) -> None:
    """Drop the rows a killed run logged after its last saved step (atomically)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("step", "").isdigit()
                and int(r["step"]) <= step]
    with atomic_path(path, overwrite=True) as tmp, open(tmp, "w", newline="",
                                                         encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, LOG_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


class RunLog:
    """``log.csv`` (appended and flushed row by row), TensorBoard and progress events.

    Every process keeps the loss window and calls ``progress``; only an ``enabled`` one (rank
    0) writes files.

    Parameters
    ----------
    out
        The run folder.
    append
        Continue an existing ``log.csv`` (a resume into the same folder) instead of starting
        a new one.
    enabled
        Write ``log.csv`` (and TensorBoard); off on ranks other than 0.
    until
        With ``append``: the step the run resumes from; later rows are dropped first.
    every
        Write a loss row every this many steps.
    total
        The run's last step (always gets a loss row; reported in progress events).
    progress
        Called after every step with ``{"step", "total", "epoch", "loss", "lr", "masks"}`` and
        after each validation with ``{"step", "total", "epoch", "val"}``.
    """

    def __init__(self, out: Path, *, append: bool, enabled: bool, until: int = 0,
                 every: int = 1, total: int = 0,
                 progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.every, self.total, self.progress = every, total, progress
        self.window: list[float] = []
        self.last_loss = math.nan
        self.fh: Any = None
        self.writer: csv.DictWriter | None = None
        self.tb: Any = None
        if not enabled:
            return
        path = out / "log.csv"
        new = not (append and path.is_file())
        if not new:
            _truncate_log(path, until)
        self.fh = open(path, "w" if new else "a", newline="", encoding="utf-8")  # noqa: SIM115
        self.writer = csv.DictWriter(self.fh, LOG_COLUMNS)
        if new:
            self.writer.writeheader()
            self.fh.flush()
        with contextlib.suppress(Exception):  # optional: tensorboard may be absent
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(os.fspath(out / "tensorboard"))

    def row(self, **values: Any) -> None:
        """Write one row (missing columns empty) and its numbers to TensorBoard.

        Parameters
        ----------
        **values
            Column values; ``step`` is required.
        """
        if self.writer is None:
            return
        self.writer.writerow({k: values.get(k, "") for k in LOG_COLUMNS})
        self.fh.flush()
        if self.tb is not None:
            for k, v in values.items():
                if k not in ("step", "epoch") and v not in ("", None):
                    self.tb.add_scalar(k, v, values["step"])

    def step(self, step: int, epoch: int, loss: float, lr: float, seconds: float,
             masks: Any) -> None:
        """Record one optimiser step: a loss row when due, then the progress event.

        Parameters
        ----------
        step
            The step just taken (counting from 1).
        epoch
            Its epoch.
        loss
            Its batch loss.
        lr
            The learning rate it used.
        seconds
            The run's training time so far.
        masks
            This rank's batch of sampling masks (for the progress event).
        """
        self.window.append(loss)
        if step % self.every == 0 or step == self.total:
            self.last_loss = sum(self.window) / len(self.window)
            self.window.clear()
            self.row(step=step, epoch=epoch, loss=self.last_loss, lr=lr,
                     seconds=round(seconds, 3))
        if self.progress is not None:
            self.progress({"step": step, "total": self.total, "epoch": epoch, "loss": loss,
                           "lr": lr, "masks": masks})

    def validation(self, step: int, epoch: int, seconds: float,
                   val: dict[str, float]) -> None:
        """Write the row of one validation.

        Parameters
        ----------
        step
            The step validated.
        epoch
            Its epoch.
        seconds
            The run's training time so far.
        val
            ``{"psnr", "ssim", "nmse"}`` or ``{"kspace_loss"}``
            (:func:`~mrirecon.train.validation.validate`).
        """
        self.row(step=step, epoch=epoch, seconds=round(seconds, 3),
                 **{f"val_{k}": v for k, v in val.items()})

    def validated(self, step: int, epoch: int, val: dict[str, float]) -> None:
        """Report one validation to the progress callback.

        Parameters
        ----------
        step
            The step validated.
        epoch
            Its epoch.
        val
            Its metrics.
        """
        if self.progress is not None:
            self.progress({"step": step, "total": self.total, "epoch": epoch, "val": val})

    @property
    def loss(self) -> float:
        """The mean loss of the steps not yet in a row, or else the last row's."""
        if self.window:
            return sum(self.window) / len(self.window)
        return self.last_loss

    def close(self) -> None:
        """Close ``log.csv`` and TensorBoard."""
        if self.fh is not None:
            self.fh.close()
        if self.tb is not None:
            self.tb.close()
