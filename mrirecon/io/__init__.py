"""Readers and writers: ``load(path)`` / ``save(volume, path)`` over every format we speak.

Formats are named ``"fastmri"`` (:mod:`mrirecon.io.fastmri_h5`), ``"nifti"``
(:mod:`mrirecon.io.nifti`), ``"dicom"`` (:mod:`mrirecon.io.dicom`), ``"cfl"`` (BART's
``.cfl``/``.hdr`` pair, :mod:`mrirecon.io.cfl`) and ``"ismrmrd"`` (raw acquisitions,
:mod:`mrirecon.io.ismrmrd_raw`; read only). The format modules, and the libraries behind them,
are imported only when a file of that kind is read or written, so ``import mrirecon.io`` stays
cheap.
"""

from __future__ import annotations

import gzip
import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from mrirecon.data import KSpace, Volume
from mrirecon.errors import (
    InputFileError,
    InvalidParameterError,
    MriReconError,
    OutputError,
    one_line,
)

#: The formats outputs can be written in.
FORMATS = ("fastmri", "nifti", "dicom", "cfl")
#: The formats inputs can be read from: the written ones plus raw ISMRMRD.
READ_FORMATS = (*FORMATS, "ismrmrd")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_SUFFIX_FORMATS = {".h5": "fastmri", ".hdf5": "fastmri", ".nii": "nifti", ".nii.gz": "nifti",
                   ".dcm": "dicom", ".ima": "dicom", ".cfl": "cfl", ".hdr": "cfl"}
#: The extension of an output of each format (a DICOM output is a folder): the one table.
EXTENSIONS = {"fastmri": ".h5", "nifti": ".nii.gz", "dicom": "", "cfl": ".cfl"}

__all__ = ["EXTENSIONS", "FORMATS", "LIBRARY_ERRORS", "READ_FORMATS", "check_geometry",
           "detect_format", "load", "output_format", "output_path", "output_stem", "save"]


def detect_format(path: str | Path) -> str:
    """Name the format of ``path``: one of :data:`READ_FORMATS`.

    Content decides first: the HDF5 signature (at offset 0, or after a user block as
    ``h5py.is_hdf5`` finds it; an HDF5 file with an ISMRMRD ``dataset`` group is ``"ismrmrd"``),
    ``DICM`` at byte 128, the NIfTI magic (``n+1``/``ni1`` at byte 344, ``n+2`` at byte 4, after
    gunzip), or BART's ``# Dimensions`` header. A folder is a DICOM series. When the content
    says nothing, the suffix does (``.h5``, ``.hdf5``, ``.nii``, ``.nii.gz``, ``.dcm``, ``.ima``,
    ``.cfl``, ``.hdr``), so a damaged file still reaches the reader that can say what is wrong
    with it.

    Raises
    ------
    InputFileError
        ``path`` does not exist, or neither content nor suffix names a known format.
    """
    path = Path(path)
    if path.is_dir():
        return "dicom"
    if path.name.lower().endswith(".cfl"):  # raw complex64 values: only the name tells
        return "cfl"
    if not path.exists():
        raise InputFileError(path, "file not found")
    try:
        with open(path, "rb") as f:
            head = f.read(348)
    except OSError as exc:
        raise InputFileError(path, f"cannot read ({exc.strerror})") from None
    if head.startswith(_HDF5_MAGIC):
        return _hdf5_format(path)
    if head.startswith(b"# Dimensions"):
        return "cfl"
    if head[128:132] == b"DICM":
        return "dicom"
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as f:
                head = f.read(348)
        except (OSError, EOFError, zlib.error):
            head = b""
    if head[344:347] in (b"n+1", b"ni1") or head[4:7] == b"n+2":
        return "nifti"
    import h5py

    if h5py.is_hdf5(path):
        return _hdf5_format(path)
    name = path.name.lower()
    for suffix, fmt in _SUFFIX_FORMATS.items():
        if name.endswith(suffix):
            return fmt
    raise InputFileError(path, "not a fastMRI HDF5, ISMRMRD, NIfTI, DICOM or BART .cfl/.hdr file")


