"""BART's ``.cfl``/``.hdr`` pair: k-space in (:func:`read_cfl`), images out (:func:`write_cfl`).

A BART array is two files with one base name: ``<base>.hdr``, text whose ``# Dimensions`` line
is followed by the sizes of up to 16 dimensions, and ``<base>.cfl``, the complex64 values in
column-major (Fortran) order, first dimension fastest. BART's dimension names (``misc/mri.h``)::

    0 READ  1 PHS1  2 PHS2  3 COIL  4 MAPS  5 TE  6 COEFF  7 COEFF2  8 ITER  9 CSHIFT
    10 TIME  11 TIME2  12 LEVEL  13 SLICE  14 AVG  15 BATCH

Our layout ``(slices, coils, ky, kx)`` (readout on rows, phase encode on the last axis, as in
:mod:`mrirecon.io.ismrmrd`) maps to BART as ``ky = READ``, ``kx = PHS1``, ``coils = COIL`` and
``slices = SLICE``. A k-space with ``PHS2 > 1`` is 3-D: it is inverse-transformed along PHS2
(centred, orthonormal) into slices. Any other dimension above 1 is refused. BART's centred FFTs
(``fftmod``) put the k-space centre at ``N // 2``, as ours do.

The sampling mask is read from the data: phase-encode columns that hold no non-zero sample are
unsampled (BART's zero-filled convention); when every column holds data the k-space is taken as
fully sampled. BART files carry no geometry, so the affine is the identity (1 mm voxels).

Images are written as ``READ x PHS1`` (rows x columns), with slices on ``SLICE``, complex64 with
a zero imaginary part, plus a JSON sidecar ``<base>.json`` holding the provenance and affine.
A pair with that sidecar beside it is read back as the image :class:`Volume` it holds (so
``info`` and ``simulate`` see our own outputs as images); any other pair is k-space.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from mrirecon import __version__
from mrirecon.data import KSpace, Volume
from mrirecon.errors import InputFileError, InvalidParameterError
from mrirecon.fileutil import atomic_path, check_writable
from mrirecon.jsonutil import strict_dumps
from mrirecon.npfft import ifftc

DIMS = ("READ", "PHS1", "PHS2", "COIL", "MAPS", "TE", "COEFF", "COEFF2", "ITER", "CSHIFT",
        "TIME", "TIME2", "LEVEL", "SLICE", "AVG", "BATCH")
READ, PHS1, PHS2, COIL, SLICE = 0, 1, 2, 3, 13

__all__ = ["DIMS", "IMAGE_LAYOUT", "cfl_outputs", "cfl_base", "read_cfl", "read_cfl_array",
           "write_cfl", "write_cfl_array"]

#: The ``layout`` our image sidecars declare; a pair with it is read as a :class:`Volume`.
IMAGE_LAYOUT = "volume (slice, row, col) = BART (SLICE, READ, PHS1)"


def cfl_base(path: str | Path) -> Path:
    """``scan.cfl``, ``scan.hdr`` or ``scan`` -> ``scan`` (the pair's base name)."""
    path = Path(path)
    return path.with_suffix("") if path.suffix.lower() in (".cfl", ".hdr") else path


def cfl_outputs(path: str | Path) -> tuple[Path, Path, Path]:
    """The ``.cfl``, ``.hdr`` and ``.json`` files :func:`write_cfl` writes for ``path``."""
    base = cfl_base(path)
    return (base.with_name(base.name + ".cfl"), base.with_name(base.name + ".hdr"),
            base.with_name(base.name + ".json"))


def read_cfl_array(path: str | Path) -> np.ndarray:
    """The array of a ``.cfl``/``.hdr`` pair, shape = its dims (trailing 1s dropped), memory-mapped.

    Raises
    ------
    InputFileError
        A missing ``.hdr`` or ``.cfl``, a header without a valid ``# Dimensions`` line, or a
        ``.cfl`` whose size disagrees with the dims.
    """
    base = cfl_base(path)
    cfl, hdr = base.with_name(base.name + ".cfl"), base.with_name(base.name + ".hdr")
    if not Path(path).exists() and not cfl.exists() and not hdr.exists():
        raise InputFileError(path, "file not found")
    if not hdr.exists():
        raise InputFileError(path, f"BART header {hdr.name} not found beside it (a .cfl needs "
                             "its .hdr)")
    if not cfl.exists():
        raise InputFileError(path, f"BART data {cfl.name} not found beside its .hdr")
    dims = _dims(hdr)
    expected = math.prod(dims) * 8
    size = cfl.stat().st_size
    if size != expected:
        raise InputFileError(cfl, f"holds {size} bytes but {hdr.name} declares dims "
                             f"{' '.join(map(str, dims))} = {expected} bytes of complex64")
    while len(dims) > 1 and dims[-1] == 1:
        dims = dims[:-1]
    if expected == 0:
        raise InputFileError(cfl, f"is empty (dims {' '.join(map(str, dims))})")
    return np.memmap(cfl, dtype=np.complex64, mode="r", shape=tuple(dims), order="F")


def read_cfl(path: str | Path) -> KSpace | Volume:
    """A BART k-space pair as :class:`KSpace` (see the module docstring for the mapping).

    A pair written by :func:`write_cfl` (its JSON sidecar declares :data:`IMAGE_LAYOUT`) is
    read back as the image :class:`Volume`, with the sidecar's affine and provenance.
    """
    arr = read_cfl_array(path)
    sidecar = _image_sidecar(path)
    if sidecar is not None:
        return _image(arr, sidecar, path)
    dims = list(arr.shape) + [1] * (len(DIMS) - arr.ndim)
    extra = [f"{DIMS[i]} ({i}) = {n}" for i, n in enumerate(dims)
             if n > 1 and i not in (READ, PHS1, PHS2, COIL, SLICE)]
    if extra:
        raise InputFileError(path, f"BART dims {', '.join(extra)}: mrirecon reads k-space with "
                             "READ, PHS1, PHS2, COIL and SLICE only (pick one with bart slice)")
    if dims[PHS2] > 1 and dims[SLICE] > 1:
        raise InputFileError(path, "BART k-space has both PHS2 (3-D) and SLICE above 1")
    full = np.asarray(arr).reshape(dims, order="F")
    data = full[:, :, :, :, 0, 0, 0, 0, 0, 0, 0, 0, 0, :, 0, 0]  # READ PHS1 PHS2 COIL SLICE
    notes = []
    if dims[PHS2] > 1:
        data = ifftc(data, 2)
        notes.append(f"3-D: {dims[PHS2]} PHS2 partitions inverse-transformed into slices")
        data = data.transpose(2, 3, 0, 1, 4)[..., 0]  # (PHS2, COIL, READ, PHS1)
    else:
        data = data[:, :, 0].transpose(3, 2, 0, 1)  # (SLICE, COIL, READ, PHS1)
    if not np.isfinite(data).all():
        raise InputFileError(path, "k-space contains NaN or Inf values")
    sampled = np.abs(data).sum(axis=(0, 1, 2)) > 0
    if not sampled.any():
        raise InputFileError(path, "k-space is all zeros")
    rows, cols = data.shape[-2:]
    return KSpace(data=np.ascontiguousarray(data, dtype=np.complex64),
                  mask=None if sampled.all() else sampled[None, :],
                  header={"cfl_dims": dims, "single_coil": data.shape[1] == 1, "attrs": {}},
                  provenance={"raw": {"format": "cfl", "dims": dims, "notes": notes}},
                  source=str(path))


def write_cfl_array(path: str | Path, array: np.ndarray, *, overwrite: bool = False
                    ) -> list[Path]:
    """Write ``array`` (any complex or real array; its shape are the BART dims) as a pair."""
    cfl, hdr, _ = cfl_outputs(path)
    arr = np.asarray(array)
    if arr.ndim > len(DIMS) or arr.size == 0:
        raise InvalidParameterError(f"a BART array has 1 to 16 non-empty dims, got {arr.shape}")
    check_writable([cfl, hdr], overwrite)
    dims = list(arr.shape) + [1] * max(0, 5 - arr.ndim)  # BART writes at least 5 dims
    with atomic_path(cfl, overwrite) as tmp:
        np.asarray(arr, dtype=np.complex64).ravel(order="F").tofile(tmp)
    try:
        with atomic_path(hdr, overwrite) as tmp:
            tmp.write_text("# Dimensions\n" + " ".join(map(str, dims)) + " \n")
    except BaseException:
        cfl.unlink(missing_ok=True)
        raise
    return [cfl, hdr]


def write_cfl(volume: Volume, path: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write an image ``volume`` as ``READ x PHS1 (x SLICE)`` plus its JSON sidecar."""
    cfl, hdr, sidecar = cfl_outputs(path)
    check_writable([cfl, hdr, sidecar], overwrite)
    data = np.asarray(volume.data)
    data = np.abs(data) if np.iscomplexobj(data) else data
    slices, rows, cols = data.shape
    dims = [rows, cols] + [1] * (SLICE - 2) + [slices] if slices > 1 else [rows, cols]
    array = data.transpose(1, 2, 0).reshape(dims, order="F")
    summary = {"mrirecon_version": __version__, "file": cfl.name,
               "layout": IMAGE_LAYOUT,
               "dims": list(array.shape), "provenance": volume.provenance,
               "source": volume.source, "affine": volume.affine.tolist()}
    text = strict_dumps(summary, indent=2) + "\n"
    written = write_cfl_array(cfl, array, overwrite=overwrite)
    try:
        with atomic_path(sidecar, overwrite) as tmp:
            tmp.write_text(text)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return [*written, sidecar]


def _image_sidecar(path: str | Path) -> dict[str, Any] | None:
    """The JSON sidecar beside ``path`` when it is one of our image sidecars, else ``None``."""
    sidecar = cfl_outputs(path)[2]
    if not sidecar.is_file():
        return None
    try:
        record = json.loads(sidecar.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None  # someone else's JSON: the pair is k-space as usual
    return record if isinstance(record, dict) and record.get("layout") == IMAGE_LAYOUT else None


def _image(arr: np.ndarray, sidecar: dict[str, Any], path: str | Path) -> Volume:
    dims = list(arr.shape) + [1] * (len(DIMS) - arr.ndim)
    if any(n > 1 for i, n in enumerate(dims) if i not in (READ, PHS1, SLICE)):
        raise InputFileError(path, f"its sidecar says image but its dims are {dims}")
    data = np.asarray(arr).reshape(dims, order="F")[:, :, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, :, 0, 0]
    try:
        affine = np.asarray(sidecar.get("affine", np.eye(4).tolist()), dtype=float)
    except (TypeError, ValueError):
        affine = np.zeros(0)
    if affine.shape != (4, 4):
        raise InputFileError(path, "its sidecar's affine is not a 4x4 matrix")
    return Volume(np.ascontiguousarray(np.abs(data).transpose(2, 0, 1), dtype=np.float32),
                  affine, provenance=dict(sidecar.get("provenance") or {}), source=str(path))


def _dims(hdr: Path) -> list[int]:
    try:
        lines = hdr.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise InputFileError(hdr, f"cannot read ({exc.strerror})") from None
    for i, line in enumerate(lines):
        if line.strip() == "# Dimensions" and i + 1 < len(lines):
            fields = lines[i + 1].split()
            if fields and all(f.isdigit() for f in fields) and len(fields) <= len(DIMS):
                return [int(f) for f in fields]
            break
    raise InputFileError(hdr, "not a BART header: expected '# Dimensions' followed by up to 16 "
                         "sizes")
