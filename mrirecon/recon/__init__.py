"""Reconstructors: one protocol (``recon(kspace) -> Volume``), classical methods behind it."""

from mrirecon.recon.base import Reconstructor, center_crop, recon_size
from mrirecon.recon.zero_filled import ZeroFilled

__all__ = ["Reconstructor", "ZeroFilled", "center_crop", "recon_size"]