def _hdf5_format(path: Path) -> str:
    from mrirecon.io.ismrmrd_raw import is_ismrmrd

    return "ismrmrd" if is_ismrmrd(path) else "fastmri"


def output_format(fmt: str) -> str:
    """The format an input of format ``fmt`` is written back in by default.

    Its own, or fastMRI HDF5 for raw ISMRMRD, which mrirecon reads but does not write.
    """
    return "fastmri" if fmt == "ismrmrd" else _check_fmt(fmt)


#: What the format libraries (h5py, pydicom, nibabel, numpy, zlib) raise on files they cannot
#: make sense of; :func:`load` turns each into one :class:`InputFileError` naming the file.
LIBRARY_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, TypeError, KeyError, IndexError, RuntimeError, EOFError, ArithmeticError,
    NotImplementedError, AttributeError, MemoryError, zlib.error, struct.error,
    zipfile.BadZipFile)


def load(path: str | Path, *, series: str | None = None,
         prewhiten: bool = True) -> KSpace | Volume:
    """Read ``path`` in whatever format :func:`detect_format` finds.

    fastMRI HDF5 with a ``kspace`` dataset, raw ISMRMRD and a BART ``.cfl`` give
    :class:`~mrirecon.data.KSpace`; an HDF5 file holding only reconstructions, a NIfTI file or
    a DICOM file/folder gives a :class:`~mrirecon.data.Volume`. ``series`` picks a DICOM series
    (a folder may hold several) or an ISMRMRD volume (``"contrast=0,repetition=1"``) and is a
    usage error for other formats. ``prewhiten=False`` leaves raw ISMRMRD coils as measured
    (no noise pre-whitening).

    This is the reader boundary: whatever a format library raises becomes one
    :class:`~mrirecon.errors.InputFileError` naming the file, and the geometry read is checked
    (:func:`check_geometry`) before anything uses it.
    """
    fmt = detect_format(path)
    if series is not None and fmt not in ("dicom", "ismrmrd"):
        raise InvalidParameterError(f"series={series!r} selects a DICOM series or an ISMRMRD "
                                    f"volume; {path} is {fmt}")
    try:
        obj = _read(Path(path), fmt, series, prewhiten)
    except MriReconError:
        raise
    except MemoryError:
        raise InputFileError(path, "declares more data than this machine's memory holds"
                             ) from None
    except LIBRARY_ERRORS as exc:
        raise InputFileError(path, f"cannot read it ({type(exc).__name__}: {one_line(exc)})"
                             ) from None
    check_geometry(obj, path)
    return obj


def _read(path: Path, fmt: str, series: str | None, prewhiten: bool) -> KSpace | Volume:
    if fmt == "ismrmrd":
        from mrirecon.io.ismrmrd_raw import read_ismrmrd

        return read_ismrmrd(path, volume=series, prewhiten=prewhiten)
    if fmt == "cfl":
        from mrirecon.io.cfl import read_cfl

        return read_cfl(path)
    if fmt == "nifti":
        from mrirecon.io.nifti import read_nifti

        return read_nifti(path)
    if fmt == "dicom":
        from mrirecon.io.dicom import read_dicom

        return read_dicom(path, series=series)
    from mrirecon.io.fastmri_h5 import read_kspace, read_reconstruction

    return read_reconstruction(path) if _holds_only_reconstructions(path) else read_kspace(path)


def check_geometry(obj: KSpace | Volume, path: str | Path) -> None:
    """Refuse geometry no reconstruction can use.

    Empty data, a non-finite or singular affine, matrix sizes below 1, or a non-finite or
    non-positive field of view.

    Raises
    ------
    InputFileError
        Naming the file and the value.
    """
    if not isinstance(obj, KSpace | Volume):  # a reader stand-in (tests): nothing to check
        return
    shape = tuple(int(n) for n in obj.shape)
    if 0 in shape:
        raise InputFileError(path, f"holds no data (shape {shape})")
    affine = np.asarray(obj.affine if obj.affine is not None else np.eye(4), dtype=float)
    if not np.isfinite(affine).all():
        raise InputFileError(path, "its affine (voxel-to-world geometry) is not finite")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputFileError(path, "its affine (voxel-to-world geometry) is singular: a voxel "
                             "size or direction is zero")
    if isinstance(obj, KSpace):
        for name in ("encoded_matrix", "recon_matrix"):
            value = getattr(obj, name)
            if value is not None and min(int(v) for v in value) < 1:
                raise InputFileError(path, f"header {name} {tuple(value)} has a size below 1")
        for name in ("encoded_fov_mm", "recon_fov_mm"):
            value = getattr(obj, name)
            if value is not None and not all(math.isfinite(v) and v > 0 for v in value):
                raise InputFileError(path, f"header {name} {tuple(value)} is not positive and "
                                     "finite")


