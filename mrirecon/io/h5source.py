"""``H5SliceSource``: lazy, picklable reads of a few slices of one HDF5 dataset.

The one place HDF5 files are opened for reading (:func:`open_h5`), with every failure turned
into an :class:`~mrirecon.errors.InputFileError` naming the file.
"""

from __future__ import annotations

import operator
import os
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mrirecon.errors import InputFileError, one_line


class H5SliceSource:
    """A lazy, picklable view of one HDF5 dataset, read a few slices (first axis) at a time.

    It holds only the path and the dataset's name, ``shape`` and ``dtype`` as stored; each
    ``__getitem__`` opens the file, reads the requested slices (nothing else) and closes it, so
    it pickles into DataLoader workers and is safe across ``fork``. Any numpy index works: the
    first axis decides what is read, the rest is applied in memory. ``coil_axis`` inserts a
    length-1 coil axis after the slice axis (single-coil ``(slices, H, W)`` seen as
    ``(slices, 1, H, W)``).
    """

    def __init__(self, path: str | os.PathLike, dataset: str, shape: tuple[int, ...],
                 dtype: Any, *, coil_axis: bool = False) -> None:
        self.path = Path(path)
        self.dataset = dataset
        self.file_shape = tuple(int(n) for n in shape)
        self.coil_axis = coil_axis
        self.dtype = np.dtype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape as read: the file's, with the coil axis inserted if ``coil_axis``."""
        s = self.file_shape
        return (s[0], 1, *s[1:]) if self.coil_axis else s

    @property
    def ndim(self) -> int:
        """The number of axes of :attr:`shape`."""
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"H5SliceSource({str(self.path)!r}, {self.dataset!r}, shape={self.shape})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self[:]
        return data if dtype is None else data.astype(dtype, copy=False)

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, tuple) and not index:
            index = slice(None)
        first, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        n = self.file_shape[0]
        try:
            rows, keep = np.array([range(n)[operator.index(first)]]), False
        except TypeError:
            if isinstance(first, slice):
                rows, keep = np.arange(n)[first], True
            else:
                rows = np.asarray(first) if np.size(first) else np.zeros(0, int)
                if first is None or first is Ellipsis or rows.ndim != 1:
                    return self[:][index]  # unusual index: read all, let numpy apply it
                rows, keep = np.arange(n)[rows], True  # bool masks, negatives, bounds checks
        except IndexError:
            raise IndexError(f"slice {first} is out of range for {n} slices") from None
        data = self._read(rows)
        if not keep:
            data = data[0]
        return data[(slice(None),) * keep + tuple(rest)] if rest else data

    def _read(self, rows: np.ndarray) -> np.ndarray:
        """Slices ``rows`` (file indices, any order) with the coil axis added; checks finiteness."""
        if rows.size == 0:
            return np.empty((0, *self.shape[1:]), self.dtype)
        wanted, inverse = np.unique(rows, return_inverse=True)
        with open_h5(self.path) as f:
            try:
                ds = f[self.dataset]
                if wanted[-1] - wanted[0] + 1 == wanted.size:  # one contiguous hyperslab
                    data = ds[int(wanted[0]) : int(wanted[-1]) + 1]
                else:
                    data = ds[wanted.tolist()]
            except (OSError, KeyError) as exc:
                raise InputFileError(
                    self.path, f"cannot read {self.dataset} slices {span(wanted)} ({one_line(exc)})"
                ) from None
        bad = ~np.isfinite(data.reshape(len(wanted), -1)).all(axis=1)
        if bad.any():
            raise InputFileError(
                self.path, f"{self.dataset} slice {span(wanted[bad])} contains NaN or Inf values")
        data = data[inverse.reshape(-1)]
        return data[:, None] if self.coil_axis else data


def _open_h5(path: Path) -> h5py.File:
    """The one place files are opened (tests instrument it to log the bytes read)."""
    return h5py.File(path, "r")


def open_h5(path: Path) -> h5py.File:
    """Open ``path`` for reading; a missing, unreadable or corrupt file is an InputFileError."""
    if not path.exists():
        raise InputFileError(path, "file not found")
    if path.is_dir():
        raise InputFileError(path, "is a directory, expected a fastMRI .h5 file")
    if not os.access(path, os.R_OK):
        raise InputFileError(path, "cannot read (permission denied)")
    try:
        return _open_h5(path)
    except OSError as exc:
        if not h5py.is_hdf5(path):
            raise InputFileError(path, "not an HDF5 file (no HDF5 signature)") from None
        cut = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", str(exc))
        problem = f"truncated HDF5 file ({cut[1]} of {cut[2]} bytes)" if cut else (
            f"corrupt HDF5 file ({one_line(exc)})")
        raise InputFileError(path, problem) from None


def span(indices: np.ndarray) -> str:
    """Slice indices for a message: the first five, then ``... (n in all)`` if there are more."""
    shown = ", ".join(str(int(i)) for i in indices[:5])
    return shown + (f", ... ({len(indices)} in all)" if len(indices) > 5 else "")
