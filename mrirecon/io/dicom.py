"""DICOM image series <-> :class:`~mrirecon.data.Volume`.

Reading (:func:`read_dicom`) accepts classic single-frame series, Enhanced (multi-frame) MR and
Siemens mosaics, groups the files by SeriesInstanceUID, sorts the slices along the slice normal
``row x col`` and returns ``(slices, rows, cols)`` float32 pixels (RescaleSlope/Intercept applied)
with the RAS+ affine of :func:`mrirecon.data.geometry.affine_from_dicom`.

Writing (:func:`write_dicom`) makes a new *derived* MR Image Storage series, one file per slice,
Explicit VR Little Endian, 16-bit unsigned pixels with a per-series linear rescale, the volume's
geometry, the source's patient and study modules (when the volume came from DICOM) and the
provenance as JSON in ImageComments. References: DICOM PS3.3 A.4 (MR Image IOD), C.7.6.2 (Image
Plane), C.8.13 (Enhanced MR functional groups); nibabel's ``dicom_mosaic`` notes for mosaics.
"""

from __future__ import annotations

import copy
import datetime
import functools
import hashlib
import json
import math
import os
import re
import warnings
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import PersonName, format_number_as_ds

from mrirecon import __version__
from mrirecon.data.geometry import affine_from_dicom, dicom_from_affine
from mrirecon.data.volume import Volume
from mrirecon.errors import InputFileError, InvalidParameterError, OutputError, one_line
from mrirecon.fileutil import atomic_path, check_writable
from mrirecon.jsonutil import strict_dumps

PathLike = str | os.PathLike
PATIENT_STUDY = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
    "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription",
)  # fmt: skip
#: Per-series attributes kept in ``header["dicom"]``; the MR ones are reused by the writer.
SERIES_KEYS = (
    "FrameOfReferenceUID", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality",
    "Manufacturer", "ManufacturerModelName", "MagneticFieldStrength", "SliceThickness",
    "SpacingBetweenSlices", "Rows", "Columns", "BitsAllocated", "BitsStored",
    "PixelRepresentation", "PhotometricInterpretation", "ScanningSequence", "SequenceVariant",
    "ScanOptions", "MRAcquisitionType", "EchoTime", "RepetitionTime", "InversionTime",
    "EchoTrainLength", "ImagingFrequency", "FlipAngle", "PatientPosition", "BodyPartExamined",
)  # fmt: skip
_KEPT = {  # keyword: default when the source does not say (None: leave out)
    "Manufacturer": "", "ManufacturerModelName": None, "BodyPartExamined": None,
    "PatientPosition": "",
}  # fmt: skip
_MR_KEPT = {  # the same, copied only from an MR source
    "MagneticFieldStrength": None, "ImagingFrequency": None, "FlipAngle": None,
    "ScanningSequence": "RM", "SequenceVariant": "NONE", "ScanOptions": "",
    "MRAcquisitionType": "", "EchoTime": "", "RepetitionTime": "", "EchoTrainLength": "",
}  # fmt: skip
PROVENANCE_PREFIX = "mrirecon provenance: "
_MAX_LT = 10240


@dataclass
class _Frame:
    pixels: np.ndarray  # (rows, cols) float32, rescaled
    position: np.ndarray | None  # ImagePositionPatient, LPS mm
    orientation: np.ndarray | None  # ImageOrientationPatient
    spacing: tuple[float, float]  # PixelSpacing [between rows, between columns]
    depth: float  # SpacingBetweenSlices or SliceThickness (used for a single slice)


