"""Scan-specific adaptation: fine-tune a model on the one scan it reconstructs (ZS-SSL).

Zero-shot self-supervision (Yaman et al., ICLR 2022) with the SSDU objective of training
(:class:`~mrirecon.train.objective.KSpaceTarget`): the scan's acquired samples ``Omega`` are
split once into a hold-out set ``H`` (``holdout_fraction`` of them, outside the centre) and the
rest; every step splits the rest anew into Theta (the model's input) and Lambda (the loss), with
the seed keyed by the step, so a rerun adapts identically. Every ``check_every`` steps the model
reconstructs from the rest and is scored on ``H``, samples it never fitted; the weights with the
lowest hold-out loss are kept, and the adaptation stops early after ``patience`` checks without
a gain of at least ``min_gain`` (relative). Step 0 is the model as given, so a model the scan
does not improve is returned unchanged: early stopping is what keeps a model that already fits
from getting worse. The reconstruction then uses every acquired sample.

Per volume (default) every step fits one slice drawn from the volume and checks score up to
:data:`CHECK_SLICES` evenly spaced slices; per slice, each slice adapts its own copy from the
given weights.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mrirecon.data import KSpace, Volume
from mrirecon.errors import InvalidParameterError
from mrirecon.models.checkpoint import save_checkpoint
from mrirecon.physics import from_channels
from mrirecon.recon.learned import LearnedReconstructor, estimate
from mrirecon.recon.model_inputs import call_model, padded_inputs, run_model
from mrirecon.sampling.seeding import rng
from mrirecon.sampling.ssdu import split_mask
from mrirecon.train.objective import ssdu_inputs

__all__ = ["CHECK_SLICES", "AdaptOptions", "AdaptingReconstructor", "EarlyStopping", "adapt",
           "holdout_split"]

#: Slices a per-volume check scores (evenly spaced through the volume).
CHECK_SLICES = 4


@dataclass(frozen=True)
class AdaptOptions:
    """Settings of :func:`adapt` (``mrirecon reconstruct --adapt ...``).

    Attributes
    ----------
    steps
        Largest number of optimiser steps (>= 1).
    minutes
        Wall-clock budget (> 0) per adaptation, or ``None``.
    per_slice
        Adapt each slice on its own (else one adaptation per volume).
    lr
        Adam learning rate (> 0).
    loss_fraction
        Fraction of the non-hold-out samples drawn into Lambda each step (in (0, 1)).
    holdout_fraction
        Fraction of the acquired samples held out for early stopping (in (0, 1)).
    theta_weight
        Weight of the k-space loss on Theta (>= 0; :class:`~mrirecon.train.config.LossConfig`).
    check_every
        Steps between hold-out checks (>= 1).
    patience
        Checks without a gain before stopping (>= 1).
    min_gain
        Relative drop of the hold-out loss that counts as a gain (>= 0).
    seed
        Seed of the splits and of the slice order.
    """

    steps: int
    minutes: float | None = None
    per_slice: bool = False
    lr: float = 1e-4
    loss_fraction: float = 0.4
    holdout_fraction: float = 0.2
    theta_weight: float = 0.5
    check_every: int = 5
    patience: int = 3
    min_gain: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if int(self.steps) < 1:
            raise InvalidParameterError(f"--adapt takes a number of steps >= 1, got {self.steps}")
        if self.minutes is not None and not self.minutes > 0:
            raise InvalidParameterError(f"--adapt-minutes must be > 0, got {self.minutes}")
        checks = [("lr", self.lr > 0), ("loss_fraction", 0 < self.loss_fraction < 1),
                  ("holdout_fraction", 0 < self.holdout_fraction < 1),
                  ("theta_weight", self.theta_weight >= 0), ("check_every", self.check_every >= 1),
                  ("patience", self.patience >= 1), ("min_gain", self.min_gain >= 0)]
        for name, ok in checks:
            if not ok:
                what = {"lr": "--adapt-lr", "min_gain": "--adapt-min-gain"}.get(
                    name, f"adaptation {name}")
                raise InvalidParameterError(f"{what} is out of range: {getattr(self, name)}")

    def record(self) -> dict[str, Any]:
        """The settings as provenance."""
        return {"steps": int(self.steps), "minutes": self.minutes,
                "per": "slice" if self.per_slice else "volume", "lr": self.lr,
                "loss_fraction": self.loss_fraction, "holdout_fraction": self.holdout_fraction,
                "theta_weight": self.theta_weight, "check_every": self.check_every,
                "patience": self.patience, "min_gain": self.min_gain, "seed": self.seed}


@dataclass
class _Scan:
    """The acquired k-space of the slices adapted on, and its fixed hold-out split."""

    kspace: torch.Tensor  # (n, coils, ky, kx), zero where not sampled
    rest: torch.Tensor  # Omega minus the hold-out set
    holdout: torch.Tensor

    def check_loss(self, model: nn.Module, slices: list[int]) -> float:
        """Mean k-space loss on the hold-out set of the estimates from the rest."""
        model.eval()
        total = 0.0
        with torch.no_grad():
            for s in slices:
                inputs, target = ssdu_inputs(self.kspace[s : s + 1], self.rest, self.holdout)
                total += float(target.loss(run_model(model, inputs), steps="last"))
        model.train()
        return total / len(slices)


class EarlyStopping:
    """The rule :func:`adapt` keeps weights and stops by, one hold-out check at a time.

    A check whose loss is below the kept one's by at least ``min_gain`` (relative) is kept and
    resets the count; any other adds one, and after ``patience`` of them the adaptation stops.
    ``scripts/bench/adapt_replay.py`` replays it on a trace's recorded checks.
    """

    def __init__(self, first: float, min_gain: float, patience: int) -> None:
        self.best_loss, self.best_step, self.stale = first, 0, 0
        self.min_gain, self.patience = min_gain, patience

    def update(self, step: int, loss: float) -> bool:
        """Record the check at ``step``; whether its weights are now the kept ones."""
        if loss < self.best_loss * (1 - self.min_gain):
            self.best_loss, self.best_step, self.stale = loss, step, 0
            return True
        self.stale += 1
        return False

    @property
    def done(self) -> bool:
        """``patience`` checks in a row without a gain."""
        return self.stale >= self.patience


def _split(mask: torch.Tensor, fraction: float, seed: int,
           *keys: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(theta, lam)`` of a mask as tensors on its device."""
    parts = split_mask(mask.cpu().numpy().astype(bool), seed, *keys, loss_fraction=fraction)
    return (torch.as_tensor(parts.theta, device=mask.device),
            torch.as_tensor(parts.lam, device=mask.device))


