"""Magnitude-image sources of the training generator: pinned files -> banks of 2-D slices.

A source is a NIfTI volume (slices along each of its three axes) or a ``.npy`` array
(``(rows, cols)`` or a stack ``(n, rows, cols)``), checked against its pinned SHA-256 before
anything is read. Slices that are mostly empty (less than :data:`MIN_FOREGROUND` of their pixels
above 5% of the volume's 99th percentile) are never drawn.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrirecon.errors import InputFileError

#: Fewest foreground pixels (fraction) a slice needs to be drawn.
MIN_FOREGROUND = 0.15


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class SliceBank:
    """A source's data and the 2-D slices items may draw from it.

    ``data`` is ``(d0, d1, d2)`` float32 (labels: int16); ``slices`` holds ``(axis, index)``
    pairs of usable slices.
    """

    name: str
    kind: str
    data: np.ndarray
    slices: list[tuple[int, int]]

    def slice(self, k: int) -> np.ndarray:
        """The 2-D slice ``self.slices[k]`` of ``data``."""
        axis, index = self.slices[k]
        return np.take(self.data, index, axis=axis)


def load_bank(path: str | Path, sha256: str, kind: str = "image") -> SliceBank:
    """Read and check one source (see the module docstring).

    Raises :class:`~mrirecon.errors.InputFileError` for a missing or unreadable file, another
    digest than ``sha256``, a shape that is not 2-D or 3-D, non-finite values, or no usable slice.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "generator source not found (scripts/fetch_training_data.sh "
                             "fetches the default sources)")
    actual = sha256_of(path)
    if actual != sha256.lower():
        raise InputFileError(path, f"sha256 is {actual}, expected the pinned {sha256.lower()}")
    data = _read(path)
    if data.ndim == 2:
        data = data[None]
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputFileError(path, f"expected a 2-D or 3-D image, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise InputFileError(path, "contains NaN or Inf values")
    data = data.astype(np.int16 if kind == "labels" else np.float32)
    volumetric = path.name.endswith((".nii", ".nii.gz"))
    slices = _usable(data, kind, axes=(0, 1, 2) if volumetric else (0,))
    if not slices:
        raise InputFileError(path, "no slice with enough foreground to draw from")
    return SliceBank(path.name, kind, data, slices)


def _read(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        import nibabel as nib
        from nibabel.dataobj_images import DataobjImage

        image = nib.load(path)
        if not isinstance(image, DataobjImage):
            raise TypeError(f"{type(image).__name__} has no voxel array")
        return np.asarray(image.dataobj)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one line about the file
        raise InputFileError(path, f"cannot read generator source ({exc})") from None


def _usable(data: np.ndarray, kind: str, axes: tuple[int, ...]) -> list[tuple[int, int]]:
    foreground = data > 0 if kind == "labels" else data > 0.05 * np.percentile(data, 99)
    out: list[tuple[int, int]] = []
    for axis in axes:
        other = tuple(a for a in range(3) if a != axis)
        fraction = foreground.mean(axis=other)
        out.extend((axis, int(i)) for i in np.flatnonzero(fraction >= MIN_FOREGROUND))
    return out
