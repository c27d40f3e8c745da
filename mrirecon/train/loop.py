"""The one training loop of every learned model (plain PyTorch, optional DDP under torchrun).

``train(cfg)`` builds the model from the registry, streams undersampled slices
(:class:`~mrirecon.train.dataset.SliceDataset`), turns each into model inputs with the same
:func:`~mrirecon.recon.learned.prepare_batch` as inference, and minimises
:func:`~mrirecon.train.losses.reconstruction_loss` with AdamW and a warm-up + cosine schedule.
Model-specific behaviour stays in the model (``required_multiple`` padding, memory-free
backward); the loop has no per-model branches.

Batches: training masks differ per item, so each item is prepared and run on its own and the
batch loss is the sum of per-item losses divided by the batch size -- the same gradient as a
stacked batch, with one backward pass.

Run folder ``cfg.out``: ``config.yaml`` (resolved configuration, written at start),
``last.safetensors`` (every validation, interrupt and at the end), ``best.safetensors`` (best
validation ``best_metric``: SSIM by default), ``state.pt`` (:mod:`mrirecon.train.state`) and
``log.csv``.

Exact resume: the data order of epoch ``e`` is a permutation seeded by ``(seed, e)``, the
masks are seeded by ``(seed, epoch, rank, index)`` (not by the DataLoader worker, so any
``num_workers`` works), and ``state.pt`` carries the weights, optimiser, scheduler, counters
and global RNG states, so N steps then a resume to N + M steps gives the weights of N + M
steps straight. ``state.pt`` is written (atomically) before ``last.safetensors``, so a run
killed at any moment, even mid-write, resumes from the last complete save: the log rows after
it are dropped and the killed write's temporary files removed.

AMP: bfloat16 autocast of the model's forward on CUDA only (``cfg.amp``); bf16 has float32's
range, so no GradScaler. Physics (FFTs, data-consistency gradient) and the loss run in float32.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler

from mrirecon.device import resolve_device
from mrirecon.errors import InvalidParameterError, OutputError
from mrirecon.fileutil import atomic_path
from mrirecon.metrics import volume_metrics
from mrirecon.models import registry
from mrirecon.models.checkpoint import load_checkpoint, save_checkpoint
from mrirecon.models.domain import merge as merge_domains
from mrirecon.padding import center_crop
from mrirecon.physics import from_channels
from mrirecon.recon.model_inputs import call_model, padded_inputs, prepare_batch, run_model
from mrirecon.train.config import BEST_METRICS, TrainConfig, config_to_dict, save_config
from mrirecon.train.dataset import SliceDataset, collate, find_files
from mrirecon.train.losses import reconstruction_loss
from mrirecon.train.state import load_state, save_state, seed_everything, set_rng_state
from mrirecon.train.synthetic import SyntheticDataset

__all__ = ["LOG_COLUMNS", "train"]

LOG_COLUMNS = ["step", "epoch", "loss", "lr", "seconds", "val_psnr", "val_ssim", "val_nmse"]
NORMALISATION = "99th percentile of |A^H y| per slice"
#: ``model_config`` keys that ``init`` takes from this run's configuration, not the checkpoint's:
#: they change how a model trains (``memory_free``: recompute activations by inversion), not
#: its weights or maths.
TRAINING_CHOICES = ("memory_free",)


class _Objective(nn.Module):
    """One item's training loss as a single forward pass (the module DDP wraps).

    A model with ``training_loss(x0, grad_fn, target)`` (a likelihood model: the cINN's
    bits per dimension) supplies its own loss; for the others (RIM, i-RIM) it is
    :func:`~mrirecon.train.losses.reconstruction_loss` of the estimates. With ``amp`` the
    estimating models run under bf16 autocast on CUDA while physics and loss stay float32;
    likelihood models always run in float32 (log-determinants need the precision).
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig, amp: bool) -> None:
        super().__init__()
        self.model, self.amp = model, amp
        self.weights = {"ssim": cfg.loss.ssim, "l1": cfg.loss.l1, "mse": cfg.loss.mse,
                        "steps": cfg.loss.steps}

    def forward(self, x0: torch.Tensor, grad: Callable, crop: Callable,
                target: torch.Tensor) -> torch.Tensor:
        if hasattr(self.model, "training_loss"):
            if tuple(x0.shape[-2:]) != tuple(target.shape[-2:]):
                raise InvalidParameterError(
                    f"{type(self.model).__name__} trains on images whose recon matrix equals the "
                    f"k-space matrix and is a multiple of {self.model.required_multiple} "
                    f"(got target {tuple(target.shape[-2:])}, k-space image "
                    f"{tuple(x0.shape[-2:])}); use data.crop or data made with mrirecon simulate")
            return self.model.training_loss(x0, grad, target)
        out = call_model(self.model, x0, grad, self.amp)
        size = tuple(target.shape[-2:])
        estimates = [center_crop(from_channels(crop(e), None), size) for e in out]
        return reconstruction_loss(estimates, target, **self.weights)


