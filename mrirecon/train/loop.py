"""The one training loop of every learned model (plain PyTorch, optional DDP under torchrun).

``train(cfg)`` builds the model from the registry, streams undersampled slices
(:mod:`~mrirecon.train.loader`), minimises each batch's loss (:mod:`~mrirecon.train.objective`)
with AdamW and a warm-up + cosine schedule (:mod:`~mrirecon.train.optimiser`), validates
(:mod:`~mrirecon.train.validation`), logs (:mod:`~mrirecon.train.runlog`) and saves into the
run folder (:mod:`~mrirecon.train.run`), starting from ``init`` or ``resume`` when asked
(:mod:`~mrirecon.train.start`). Model-specific behaviour stays in the model
(``required_multiple`` padding, memory-free backward); the loop has no per-model branches.

Exact resume: the data order and masks of every step depend only on ``(seed, epoch, rank,
index)``, and ``state.pt`` carries the weights, optimiser, scheduler, counters and global RNG
states, so N steps then a resume to N + M steps gives the weights of N + M steps straight. A
run killed at any moment, even mid-write, resumes from the last complete save: the log rows
after it are dropped and the killed write's temporary files removed.

AMP: bfloat16 autocast of the model's forward on CUDA only (``cfg.amp``); bf16 has float32's
range, so no GradScaler. Physics (FFTs, data-consistency gradient) and the loss run in float32.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from mrirecon.device import resolve_device
from mrirecon.errors import InvalidParameterError
from mrirecon.train import distributed
from mrirecon.train.config import TrainConfig
from mrirecon.train.loader import EpochLoader, datasets
from mrirecon.train.objective import Objective, batch_loss, check_objective
from mrirecon.train.optimiser import build_optimiser, total_steps
from mrirecon.train.run import Run, checkpoint_meta, removed_on_failure, run_folder
from mrirecon.train.runlog import RunLog
from mrirecon.train.start import build_model, from_init, restore, resumes_in_place
from mrirecon.train.state import seed_everything
from mrirecon.train.validation import validate

__all__ = ["train"]


def _validation_point(run: Run, val_set: Any, dist: distributed.Distributed) -> None:
    """Validate on rank 0 (log, keep the best, report), save the last state; ranks then wait."""
    if run.main and val_set is not None:
        val = validate(run.model, val_set, dist.device, run.cfg.data.batch_size)
        run.log.validation(run.step, run.epoch, run.elapsed(), val)
        run.record_validation(val)
        run.log.validated(run.step, run.epoch, val)
    run.save_last()
    dist.barrier()


def _fit(run: Run, net: nn.Module, data: EpochLoader, val_set: Any, dist: distributed.Distributed,
         stop: threading.Event | None) -> str | None:
    """Take the steps from ``run.step`` to ``run.total``; why it stopped early, or ``None``.

    Validates every ``val_every`` steps before the last; stops early when ``stop`` is set
    (``"interrupted"``) or ``max_minutes`` are spent (``"max_minutes"``), on any rank.
    """
    while run.step < run.total:
        run.epoch, batches = data.batches(run.step)
        for batch in batches:
            if dist.any(bool(stop is not None and stop.is_set())):  # on any rank
                return "interrupted"
            if dist.any(run.out_of_time()):
                return "max_minutes"
            loss = batch_loss(net, run.model, batch, dist.device)
            lr = run.optimise(loss)
            run.log.step(run.step, run.epoch, float(loss.detach()), lr, run.elapsed(),
                         batch["mask"])
            if run.step % run.cfg.val_every == 0 and run.step < run.total:
                _validation_point(run, val_set, dist)
            if run.step >= run.total:
                break
    return None


def validation_kind(val_set: Any) -> str | None:
    """What validation scores: ``"reference"``, ``"held-back"`` or ``None``.

    Reference images, the held-back k-space loss (undersampled files), or nothing (no
    validation data).
    """
    if val_set is None:
        return None
    return "held-back" if val_set.undersampled else "reference"


def _selection(cfg: TrainConfig, val_set: Any) -> TrainConfig:
    """``cfg`` with the best-checkpoint metric the validation data can score.

    Undersampled validation files have no reference: ``best.safetensors`` is then chosen by
    the held-back k-space loss, whatever ``best_metric`` says (recorded in the saved
    configuration). ``kspace_loss`` asked for on fully sampled validation data is an error.
    """
    kind = validation_kind(val_set)
    if kind == "held-back" and cfg.best_metric != "kspace_loss":
        return dataclasses.replace(cfg, best_metric="kspace_loss")
    if kind == "reference" and cfg.best_metric == "kspace_loss":
        raise InvalidParameterError("best_metric kspace_loss scores undersampled validation "
                                    "files; data.val is fully sampled: use ssim, psnr or nmse")
    return cfg


def train(cfg: TrainConfig, *, progress: Callable[[dict[str, Any]], None] | None = None,
          stop: threading.Event | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train ``cfg.model`` as configured; see the module docstring.

    Parameters
    ----------
    cfg
        The run's configuration (:func:`mrirecon.train.config.load_config`).
    progress
        Called after every step with ``{"step", "total", "epoch", "loss", "lr", "masks"}``
        (``masks``: this rank's batch of sampling masks) and after each validation with
        ``{"step", "total", "epoch", "val"}``.
    stop
        When set, the run saves ``last.safetensors`` and ``state.pt`` and returns (as on
        Ctrl-C); the summary then has ``interrupted=True`` and ``stopped="interrupted"``.
    overwrite
        Allow a non-empty ``cfg.out`` without ``cfg.resume``.

    Returns
    -------
    dict
        ``steps``, ``epochs``, ``interrupted`` (stopped before the last step, by ``stop``,
        Ctrl-C or the time budget), ``stopped`` (``"interrupted"``, ``"max_minutes"`` or
        ``None`` when the run took all its steps), ``loss`` (last logged), ``val`` (last metrics),
        ``best`` (``{"step", "psnr", "ssim", "nmse"}`` or ``None``), ``checkpoints``, ``out``,
        ``device``, ``amp``, ``world_size``, ``weight_spread`` (largest difference between any
        rank's final weights and rank 0's: 0.0 when DDP kept them in sync), ``objective``
        (``loss.kind``), ``validation`` (:func:`validation_kind`), ``best_metric`` (what chose
        ``best.safetensors``), ``seconds``.

    Raises
    ------
    MriReconError
        Missing or empty data, a non-empty run folder, CUDA requested but absent, a resume
        checkpoint of another model.
    """
    dist = distributed.setup(resolve_device(cfg.device))
    cfg, initial = from_init(cfg)
    train_set, val_set = datasets(cfg, dist.rank)  # bad data fails before the run folder exists
    cfg = _selection(cfg, val_set)
    seed_everything(cfg.seed)
    model = build_model(cfg, initial, dist.device)
    check_objective(model, cfg)
    data = EpochLoader(train_set, cfg, dist.rank, dist.world, dist.device)
    total = total_steps(cfg, data.steps_per_epoch)
    optimizer, scheduler = build_optimiser(model, cfg.optim, total)
    # a resume that fails (a pickled or missing state.pt) fails before the folder is touched
    counters = {} if cfg.resume is None else restore(cfg, model, optimizer, scheduler)
    with removed_on_failure(Path(cfg.out), dist.main):
        out = run_folder(cfg, overwrite, dist.main)
        return _run(cfg, out, model, optimizer, scheduler, data, val_set, total, counters,
                    checkpoint_meta(cfg, train_set), dist, progress, stop)


