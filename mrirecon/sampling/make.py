"""``make_mask(spec) -> Mask``: the one entry point that draws any kind."""

from __future__ import annotations

from mrirecon.sampling.cartesian import line_mask
from mrirecon.sampling.spec import Mask, MaskSpec
from mrirecon.sampling.twod import plane_mask


def make_mask(spec: MaskSpec) -> Mask:
    """Draw the mask ``spec`` describes (deterministic for a given spec, seed included).

    Raises :class:`~mrirecon.errors.InvalidParameterError` when the shape cannot reach the
    requested acceleration with the requested centre.
    """
    if spec.kind.is_line:
        columns, num_low = line_mask(spec)
        return Mask(columns[None, :], spec, num_low)
    array, num_low = plane_mask(spec)
    return Mask(array, spec, num_low)