class _EpochSampler:
    """Indices of one epoch (a :class:`DistributedSampler` permutation), minus those done."""

    def __init__(self, base: DistributedSampler) -> None:
        self.base, self.skip = base, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.base.set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        return iter(list(self.base)[self.skip:])

    def __len__(self) -> int:
        return max(len(self.base) - self.skip, 0)


def _lr_lambda(total: int, warmup: int, schedule: str) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _dist() -> tuple[int, int]:
    """(rank, world size); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    dist = torch.distributed
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def _resume_paths(resume: str) -> tuple[Path, Path]:
    path = Path(resume)
    weights = path / "last.safetensors" if path.is_dir() else path
    return weights, weights.parent / "state.pt"


def _prepare_out(cfg: TrainConfig, overwrite: bool) -> Path:
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: run folder is a file")
    if cfg.resume is None and out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"{out}: run folder is not empty; pass --overwrite to replace it or "
                          "--resume to continue it")
    out.mkdir(parents=True, exist_ok=True)
    return out


class _Mixture(ConcatDataset):
    """HDF5 slices and generated items in one training set (each keeps its own seeding)."""

    def set_epoch(self, epoch: int) -> None:
        for part in self.datasets:
            part.set_epoch(epoch)  # type: ignore[attr-defined]

    def domain(self) -> dict[str, Any]:
        return merge_domains([part.domain() for part in self.datasets])  # type: ignore


def _data(cfg: TrainConfig, rank: int, world: int) -> tuple[Any, SliceDataset | None]:
    if not cfg.data.train and cfg.data.synthetic is None:
        raise InvalidParameterError("data.train is empty and data.synthetic is not set; give "
                                    "training files or folders, or a generator")
    common = {"accelerations": cfg.mask.accelerations,
              "center_fractions": cfg.mask.center_fractions, "mask_kind": cfg.mask.kind,
              "seed": cfg.mask.seed}
    parts: list[Any] = []
    if cfg.data.train:
        parts.append(SliceDataset(find_files(cfg.data.train), train=True, crop=cfg.data.crop,
                                  rank=rank, **common))
    if cfg.data.synthetic is not None:
        parts.append(SyntheticDataset(cfg.data.synthetic, seed=cfg.mask.seed, rank=rank,
                                      crop=cfg.data.crop))
    train_set = parts[0] if len(parts) == 1 else _Mixture(parts)
    val_set = (SliceDataset(find_files(cfg.data.val), train=False,
                            val_repeats=cfg.mask.val_repeats,
                            val_accelerations=cfg.mask.val_accelerations, **common)
               if cfg.data.val and rank == 0 else None)
    return train_set, val_set


def _step_loss(net: nn.Module, model: nn.Module, batch: dict[str, Any],
               device: torch.device) -> torch.Tensor:
    """Mean over the batch of each item's loss (each item has its own mask)."""
    n = len(batch["kspace"])
    total = torch.zeros((), device=device)
    for i in range(n):
        kspace = batch["kspace"][i][None].to(device, non_blocking=True)
        mask = batch["mask"][i].to(device, non_blocking=True)
        target = batch["target"][i][None].to(device, non_blocking=True)
        inputs = prepare_batch(kspace, mask)
        x0, grad, crop = padded_inputs(model, inputs)
        total = total + net(x0, grad, crop, target / inputs.scale[:, None, None].float())
    return total / n


