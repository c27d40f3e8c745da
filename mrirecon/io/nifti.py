"""NIfTI-1/2 images (``.nii``, ``.nii.gz``) <-> :class:`~mrirecon.data.Volume`.

Axis convention
---------------
nibabel indexes NIfTI voxels ``(i, j, k)``: ``i`` varies fastest on disk and is the in-plane
"x" axis, ``j`` the in-plane "y" axis and ``k`` the slice axis. Our volume layout is
``(slice, row, col)`` (table in :mod:`mrirecon.data`), and we map it as::

    (slice, row, col) = (k, j, i)
    volume.data       = nifti_data.transpose(2, 1, 0)
    volume.affine     = nifti_affine[:, [2, 1, 0, 3]]

The permutation is its own inverse, so writing applies the same two lines and a NIfTI read and
written again gives back the identical nibabel array (same shape and orientation) and affine.
The affine read is nibabel's ``img.affine`` (the sform if ``sform_code > 0``, else the qform,
else the pixdim-only fallback), converted to millimetres when ``xyzt_units`` says metres or
microns. The writer stores the affine as both qform and sform, keeping the source's codes when
the volume came from NIfTI and using code 1 (scanner) otherwise.

Provenance goes into the 80-byte ``descrip`` field in short (``"mrirecon 0.1.0 <method>"``) and
in full into a JSON sidecar ``<stem>.json`` written beside the image.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from mrirecon import __version__
from mrirecon.data import Volume
from mrirecon.errors import InputFileError, InvalidParameterError, one_line
from mrirecon.fileutil import atomic_path, check_writable
from mrirecon.jsonutil import strict_dumps

NIFTI_SUFFIXES = (".nii.gz", ".nii")
_AXES = [2, 1, 0, 3]  # (slice, row, col, 1) <-> (k, j, i, 1); its own inverse
_MM_PER_UNIT = {"meter": 1000.0, "micron": 1e-3}
_READ_ERRORS = (ImageFileError, HeaderDataError, OSError, EOFError, ValueError, zlib.error)

__all__ = ["NIFTI_SUFFIXES", "nifti_outputs", "read_nifti", "sidecar_path", "write_nifti"]


def read_nifti(path: str | Path, *, volume_index: int | None = None) -> Volume:
    """Read one 3-D volume from a NIfTI file.

    Parameters
    ----------
    path
        A ``.nii`` or ``.nii.gz`` file (NIfTI-1 or NIfTI-2; other names are read by content).
    volume_index
        Which volume of a 4-D file to read (default 0). A 3-D file has one volume.

    Returns
    -------
    Volume
        ``data`` float32 ``(slices, rows, cols)`` = NIfTI ``(k, j, i)`` with ``scl_slope`` /
        ``scl_inter`` applied (complex64 for complex files); ``affine`` in RAS+ mm (see the module
        docstring); ``header = {"format": "nifti", "nifti": {...}}`` holding ``descrip``,
        ``xyzt_units``, ``qform_code``, ``sform_code``, ``dim``, ``pixdim``, ``intent``,
        ``n_volumes`` (the 4th-dimension length, 1 for 3-D) and ``volume_index``.

    Raises
    ------
    InputFileError
        The file is missing, not NIfTI, truncated or corrupt, not 3-D/4-D, or ``volume_index``
        is out of range.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "file not found")
    if path.is_dir():
        raise InputFileError(path, "is a directory, expected a .nii or .nii.gz file")
    img = _load(path)
    shape = tuple(int(n) for n in img.shape)
    while len(shape) > 4 and shape[-1] == 1:  # (x, y, z, 1, 1) is a plain 3-D volume
        shape = shape[:-1]
    if len(shape) not in (3, 4):
        raise InputFileError(path, f"{len(shape)}-D image of shape {shape}, expected 3-D or 4-D")
    n_volumes = shape[3] if len(shape) == 4 else 1
    index = 0 if volume_index is None else int(volume_index)
    if not 0 <= index < n_volumes:
        raise InputFileError(
            path, f"volume_index {volume_index} is out of range; the file has {n_volumes} volumes"
        )
    if min(shape) < 1:
        raise InputFileError(path, f"has no voxels (dimensions {shape})")
    needed = math.prod(shape[:3]) * 8  # one volume as complex64 or float32 plus a copy
    if needed > _memory_bytes():
        raise InputFileError(path, f"declares a {'x'.join(map(str, shape[:3]))} volume: reading "
                             f"it would need {needed / 1e9:.3g} GB, more than this machine has")
    dtype = img.get_data_dtype()
    if dtype.fields is not None:
        raise InputFileError(path, f"unsupported NIfTI data type {dtype} (RGB or structured)")
    out_dtype = np.complex64 if dtype.kind == "c" else np.float32
    try:
        slicer = (slice(None),) * 3 + (index,) * (len(img.shape) - 3)
        data = np.asarray(img.dataobj[slicer], dtype=out_dtype)  # applies scl_slope/scl_inter
    except _READ_ERRORS as exc:
        raise InputFileError(path, f"truncated or corrupt NIfTI data ({one_line(exc)})") from None
    hdr = img.header
    space_unit, time_unit = hdr.get_xyzt_units()
    affine = np.array(img.affine, dtype=float)
    affine[:3] *= _MM_PER_UNIT.get(space_unit, 1.0)  # world coordinates in mm
    intent_code, intent_params, intent_name = hdr.get_intent()
    info = {
        "descrip": _text(hdr["descrip"]),
        "xyzt_units": [space_unit, time_unit],
        "qform_code": int(hdr["qform_code"]),
        "sform_code": int(hdr["sform_code"]),
        "dim": [int(v) for v in hdr["dim"]],
        "pixdim": [float(v) for v in hdr["pixdim"]],
        "intent": {"code": intent_code, "params": [float(p) for p in intent_params],
                   "name": intent_name},
        "datatype": str(dtype),
        "n_volumes": n_volumes,
        "volume_index": index,
    }
    return Volume(
        data=np.ascontiguousarray(data.transpose(2, 1, 0)),
        affine=affine[:, _AXES],
        header={"format": "nifti", "nifti": info},
        source=str(path),
    )


