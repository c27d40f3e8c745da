"""Per-file mask choice: how to undersample a fully sampled file, the same way everywhere.

:class:`MaskOptions` says what to draw (checked when made, before any file is read);
:func:`draw_mask` draws it for one file's k-space shape, seeded from the file name
(:func:`~mrirecon.sampling.seeding.seed_from_name`), so the same file gets the same mask in every
run, process and machine. ``reconstruct``, ``evaluate`` and training validation all use it. A
file that carries its own mask keeps it; that decision belongs to the caller, which knows the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mrirecon.errors import InputFileError
from mrirecon.sampling.make import make_mask
from mrirecon.sampling.seeding import seed_from_name
from mrirecon.sampling.spec import Mask, MaskKind, MaskSpec, check_mask_parameters
from mrirecon.sampling.store import load_mask


@dataclass(frozen=True)
class MaskOptions:
    """How to undersample fully sampled inputs (checked on creation).

    ``center_fraction`` ``None`` means fastMRI's ``0.32 / acceleration``. With ``mask_file``
    (a file from ``mrirecon mask``) that mask is used instead of drawing one.
    """

    kind: MaskKind = MaskKind.RANDOM
    acceleration: float = 4.0
    center_fraction: float | None = None
    seed: int = 0
    mask_file: Path | None = None

    def __post_init__(self) -> None:
        if self.mask_file is None:
            kind, acceleration, _ = check_mask_parameters(self.kind, self.acceleration,
                                                          self.center_fraction)
            object.__setattr__(self, "kind", kind)
            object.__setattr__(self, "acceleration", acceleration)


def draw_mask(shape: tuple[int, int], options: MaskOptions, name: str) -> Mask:
    """The mask for a fully sampled file named ``name`` with k-space ``(ky, kx)`` ``shape``.

    Without ``options.mask_file``, the mask is drawn from a :class:`MaskSpec` whose seed is
    :func:`seed_from_name` of ``name`` and ``options.seed``.
    """
    ky, kx = shape
    if options.mask_file is not None:
        mask = load_mask(options.mask_file)
        if mask.array.shape[-1] != kx or mask.array.shape[0] not in (1, ky):
            raise InputFileError(
                options.mask_file, f"mask is {mask.array.shape[0]}x{mask.array.shape[1]} but "
                f"{name} has k-space {ky}x{kx} (rows x columns)")
        return mask
    spec = MaskSpec(kind=options.kind, acceleration=options.acceleration, shape=(ky, kx),
                    center_fraction=options.center_fraction,
                    seed=seed_from_name(name, base_seed=options.seed))
    return make_mask(spec)