def _train_summary(train_set: Any) -> dict[str, Any]:
    """``train_data`` of checkpoints: HDF5 files and slices, and generated items per epoch."""
    parts = train_set.datasets if isinstance(train_set, ConcatDataset) else [train_set]
    out: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, SliceDataset):
            out.update(files=[p.name for p in part.files], slices=len(part))
        else:
            out["synthetic_items_per_epoch"] = len(part)
    return out


def _ragged_collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Training batches: items may differ in coils and matrix (each is run on its own)."""
    return collate(items, ragged=True)


#: Draws whose mean is a sampler's (cINN's) validation estimate.
VALIDATION_SAMPLES = 8


def _point_estimate(model: nn.Module, inputs: Any) -> torch.Tensor:
    """The magnitude estimate scored in validation: a sampler's posterior mean of
    :data:`VALIDATION_SAMPLES` draws (fixed seed), otherwise the model's last estimate."""
    if not hasattr(model, "sample"):
        return run_model(model, inputs)[-1].abs()
    x0, grad, crop = padded_inputs(model, inputs)
    generator = torch.Generator().manual_seed(0)
    return crop(model.sample(x0, grad, VALIDATION_SAMPLES, generator=generator).mean(0))


@torch.inference_mode()
def validate(model: nn.Module, dataset: SliceDataset, device: torch.device,
             batch_size: int = 8) -> dict[str, float]:
    """Mean PSNR, SSIM and NMSE over the validation volumes (fastMRI per-volume protocol);
    samplers are scored on their posterior mean. With ``dataset.repeats`` masks per file each
    (file, mask) pair is a volume, as in ``mrirecon evaluate --mask-repeats``."""
    model.eval()
    per_volume: dict[tuple[int, int], list[int]] = {}
    for i in range(len(dataset)):
        per_volume.setdefault(dataset.volume_of(i), []).append(i)
    results = []
    for indices in per_volume.values():
        recons, targets = [], []
        for first in range(0, len(indices), batch_size):
            items = collate([dataset[i] for i in indices[first : first + batch_size]])
            inputs = prepare_batch(items["kspace"].to(device), items["mask"][0].to(device))
            image = _point_estimate(model, inputs) * inputs.scale[:, None, None]
            recons.append(center_crop(image, tuple(items["target"].shape[-2:])).float().cpu())
            targets.append(items["target"])
        results.append(volume_metrics(torch.cat(targets), torch.cat(recons)))
    model.train()
    return {k: float(sum(r[k] for r in results) / len(results)) for k in ("psnr", "ssim", "nmse")}


class _Log:
    """``log.csv`` (appended and flushed row by row) and TensorBoard when installed."""

    def __init__(self, out: Path, append: bool, enabled: bool, until: int = 0) -> None:
        self.fh = self.writer = self.tb = None
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
        if self.writer is None:
            return
        self.writer.writerow({k: values.get(k, "") for k in LOG_COLUMNS})
        self.fh.flush()
        if self.tb is not None:
            for k, v in values.items():
                if k not in ("step", "epoch") and v not in ("", None):
                    self.tb.add_scalar(k, v, values["step"])

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
        if self.tb is not None:
            self.tb.close()


def model_config(model: nn.Module, cfg: TrainConfig) -> Any:
    """What checkpoints record: the model's own config (it may fill in entries, e.g. the cINN
    stores its frozen i-RIM's config) or else the configured one."""
    return getattr(model, "config", cfg.model_config)


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


def _remove_partial_writes(out: Path) -> None:
    """Temporary files of writes a killed run left behind (:func:`atomic_path` names)."""
    for stale in out.glob(".*.part*"):
        with contextlib.suppress(OSError):
            stale.unlink()