def write_nifti(volume: Volume, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``volume`` as a float32 NIfTI-1 image plus a JSON sidecar ``<stem>.json``.

    Parameters
    ----------
    volume
        The volume; complex data is written as its magnitude. Layout and affine are converted
        as the module docstring says, so the affine becomes both qform and sform.
    path
        Output name ending in ``.nii`` or ``.nii.gz`` (gzip-compressed).
    overwrite
        Replace existing outputs. Without it, an existing image *or* sidecar is an
        :class:`~mrirecon.errors.OutputError` raised before anything is written.

    Returns
    -------
    Path
        The image path; the sidecar is :func:`sidecar_path` of it (see :func:`nifti_outputs`).
    """
    path, sidecar = nifti_outputs(path)
    check_writable([path, sidecar], overwrite)
    data = np.abs(volume.data) if np.iscomplexobj(volume.data) else volume.data
    nib_affine = volume.affine[:, _AXES]
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32).transpose(2, 1, 0), nib_affine)
    src = volume.header.get("nifti", {}) if volume.header.get("format") == "nifti" else {}
    qform_code = int(src.get("qform_code") or 1)
    sform_code = int(src.get("sform_code") or 1)
    img.set_qform(nib_affine, code=qform_code)
    img.set_sform(nib_affine, code=sform_code)
    hdr = img.header
    hdr.set_data_dtype(np.float32)
    hdr.set_xyzt_units("mm")
    hdr["descrip"] = _descrip(volume.provenance)
    summary = {
        "mrirecon_version": __version__,
        "file": path.name,
        "provenance": volume.provenance,
        "source": volume.source,
        "layout": "volume (slice, row, col) = NIfTI (k, j, i)",
        "shape": list(volume.shape),
        "affine": volume.affine.tolist(),
        "nifti": {"descrip": _text(hdr["descrip"]), "qform_code": qform_code,
                  "sform_code": sform_code, "dim": [int(v) for v in hdr["dim"]],
                  "pixdim": [float(v) for v in hdr["pixdim"]], "datatype": "float32"},
        "source_header": volume.header,
    }
    text = strict_dumps(summary, indent=2) + "\n"
    with atomic_path(path, overwrite) as tmp:
        nib.save(img, tmp)
    try:
        with atomic_path(sidecar, overwrite) as tmp:
            tmp.write_text(text)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def nifti_outputs(path: str | Path) -> tuple[Path, Path]:
    """The image and sidecar paths :func:`write_nifti` writes for ``path``."""
    path = Path(path)
    if not path.name.endswith(NIFTI_SUFFIXES):
        raise InvalidParameterError(f"{path}: a NIfTI output name must end in .nii or .nii.gz")
    return path, sidecar_path(path)


def sidecar_path(path: str | Path) -> Path:
    """``scan.nii.gz`` -> ``scan.json`` (BIDS-style sidecar name beside the image)."""
    path = Path(path)
    for suffix in NIFTI_SUFFIXES:
        if path.name.endswith(suffix):
            return path.with_name(path.name[: -len(suffix)] + ".json")
    return path.with_suffix(".json")


def _memory_bytes() -> float:
    """Physical memory in bytes (infinite where the OS does not say)."""
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return math.inf


def _load(path: Path) -> nib.Nifti1Pair:
    """Open a NIfTI image lazily (memory-mapped/streamed for the usual names)."""
    try:
        if path.name.endswith(NIFTI_SUFFIXES) or path.suffix == ".hdr":
            img = nib.load(path)
        else:  # content-detected NIfTI under another name: nibabel goes by suffix, so feed bytes
            raw = path.read_bytes()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            klass = nib.Nifti2Image if raw[4:7] == b"n+2" else nib.Nifti1Image
            img = klass.from_bytes(raw)
    except ImageFileError:
        raise InputFileError(path, "not a NIfTI file (no valid NIfTI header)") from None
    except _READ_ERRORS as exc:
        raise InputFileError(path, f"unreadable NIfTI file ({one_line(exc)})") from None
    if not isinstance(img, nib.Nifti1Pair):  # Nifti1Image, Nifti2Image and the .hdr/.img pairs
        raise InputFileError(path, f"{type(img).__name__} file, expected NIfTI")
    return img


def _descrip(provenance: dict[str, Any]) -> bytes:
    """``"mrirecon <version> <method> <model>"`` cut to the 80 bytes of the ``descrip`` field."""
    parts = ["mrirecon", __version__]
    parts += [str(provenance[k]) for k in ("method", "model") if isinstance(provenance.get(k), str)]
    return " ".join(parts).encode("ascii", "replace")[:80]


def _text(value: Any) -> str:
    raw = bytes(np.asarray(value).tobytes()).split(b"\0", 1)[0]
    return raw.decode("latin-1").strip()
