"""fastMRI HDF5 files: lazy k-space reading, dataset and reconstruction writing.

File layout (Zbontar et al. 2018, arXiv:1811.08839; ``facebookresearch/fastMRI``)
--------------------------------------------------------------------------------
================================  =========================================================
``kspace``                        complex64 ``(slices, H, W)`` single-coil or
                                  ``(slices, coils, H, W)`` multi-coil; ``W`` (last axis) is
                                  the phase-encode direction that masks undersample.
``ismrmrd_header``                scalar string dataset, the ISMRMRD XML
                                  (:mod:`mrirecon.io.ismrmrd`); fastMRI reads it with
                                  ``etree.fromstring(hf["ismrmrd_header"][()])``.
``reconstruction_esc`` / ``_rss``  float32 ``(slices, rows, cols)`` targets (train/val files).
``mask``                          ``(W,)`` sampled columns (test/challenge files).
attrs                             ``max``, ``norm``, ``acquisition``, ``patient_id``, ...
``reconstruction``                float32 ``(slices, rows, cols)``: a submission/output file.
================================  =========================================================

mrirecon adds attributes that fastMRI code ignores (its ``SliceDataset`` copies them into the
sample's ``attrs``, harmlessly): ``affine`` (4x4 float64, ``(slice, row, col, 1)`` to RAS+ mm),
``mrirecon_image_header`` and ``mrirecon_provenance`` (JSON text), ``mrirecon_version``. They
let a reconstruction of simulated k-space go back to DICOM or NIfTI in the right place.

Laziness and non-finite data
----------------------------
:func:`read_kspace` reads only metadata (shapes, header, attributes, the small mask); the
k-space and targets are :class:`H5SliceSource` objects that open the file on each access and
read just the slices asked for. Every read checks its slices for NaN/Inf and raises
:class:`~mrirecon.errors.InputFileError` naming the file, the dataset and the slice. A
reconstruction reads every slice before its output is written (atomically), so a bad slice stops
it before any file appears; :func:`check_finite` scans a whole k-space up front, one slice in
memory at a time, for callers that want to fail before starting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mrirecon import __version__
from mrirecon.data import KSpace, Volume
from mrirecon.errors import InputFileError, InvalidParameterError, one_line
from mrirecon.fileutil import atomic_path, check_writable
from mrirecon.io.h5source import H5SliceSource, open_h5
from mrirecon.io.ismrmrd import fastmri_padding, parse_header
from mrirecon.jsonutil import strict_dumps

TARGET_KEYS = ("reconstruction_esc", "reconstruction_rss")
RECONSTRUCTION_KEY = "reconstruction"
#: Our attributes, decoded into their own fields and kept out of ``header["attrs"]``.
OWN_ATTRS = ("affine", "mrirecon_image_header", "mrirecon_provenance")
_RESERVED = (*OWN_ATTRS, "mrirecon_version")

__all__ = [
    "RECONSTRUCTION_KEY",
    "TARGET_KEYS",
    "preferred_targets",
    "target_key",
    "H5SliceSource",
    "check_finite",
    "read_kspace",
    "read_reconstruction",
    "write_dataset",
    "write_reconstruction",
]


def preferred_targets(single_coil: bool) -> tuple[str, str]:
    """Target datasets in fastMRI's order of preference.

    ESC first for single-coil data (what a single-coil reconstruction approximates), RSS first
    for multi-coil data.
    """
    return TARGET_KEYS if single_coil else TARGET_KEYS[::-1]


def target_key(single_coil: bool) -> str:
    """The target dataset fastMRI gives data of this kind: the first of :func:`preferred_targets`.

    ``reconstruction_esc`` for single-coil data, ``reconstruction_rss`` for multi-coil data.
    """
    return preferred_targets(single_coil)[0]


def read_kspace(path: str | os.PathLike) -> KSpace:
    """Open a fastMRI k-space file lazily (see the module docstring).

    Returns
    -------
    KSpace
        ``data``: an :class:`H5SliceSource` of shape ``(slices, coils, H, W)`` (``coils = 1``
        for single-coil files); ``mask``: the file's ``mask`` (``(1, W)`` bool) or ``None``;
        encoded/recon matrix and FOV from the ISMRMRD header (``None`` without one);
        ``header = {"ismrmrd_xml": str, "ismrmrd": parse_header(...), "attrs": {...},
        "single_coil": bool}`` with the file attributes as plain Python values (ours in
        :data:`OWN_ATTRS` excepted); ``targets``: lazy ``reconstruction_esc`` /
        ``reconstruction_rss``; ``affine``, ``image_header``, ``provenance`` from our attributes
        when present; ``source``: the path.

    Raises
    ------
    InputFileError
        Missing or unreadable file, not HDF5, truncated or corrupt, no ``kspace`` dataset,
        real-valued or wrongly ranked k-space, bad ISMRMRD header, mask or target not matching
        the k-space, bad ``affine`` or JSON attribute. NaN/Inf is reported when slices are read.
    """
    path = Path(path)
    with open_h5(path) as f:
        try:
            return _kspace(f, path)
        except (OSError, KeyError, RuntimeError) as exc:  # damage below the superblock
            raise InputFileError(path, f"corrupt HDF5 file ({one_line(exc)})") from None


def check_finite(kspace: KSpace) -> None:
    """Raise :class:`~mrirecon.errors.InputFileError` if any k-space slice holds NaN or Inf.

    Reads one slice at a time. File-backed sources already check each read; this covers any
    source (numpy arrays too) and lets a caller fail before a long reconstruction starts.
    """
    for i in range(kspace.n_slices):
        if not np.isfinite(kspace.slice(i)).all():
            raise InputFileError(kspace.source or "k-space",
                                 f"kspace slice {i} contains NaN or Inf values")


def read_reconstruction(path: str | os.PathLike, *, dataset: str | None = None) -> Volume:
    """Read a reconstruction (ours, a fastMRI submission, or a file's target) as a Volume.

    Parameters
    ----------
    path
        The HDF5 file.
    dataset
        Which dataset; default the first of ``reconstruction``, ``reconstruction_rss``,
        ``reconstruction_esc`` present.

    Returns
    -------
    Volume
        float32 (complex64 if stored complex) ``(slices, rows, cols)``; the ``affine``
        attribute or the identity; the stored ``mrirecon_image_header`` as ``header`` (else
        ``{"format": "fastmri", "fastmri": {"dataset": name, "attrs": {...}}}``); the stored
        provenance; ``source`` the path.
    """
    path = Path(path)
    with open_h5(path) as f:
        try:
            names = [dataset] if dataset else [RECONSTRUCTION_KEY, "reconstruction_rss",
                                               "reconstruction_esc"]
            name = next((k for k in names if isinstance(f.get(k), h5py.Dataset)), None)
            if name is None:
                raise InputFileError(path, f"no {names[0]!r} dataset (holds: {_keys(f)})")
            ds = f[name]
            if ds.ndim != 3 or ds.dtype.kind not in "fiuc" or 0 in ds.shape:
                raise InputFileError(
                    path, f"{name} is {ds.dtype} of shape {ds.shape}; expected a non-empty real "
                    "(slices, rows, cols) image")
            data = ds[()].astype(np.complex64 if ds.dtype.kind == "c" else np.float32)
            attrs = f.attrs
            header = _json_attr(attrs, "mrirecon_image_header", path) or {
                "format": "fastmri", "fastmri": {"dataset": name, "attrs": _plain_attrs(attrs)}}
            affine = _affine(attrs, path)
            provenance = _json_attr(attrs, "mrirecon_provenance", path) or {}
        except (OSError, KeyError, RuntimeError) as exc:
            raise InputFileError(path, f"corrupt HDF5 file ({one_line(exc)})") from None
    if not np.isfinite(data).all():
        raise InputFileError(path, f"{name} contains NaN or Inf values")
    return Volume(data=data, affine=np.eye(4) if affine is None else affine, header=header,
                  provenance=provenance, source=str(path))


def write_reconstruction(volume: Volume, path: str | os.PathLike, *,
                         overwrite: bool = False) -> Path:
    """Write ``volume`` as a fastMRI submission file; returns ``path``.

    Dataset ``reconstruction`` float32 ``(slices, rows, cols)`` (complex data is written as its
    magnitude), exactly what fastMRI's ``evaluate.py`` reads, plus attributes ``affine``,
    ``mrirecon_provenance``, ``mrirecon_image_header`` (JSON), ``mrirecon_version``. Written to
    a temporary file and renamed; an existing ``path`` is an
    :class:`~mrirecon.errors.OutputError` unless ``overwrite``.
    """
    path = Path(path)
    check_writable([path], overwrite)
    data = np.abs(volume.data) if np.iscomplexobj(volume.data) else volume.data
    attrs = {"affine": volume.affine, "mrirecon_version": __version__,
             "mrirecon_provenance": _dumps(volume.provenance),
             "mrirecon_image_header": _dumps(volume.header)}
    with atomic_path(path, overwrite) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset(RECONSTRUCTION_KEY, data=np.asarray(data, dtype=np.float32))
        _write_attrs(f, attrs)
    return path


def write_dataset(
    path: str | os.PathLike,
    kspace: np.ndarray,
    *,
    header_xml: str | bytes,
    targets: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping[str, Any] | None = None,
    mask: np.ndarray | None = None,
    affine: np.ndarray | None = None,
    image_header: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a complete fastMRI-format file that fastMRI's ``SliceDataset`` reads unchanged.

    Parameters
    ----------
    path
        The file to write.
    kspace
        Complex array ``(slices, H, W)`` (single-coil) or ``(slices, coils, H, W)``; one coil is
        squeezed to the single-coil layout. Stored complex64, contiguous.
    header_xml
        ISMRMRD XML (:func:`mrirecon.io.ismrmrd.build_header`); must hold the encoded and recon
        matrix sizes and ``kspace_encoding_step_1`` limits that ``SliceDataset`` reads.
    targets
        ``{"reconstruction_esc" | "reconstruction_rss": (slices, rows, cols)}``, stored float32.
        fastMRI reads ``_esc`` for its single-coil and ``_rss`` for its multi-coil challenge.
    attrs
        File attributes (``acquisition``, ``patient_id``, ``acceleration``, ...): numbers,
        strings, bools, numeric lists; dicts become JSON text; ``None`` values are skipped.
        ``max`` and ``norm`` default to the maximum and L2 norm of the target (``_rss`` first).
    mask
        Sampled columns, ``(W,)``, or ``(H | 1, W)`` with equal rows (stored 1-D, as fastMRI test
        files and its transforms expect); a 2-D mask with differing rows is stored 2-D (readable
        by mrirecon, not by fastMRI's transforms).
    affine, image_header, provenance
        Our extras (module docstring), read back into :class:`~mrirecon.data.KSpace`.
    overwrite
        Replace an existing file; otherwise it is an :class:`~mrirecon.errors.OutputError`.

    Returns
    -------
    Path
        ``path``, written atomically (temporary file, then rename).

    Raises
    ------
    InvalidParameterError
        Real, non-finite or wrongly shaped k-space, header, targets, mask, affine or attrs.
    """
    path = Path(path)
    check_writable([path], overwrite)
    ks = np.asarray(kspace)
    if not np.iscomplexobj(ks) or ks.ndim not in (3, 4) or 0 in ks.shape:
        raise InvalidParameterError(
            f"kspace must be non-empty complex (slices, H, W) or (slices, coils, H, W), got "
            f"{ks.dtype} {ks.shape}")
    ks = ks[:, 0] if ks.ndim == 4 and ks.shape[1] == 1 else ks
    if not np.isfinite(ks).all():
        raise InvalidParameterError("kspace contains NaN or Inf values")
    xml = header_xml.decode("utf-8") if isinstance(header_xml, bytes) else str(header_xml)
    try:
        parsed = parse_header(xml)
    except ValueError as exc:
        raise InvalidParameterError(f"header_xml: {exc}") from None
    if parsed["recon_matrix"] is None or fastmri_padding(parsed) is None:
        raise InvalidParameterError(
            "header_xml lacks encodedSpace/reconSpace matrixSize or encodingLimits/"
            "kspace_encoding_step_1 center and maximum, which fastMRI's SliceDataset reads")
    n, (h, w) = ks.shape[0], ks.shape[-2:]
    tgts = {name: _target_array(name, value, n) for name, value in (targets or {}).items()}
    file_attrs = {k: _attr_value(k, v) for k, v in (attrs or {}).items() if v is not None}
    reserved = sorted(set(file_attrs) & set(_RESERVED))
    if reserved:
        raise InvalidParameterError(f"attrs {reserved} are written by mrirecon; use the "
                                    "affine=, image_header= and provenance= arguments")
    primary = tgts.get("reconstruction_rss", tgts.get("reconstruction_esc"))
    if primary is not None:
        file_attrs.setdefault("max", float(primary.max()))
        file_attrs.setdefault("norm", float(np.linalg.norm(primary)))
    file_attrs["mrirecon_version"] = __version__
    if affine is not None:
        file_attrs["affine"] = _check_affine(affine)
    if image_header:
        file_attrs["mrirecon_image_header"] = _dumps(image_header)
    if provenance:
        file_attrs["mrirecon_provenance"] = _dumps(provenance)
    mask_arr = None if mask is None else _mask_array(mask, h, w)
    with atomic_path(path, overwrite) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("kspace", data=ks.astype(np.complex64, copy=False))
        f.create_dataset("ismrmrd_header", data=xml, dtype=h5py.string_dtype("utf-8"))
        for name, value in tgts.items():
            f.create_dataset(name, data=value)
        if mask_arr is not None:
            f.create_dataset("mask", data=mask_arr)
        _write_attrs(f, file_attrs)
    return path


# --- reading helpers ----------------------------------------------------------------------


def _kspace(f: h5py.File, path: Path) -> KSpace:
    ds = f.get("kspace")
    if not isinstance(ds, h5py.Dataset):
        raise InputFileError(path, f"no 'kspace' dataset (holds: {_keys(f)})")
    if ds.dtype.kind != "c":
        raise InputFileError(path, f"k-space is real-valued ({ds.dtype}); expected complex")
    if ds.ndim not in (3, 4) or 0 in ds.shape:
        raise InputFileError(
            path, f"k-space has shape {ds.shape}; expected (slices, H, W) single-coil or "
            "(slices, coils, H, W) multi-coil")
    n, (h, w), single = ds.shape[0], ds.shape[-2:], ds.ndim == 3
    raw = f["ismrmrd_header"][()] if isinstance(f.get("ismrmrd_header"), h5py.Dataset) else b""
    try:
        if isinstance(raw, np.ndarray):  # a one-element array from some converters
            raw = raw.item() if raw.size == 1 else f"{raw.size} values, not one XML string"
        xml = _text(raw)
        parsed = parse_header(xml) if xml.strip() else {}
    except ValueError as exc:
        raise InputFileError(path, f"ismrmrd_header: {exc}") from None
    mask = None
    if "mask" in f:
        mask = np.asarray(f["mask"][()]) != 0
        if mask.ndim not in (1, 2) or mask.shape[-1] != w or (
                mask.ndim == 2 and mask.shape[0] not in (1, h)):
            raise InputFileError(path, f"mask has shape {mask.shape} but k-space has {h} rows "
                                 f"and {w} columns; expected ({w},)")
    targets = {}
    for name in TARGET_KEYS:
        if name in f:
            t = f[name]
            if not isinstance(t, h5py.Dataset) or t.ndim != 3 or t.shape[0] != n:
                raise InputFileError(path, f"{name} has shape {getattr(t, 'shape', None)}; "
                                     f"expected ({n}, rows, cols) to match {n} k-space slices")
            targets[name] = H5SliceSource(path, name, t.shape, t.dtype)
    return KSpace(
        data=H5SliceSource(path, "kspace", ds.shape, ds.dtype, coil_axis=single),
        mask=mask,
        encoded_matrix=parsed.get("encoded_matrix"),
        encoded_fov_mm=parsed.get("encoded_fov_mm"),
        recon_matrix=parsed.get("recon_matrix"),
        recon_fov_mm=parsed.get("recon_fov_mm"),
        header={"ismrmrd_xml": xml, "ismrmrd": parsed, "attrs": _plain_attrs(f.attrs),
                "single_coil": single},
        targets=targets,
        affine=_affine(f.attrs, path),
        image_header=_json_attr(f.attrs, "mrirecon_image_header", path) or {},
        provenance=_json_attr(f.attrs, "mrirecon_provenance", path) or {},
        source=str(path),
    )


def _plain(value: Any) -> Any:
    """An HDF5 attribute value as plain Python (str, int, float, bool, lists)."""
    if isinstance(value, (bytes, np.bytes_)):
        return _text(value)
    if isinstance(value, h5py.Empty):
        return None
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value] if value.dtype.kind in "OSU" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plain_attrs(attrs: h5py.AttributeManager) -> dict[str, Any]:
    return {k: _plain(attrs[k]) for k in attrs if k not in OWN_ATTRS}


