"""One registry of learned models under versioned names (``"rim.v1"``, ``"irim.v1"``, ...).

A name maps to a model class and its configuration dataclass, both imported lazily by module
path, so listing the registry never imports a model that is missing or heavy. A checkpoint stores
the name and the full configuration (see :mod:`mrirecon.models.checkpoint`), which is all
:func:`build` needs to rebuild the network.

Changing a model's maths registers a *new* version (``"rim.v2"``) beside the old one, so old
checkpoints keep loading.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from mrirecon.errors import InvalidParameterError, MriReconError
from mrirecon.typedconfig import build as build_config


@dataclass(frozen=True)
class ModelEntry:
    """Where a registered model lives.

    Parameters
    ----------
    module
        Dotted module path, imported on first use.
    model_class
        Name of the :class:`torch.nn.Module` subclass in ``module``; built as ``cls(config)``.
    config_class
        Name of the configuration dataclass in ``module``.
    description
        One line for ``list_models`` and the command line.
    parts
        ``(config field, constructor keyword, registry name)`` of each model the build step
        loads from a checkpoint the config names and passes in (the cINN's frozen i-RIM); models
        receive, they never load (:func:`mrirecon.models.checkpoint.build_model`).
    upgrade
        Name of ``fn(tensors, config) -> tensors`` in ``module`` that maps a state dict of an
        older layout of the same version onto today's (:func:`upgrade_state`), or ``None``.
    """

    module: str
    model_class: str
    config_class: str
    description: str
    parts: tuple[tuple[str, str, str], ...] = ()
    upgrade: str | None = None


REGISTRY: dict[str, ModelEntry] = {
    "rim.v1": ModelEntry(
        "mrirecon.models.rim",
        "RIM",
        "RIMConfig",
        "Recurrent Inference Machine (Putzky & Welling 2017; Lønning et al. 2019)",
    ),
    "irim.v1": ModelEntry(
        "mrirecon.models.irim",
        "IRIM",
        "IRIMConfig",
        "invertible RIM with invertible U-Net cells (Putzky & Welling 2019)",
        upgrade="upgrade_state_dict",
    ),
    "cinn.v1": ModelEntry(
        "mrirecon.models.cinn",
        "CINN",
        "CINNConfig",
        "conditional invertible network for posterior sampling (Ardizzone et al. 2019; "
        "Denker et al. 2021)",
        parts=(("irim_checkpoint", "irim", "irim.v1"),),
        upgrade="upgrade_state_dict",
    ),
}


class ModelUnavailableError(MriReconError):
    """A registered model whose code cannot be imported in this installation."""


def _entry(name: str) -> ModelEntry:
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise InvalidParameterError(
            f"unknown model {name!r}; expected one of: {', '.join(sorted(REGISTRY))}"
        ) from None


def resolve(name: str) -> tuple[type[nn.Module], type]:
    """Import and return ``(model class, config dataclass)`` registered under ``name``.

    Raises
    ------
    InvalidParameterError
        ``name`` is not registered (the message lists the registered names).
    ModelUnavailableError
        The model's module or classes cannot be imported.
    """
    entry = _entry(name)
    try:
        module = importlib.import_module(entry.module)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        where = "" if missing == entry.module else f" (it needs {missing}, which is missing)"
        raise ModelUnavailableError(
            f"model {name!r} is registered but its module {entry.module} cannot be imported "
            f"in this installation{where}"
        ) from None
    try:
        return getattr(module, entry.model_class), getattr(module, entry.config_class)
    except AttributeError as exc:
        raise ModelUnavailableError(
            f"model {name!r}: module {entry.module} does not define {exc.name}"
        ) from None


def config_for(name: str, overrides: Mapping[str, Any] | Any | None = None) -> Any:
    """Return the configuration dataclass of ``name``: defaults updated by ``overrides``.

    Parameters
    ----------
    name
        Registered model name.
    overrides
        Field values to change (a mapping), an instance of the model's config dataclass
        (returned as is), or ``None`` for the defaults.

    Raises
    ------
    InvalidParameterError
        Unknown name, unknown keys (the message lists the valid ones), values that cannot be
        coerced to a field's type (:func:`mrirecon.typedconfig.coerce`: ``"8"`` is read as 8,
        ``"eight"`` or ``2.5`` for an integer is refused) or out of range.
    """
    _, config_cls = resolve(name)
    if overrides is None:
        return config_cls()
    if isinstance(overrides, config_cls):
        return overrides
    if dataclasses.is_dataclass(overrides) and not isinstance(overrides, type):
        raise InvalidParameterError(
            f"model {name!r} takes a {config_cls.__name__}, got a {type(overrides).__name__}"
        )
    if not isinstance(overrides, Mapping):
        raise InvalidParameterError(
            f"configuration of model {name!r} must be a mapping, got {type(overrides).__name__}"
        )
    return build_config(config_cls, overrides, "model_config.", f" for {name}")


def config_to_dict(config: Any) -> dict[str, Any]:
    """The configuration dataclass as a plain, JSON-ready dictionary."""
    return dataclasses.asdict(config)


def build(name: str, config: Mapping[str, Any] | Any | None = None,
          parts: Mapping[str, nn.Module] | None = None) -> nn.Module:
    """Build the model registered as ``name`` from its configuration (see :func:`config_for`).

    ``parts`` are the already-built models its entry's ``parts`` name, by constructor keyword
    (see :func:`mrirecon.models.checkpoint.build_model`, which loads them).
    """
    model_cls, _ = resolve(name)
    return model_cls(config_for(name, config), **dict(parts or {}))


def upgrade_state(name: str, tensors: dict[str, Any], config: Any) -> dict[str, Any]:
    """``tensors`` in today's state-dict layout of ``name`` (unchanged without an upgrade)."""
    entry = _entry(name)
    if entry.upgrade is None:
        return tensors
    module = importlib.import_module(entry.module)
    return getattr(module, entry.upgrade)(tensors, config)


def list_models() -> list[dict[str, Any]]:
    """Describe every registered model.

    Returns
    -------
    list of dict
        One entry per name, sorted: ``name``, ``description``, ``available`` and, for models
        that can be imported, ``defaults`` (the default configuration) and ``parameters`` (the
        trainable parameter count of the default model); for the others ``error`` says why.
    """
    out = []
    for name in sorted(REGISTRY):
        info: dict[str, Any] = {"name": name, "description": REGISTRY[name].description}
        try:
            model_cls, config_cls = resolve(name)
        except ModelUnavailableError as exc:
            info.update(available=False, error=str(exc))
        else:
            config = config_cls()
            model = model_cls(config)
            info.update(
                available=True,
                defaults=config_to_dict(config),
                parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
            )
        out.append(info)
    return out
