"""``file_info(path)``: what a file holds, as a JSON-friendly record and as one line of text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mrirecon.data import KSpace, Volume, orientation_codes, voxel_sizes
from mrirecon.data.masks import mask_statistics


def file_info(path: str | Path, *, series: str | None = None) -> dict[str, Any]:
    """Read ``path`` (lazily: k-space is not loaded) and describe it.

    A raw ISMRMRD file is also counted (:func:`~mrirecon.io.ismrmrd_raw.raw_summary`:
    acquisitions, noise scans, volumes); when it holds several volumes and ``series`` picks
    none, the first volume is the one described.
    """
    from mrirecon.io import detect_format, load

    fmt = detect_format(path)
    raw = None
    if fmt == "ismrmrd":
        from mrirecon.io.ismrmrd_raw import raw_summary

        raw = raw_summary(path)
        if series is None and len(raw["volumes"]) > 1:
            series = ",".join(f"{k}={v}" for k, v in raw["volumes"][0].items())
    obj = load(path, series=series)
    record: dict[str, Any] = {"path": str(path), "format": fmt}
    if isinstance(obj, KSpace):
        record.update(_kspace_info(obj))
    else:
        record.update(_volume_info(obj))
    if raw is not None:
        record["raw"] = {**raw, "described_volume": obj.provenance["raw"]["volume"],
                         "prewhitened": obj.provenance["raw"]["prewhitened"],
                         "notes": obj.provenance["raw"]["notes"]}
    return record


def _triple(values: Any, digits: int = 2) -> list[float] | None:
    return None if values is None else [round(float(v), digits) for v in values]


def _kspace_info(ks: KSpace) -> dict[str, Any]:
    slices, coils, ky, kx = ks.shape
    info: dict[str, Any] = {
        "kind": "multi-coil k-space" if ks.is_multicoil else "single-coil k-space",
        "shape": [slices, coils, ky, kx],
        "coils": coils,
        "dtype": str(np.dtype(getattr(ks.data, "dtype", np.complex64))),
        "encoded_matrix": list(ks.encoded_matrix) if ks.encoded_matrix else None,
        "recon_matrix": list(ks.recon_matrix) if ks.recon_matrix else None,
        "encoded_fov_mm": _triple(ks.encoded_fov_mm),
        "recon_fov_mm": _triple(ks.recon_fov_mm),
        "targets": sorted(ks.targets),
        "simulated": bool(ks.header.get("attrs", {}).get("simulated", False)),
    }
    if ks.recon_matrix and ks.recon_fov_mm:
        info["voxel_mm"] = [round(f / n, 3) for f, n in zip(ks.recon_fov_mm, ks.recon_matrix,
                                                             strict=True)]
    if ks.affine is not None:
        info["orientation"] = orientation_codes(ks.affine)
    if ks.mask is not None:
        stats = mask_statistics(ks.mask, (ky, kx))
        info["mask"] = {"sampled_lines": stats["sampled_lines"], "total_lines": kx,
                        "acceleration": round(min(stats["achieved_acceleration"],
                                                  stats["total_points"]), 3)}
    else:
        info["mask"] = None
    return info


def _volume_info(vol: Volume) -> dict[str, Any]:
    slice_mm, row_mm, col_mm = voxel_sizes(vol.affine)
    slices, rows, cols = vol.shape
    return {
        "kind": "image volume",
        "shape": list(vol.shape),
        "coils": None,
        "dtype": str(vol.data.dtype),
        # in-plane first, as ISMRMRD's (x, y, z) for k-space files: (row, col, slice)
        "voxel_mm": [round(v, 4) for v in (row_mm, col_mm, slice_mm)],
        "fov_mm": [round(v, 2) for v in (rows * row_mm, cols * col_mm, slices * slice_mm)],
        "orientation": orientation_codes(vol.affine),
        "mask": None,
    }


def info_line(record: dict[str, Any]) -> str:
    """One line for people: kind, shape, coils, dtype, matrix, FOV, voxel, orientation, mask.

    Sizes read (row x col x slice), as ISMRMRD's (x, y, z); the orientation letters name where
    the (slice, row, col) index axes point (RAS+ letters, e.g. ``SPL``).
    """
    parts = [f"{record['path']}: {record['format']} {record['kind']}",
             "x".join(str(n) for n in record["shape"]), record["dtype"]]
    if record.get("encoded_matrix"):
        parts.append("encoded " + "x".join(map(str, record["encoded_matrix"])))
    if record.get("recon_matrix"):
        parts.append("recon " + "x".join(map(str, record["recon_matrix"])))
    fov = record.get("fov_mm") or record.get("recon_fov_mm")
    if fov:
        parts.append("FOV " + "x".join(f"{v:g}" for v in fov) + " mm")
    if record.get("voxel_mm"):
        parts.append("voxel " + "x".join(f"{v:g}" for v in record["voxel_mm"]) + " mm")
    if record.get("orientation"):
        parts.append(f"orientation {record['orientation']} (slice,row,col)")
    mask = record.get("mask")
    if mask:
        parts.append(f"mask {mask['sampled_lines']}/{mask['total_lines']} lines "
                     f"({mask['acceleration']:g}x)")
    elif record["kind"].endswith("k-space"):
        parts.append("fully sampled")
    if record.get("simulated"):
        parts.append("simulated")
    raw = record.get("raw")
    if raw:
        parts.append(f"{raw['acquisitions']} acquisitions ({raw['noise_acquisitions']} noise)")
        if raw["prewhitened"]:
            parts.append("coils pre-whitened")
        if len(raw["volumes"]) > 1:
            shown = ",".join(f"{k}={v}" for k, v in raw["described_volume"].items())
            parts.append(f"{len(raw['volumes'])} volumes (described: {shown})")
        parts.extend(raw["notes"])
    return ", ".join(parts)
