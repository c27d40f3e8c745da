"""Devices: a name (``auto``, ``cpu``, ``cuda[:i]``) as a torch device; its default batch."""

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


#: Slices per batch when none is given, by device type. On the CPU one slice at a time was the
#: fastest through ``mrirecon reconstruct`` (default i-RIM, 16 slices of 320x320, 2 cores:
#: batch 1 0.77-0.80 s/slice, 2 0.81-0.84, 4 0.75-0.90, 8 0.91-0.94; scripts/bench/throughput.py
#: --methods cli) and holds the least memory; on CUDA a larger batch fills the device (not yet
#: measured: no GPU so far).
DEFAULT_BATCH_SIZE = {"cpu": 1, "cuda": 8}


def default_batch_size(device: Any) -> int:
    """Slices per batch on ``device`` (a torch device or name) when the user gives none."""
    import torch

    return DEFAULT_BATCH_SIZE.get(torch.device(device).type, 1)
