"""``Volume``: image pixels with their geometry, source header and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Volume:
    """An image volume that knows where it is.

    Attributes
    ----------
    data
        ``(slices, rows, cols)`` pixels (layout table in :mod:`mrirecon.data`), usually float32
        magnitude, complex64 allowed.
    affine
        4x4 map from the index ``(slice, row, col, 1)`` to RAS+ millimetres.
    header
        What the source format said that later writers may need, as JSON-friendly values. Known
        keys: ``"format"`` (``"dicom"``, ``"nifti"``, ``"fastmri"``), ``"dicom"`` (a dict of
        DICOM keywords from the patient and study modules and per-series attributes),
        ``"nifti"`` (intent, units, ...), ``"warnings"`` (a list of one-line notes a reader
        raised, e.g. non-uniform slice spacing).
    provenance
        How the pixels were made (method, model, mask spec and seed, device, mrirecon version);
        every writer stores it.
    source
        The path the volume (or the k-space it was reconstructed from) was read from.
    """

    data: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    header: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        if np.ndim(self.data) != 3:
            raise ValueError(
                f"Volume data must be (slices, rows, cols), got shape {np.shape(self.data)}"
            )
        affine = np.asarray(self.affine, dtype=float)
        if affine.shape != (4, 4):
            raise ValueError(f"Volume affine must be 4x4, got shape {affine.shape}")
        object.__setattr__(self, "affine", affine)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slices, rows, cols)`` of the pixel data."""
        slices, rows, cols = self.data.shape  # 3-D, checked in __post_init__
        return slices, rows, cols

    def with_data(self, data: np.ndarray, **provenance: Any) -> Volume:
        """The same volume (geometry, header, source) with new pixels and added provenance.

        ``data`` must have the same number of slices; rows and columns may differ only if the
        caller also fixes the affine (use :func:`dataclasses.replace` for that).
        """
        if np.shape(data)[0] != self.data.shape[0]:
            raise ValueError(
                f"with_data: new data has {np.shape(data)[0]} slices, volume has "
                f"{self.data.shape[0]}"
            )
        return replace(self, data=data, provenance={**self.provenance, **provenance})