def _run(cfg: TrainConfig, out: Path, model: nn.Module, optimizer: Any, scheduler: Any,
         data: EpochLoader, val_set: Any, total: int, counters: dict[str, Any],
         meta: dict[str, Any], dist: distributed.Distributed,
         progress: Callable[[dict[str, Any]], None] | None,
         stop: threading.Event | None) -> dict[str, Any]:
    """The run itself, in its ready folder: fit, save, summarise (see :func:`train`)."""
    amp = bool(cfg.amp and dist.device.type == "cuda")
    net = dist.wrap(Objective(model, cfg.loss, amp))
    log = RunLog(out, append=resumes_in_place(cfg, out), enabled=dist.main,
                 until=counters.get("step", 0), every=cfg.log_every, total=total,
                 progress=progress)
    run = Run(cfg, model, optimizer, scheduler, log, out, meta, total, data.steps_per_epoch,
              dist.main, **counters)
    stopped: str | None = None
    spread = 0.0
    model.train()
    try:
        stopped = _fit(run, net, data, val_set, dist, stop)
        if stopped:
            run.save_last()
        else:
            _validation_point(run, val_set, dist)
        if dist.world > 1:
            spread = dist.weight_spread(model)
    except KeyboardInterrupt:
        stopped = "interrupted"
        run.save_last()
    finally:
        log.close()
        dist.close()
    return {"steps": run.step, "total_steps": total,
            "epochs": round(run.step / data.steps_per_epoch, 3),
            "interrupted": stopped is not None, "stopped": stopped,
            "loss": log.loss, "val": run.val, "best": run.best_record,
            "checkpoints": run.checkpoints(), "out": str(out), "device": str(dist.device),
            "amp": amp, "world_size": dist.world, "weight_spread": spread,
            "objective": cfg.loss.kind, "validation": validation_kind(val_set),
            "best_metric": cfg.best_metric, "seconds": round(run.elapsed(), 3)}