def read_dicom(paths: PathLike | Iterable[PathLike], series: str | None = None) -> Volume:
    """Read one DICOM image series into a :class:`~mrirecon.data.Volume`.

    Parameters
    ----------
    paths
        A file, a folder (searched recursively; non-DICOM files, DICOMDIRs and non-image objects
        are skipped quietly) or a list of files and folders.
    series
        SeriesInstanceUID to read when several image series are present.

    Returns
    -------
    Volume
        ``(slices, rows, cols)`` float32 data sorted along the slice normal ``row x col`` (so
        ``det(affine[:3, :3]) < 0``: a volume written with the other handedness reads back with
        its slice axis reversed, same voxels in the same places); the affine maps
        ``(slice, row, col, 1)`` to RAS+ mm, its slice column is the mean step between the
        sorted slice positions. ``header = {"format": "dicom", "dicom": {...}}`` holds
        the patient/study modules and :data:`SERIES_KEYS`; ``header["warnings"]`` lists
        anything suspicious (e.g. non-uniform slice spacing).

    Raises
    ------
    InputFileError
        Missing path, no DICOM images, undecodable or missing pixel data, several series
        without ``series``, inconsistent slice shapes, orientations or spacings.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise InputFileError("<none>", "no input paths given")
    candidates: list[tuple[Path, bool]] = []  # (file, strict: named explicitly)
    for item in map(Path, items):
        if item.is_dir():
            candidates += [(p, False) for p in sorted(item.rglob("*")) if p.is_file()]
        elif item.is_file():
            candidates.append((item, True))
        else:
            raise InputFileError(item, "no such file or directory")
    source = str(items[0]) if len(items) == 1 else os.path.commonpath([str(p) for p in items])
    datasets = [ds for path, strict in candidates if (ds := _open(path, strict)) is not None]
    if not datasets:
        raise InputFileError(source, "no DICOM images found")
    groups: dict[str, list[Dataset]] = {}
    for ds in datasets:
        groups.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
    chosen = groups[_choose_series(groups, series, source)]
    frames = [frame for ds in chosen for frame in _frames(ds)]
    data, affine, warns = _stack(frames, source)
    first = chosen[0]
    macros = [_item(first, f"{kind}FunctionalGroupsSequence") for kind in ("Shared", "PerFrame")]
    info = {kw: _jsonable(_find(first, macros, kw)) for kw in PATIENT_STUDY + SERIES_KEYS}
    info = {kw: value for kw, value in info.items() if value is not None}
    info["Rows"], info["Columns"] = data.shape[1:]
    header: dict[str, Any] = {"format": "dicom", "dicom": info}
    if warns:
        header["warnings"] = warns
    provenance: dict[str, Any] = {}
    comments = str(first.get("ImageComments", ""))
    if comments.startswith(PROVENANCE_PREFIX):
        with suppress(ValueError):
            provenance = dict(json.loads(comments[len(PROVENANCE_PREFIX) :]))
    return Volume(data=data, affine=affine, header=header, provenance=provenance, source=source)


def _open(path: Path, strict: bool) -> Dataset | None:
    """Read ``path``'s header (pixel data deferred); ``None`` for a skippable non-image."""
    try:
        ds = pydicom.dcmread(path, defer_size="64 KB")
    except Exception as exc:  # pydicom raises many types on foreign or corrupt files
        if strict:
            raise InputFileError(path, f"not a readable DICOM file ({one_line(exc)})") from None
        return None
    if "PixelData" not in ds or "Rows" not in ds:
        if strict:
            kind = getattr(ds.get("SOPClassUID"), "name", None) or "no SOP class"
            raise InputFileError(path, f"DICOM object without pixel data ({kind}), not an image")
        return None
    return ds


def _choose_series(groups: dict[str, list[Dataset]], series: str | None, source: str) -> str:
    if series is not None and series in groups:
        return series
    if series is None and len(groups) == 1:
        return next(iter(groups))
    listing = ", ".join(
        f"{uid} ({groups[uid][0].get('SeriesDescription', '') or 'no description'}, "
        f"{sum(int(ds.get('NumberOfFrames') or 1) for ds in groups[uid])} slices)"
        for uid in sorted(groups, key=lambda u: (int(groups[u][0].get("SeriesNumber") or 0), u))
    )
    found = f"{len(groups)} series found: {listing}"
    if series is not None:
        raise InputFileError(source, f"series {series} not found; {found}")
    raise InputFileError(source, f"{found}; choose one with --series UID")


