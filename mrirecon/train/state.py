"""Resume state of a training run (``state.pt``): one file, written atomically, never pickled code.

``state.pt`` is the run's commit point: the model's weights, the optimiser and scheduler state
dicts, counters, the best validation metric and every random generator's state (torch CPU and
CUDA, numpy's legacy global generator, Python's :mod:`random`), all of one step. Because it is
a single file replaced by one rename, a run killed at any moment (even mid-write) resumes from
a consistent step; ``last.safetensors`` (:func:`mrirecon.models.checkpoint.save_checkpoint`)
is the same weights for users, written right after it.

``state.pt`` is written with :func:`torch.save` of plain containers of tensors, numbers,
strings, booleans and ``None`` only, and read with ``torch.load(weights_only=True)``, which
refuses anything else: loading a state file cannot run code.

The numpy and Python generator states are converted to tensors and numbers
(:func:`rng_state`) and back (:func:`set_rng_state`).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrirecon.errors import InputFileError, one_line
from mrirecon.fileutil import atomic_path

__all__ = ["load_state", "rng_state", "save_state", "seed_everything", "set_rng_state"]

STATE_VERSION = 2


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's legacy global generator and :mod:`random`.

    The only place the training code seeds global generators; masks use their own explicit
    ``SeedSequence`` generators (:mod:`mrirecon.sampling.seeding`).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 -- the legacy global generator, on purpose
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state() -> dict[str, Any]:
    """Every global generator's state as tensors and numbers (safe for ``weights_only``)."""
    legacy = np.random.get_state(legacy=True)  # noqa: NPY002
    assert isinstance(legacy, tuple)  # the legacy global generator is an MT19937: a tuple
    kind, keys, pos, has_gauss, cached = legacy
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": int(version),
                   "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": None if gauss_next is None else float(gauss_next)},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    legacy = (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
              n["cached"])
    np.random.set_state(legacy)  # noqa: NPY002
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()),
                     p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda)


def save_state(path: str | os.PathLike, *, model: torch.nn.Module, model_name: str,
               optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, step: int, epoch: int,
               best: float | None, extra: dict[str, Any] | None = None) -> Path:
    """Write the resume state atomically to ``path`` (replacing it).

    Parameters
    ----------
    path
        Usually ``RUN_DIR/state.pt``.
    model, model_name
        The weights (``state_dict()``, detached CPU copies) and the registry name.
    optimizer, scheduler
        Their ``state_dict()`` is stored.
    step, epoch
        Optimisation steps done and the current epoch.
    best
        Best validation SSIM so far, or ``None``.
    extra
        Further plain values (numbers, strings, lists, dicts, tensors).
    """
    state = {
        "version": STATE_VERSION,
        "model_name": str(model_name),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": int(step),
        "epoch": int(epoch),
        "best": None if best is None else float(best),
        "rng": rng_state(),
        "extra": dict(extra or {}),
    }
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(state, tmp)
    return path


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a state file written by :func:`save_state` (``weights_only``: no code is run).

    Raises
    ------
    InputFileError
        Missing, unreadable or not a state file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "resume state not found (expected state.pt beside "
                             "last.safetensors)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is one message
        raise InputFileError(path, f"not a readable training state ({one_line(exc)})") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise InputFileError(path, f"not a training state of version {STATE_VERSION}")
    return state
