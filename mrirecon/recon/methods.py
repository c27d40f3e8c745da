"""Method names -> reconstructors (classical ones here; learned models join via the registry)."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch stays unloaded until a reconstructor is built
    from mrirecon.recon.base import Reconstructor


class Method(str, Enum):
    """Classical reconstruction methods."""

    ZERO_FILLED = "zero-filled"
    SENSE = "sense"
    CS = "cs"


def build_reconstructor(method: Method | str, *, device: Any = "cpu", batch_size: int = 8,
                        model: Any = None, amp: bool = False, **params: Any) -> Reconstructor:
    """Make the reconstructor for ``method``; ``params`` go to its constructor (e.g. ``lamda``).

    ``model`` (a checkpoint path) gives the learned model's reconstructor instead (``amp``:
    bfloat16 autocast on CUDA); sigpy-based methods and models are imported only when asked
    for.
    """
    if model is not None:
        from mrirecon.recon.learned import load_reconstructor

        return load_reconstructor(model, device=device, batch_size=batch_size, amp=amp)
    method = Method(method)
    if method is Method.ZERO_FILLED:
        from mrirecon.recon.zero_filled import ZeroFilled

        return ZeroFilled(device=device, batch_size=batch_size)
    from mrirecon.recon import sigpy_baselines

    cls = sigpy_baselines.SENSE if method is Method.SENSE else sigpy_baselines.CompressedSensing
    return cls(device=device, batch_size=batch_size, **params)