def holdout_split(mask: torch.Tensor, options: AdaptOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rest, holdout)``: the fixed split of the acquired ``mask`` that :func:`adapt` checks on.

    Raises
    ------
    InvalidParameterError
        A mask with too few lines outside its centre to hold any out.
    """
    return _split(mask, options.holdout_fraction, int(options.seed), 0)


def adapt(model: nn.Module, kspace: torch.Tensor, mask: torch.Tensor,
          options: AdaptOptions, *,
          on_check: Callable[[int, dict[str, Any], nn.Module], None] | None = None,
          ) -> tuple[nn.Module, dict[str, Any]]:
    """Fine-tune a copy of ``model`` on undersampled ``kspace`` (see the module docstring).

    Parameters
    ----------
    model
        A RIM or i-RIM (left unchanged).
    kspace
        Acquired k-space ``(n, coils, ky, kx)``, zero where not sampled, on the model's device.
    mask
        Its sampling mask ``Omega``, bool ``(1 | ky, kx)``.
    options
        Steps, budget and splits; ``options.per_slice`` is the caller's to honour (call once
        per slice).
    on_check
        Called after every hold-out check with the step, the weights kept so far (what
        ``options.steps`` equal to that step would return, since the splits are keyed by the
        step: a benchmark reads 20, 50 and 100 steps off one run) and the model being adapted
        (its current weights; not to be modified).

    Returns
    -------
    tuple
        The adapted copy (in eval mode; the given weights when no check improved on them) and a
        record: ``steps_taken``, ``best_step`` (0: unchanged), ``stopped`` (``"steps"``,
        ``"early stopping"`` or ``"time budget"``), ``holdout_loss`` (``[given, best]``),
        ``checks`` (``[step, hold-out loss]`` of every check, step 0 first), ``seconds``.

    Raises
    ------
    InvalidParameterError
        A mask with too few lines outside its centre to split into Theta, Lambda and a
        hold-out set.
    """
    start = time.perf_counter()
    seed = int(options.seed)
    rest, holdout = holdout_split(mask, options)
    _split(rest, options.loss_fraction, seed, 1, 0)  # too few lines: fail before any work
    scan = _Scan(kspace, rest, holdout)
    n = kspace.shape[0]
    check = sorted({int(round(v)) for v in np.linspace(0, n - 1, min(CHECK_SLICES, n))})
    work = copy.deepcopy(model).train()
    for p in work.parameters():
        p.requires_grad_(True)
    optimiser = torch.optim.Adam(work.parameters(), lr=options.lr)
    first = scan.check_loss(work, check)
    rule = EarlyStopping(first, options.min_gain, options.patience)
    checks = [[0, round(first, 6)]]
    best_state = copy.deepcopy(work.state_dict())
    stopped, step = "steps", 0
    order = rng(seed, 2)
    limit = math.inf if options.minutes is None else 60.0 * options.minutes
    while step < options.steps:
        if time.perf_counter() - start > limit:
            stopped = "time budget"
            break
        s = int(order.integers(n))
        theta, lam = _split(rest, options.loss_fraction, seed, 1, step)
        inputs, target = ssdu_inputs(kspace[s : s + 1], theta, lam)
        x0, grad, crop = padded_inputs(work, inputs)
        estimates = [from_channels(crop(e), None) for e in call_model(work, x0, grad)]
        loss = target.loss(estimates, "all", options.theta_weight)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        if step % options.check_every and step < options.steps:
            continue
        current = scan.check_loss(work, check)
        checks.append([step, round(current, 6)])
        if rule.update(step, current):
            best_state = copy.deepcopy(work.state_dict())
        if on_check is not None:
            on_check(step, best_state, work)
        if rule.done:
            stopped = "early stopping"
            break
    work.load_state_dict(best_state)
    for p in work.parameters():
        p.requires_grad_(False)
    return work.eval(), {"steps_taken": step, "best_step": rule.best_step, "stopped": stopped,
                         "holdout_loss": [round(first, 6), round(rule.best_loss, 6)],
                         "checks": checks,
                         "seconds": round(time.perf_counter() - start, 3)}


class AdaptingReconstructor(LearnedReconstructor):
    """A learned reconstructor that adapts its model to each input first (:func:`adapt`).

    Per volume, the adapted model of the latest input is :attr:`adapted` (for
    :meth:`save_adapted`); per slice every slice adapts its own copy and none is kept. The
    output's provenance gains ``adaptation``: the settings, and per adaptation the steps taken,
    the step kept, why it stopped, the hold-out loss before and after and its seconds.

    Parameters
    ----------
    learned
        The reconstructor of the model to adapt (``build_reconstructor``'s).
    options
        The adaptation's settings.
    """

    def __init__(self, learned: LearnedReconstructor, options: AdaptOptions) -> None:
        super().__init__(learned.model, learned.name, device=learned.device,
                         batch_size=learned.batch_size, metadata=learned.metadata,
                         amp=learned.amp)
        self.options = options
        self.adapted: nn.Module | None = None
        self.record: dict[str, Any] | None = None

    def parameters(self) -> dict[str, Any]:
        """The model's parameters, marked as adapted to the input."""
        return {**super().parameters(), "adapted": True}

    def __call__(self, kspace: KSpace) -> Volume:
        """Adapt to ``kspace`` (per volume or per slice), then reconstruct it."""
        start = time.perf_counter()
        mask = np.ones((1, kspace.shape[-1]), bool) if kspace.mask is None else kspace.mask
        mask_t = torch.as_tensor(np.asarray(mask, dtype=bool), device=self.device)
        data = np.asarray(kspace.slices(0, kspace.n_slices))
        records, images = [], []
        parts = ([replace(kspace, data=data[s : s + 1]) for s in range(kspace.n_slices)]
                 if self.options.per_slice else [replace(kspace, data=data)])
        self.adapted = None
        for part in parts:
            k = torch.as_tensor(np.asarray(part.data), device=self.device)
            model, record = adapt(self.model, k, mask_t, self.options)
            outputs, _ = self.run_slices(part, partial(estimate, model, amp=self.amp))
            records.append(record)
            images.append(outputs[0])
            if not self.options.per_slice:
                self.adapted = model
        self.record = {"settings": self.options.record(), "runs": records,
                       "reference": "Yaman et al., ICLR 2022 (ZS-SSL)"}
        return self.volume(kspace, np.concatenate(images), time.perf_counter() - start,
                           adaptation=self.record)

    def save_adapted(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the latest per-volume adapted model as a checkpoint ``--model`` can load.

        It keeps the source checkpoint's name, configuration and metadata and adds
        ``adapted_from`` (its path and weights' sha256) and ``adaptation``.

        Raises
        ------
        InvalidParameterError
            Nothing adapted per volume yet (per-slice adaptation keeps no model).
        """
        if self.adapted is None:
            raise InvalidParameterError("--save-adapted keeps the model of a per-volume "
                                        "adaptation; per-slice adaptation makes one per slice")
        meta = self.metadata
        extra = {**(meta.get("extra") or {}), "adaptation": self.record,
                 "adapted_from": {"checkpoint": meta.get("path"), "sha256": meta.get("sha256")}}
        return save_checkpoint(path, self.adapted, name=str(meta.get("name", self.name)),
                               config=meta.get("config") or {}, extra=extra,
                               overwrite=overwrite)
