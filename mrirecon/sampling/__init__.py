"""Undersampling masks: ``MaskSpec`` -> ``make_mask`` -> ``Mask`` (array + spec + statistics).

No typer, rich or torch here; randomness is always explicit (see :mod:`.seeding`).
"""

from mrirecon.sampling.choice import MaskOptions, draw_mask
from mrirecon.sampling.make import make_mask
from mrirecon.sampling.presets import list_presets, load_preset
from mrirecon.sampling.seeding import fastmri_seed, rng, seed_from_name
from mrirecon.sampling.spec import Mask, MaskKind, MaskSpec, default_center_fraction
from mrirecon.sampling.store import load_mask, mask_outputs, save_mask

__all__ = [
    "Mask",
    "MaskKind",
    "MaskOptions",
    "MaskSpec",
    "default_center_fraction",
    "draw_mask",
    "fastmri_seed",
    "list_presets",
    "load_mask",
    "load_preset",
    "make_mask",
    "mask_outputs",
    "rng",
    "save_mask",
    "seed_from_name",
]
