"""Self-describing checkpoints: safetensors weights with their JSON metadata inside one file.

A checkpoint is a single ``.safetensors`` file. Its header metadata holds one key, ``"mrirecon"``,
whose value is a JSON document::

    {"format": "mrirecon.checkpoint", "format_version": 1,
     "name": "rim.v1",                       # registry name (mrirecon.models.registry)
     "config": {...},                        # the full configuration dataclass
     "mrirecon_version": "0.1.0",
     "sha256": "...",                        # digest of the weights, see tensor_digest
     "created": "2025-01-01T00:00:00+00:00", # UTC, ISO 8601
     "extra": {...}}                         # normalisation, data summary, mask spec, metrics

so ``load_checkpoint`` rebuilds the network without any hyper-parameter from the user (seam 4 of
``ARCHITECTURE.md``). Weights are never pickled: reading uses ``safetensors`` only, which cannot
execute code. Every problem with a file is an :class:`~mrirecon.errors.InputFileError` with a
one-line message naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from mrirecon.errors import InputFileError, InvalidParameterError, MriReconError, one_line
from mrirecon.fileutil import atomic_path
from mrirecon.jsonutil import json_default
from mrirecon.models import registry

FORMAT = "mrirecon.checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "mrirecon"
_MAX_NAMED = 3


def tensor_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict, independent of its order and of the file layout.

    For every tensor in sorted name order the digest takes the name, the dtype, the shape and
    the raw bytes (native byte order, C-contiguous).
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        header = json.dumps([name, str(t.dtype).removeprefix("torch."), list(t.shape)])
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        h.update(header.encode())
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as independent, contiguous CPU tensors.

    Cloning gives every entry its own storage, so tied or shared parameters (which safetensors
    refuses to write) are stored once per name and loaded back into each name.
    """
    return {
        k: v.detach().to("cpu").clone(memory_format=torch.contiguous_format)
        for k, v in model.state_dict().items()
    }


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    name: str,
    config: Mapping[str, Any] | Any,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` with its registry name, full configuration and ``extra`` to ``path``.

    Parameters
    ----------
    path
        Output file (``.safetensors`` by convention); written atomically.
    model
        The network; must be an instance of the class registered as ``name``.
    name
        Registry name, e.g. ``"rim.v1"``.
    config
        The configuration the model was built with (dataclass or mapping of overrides); stored
        in full, defaults included.
    extra
        JSON-serialisable facts to keep with the weights: input normalisation, training data
        summary, mask spec, validation metrics, ...
    overwrite
        Replace an existing file; without it an existing ``path`` is an ``OutputError``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InvalidParameterError
        Unknown ``name``, a config that does not fit it, a model of another class, or an
        ``extra`` that is not JSON-serialisable.
    OutputError
        ``path`` exists (without ``overwrite``) or cannot be written.
    """
    model_cls, _ = registry.resolve(name)
    cfg = registry.config_for(name, config)
    if not isinstance(model, model_cls):
        raise InvalidParameterError(
            f"model is a {type(model).__name__} but {name!r} is a {model_cls.__name__}"
        )
    tensors = _weights(model)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "config": registry.config_to_dict(cfg),
        "mrirecon_version": _version(),
        "sha256": tensor_digest(tensors),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "extra": dict(extra or {}),
    }
    try:
        text = json.dumps(meta, default=partial(json_default, fallback=None), allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"checkpoint extra metadata is not JSON: {exc}") from None
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        save_file(tensors, os.fspath(tmp), metadata={METADATA_KEY: text})
    return path


def _version() -> str:
    from mrirecon import __version__

    return __version__


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Return a checkpoint's metadata without building the model or reading the weights.

    Raises
    ------
    InputFileError
        Missing file, not a safetensors file (or truncated, or a corrupt header), no mrirecon
        metadata, or metadata lacking the registry name, the config or the checksum.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such checkpoint file")
    if not path.is_file():
        raise InputFileError(path, "checkpoint path is not a file")
    try:
        with safe_open(os.fspath(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputFileError(
            path, f"not a safetensors checkpoint, or truncated: {one_line(exc)}"
        ) from None
    if METADATA_KEY not in header:
        raise InputFileError(path, "safetensors file without mrirecon metadata; not a checkpoint")
    try:
        meta = json.loads(header[METADATA_KEY])
    except ValueError as exc:
        raise InputFileError(path, f"mrirecon metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise InputFileError(path, "mrirecon metadata is not a JSON object")
    for key, kind in (("name", str), ("config", dict), ("sha256", str)):
        if not isinstance(meta.get(key), kind):
            raise InputFileError(
                path, f"mrirecon metadata lacks {key!r} (a {kind.__name__}); not a checkpoint"
            )
    version = meta.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputFileError(
            path,
            f"checkpoint format version {version!r} is newer than this mrirecon reads "
            f"({FORMAT_VERSION}); upgrade mrirecon",
        )
    return meta


def build_model(name: str, config: Mapping[str, Any] | Any | None = None, *,
                load_parts: bool = True) -> nn.Module:
    """Build a registered model, loading first the models its config names by file.

    Models receive, they never load: for each ``parts`` entry of the registry (the cINN's
    ``irim_checkpoint``), the named checkpoint is loaded here (:func:`load_checkpoint`) and passed
    to the constructor. ``load_parts=False`` builds without them, for a checkpoint whose own
    weights hold the parts.

    Raises
    ------
    InputFileError
        A part's checkpoint is missing, corrupt or of another model.
    InvalidParameterError
        An unknown name or a configuration out of range.
    """
    cfg = registry.config_for(name, config)
    parts: dict[str, nn.Module] = {}
    for field, keyword, part_name in registry.REGISTRY[name].parts if load_parts else ():
        part_path = getattr(cfg, field)
        if part_path is None:
            continue
        part, meta = load_checkpoint(part_path)
        if meta["name"] != part_name:
            raise InputFileError(part_path, f"{field} needs an {part_name} checkpoint, got "
                                            f"{meta['name']!r}")
        parts[keyword] = part
    return registry.build(name, cfg, parts)


def load_checkpoint(
    path: str | os.PathLike, *, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored in ``path`` and load its weights.

    The model is built through the registry from the stored name and configuration, its state
    dict loaded strictly, the weights' SHA-256 verified, and it is returned in eval mode on
    ``device``.

    Returns
    -------
    (nn.Module, dict)
        The model and the checkpoint's metadata (see the module docstring).

    Raises
    ------
    InputFileError
        Any problem with the file: those of :func:`read_metadata`, an unknown registry name,
        a configuration the model class does not accept, missing, unexpected or wrong-shape
        tensors, or weights that do not match their checksum.
    """
    path = Path(path)
    meta = read_metadata(path)
    name = meta["name"]
    if name not in registry.REGISTRY:
        raise InputFileError(
            path,
            f"unknown model {name!r}; this mrirecon knows: {', '.join(sorted(registry.REGISTRY))}",
        )
    try:
        registry.resolve(name)
    except MriReconError as exc:
        raise InputFileError(path, str(exc)) from None
    try:  # the stored weights come next: nothing else is loaded (parts included)
        model = build_model(name, meta["config"], load_parts=False)
    except (MriReconError, ValueError, TypeError) as exc:
        raise InputFileError(path, f"config does not match model {name!r}: {one_line(exc)}"
                             ) from None
    try:
        with safe_open(os.fspath(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputFileError(path, f"cannot read the weights: {one_line(exc)}") from None
    if tensor_digest(tensors) != meta["sha256"]:
        raise InputFileError(path, "weights do not match their checksum; the file is corrupt")
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise InputFileError(path, f"weight {key} holds NaN or Inf; the model cannot "
                                 "reconstruct anything")
    try:
        tensors = registry.upgrade_state(name, tensors, registry.config_for(name, meta["config"]))
    except ValueError as exc:
        raise InputFileError(path, f"inconsistent weights: {one_line(exc)}") from None
    _check_tensors(path, model.state_dict(), tensors)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise InputFileError(path, f"weights do not fit model {name!r}: {one_line(exc)}") from None
    return model.to(device).eval(), meta


def _check_tensors(
    path: Path, expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]
) -> None:
    def names(keys: list[str]) -> str:
        more = f" and {len(keys) - _MAX_NAMED} more" if len(keys) > _MAX_NAMED else ""
        return ", ".join(keys[:_MAX_NAMED]) + more

    missing = sorted(set(expected) - set(found))
    if missing:
        raise InputFileError(path, f"missing tensors: {names(missing)}")
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        raise InputFileError(path, f"unexpected tensors: {names(unexpected)}")
    wrong = [
        f"{k} {tuple(found[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in sorted(expected)
        if found[k].shape != expected[k].shape
    ]
    if wrong:
        raise InputFileError(path, f"tensors of the wrong shape: {names(wrong)}")
