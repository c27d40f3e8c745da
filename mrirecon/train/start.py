"""Where a run starts: a fresh model, the weights of an ``init`` checkpoint, or a ``resume``.

``init`` starts a new run (new optimiser, step 0) from a checkpoint's weights and model
configuration; a part the run's ``model_config`` names by file (the cINN's ``irim_checkpoint``)
replaces the checkpoint's copy of that part, so a cINN can be fine-tuned on top of a new i-RIM.
``resume`` continues a run exactly from its ``state.pt``: weights, optimiser,
scheduler, counters and every global random generator's state.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mrirecon.errors import InvalidParameterError
from mrirecon.models import registry
from mrirecon.models.checkpoint import build_model as build_registered
from mrirecon.models.checkpoint import load_checkpoint
from mrirecon.train.config import TrainConfig
from mrirecon.train.state import load_state, set_rng_state

__all__ = ["TRAINING_CHOICES", "build_model", "from_init", "restore", "resume_paths",
           "resumes_in_place"]

#: ``model_config`` keys that ``init`` takes from this run's configuration, not the checkpoint's:
#: they change how a model trains (``memory_free``: recompute activations by inversion), not
#: its weights or maths.
TRAINING_CHOICES = ("memory_free",)


def from_init(cfg: TrainConfig) -> tuple[TrainConfig, nn.Module | None]:
    """A new run starting from the weights of checkpoint ``cfg.init`` (ignored on resume).

    Parameters
    ----------
    cfg
        The run's configuration.

    Returns
    -------
    tuple
        The configuration with the checkpoint's ``model_config`` (but this run's
        :data:`TRAINING_CHOICES`), and the checkpoint's model; ``cfg`` and ``None`` without
        ``init``.

    Raises
    ------
    MriReconError
        The checkpoint cannot be read or holds another model than ``cfg.model``.
    """
    if cfg.init is None or cfg.resume is not None:
        return cfg, None
    from mrirecon.models.default import resolve_model

    initial, meta = load_checkpoint(resolve_model(cfg.init))  # a path, or default/default-cinn
    if meta["name"] != cfg.model:
        raise InvalidParameterError(f"init {cfg.init} holds {meta['name']}, but the "
                                    f"configuration trains {cfg.model}")
    config = dict(meta["config"])
    for key in TRAINING_CHOICES:  # how to train, not what to build: this run's choice
        if key in config and key in cfg.model_config:
            config[key] = cfg.model_config[key]
    for field, _, _ in registry.REGISTRY[cfg.model].parts:  # a new part, named by this run
        if cfg.model_config.get(field) is not None:
            config[field] = cfg.model_config[field]
            config.pop(f"{field.removesuffix('_checkpoint')}_config", None)  # refilled from it
    return dataclasses.replace(cfg, model_config=config), initial


def build_model(cfg: TrainConfig, initial: nn.Module | None, device: torch.device) -> nn.Module:
    """The model to train, from the registry, with the ``init`` weights when given.

    Parameters
    ----------
    cfg
        The run's configuration (``model``, ``model_config``).
    initial
        The ``init`` checkpoint's model (:func:`from_init`) or ``None``.
    device
        Where it trains.

    Returns
    -------
    nn.Module
        The model on ``device``.
    """
    model = build_registered(cfg.model, cfg.model_config)  # loads the parts it names
    if initial is not None:
        state = model.state_dict()
        parts = [keyword for field, keyword, _ in registry.REGISTRY[cfg.model].parts
                 if cfg.model_config.get(field) is not None]
        state.update({k: v for k, v in initial.state_dict().items()
                      if not any(k.startswith(f"{part}.") for part in parts)})
        model.load_state_dict(state)
    return model.to(device)


def resume_paths(resume: str) -> tuple[Path, Path]:
    """The weights and ``state.pt`` a resume reads.

    Parameters
    ----------
    resume
        A run folder or its ``last.safetensors``.

    Returns
    -------
    tuple
        ``(weights, state)`` paths; ``state.pt`` lies next to the weights.
    """
    path = Path(resume)
    weights = path / "last.safetensors" if path.is_dir() else path
    return weights, weights.parent / "state.pt"


def resumes_in_place(cfg: TrainConfig, out: Path) -> bool:
    """Whether the run continues one whose folder is ``out`` (its ``log.csv`` is continued).

    Parameters
    ----------
    cfg
        The run's configuration (``resume``).
    out
        The run folder.

    Returns
    -------
    bool
        ``cfg.resume`` is ``out`` or a checkpoint in it.
    """
    if cfg.resume is None:
        return False
    return resume_paths(cfg.resume)[0].parent.resolve() == out.resolve()


def restore(cfg: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    """Load ``state.pt`` of ``cfg.resume`` into the run's objects and the global generators.

    The model, optimiser and scheduler get their saved state dicts; torch, numpy and
    :mod:`random` their saved generator states.

    Parameters
    ----------
    cfg
        The run's configuration (``resume``, ``model``).
    model
        The freshly built model.
    optimizer
        Its optimiser.
    scheduler
        Its learning-rate scheduler.

    Returns
    -------
    dict
        The saved counters, as keyword arguments of :class:`~mrirecon.train.run.Run`
        (``step``, ``epoch``, ``best``, ``best_record``, ``seconds_before``).

    Raises
    ------
    MriReconError
        The state file is missing or unreadable, or holds another model than ``cfg.model``.
    """
    if cfg.resume is None:
        raise ValueError("restore needs cfg.resume")
    state_path = resume_paths(cfg.resume)[1]
    state = load_state(state_path)
    if state["model_name"] != cfg.model:
        raise InvalidParameterError(f"--resume {state_path} holds {state['model_name']}, "
                                    f"but the configuration trains {cfg.model}")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    counters = {"step": state["step"], "epoch": state["epoch"], "best": state["best"],
                "best_record": state["extra"].get("best_record"),
                "seconds_before": float(state["extra"].get("seconds", 0.0))}
    set_rng_state(state["rng"])
    return counters
