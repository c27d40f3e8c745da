"""What evaluation reads from HDF5: reconstruction files and the references they are scored on.

``mrirecon evaluate --predictions P --targets T`` (:func:`mrirecon.evaluate.compare_files`)
pairs the reconstruction files in ``P`` with the files of the same name in ``T``. The targets are
fastMRI files (their ``reconstruction_esc`` / ``reconstruction_rss``, chosen by
:func:`target_dataset` with :func:`~mrirecon.io.fastmri_h5.preferred_targets`, the one place
that choice is made) or reconstruction files used as references. h5py is imported only when a
file is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mrirecon.data import Volume
from mrirecon.errors import InputFileError

#: Suffixes of the HDF5 files a folder of targets is listed by.
HDF5_SUFFIXES = (".h5", ".hdf5")

__all__ = ["HDF5_SUFFIXES", "file_attrs", "hdf5_files", "read_prediction", "read_target",
           "target_dataset"]


def hdf5_files(folder: str | Path) -> list[Path]:
    """The ``.h5`` / ``.hdf5`` files directly in ``folder``, hidden ones left out, sorted.

    Parameters
    ----------
    folder
        An existing folder.
    """
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix in HDF5_SUFFIXES and p.is_file() and not p.name.startswith("."))


def file_attrs(path: str | Path) -> dict[str, Any]:
    """The file attributes of an HDF5 file as plain Python values (bytes decoded as UTF-8).

    Parameters
    ----------
    path
        An HDF5 file (e.g. a fastMRI file with ``acquisition`` and ``acceleration`` attributes).

    Raises
    ------
    InputFileError
        Not a readable HDF5 file.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {k: _plain(v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise InputFileError(path, f"not a readable HDF5 file ({exc})") from None


def target_dataset(path: str | Path) -> str:
    """The reference dataset of a target file, chosen as fastMRI's evaluation does.

    ``reconstruction_esc`` for single-coil k-space files (3-D ``kspace``), ``reconstruction_rss``
    for multi-coil ones, whichever exists otherwise; ``reconstruction`` for reconstruction files.

    Parameters
    ----------
    path
        A fastMRI file or a reconstruction file.

    Raises
    ------
    InputFileError
        Not a readable HDF5 file, or none of those datasets in it.
    """
    import h5py

    from mrirecon.io.fastmri_h5 import RECONSTRUCTION_KEY, preferred_targets

    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
            single = "kspace" in f and f["kspace"].ndim == 3
    except OSError as exc:
        raise InputFileError(path, f"not a readable HDF5 file ({exc})") from None
    for name in [*preferred_targets(single), RECONSTRUCTION_KEY]:
        if name in keys:
            return name
    raise InputFileError(path, "no reconstruction_esc, reconstruction_rss or reconstruction "
                         f"dataset (holds: {', '.join(sorted(keys)) or 'nothing'})")


def read_target(path: str | Path) -> Volume:
    """The reference volume of a target file: its :func:`target_dataset`.

    Parameters
    ----------
    path
        A fastMRI file or a reconstruction file.
    """
    from mrirecon.io.fastmri_h5 import read_reconstruction

    return read_reconstruction(path, dataset=target_dataset(path))


def read_prediction(path: str | Path) -> Volume:
    """A reconstruction file (``mrirecon reconstruct`` output or fastMRI submission) as a Volume.

    Parameters
    ----------
    path
        An HDF5 file with a ``reconstruction`` dataset (else its first target dataset, see
        :func:`~mrirecon.io.fastmri_h5.read_reconstruction`); its provenance says how it was
        made (method, mask, timing) when mrirecon wrote it.
    """
    from mrirecon.io.fastmri_h5 import read_reconstruction

    return read_reconstruction(path)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value.item() if isinstance(value, np.generic) else value