def _frames(ds: Dataset) -> list[_Frame]:
    """Split one file into 2-D frames with their geometry (classic, enhanced or mosaic)."""
    path = ds.filename or "<dataset>"
    if int(ds.get("SamplesPerPixel") or 1) != 1:
        raise InputFileError(path, f"colour image (SamplesPerPixel={ds.SamplesPerPixel})")
    mosaic = _mosaic_frames(ds, path)
    if mosaic is not None:
        return mosaic
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = np.asarray(ds.pixel_array, dtype=np.float64)
    except Exception as exc:  # truncated data, missing codec, bad group 0028, ...
        raise InputFileError(path, f"pixel data cannot be read ({one_line(exc)})") from None
    pixels = pixels.reshape(-1, *pixels.shape[-2:])
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [None] * len(pixels))
    if len(per_frame) != len(pixels):
        raise InputFileError(
            path, f"{len(pixels)} frames but {len(per_frame)} per-frame functional groups"
        )
    frames = []
    for px, own in zip(pixels, per_frame, strict=True):
        get = functools.partial(_find, ds, [own, shared])
        spacing = get("PixelSpacing") or get("ImagerPixelSpacing") or (1.0, 1.0)
        frames.append(
            _Frame(
                pixels=(
                    px * float(get("RescaleSlope") or 1) + float(get("RescaleIntercept") or 0)
                ).astype(np.float32),
                position=_floats(get("ImagePositionPatient")),
                orientation=_floats(get("ImageOrientationPatient")),
                spacing=(float(spacing[0]), float(spacing[1])),
                depth=float(get("SpacingBetweenSlices") or get("SliceThickness") or 1.0),
            )
        )
    return frames


def _mosaic_frames(ds: Dataset, path: str) -> list[_Frame] | None:
    """The slices of a Siemens mosaic (``None`` if ``ds`` is not one), split by nibabel.

    nibabel's data is ``(rows, cols, n)`` and its affine maps ``(row, col, slice)`` to LPS:
    column 0 is ``col_cos * d_row``, column 1 ``row_cos * d_col``, column 2 the slice step.
    """
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if "MOSAIC" not in image_type and "SIEMENS" not in str(ds.get("Manufacturer", "")).upper():
        return None
    wrapper = None
    with warnings.catch_warnings():  # nibabel warns on import and on unreadable CSA headers
        warnings.simplefilter("ignore")
        from nibabel.nicom import dicomwrappers  # only mosaics need nibabel's CSA reader

        with suppress(Exception):
            wrapper = dicomwrappers.wrapper_from_data(ds)
        if wrapper is None or not getattr(wrapper, "is_mosaic", False):
            if "MOSAIC" in image_type:
                raise InputFileError(path, "ImageType is MOSAIC but no CSA NumberOfImagesInMosaic")
            return None
        try:
            data = np.asarray(wrapper.get_data(), dtype=np.float32)
            aff = np.asarray(wrapper.affine, dtype=np.float64)
        except Exception as exc:
            raise InputFileError(path, f"cannot split mosaic ({one_line(exc)})") from None
    d_row, d_col = float(np.linalg.norm(aff[:3, 0])), float(np.linalg.norm(aff[:3, 1]))
    iop = np.concatenate([aff[:3, 1] / d_col, aff[:3, 0] / d_row])
    depth = float(np.linalg.norm(aff[:3, 2]))
    return [
        _Frame(data[..., k], aff[:3, 3] + k * aff[:3, 2], iop, (d_row, d_col), depth)
        for k in range(data.shape[-1])
    ]


