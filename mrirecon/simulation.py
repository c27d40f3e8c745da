"""Orchestration of ``mrirecon simulate``: image files -> simulated fastMRI-format k-space files.

Reads each magnitude volume (DICOM or NIfTI), optionally resamples it in-plane, simulates
multi-coil k-space with :func:`mrirecon.physics.simulate.simulate_kspace` and writes a complete
fastMRI-format HDF5 file: ``kspace``, an ISMRMRD header with the true matrix and field of view,
the ESC (one coil) or RSS target of the noisy fully sampled data, and attributes marking the file
as simulated. The source image's geometry and patient/study header travel along, so a later
reconstruction can be written back as DICOM or NIfTI in the right place.

The data are magnitude images made complex with a synthetic phase: they are *simulated*
measurements, and every output says so (``attrs["simulated"] = True``, ``acquisition``
``"SIMULATED"``, provenance).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mrirecon import __version__
from mrirecon.data import Volume, voxel_sizes
from mrirecon.errors import InputFileError
from mrirecon.physics.simulate import SimulationParams, resample_inplane, simulate_kspace
from mrirecon.sampling.seeding import seed_from_name


def output_name(path: Path) -> str:
    """``brain.nii.gz`` -> ``brain.h5``; a DICOM folder ``series1/`` -> ``series1.h5``."""
    from mrirecon.io import output_stem

    return output_stem(path) + ".h5"


def load_image(path: Path, series: str | None = None) -> Volume:
    """Read a magnitude image volume (DICOM or NIfTI); k-space files are refused."""
    from mrirecon.io import load

    obj = load(path, series=series)
    if not isinstance(obj, Volume):
        raise InputFileError(path, "holds k-space already; simulate expects DICOM or NIfTI images")
    if not np.all(np.isfinite(obj.data)):
        raise InputFileError(path, "image contains NaN or Inf values")
    return obj


def simulate_volume(volume: Volume, params: SimulationParams,
                    matrix: int | None = None) -> dict[str, Any]:
    """Simulate one volume; returns everything :func:`write_simulated` needs.

    An image with NaN or Inf pixels (or too large for float32) is an
    :class:`~mrirecon.errors.InputFileError`: its k-space would be too.
    """
    data = np.abs(volume.data).astype(np.float32)
    if not np.isfinite(data).all():
        raise InputFileError(volume.source or "image", "holds NaN or Inf pixel values (or values "
                             "beyond float32); nothing to simulate from")
    data, affine = resample_inplane(data, volume.affine, matrix) if matrix else (data,
                                                                                volume.affine)
    kspace, target = simulate_kspace(data, params)
    return {"kspace": kspace, "target": target, "affine": affine}


def simulate_file(path: Path, out_dir: Path, params: SimulationParams, *,
                  matrix: int | None = None, series: str | None = None,
                  overwrite: bool = False) -> dict[str, Any]:
    """Simulate ``path`` into ``out_dir/<stem>.h5``; returns a summary record.

    The seed actually used is derived from ``params.seed`` and the input's file name, so every
    input of a batch gets its own phase and noise, reproducibly on any machine.
    """
    from mrirecon.fileutil import check_writable

    start = time.perf_counter()
    out = Path(out_dir) / output_name(path)
    volume = load_image(path, series)  # a bad input fails before any folder is made
    check_writable([out], overwrite)
    file_params = replace(params, seed=seed_from_name(output_name(path), base_seed=params.seed))
    sim = simulate_volume(volume, file_params, matrix)
    write_simulated(out, volume, sim, file_params, overwrite=overwrite)
    slices, coils, rows, cols = sim["kspace"].shape
    return {"input": str(path), "output": str(out), "slices": slices, "coils": coils,
            "matrix": [rows, cols], "seed": file_params.seed,
            "seconds": round(time.perf_counter() - start, 3)}


def write_simulated(out: Path, volume: Volume, sim: dict[str, Any],
                    params: SimulationParams | dict[str, Any], *, overwrite: bool = False,
                    provenance: dict[str, Any] | None = None) -> Path:
    """Write a simulated volume as a complete fastMRI-format dataset file.

    ``params`` is what made the k-space (:class:`SimulationParams`, or any JSON-able record of
    another simulation, e.g. the validation suite's); ``provenance`` adds entries to the file's.
    """
    from mrirecon.io.fastmri_h5 import target_key, write_dataset
    from mrirecon.io.ismrmrd import build_header

    kspace, target, affine = sim["kspace"], sim["target"], sim["affine"]
    slices, coils, rows, cols = kspace.shape
    slice_mm, row_mm, col_mm = voxel_sizes(affine)
    fov = (rows * row_mm, cols * col_mm, slice_mm)
    header = build_header(
        encoded_matrix=(rows, cols, 1), encoded_fov_mm=fov,
        recon_matrix=(rows, cols, 1), recon_fov_mm=fov,
        coils=coils, field_strength_t=_field_strength(volume),
    )
    provenance = {
        "simulated": True, "mrirecon_version": __version__, "source": volume.source,
        "simulation": params.to_dict() if isinstance(params, SimulationParams) else params,
        "source_header": volume.header.get("format"), **(provenance or {}),
    }
    target_name = target_key(single_coil=coils == 1)
    attrs = {
        "max": float(target.max()), "norm": float(np.linalg.norm(target)),
        "acquisition": "SIMULATED", "patient_id": _patient_id(volume), "simulated": True,
    }
    return write_dataset(
        out, kspace if coils > 1 else kspace[:, 0], header_xml=header,
        targets={target_name: target}, attrs=attrs, affine=affine,
        image_header=volume.header, provenance=provenance, overwrite=overwrite,
    )


def _field_strength(volume: Volume) -> float | None:
    value = volume.header.get("dicom", {}).get("MagneticFieldStrength")
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _patient_id(volume: Volume) -> str:
    return str(volume.header.get("dicom", {}).get("PatientID") or "simulated")


def write_undersampled(path: str | Path, out: str | Path, options: Any, *,
                       overwrite: bool = False) -> dict[str, Any]:
    """A fully sampled fastMRI file as an undersampled acquisition, the layout of a test file.

    The k-space outside a mask drawn as ``mrirecon reconstruct`` draws it for this file
    (:func:`~mrirecon.sampling.draw_mask` with the :class:`~mrirecon.sampling.MaskOptions`
    ``options`` and the file name) is zeroed, the mask is stored, and no reference image is
    kept: what a scanner's undersampled acquisition gives a user, for self-supervised training
    (SSDU) and its benchmarks. Header, geometry and attributes travel along; the provenance
    records the mask and the source file. Returns ``{"output", "mask"}``.
    """
    from mrirecon.inference import mask_record
    from mrirecon.io.fastmri_h5 import read_kspace, write_dataset
    from mrirecon.sampling import draw_mask

    path, out = Path(path), Path(out)
    kspace = read_kspace(path)
    if kspace.mask is not None:
        raise InputFileError(path, "already carries a sampling mask (it is undersampled)")
    mask = draw_mask(kspace.shape[-2:], options, path.name)
    data = np.where(mask.array, kspace.slices(0, kspace.n_slices), 0).astype(np.complex64)
    attrs = {k: v for k, v in kspace.header.get("attrs", {}).items()
             if k in ("acquisition", "patient_id", "simulated")}
    record = mask_record(mask)
    provenance = {**kspace.provenance, "mask": record, "undersampled_from": path.name}
    write_dataset(out, data, header_xml=kspace.header["ismrmrd_xml"], attrs=attrs,
                  mask=mask.array, affine=kspace.affine, image_header=kspace.image_header,
                  provenance=provenance, overwrite=overwrite)
    return {"output": str(out), "mask": record}
