"""The one place a device name (``auto``, ``cpu``, ``cuda[:i]``) becomes a torch device."""

from __future__ import annotations

from typing import Any

from mrirecon.errors import MriReconError


def resolve_device(name: str = "auto") -> Any:
    """``"auto"`` -> CUDA if available else CPU; ``"cuda"`` without a GPU is an error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MriReconError(
            f"CUDA was requested (--device {name}) but no CUDA device is available; "
            "use --device cpu or auto"
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise MriReconError(f"unknown device {name!r}; expected auto, cpu or cuda") from None