def _stack(frames: list[_Frame], source: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Sort frames along the slice normal; return data, affine and warnings."""
    shapes = sorted({f.pixels.shape for f in frames})
    if len(shapes) > 1:
        listed = ", ".join(f"{r}x{c}" for r, c in shapes)
        raise InputFileError(source, f"inconsistent slice shapes in one series: {listed}")
    spacings = np.array([f.spacing for f in frames])
    if np.ptp(spacings, axis=0).max() > 1e-4:
        raise InputFileError(source, "inconsistent PixelSpacing between slices")
    warns: list[str] = []
    n = len(frames)
    orientations = [f.orientation for f in frames if f.orientation is not None]
    if len(orientations) < n or any(f.position is None for f in frames):
        warns.append("no ImagePositionPatient/ImageOrientationPatient: placeholder geometry")
        iop = np.array([1.0, 0, 0, 0, 1, 0])
        positions = np.outer(np.arange(n), [0, 0, frames[0].depth])
    else:
        iop = orientations[0]
        if any(not np.allclose(o, iop, atol=1e-4) for o in orientations):
            raise InputFileError(
                source, "inconsistent slice orientations (ImageOrientationPatient differs)"
            )
        normal = np.cross(iop[:3], iop[3:])
        order = np.argsort([f.position @ normal for f in frames], kind="stable")
        frames = [frames[i] for i in order]
        positions = np.array([f.position for f in frames])
        gaps = np.diff(positions @ normal)
        if n > 1 and gaps.min() < 1e-3:
            distinct = len(np.unique(np.round(positions @ normal, 3)))
            raise InputFileError(
                source, f"{n} slices at only {distinct} distinct positions "
                "(multi-echo, multi-volume or duplicated images are not supported)",
            )  # fmt: skip
        if n > 2 and np.abs(gaps - gaps.mean()).max() > max(1e-3, 0.01 * gaps.mean()):
            warns.append(
                f"non-uniform slice spacing ({gaps.min():.4g} to {gaps.max():.4g} mm); "
                f"the affine uses the mean {gaps.mean():.4g} mm"
            )
    step = (positions[-1] - positions[0]) / (n - 1) if n > 1 else None
    affine = affine_from_dicom(positions[0], iop.tolist(), frames[0].spacing, step, frames[0].depth)
    return np.stack([f.pixels for f in frames]).astype(np.float32), affine, warns


def write_dicom(
    volume: Volume,
    out_dir: PathLike,
    *,
    description: str,
    overwrite: bool = False,
    series_number: int | None = None,
) -> list[Path]:
    """Write ``volume`` as a new derived MR Image Storage series, one file per slice.

    Pixels (the magnitude, if complex) are stored as 16-bit unsigned integers with one
    RescaleSlope/RescaleIntercept for the series: ``value = stored * slope + intercept``.
    Integer-valued data within a 16-bit range is stored exactly (slope 1); otherwise the
    range ``[min, max]`` is spread over 0..65535 (error at most ``slope / 2``).

    Parameters
    ----------
    volume
        The volume; its affine gives each slice's ImagePositionPatient, the shared
        ImageOrientationPatient and PixelSpacing. If ``volume.header["format"] == "dicom"``
        the patient and study modules, FrameOfReferenceUID and MR acquisition attributes are
        kept; otherwise a new study with placeholder patient is made.
    out_dir
        Folder for ``IM_0001.dcm``, ``IM_0002.dcm``, ... (created if missing).
    description
        SeriesDescription (cut to 64 characters).
    overwrite
        Allow writing into a non-empty folder (files of an older ``IM_*.dcm`` series there
        are removed).
    series_number
        SeriesNumber; default the source's plus 1000 (or 1000).

    Returns
    -------
    list of Path
        The files written, in slice order.

    Raises
    ------
    OutputError
        ``out_dir`` is a file, is not empty and ``overwrite`` is false, or a write failed (then
        the files this call wrote are removed).
    InvalidParameterError
        Non-finite pixels or an affine whose in-plane axes are not perpendicular.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: output path exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise OutputError(f"{out_dir}: output folder is not empty; pass --overwrite to write there")
    n = volume.shape[0]
    names = [f"IM_{k + 1:0{max(4, len(str(n)))}d}.dcm" for k in range(n)]
    paths = [out_dir / name for name in names]
    stored, slope, intercept = _quantise(volume.data)
    positions, iop, spacing, gap = dicom_from_affine(volume.affine, n)
    if abs(float(np.dot(iop[:3], iop[3:]))) > 1e-4:
        raise InvalidParameterError(
            "volume affine has non-perpendicular row and column axes; DICOM cannot store it"
        )
    base = _base_dataset(volume, description, series_number, iop, spacing, gap)
    base.RescaleIntercept, base.RescaleSlope, base.RescaleType = intercept, slope, "US"
    lo, hi = (float(intercept) + float(slope) * float(v) for v in (stored.min(), stored.max()))
    if hi - lo >= 1:  # PS3.3 C.11.2.1.2: WindowWidth >= 1; small-range data: viewer auto-window
        base.WindowCenter, base.WindowWidth = _ds((lo + hi) / 2), _ds(hi - lo)
    normal = np.cross(iop[:3], iop[3:])
    created = not out_dir.exists()
    check_writable(paths, overwrite)
    written: list[Path] = []
    try:
        for k, path in enumerate(paths):
            ds = copy.deepcopy(base)
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta = FileMetaDataset(
                _dataset(
                    MediaStorageSOPClassUID=MRImageStorage,
                    TransferSyntaxUID=ExplicitVRLittleEndian,
                    MediaStorageSOPInstanceUID=ds.SOPInstanceUID,
                    ImplementationClassUID=PYDICOM_IMPLEMENTATION_UID,
                    ImplementationVersionName=f"MRIRECON_{__version__}"[:16],
                )
            )
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [_ds(v) for v in positions[k]]
            ds.SliceLocation = _ds(float(np.dot(positions[k], normal)))
            ds.PixelData = stored[k].astype("<u2").tobytes()
            with atomic_path(path, overwrite) as tmp:
                pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
            written.append(path)
    except BaseException as exc:
        for p in written:
            p.unlink(missing_ok=True)
        if created:
            with suppress(OSError):
                out_dir.rmdir()
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write DICOM ({exc.strerror or exc})") from None
        raise
    for old in out_dir.glob("IM_*.dcm"):  # only reached with overwrite=True or an empty folder
        if old.name not in names and re.fullmatch(r"IM_\d+\.dcm", old.name):
            old.unlink()
    return paths


def _quantise(data: np.ndarray) -> tuple[np.ndarray, str, str]:
    """uint16 pixels and the (DS-formatted) slope and intercept that map them back."""
    mag = np.abs(data) if np.iscomplexobj(data) else np.asarray(data, dtype=np.float64)
    bad = int(np.size(mag) - np.count_nonzero(np.isfinite(mag)))
    if bad:
        raise InvalidParameterError(f"volume has {bad} NaN or infinite pixels; DICOM cannot store")
    lo, hi = float(mag.min()), float(mag.max())
    if hi - lo <= 65535 and np.array_equal(mag, np.round(mag)):
        slope, intercept = "1", _ds(lo if (lo < 0 or hi > 65535) else 0.0)
    else:
        slope, intercept = _ds((hi - lo) / 65535 if hi > lo else 1.0), _ds(lo)
    scaled = (mag - float(intercept)) / float(slope)
    return np.clip(np.round(scaled), 0, 65535).astype(np.uint16), slope, intercept


def _base_dataset(
    volume: Volume,
    description: str,
    series_number: int | None,
    iop: list,
    spacing: list,
    gap: float,
) -> Dataset:
    """Everything but the per-slice attributes (SOP UID, position, pixels)."""
    src = volume.header.get("dicom", {}) if volume.header.get("format") == "dicom" else {}
    mr = src if src.get("Modality") == "MR" else {}
    now = datetime.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")
    software = f"mrirecon {__version__}"
    ds = _dataset(
        SpecificCharacterSet="ISO_IR 192", ImageType=["DERIVED", "SECONDARY", "OTHER"],
        SOPClassUID=MRImageStorage, InstanceCreationDate=date, InstanceCreationTime=time,
        Modality="MR", Laterality="", SeriesInstanceUID=generate_uid(),
        SeriesNumber=series_number if series_number is not None
        else 1000 + int(src.get("SeriesNumber") or 0),
        SeriesDescription=description[:64], SeriesDate=date, SeriesTime=time,
        ContentDate=date, ContentTime=time, PositionReferenceIndicator="",
        FrameOfReferenceUID=src.get("FrameOfReferenceUID") or generate_uid(),
        SoftwareVersions=software, ImageOrientationPatient=[_ds(v) for v in iop],
        PixelSpacing=[_ds(v) for v in spacing],
        SliceThickness=_ds(float(src.get("SliceThickness") or gap)),
        SamplesPerPixel=1, PhotometricInterpretation="MONOCHROME2", Rows=volume.shape[1],
        Columns=volume.shape[2], BitsAllocated=16, BitsStored=16, HighBit=15,
        PixelRepresentation=0,
    )  # fmt: skip
    for kw in PATIENT_STUDY:  # Type 2 (empty when unknown) except StudyDescription (Type 3)
        _set(ds, kw, src.get(kw, None if kw == "StudyDescription" else ""))
    if not src.get("StudyInstanceUID"):
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = generate_uid(), date, time
    if not src:
        ds.PatientName, ds.StudyID = "Anonymous^", "MRIRECON"
        ds.PatientID = "MRIRECON-" + hashlib.sha1(ds.StudyInstanceUID.encode()).hexdigest()[:8]
    for kw, default in _KEPT.items():
        _set(ds, kw, src.get(kw, default))
    for kw, default in _MR_KEPT.items():
        _set(ds, kw, mr.get(kw, default))
    if "IR" in str(ds.ScanningSequence):  # InversionTime is Type 2C: required for IR
        _set(ds, "InversionTime", mr.get("InversionTime", ""))
    if volume.shape[0] > 1:
        ds.SpacingBetweenSlices = _ds(gap)
    provenance = {"mrirecon_version": __version__, **volume.provenance}
    text = strict_dumps(provenance, sort_keys=True, separators=(",", ":"))
    ds.ImageComments = (PROVENANCE_PREFIX + text)[:_MAX_LT]
    method = f" {provenance['method']}" if provenance.get("method") else ""
    ds.DerivationDescription = f"{software}{method}: {description}"[:1024]
    purpose = _dataset(
        CodeValue="109102", CodingSchemeDesignator="DCM", CodeMeaning="Processing Equipment"
    )
    ds.ContributingEquipmentSequence = [
        _dataset(
            PurposeOfReferenceCodeSequence=[purpose],
            Manufacturer="mrirecon",
            SoftwareVersions=software,
            ContributionDateTime=now.strftime("%Y%m%d%H%M%S.%f"),
            ContributionDescription=ds.DerivationDescription,
        )
    ]
    return ds


def _dataset(**attributes: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def _set(ds: Dataset, keyword: str, value: Any) -> None:
    """Set a JSON-ish value from a header, formatting DS/IS for their VR limits.

    A copied value that is not a finite number where the VR needs one (a damaged input header)
    is left out rather than written wrong.
    """
    if value is None:
        return
    vr = dictionary_VR(keyword)
    values = value if isinstance(value, list) else [value]
    try:
        if vr == "DS":
            values = [_ds(_finite(v)) if v not in ("", None) else "" for v in values]
        elif vr == "IS":
            values = [int(_finite(v)) if v not in ("", None) else "" for v in values]
    except (TypeError, ValueError, OverflowError):
        return
    setattr(ds, keyword, values if isinstance(value, list) else values[0])


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not finite")
    return number


def _find(ds: Dataset, groups: list[Dataset | None], keyword: str) -> Any:
    """``keyword`` from the functional-group macros of ``groups``, else from the top level.

    The first macro of ``groups`` that has a value wins (Enhanced MR: the frame's own groups,
    then the shared ones; private macros skipped); ``None`` when absent or empty.
    """
    for group in groups:
        for element in group or []:
            if element.VR == "SQ" and element.value and not element.tag.is_private:
                if element.value[0].get(keyword) not in (None, ""):
                    return element.value[0].get(keyword)
    value = ds.get(keyword)
    return None if value == "" else value


def _item(ds: Dataset, sequence: str) -> Dataset | None:
    items = ds.get(sequence)
    return items[0] if items else None


def _floats(value: Any) -> np.ndarray | None:
    if value is None or value == "":
        return None
    return np.array([float(v) for v in value])


def _jsonable(value: Any) -> Any:
    """JSON-friendly copy of a DICOM element value; ``None`` for sequences and bytes."""
    if isinstance(value, (MultiValue, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (PersonName, str)):
        return str(value)
    return (
        float(value) if isinstance(value, float) else int(value) if isinstance(value, int) else None
    )


def _ds(value: float) -> str:
    """A decimal string of at most 16 characters (the DS VR limit)."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return format_number_as_ds(float(value))
