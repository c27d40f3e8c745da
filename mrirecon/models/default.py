"""The default models and sample scan shipped inside the package.

``mrirecon reconstruct scan.h5 --accel 4`` with neither ``--model`` nor ``--method`` uses
:func:`default_checkpoint` (with ``--samples N``, :func:`default_sampler`); ``mrirecon demo``
reconstructs :func:`sample_scan`. They live in ``mrirecon/models/default/`` with their model
card (``MODEL_CARD.md``): how they were made, from which data and licences, and how well the
models do.
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
