"""``KSpace``: measured (or simulated) k-space with its mask, encoding and provenance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class SliceSource(Protocol):
    """Anything with a 4-D ``shape`` that returns numpy arrays when indexed on its first axis.

    A numpy array qualifies; readers return lazy sources (an HDF5 dataset wrapper) so that a
    large multi-coil file is read one slice at a time.
    """

    @property
    def shape(self) -> tuple[int, ...]:
        """The 4-D shape ``(slices, coils, ky, kx)``."""
        ...

    def __getitem__(self, index: Any) -> np.ndarray: ...


@dataclass
class KSpace:
    """k-space of one volume, in the layout ``(slices, coils, ky, kx)`` (see :mod:`mrirecon.data`).

    Attributes
    ----------
    data
        A :class:`SliceSource`; read it with :meth:`slice` / :meth:`slices` so lazy readers stay
        lazy. Single-coil data has ``coils == 1``.
    mask
        ``(ky, kx)`` bool sampling mask carried by the file (fastMRI test/challenge files), or
        ``None`` when the data is fully sampled.
    encoded_matrix, encoded_fov_mm, recon_matrix, recon_fov_mm
        ISMRMRD ``encodedSpace`` / ``reconSpace`` sizes as ``(x, y, z)``; ``None`` if unknown.
    header
        Source metadata: ``"ismrmrd_xml"`` (str), ``"attrs"`` (file attributes such as ``max``,
        ``norm``, ``acquisition``, ``patient_id``), ``"single_coil"`` (bool).
    targets
        Named reference images ``(slices, rows, cols)`` (``reconstruction_esc``,
        ``reconstruction_rss``), possibly lazy.
    affine
        Geometry of the reconstructed image grid when known (k-space simulated from DICOM or
        NIfTI), mapping ``(slice, row, col, 1)`` to RAS+ mm; ``None`` otherwise.
    image_header
        The source image's header (see :attr:`mrirecon.data.Volume.header`) so outputs can keep
        patient and study information.
    provenance
        How this k-space came to be (e.g. simulation parameters).
    source
        The path it was read from.
    """

    data: SliceSource
    mask: np.ndarray | None = None
    encoded_matrix: tuple[int, int, int] | None = None
    encoded_fov_mm: tuple[float, float, float] | None = None
    recon_matrix: tuple[int, int, int] | None = None
    recon_fov_mm: tuple[float, float, float] | None = None
    header: dict[str, Any] = field(default_factory=dict)
    targets: Mapping[str, Any] = field(default_factory=dict)
    affine: np.ndarray | None = None
    image_header: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        if len(self.data.shape) != 4:
            raise ValueError(
                f"KSpace data must be (slices, coils, ky, kx), got shape {tuple(self.data.shape)}"
            )
        if self.mask is not None:
            mask = np.asarray(self.mask, dtype=bool)
            if mask.ndim == 1:
                mask = mask[None, :]
            ky, kx = self.data.shape[-2:]
            if mask.ndim != 2 or mask.shape[-1] != kx or mask.shape[0] not in (1, ky):
                raise ValueError(
                    f"mask has shape {mask.shape} but k-space has {ky} rows and {kx} columns"
                )
            self.mask = mask

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(slices, coils, ky, kx)`` as plain ints."""
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    @property
    def n_slices(self) -> int:
        """Number of slices."""
        return self.shape[0]

    @property
    def n_coils(self) -> int:
        """Number of coils (1 for single-coil data)."""
        return self.shape[1]

    @property
    def is_multicoil(self) -> bool:
        """True when there is more than one coil."""
        return self.n_coils > 1

    def slice(self, index: int) -> np.ndarray:
        """One slice, ``(coils, ky, kx)`` complex64."""
        return np.asarray(self.data[index], dtype=np.complex64)

    def slices(self, start: int, stop: int) -> np.ndarray:
        """Slices ``start:stop``, ``(n, coils, ky, kx)`` complex64."""
        return np.asarray(self.data[start:stop], dtype=np.complex64)