def _json_attr(attrs: h5py.AttributeManager, key: str, path: Path) -> dict[str, Any] | None:
    if key not in attrs:
        return None
    try:
        value = json.loads(_text(attrs[key]))
    except ValueError as exc:
        raise InputFileError(path, f"attribute {key} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InputFileError(path, f"attribute {key} is JSON {type(value).__name__}, not object")
    return value


def _affine(attrs: h5py.AttributeManager, path: Path) -> np.ndarray | None:
    if "affine" not in attrs:
        return None
    affine = np.asarray(attrs["affine"])
    if affine.shape != (4, 4) or affine.dtype.kind not in "fiu" or not np.isfinite(affine).all():
        raise InputFileError(path, f"attribute affine is {affine.dtype} {affine.shape}; "
                             "expected a finite 4x4 matrix")
    return affine.astype(float)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _keys(f: h5py.File) -> str:
    return ", ".join(sorted(f)) or "nothing"


# --- writing helpers ----------------------------------------------------------------------


def _target_array(name: str, value: Any, n: int) -> np.ndarray:
    if name not in TARGET_KEYS:
        raise InvalidParameterError(f"target {name!r}; expected one of {', '.join(TARGET_KEYS)}")
    arr = np.asarray(value)
    if arr.ndim != 3 or arr.shape[0] != n or np.iscomplexobj(arr) or not np.isfinite(arr).all():
        raise InvalidParameterError(f"target {name} is {arr.dtype} {arr.shape}; expected finite "
                                    f"real ({n}, rows, cols) to match {n} k-space slices")
    return arr.astype(np.float32)


def _mask_array(mask: Any, h: int, w: int) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim == 2 and arr.shape[-1] == w and arr.shape[0] in (1, h) and (arr == arr[:1]).all():
        arr = arr[0]
    if arr.shape != (w,) and (arr.ndim != 2 or arr.shape != (h, w)):
        raise InvalidParameterError(
            f"mask has shape {arr.shape} but k-space has {h} rows and {w} columns; expected "
            f"({w},) or ({h}, {w})")
    return arr != 0


def _check_affine(affine: Any) -> np.ndarray:
    arr = np.asarray(affine, dtype=float)
    if arr.shape != (4, 4) or not np.isfinite(arr).all():
        raise InvalidParameterError(f"affine must be a finite 4x4 matrix, got shape {arr.shape}")
    return arr


def _attr_value(key: str, value: Any) -> Any:
    """A caller's attribute value as HDF5 can store it (dicts as JSON text, lists as arrays)."""
    if isinstance(value, Mapping):
        return _dumps(value)
    given = type(value).__name__
    if isinstance(value, (list, tuple)):
        value, given = np.asarray(value), f"{given} of {np.asarray(value).dtype}"
    if isinstance(value, np.ndarray) and value.dtype.kind not in "biuf" or not isinstance(
            value, (str, bytes, bool, int, float, np.generic, np.ndarray)):
        raise InvalidParameterError(f"attribute {key!r} is {given}; expected a number, string, "
                                    "bool, numeric list or dict")
    return value


def _write_attrs(f: h5py.File, attrs: Mapping[str, Any]) -> None:
    for key, value in attrs.items():
        f.attrs[key] = value


def _dumps(value: Any) -> str:
    return strict_dumps(value)
