"""The default models and sample scan shipped inside the package.

``mrirecon reconstruct scan.h5 --accel 4`` with neither ``--model`` nor ``--method`` uses
:func:`default_checkpoint` (with ``--samples N``, :func:`default_sampler`); ``mrirecon demo``
reconstructs :func:`sample_scan`. Wherever a checkpoint path is accepted, the names
``default`` and ``default-cinn`` (:data:`ALIASES`) mean these two (:func:`resolve_model`).
They live in ``mrirecon/models/default/`` with their model card (``MODEL_CARD.md``): how they
were made, from which data and licences, and how well the models do.
"""

from __future__ import annotations

from pathlib import Path

from mrirecon.errors import MriReconError

_FOLDER = Path(__file__).resolve().parent / "default"
DEFAULT_CHECKPOINT = "irim-default.safetensors"
DEFAULT_SAMPLER = "cinn-default.safetensors"
SAMPLE_SCAN = "sample_colin27.h5"


def _shipped(name: str) -> Path:
    path = _FOLDER / name
    if not path.is_file():
        raise MriReconError(f"{path}: shipped file missing; reinstall mrirecon")
    return path


def default_checkpoint() -> Path:
    """The default i-RIM checkpoint (safetensors)."""
    return _shipped(DEFAULT_CHECKPOINT)


def default_sampler() -> Path:
    """The default cINN checkpoint (``reconstruct --samples N`` without ``--model``)."""
    return _shipped(DEFAULT_SAMPLER)


def shipped_checkpoints() -> list[Path]:
    """The shipped checkpoints that are present (the default i-RIM, then the default cINN)."""
    return [p for p in (_FOLDER / DEFAULT_CHECKPOINT, _FOLDER / DEFAULT_SAMPLER) if p.is_file()]


def sample_scan() -> Path:
    """The sample fastMRI-format scan (simulated multi-coil k-space of real head slices)."""
    return _shipped(SAMPLE_SCAN)


#: The names of the shipped checkpoints: ``--model default`` and ``--model default-cinn``.
ALIASES = {"default": DEFAULT_CHECKPOINT, "default-cinn": DEFAULT_SAMPLER}


def shipped_names() -> dict[str, Path]:
    """The shipped checkpoints by name (:data:`ALIASES`), present or not."""
    return {name: _FOLDER / file for name, file in ALIASES.items()}


def resolve_model(name_or_path: str | Path) -> Path:
    """A checkpoint path, or the name of a shipped one (:data:`ALIASES`), as a path.

    A file of that name wins over the alias; anything else is returned as a path, so the
    checkpoint reader reports a missing file as before.

    Raises
    ------
    MriReconError
        The alias names a shipped file that is missing (a broken install).
    """
    path = Path(name_or_path)
    if str(name_or_path) in ALIASES and not path.is_file():
        return _shipped(ALIASES[str(name_or_path)])
    return path


def model_label(name_or_path: str | Path, registry_name: str) -> str:
    """A model's label in tables: ``default (irim.v1)`` for an alias, else the registry name."""
    alias = str(name_or_path)
    if alias in ALIASES and not Path(alias).is_file():
        return f"{alias} ({registry_name})"
    return registry_name
