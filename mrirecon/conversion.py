"""Orchestration of ``mrirecon convert``: raw k-space (ISMRMRD, BART ``.cfl``) -> fastMRI HDF5.

Each volume of the input becomes one complete fastMRI-format file that ``train``, ``evaluate``
and fastMRI's ``SliceDataset`` read: ``kspace`` ``(slices, coils, H, W)`` as the raw reader
made it (oversampling removed, pre-whitened unless switched off), an ISMRMRD header carrying
the encoded and recon matrix and field of view, the original ``kspace_encoding_step_1`` limits,
coils, field strength and sequence parameters, the affine and the reader's provenance. An
undersampled acquisition keeps its measured ``mask``; a fully sampled one gets the fastMRI
target (``reconstruction_rss``, or ``_esc`` for one coil: our zero-filled reconstruction, the
same image ``evaluate`` compares against).

A raw ISMRMRD file with several volumes (contrast, repetition, phase, set) gives one file per
volume, named after the counters that vary: ``scan_contrast0_repetition1.h5``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from mrirecon import __version__
from mrirecon.data import KSpace
from mrirecon.errors import InputFileError

__all__ = ["convert_file", "conversion_outputs"]

#: The input formats ``convert`` reads.
CONVERTIBLE = ("ismrmrd", "cfl")


def conversion_outputs(path: str | Path, out_dir: str | Path) -> dict[Path, str | None]:
    """``{output file: volume selection}`` for ``path`` (selection ``None``: the only volume).

    Raises
    ------
    InputFileError
        ``path`` is not raw k-space (fastMRI HDF5 and images need no conversion).
    """
    from mrirecon.io import detect_format, output_stem

    path = Path(path)
    fmt = detect_format(path)
    if fmt not in CONVERTIBLE:
        hint = ("it is fastMRI HDF5 already" if fmt == "fastmri"
                else "images become k-space with mrirecon simulate")
        raise InputFileError(path, f"is {fmt}; convert reads raw ISMRMRD or BART .cfl k-space "
                             f"({hint})")
    stem = output_stem(path)
    if fmt == "cfl":
        return {Path(out_dir) / f"{stem}.h5": None}
    from mrirecon.io.ismrmrd_raw import volume_keys

    volumes = volume_keys(path)
    if not volumes:
        raise InputFileError(path, "holds no imaging acquisitions")
    if len(volumes) == 1:
        return {Path(out_dir) / f"{stem}.h5": None}
    varying = [c for c in volumes[0] if len({v[c] for v in volumes}) > 1]
    return {Path(out_dir) / (stem + "".join(f"_{c}{v[c]}" for c in varying) + ".h5"):
            ",".join(f"{c}={v[c]}" for c in varying) for v in volumes}


def convert_file(path: str | Path, out_dir: str | Path, *, prewhiten: bool = True,
                 overwrite: bool = False) -> list[dict[str, Any]]:
    """Convert every volume of ``path`` into ``out_dir``; one summary record per file written.

    Every output is checked writable before the first is written, and each is written to a
    temporary file and renamed, so a failure leaves no half-written file; when one volume
    fails, the files this call already wrote for the others are removed too, so a bad input
    leaves nothing behind (with ``overwrite``, files it replaced are not restored).
    """
    from mrirecon.fileutil import check_writable

    path = Path(path)
    outputs = conversion_outputs(path, out_dir)
    check_writable(list(outputs), overwrite)
    records: list[dict[str, Any]] = []
    written: list[Path] = []
    try:
        for out, selection in outputs.items():
            records.append(_convert_volume(path, out, selection, prewhiten, overwrite))
            written.append(out)
    except BaseException:
        for out in written:
            out.unlink(missing_ok=True)
        raise
    return records


def _convert_volume(path: Path, out: Path, selection: str | None, prewhiten: bool,
                    overwrite: bool) -> dict[str, Any]:
    from mrirecon.io import load

    start = time.perf_counter()
    kspace = load(path, series=selection, prewhiten=prewhiten)
    if not isinstance(kspace, KSpace):  # a .cfl image that mrirecon wrote
        raise InputFileError(path, "holds images (its JSON sidecar says so), not k-space; "
                             "convert reads k-space")
    write_kspace(out, kspace, overwrite=overwrite)
    slices, coils, rows, cols = kspace.shape
    return {"input": str(path), "output": str(out), "volume": selection, "slices": slices,
            "coils": coils, "matrix": [rows, cols],
            "sampled": "full" if kspace.mask is None else
            f"{int(np.asarray(kspace.mask).any(axis=0).sum())}/{cols}",
            "seconds": round(time.perf_counter() - start, 3)}


def write_kspace(out: Path, kspace: KSpace, *, overwrite: bool = False) -> Path:
    """Write raw ``kspace`` as a fastMRI-format file (module docstring)."""
    from mrirecon.io.fastmri_h5 import target_key, write_dataset
    from mrirecon.io.ismrmrd import build_header

    data = kspace.slices(0, kspace.n_slices)
    slices, coils, rows, cols = data.shape
    parsed = kspace.header.get("ismrmrd", {})
    enc = kspace.encoded_matrix or (rows, cols, 1)
    fov = kspace.encoded_fov_mm or (float(rows), float(cols), 1.0)
    z_mm = fov[2] / enc[2] if enc[2] > 1 else fov[2]  # a 3-D slab: one partition per slice
    recon = kspace.recon_matrix or enc
    recon_fov = kspace.recon_fov_mm or fov
    step1 = parsed.get("enc_limits", {}).get("kspace_encoding_step_1")
    header = build_header(
        encoded_matrix=(rows, cols, 1), encoded_fov_mm=(fov[0], fov[1], z_mm),
        recon_matrix=(recon[0], recon[1], 1),
        recon_fov_mm=(recon_fov[0], recon_fov[1], z_mm),
        kspace_encoding_step_1=None if step1 is None else
        (step1["minimum"], step1["maximum"], step1["center"]),
        n_slices=slices, coils=coils, field_strength_t=parsed.get("field_strength_t"),
        larmor_hz=parsed.get("larmor_hz"), sequence=parsed.get("sequence") or None,
        vendor=parsed.get("vendor"), model=parsed.get("model"),
    )
    targets = {}
    if kspace.mask is None:
        from mrirecon.recon.zero_filled import ZeroFilled

        targets[target_key(single_coil=coils == 1)] = ZeroFilled()(kspace).data
    raw = kspace.provenance.get("raw", {})
    attrs = {"acquisition": str(raw.get("format", "raw")).upper(), "patient_id": out.stem,
             "simulated": False}
    provenance = {**kspace.provenance, "mrirecon_version": __version__,
                  "converted_from": kspace.source}
    return write_dataset(
        out, data if coils > 1 else data[:, 0], header_xml=header, targets=targets or None,
        attrs=attrs, mask=kspace.mask, affine=kspace.affine, provenance=provenance,
        overwrite=overwrite,
    )