def save(volume: Volume, path: str | Path, *, fmt: str | None = None,
         description: str = "mrirecon", overwrite: bool = False) -> list[Path]:
    """Write ``volume`` to ``path`` and return every file written.

    ``fmt`` (one of :data:`FORMATS`) or else the name decides the format: ``.h5``/``.hdf5`` ->
    fastMRI HDF5, ``.nii``/``.nii.gz`` -> NIfTI (plus JSON sidecar), ``.cfl`` -> a BART pair
    (plus JSON sidecar), an existing folder or a name without suffix -> a DICOM series in that
    folder. ``description`` becomes the DICOM SeriesDescription; the other formats record the
    volume's provenance instead.
    """
    path = Path(path)
    fmt = _check_fmt(fmt) if fmt is not None else _format_from_name(path)
    if fmt == "cfl":
        from mrirecon.io.cfl import write_cfl

        return write_cfl(volume, path, overwrite=overwrite)
    if fmt == "nifti":
        from mrirecon.io.nifti import nifti_outputs, write_nifti

        write_nifti(volume, path, overwrite=overwrite)
        return list(nifti_outputs(path))
    if fmt == "dicom":
        from mrirecon.io.dicom import write_dicom

        return list(write_dicom(volume, path, description=description, overwrite=overwrite))
    from mrirecon.io.fastmri_h5 import write_reconstruction

    return [write_reconstruction(volume, path, overwrite=overwrite)]


def output_stem(input_path: str | Path) -> str:
    """The stem every output of ``input_path`` is named after.

    ``knee.h5``, ``knee.nii.gz``, ``knee.dcm``, ``knee.cfl`` and a folder ``knee/`` all give
    ``knee``.
    """
    input_path = Path(input_path)
    name = input_path.name or input_path.resolve().name
    if name in ("", ".", ".."):
        name = input_path.resolve().name
    for suffix in _SUFFIX_FORMATS:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def output_path(input_path: str | Path, out_dir: str | Path, fmt: str | None = None) -> Path:
    """The deterministic output name for ``input_path`` written into ``out_dir``.

    :func:`output_stem` with ``.h5`` (fastmri), ``.nii.gz`` (nifti), ``.cfl`` (cfl) or no
    suffix (dicom: a folder). ``fmt=None`` keeps the input's format (:func:`output_format`).
    An output that would be the input itself is an :class:`~mrirecon.errors.OutputError`.
    """
    input_path = Path(input_path)
    fmt = output_format(detect_format(input_path)) if fmt is None else _check_fmt(fmt)
    out = Path(out_dir) / (output_stem(input_path) + EXTENSIONS[fmt])
    if out.resolve() == input_path.resolve():
        raise OutputError(f"{out}: output would replace the input; choose another output folder")
    return out


def _check_fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidParameterError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def _format_from_name(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".h5", ".hdf5", ".nii", ".nii.gz", ".cfl"):
        if name.endswith(suffix):
            return _SUFFIX_FORMATS[suffix]
    if path.is_dir() or not path.suffix:
        return "dicom"
    raise InvalidParameterError(
        f"{path}: cannot tell the output format from the name; use .h5, .nii, .nii.gz, .cfl or "
        "a folder, or pass fmt"
    )


def _holds_only_reconstructions(path: str | Path) -> bool:
    """True for an HDF5 file with ``reconstruction*`` datasets but no ``kspace``."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            keys = list(f.keys())
    except OSError:
        return False  # read_kspace reports the problem
    return "kspace" not in keys and any(k.startswith("reconstruction") for k in keys)