def _weight_spread(model: nn.Module, device: torch.device) -> float:
    """Largest difference between this rank's weights and rank 0's (0.0 when in sync)."""
    flat = torch.cat([p.detach().reshape(-1).float() for p in model.parameters()]).to(device)
    reference = flat.clone()
    torch.distributed.broadcast(reference, src=0)
    spread = (flat - reference).abs().max()
    torch.distributed.all_reduce(spread, op=torch.distributed.ReduceOp.MAX)
    return float(spread)


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
        Ctrl-C); the summary then has ``interrupted=True``.
    overwrite
        Allow a non-empty ``cfg.out`` without ``cfg.resume``.

    Returns
    -------
    dict
        ``steps``, ``epochs``, ``interrupted``, ``loss`` (last logged), ``val`` (last metrics),
        ``best`` (``{"step", "psnr", "ssim", "nmse"}`` or ``None``), ``checkpoints``, ``out``,
        ``device``, ``amp``, ``world_size``, ``weight_spread`` (largest difference between any
        rank's final weights and rank 0's: 0.0 when DDP kept them in sync), ``seconds``.

    Raises
    ------
    MriReconError
        Missing or empty data, a non-empty run folder, CUDA requested but absent, a resume
        checkpoint of another model.
    """
    device = resolve_device(cfg.device)
    rank, world = _dist()
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    main = rank == 0
    initial = None
    if cfg.init is not None and cfg.resume is None:
        initial, meta = load_checkpoint(cfg.init)
        if meta["name"] != cfg.model:
            raise InvalidParameterError(f"init {cfg.init} holds {meta['name']}, but the "
                                        f"configuration trains {cfg.model}")
        config = dict(meta["config"])
        for key in TRAINING_CHOICES:  # how to train, not what to build: this run's choice
            if key in config and key in cfg.model_config:
                config[key] = cfg.model_config[key]
        cfg = dataclasses.replace(cfg, model_config=config)
    train_set, val_set = _data(cfg, rank, world)  # bad data fails before the run folder exists
    out = _prepare_out(cfg, overwrite) if main else Path(cfg.out)
    if main:
        _remove_partial_writes(out)
    if main:
        save_config(cfg, out / "config.yaml")
    seed_everything(cfg.seed)
    model = registry.build(cfg.model, cfg.model_config)
    if initial is not None:
        model.load_state_dict(initial.state_dict())
    model = model.to(device)
    sampler = _EpochSampler(DistributedSampler(train_set, num_replicas=world, rank=rank,
                                               shuffle=True, seed=cfg.seed))
    loader = DataLoader(train_set, batch_size=cfg.data.batch_size, sampler=sampler,
                        num_workers=cfg.data.num_workers, collate_fn=_ragged_collate,
                        pin_memory=device.type == "cuda")
    per_epoch = math.ceil(len(sampler.base) / cfg.data.batch_size)
    total = min(cfg.max_steps or math.inf, (cfg.epochs or math.inf) * per_epoch)
    total = int(total)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr,
                                  weight_decay=cfg.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(total, cfg.optim.warmup_steps, cfg.optim.schedule))
    step, epoch, best, best_record, seconds_before = 0, 0, None, None, 0.0
    resumed = cfg.resume is not None
    if resumed:
        state_path = _resume_paths(cfg.resume)[1]
        state = load_state(state_path)
        if state["model_name"] != cfg.model:
            raise InvalidParameterError(f"--resume {state_path} holds {state['model_name']}, "
                                        f"but the configuration trains {cfg.model}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, best = state["step"], state["epoch"], state["best"]
        best_record = state["extra"].get("best_record")
        seconds_before = float(state["extra"].get("seconds", 0.0))
        set_rng_state(state["rng"])
    amp = bool(cfg.amp and device.type == "cuda")
    net: nn.Module = _Objective(model, cfg, amp)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    same_run = resumed and _resume_paths(cfg.resume)[0].parent.resolve() == out.resolve()
    log = _Log(out, append=same_run, enabled=main, until=step)
    paths = {"last": out / "last.safetensors", "best": out / "best.safetensors",
             "state": out / "state.pt"}
    extra_meta = {"train_data": _train_summary(train_set),
                  "domain": train_set.domain(),
                  "mask": config_to_dict(cfg)["mask"], "normalisation": NORMALISATION}
    start = time.perf_counter()
    last_loss, val, interrupted, spread = math.nan, None, False, 0.0
    window: list[float] = []

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - start

    def save_last() -> None:
        if not main:
            return
        # state.pt first: it is the commit point a resume reads (weights included)
        save_state(paths["state"], model=model, model_name=cfg.model, optimizer=optimizer,
                   scheduler=scheduler, step=step, epoch=epoch, best=best,
                   extra={"seconds": elapsed(), "best_record": best_record})
        save_checkpoint(paths["last"], model, name=cfg.model, config=model_config(model, cfg),
                        overwrite=True, extra={**extra_meta, "step": step, "val_metrics": val})

    def run_validation() -> None:
        nonlocal val, best, best_record
        if main and val_set is not None:
            val = validate(model, val_set, device, cfg.data.batch_size)
            log.row(step=step, epoch=epoch, seconds=round(elapsed(), 3),
                    val_psnr=val["psnr"], val_ssim=val["ssim"], val_nmse=val["nmse"])
            score = BEST_METRICS[cfg.best_metric] * val[cfg.best_metric]
            if best is None or score > best:
                best, best_record = score, {"step": step, **val}
                save_checkpoint(paths["best"], model, name=cfg.model,
                                config=model_config(model, cfg), overwrite=True,
                                extra={**extra_meta, "step": step, "val_metrics": val})
            if progress is not None:
                progress({"step": step, "total": total, "epoch": epoch, "val": val})
        save_last()
        if world > 1:
            torch.distributed.barrier()

    def should_stop() -> bool:
        flag = bool(stop is not None and stop.is_set())
        flag |= cfg.max_minutes is not None and time.perf_counter() - start > 60 * cfg.max_minutes
        if world > 1:
            t = torch.tensor([float(flag)], device=device)
            torch.distributed.all_reduce(t)
            flag = bool(t.item() > 0)
        return flag

    model.train()
    try:
        while step < total:
            epoch = step // per_epoch
            train_set.set_epoch(epoch)
            sampler.set_epoch(epoch, (step % per_epoch) * cfg.data.batch_size)
            for batch in loader:
                if should_stop():
                    interrupted = True
                    break
                loss = _step_loss(net, model, batch, device)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.optim.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
                lr = optimizer.param_groups[0]["lr"]
                optimizer.step()
                scheduler.step()
                step += 1
                window.append(float(loss.detach()))
                if step % cfg.log_every == 0 or step == total:
                    last_loss = sum(window) / len(window)
                    window.clear()
                    log.row(step=step, epoch=epoch, loss=last_loss, lr=lr,
                            seconds=round(elapsed(), 3))
                if progress is not None:
                    progress({"step": step, "total": total, "epoch": epoch,
                              "loss": float(loss.detach()), "lr": lr, "masks": batch["mask"]})
                if step % cfg.val_every == 0 and step < total:
                    run_validation()
                if step >= total:
                    break
            if interrupted:
                break
        if interrupted:
            save_last()
        else:
            run_validation()
        if world > 1:
            spread = _weight_spread(model, device)
    except KeyboardInterrupt:
        interrupted = True
        save_last()
    finally:
        log.close()
        if world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if window:
        last_loss = sum(window) / len(window)
    checkpoints = {k: str(p) for k, p in paths.items() if main and p.exists()}
    return {"steps": step, "total_steps": total, "epochs": round(step / per_epoch, 3),
            "interrupted": interrupted,
            "loss": last_loss, "val": val, "best": best_record, "checkpoints": checkpoints,
            "out": str(out), "device": str(device), "amp": amp, "world_size": world,
            "weight_spread": spread,
            "seconds": round(elapsed(), 3)}
