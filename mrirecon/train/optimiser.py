"""The optimiser and its learning-rate schedule: AdamW, linear warm-up, then cosine or constant.

The run's length is fixed up front (:func:`total_steps`), so the cosine decays to zero at its
last step, and the schedule depends only on the step number: a resumed run continues it from
the scheduler state saved in ``state.pt``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from mrirecon.train.config import OptimConfig, TrainConfig

__all__ = ["build_optimiser", "lr_factor", "total_steps"]


def lr_factor(total: int, warmup: int, schedule: str) -> Callable[[int], float]:
    """The learning rate of each step as a fraction of the peak (a ``LambdaLR`` lambda).

    Parameters
    ----------
    total
        Steps in the run.
    warmup
        Steps of linear warm-up, ``(step + 1) / warmup``.
    schedule
        ``"cosine"`` (half a cosine from 1 to 0 over the steps after warm-up) or
        ``"constant"``.

    Returns
    -------
    callable
        ``step -> factor``.
    """
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def total_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """Steps in the run: ``max_steps`` or ``epochs`` whole epochs, whichever ends first.

    Parameters
    ----------
    cfg
        The run's configuration.
    steps_per_epoch
        Batches in one epoch of one rank.

    Returns
    -------
    int
        The number of optimiser steps.
    """
    return int(min(cfg.max_steps or math.inf, (cfg.epochs or math.inf) * steps_per_epoch))


def build_optimiser(model: nn.Module, optim: OptimConfig, total: int
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the model's parameters and its per-step learning-rate schedule.

    Parameters
    ----------
    model
        The model to train.
    optim
        The ``optim`` section of the configuration.
    total
        Steps in the run (:func:`total_steps`).

    Returns
    -------
    tuple
        The optimiser and the scheduler (step it after every optimiser step).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=optim.lr,
                                  weight_decay=optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(total, optim.warmup_steps, optim.schedule))
    return optimizer, scheduler
