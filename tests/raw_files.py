"""Write small raw ISMRMRD files with h5py, for tests that must not depend on ismrmrd-tools.

The layout is the ISMRMRD 1.x HDF5 schema as the reference C++ library writes it
(``/dataset/xml`` and ``/dataset/data``, a compound of ``head``, ``traj`` and ``data``); the
field list is the library's ``AcquisitionHeader``. Test modules import this as
``from raw_files import write_scan``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from mrirecon.io.ismrmrd import build_header

_IDX = np.dtype([(name, "<u2") for name in (
    "kspace_encode_step_1", "kspace_encode_step_2", "average", "slice", "contrast", "phase",
    "repetition", "set", "segment")] + [("user", "<u2", (8,))])
HEAD = np.dtype([
    ("version", "<u2"), ("flags", "<u8"), ("measurement_uid", "<u4"), ("scan_counter", "<u4"),
    ("acquisition_time_stamp", "<u4"), ("physiology_time_stamp", "<u4", (3,)),
    ("number_of_samples", "<u2"), ("available_channels", "<u2"), ("active_channels", "<u2"),
    ("channel_mask", "<u8", (16,)), ("discard_pre", "<u2"), ("discard_post", "<u2"),
    ("center_sample", "<u2"), ("encoding_space_ref", "<u2"), ("trajectory_dimensions", "<u2"),
    ("sample_time_us", "<f4"), ("position", "<f4", (3,)), ("read_dir", "<f4", (3,)),
    ("phase_dir", "<f4", (3,)), ("slice_dir", "<f4", (3,)),
    ("patient_table_position", "<f4", (3,)), ("idx", _IDX), ("user_int", "<i4", (8,)),
    ("user_float", "<f4", (8,)),
])
ACQUISITION = np.dtype([("head", HEAD), ("traj", h5py.vlen_dtype(np.float32)),
                        ("data", h5py.vlen_dtype(np.float32))])
NOISE_FLAG = 1 << 18  # ISMRMRD_ACQ_IS_NOISE_MEASUREMENT = 19
REVERSE_FLAG = 1 << 21  # ISMRMRD_ACQ_IS_REVERSE = 22


def write_acquisitions(path: Path, xml: str, heads: np.ndarray,
                       samples: Sequence[np.ndarray]) -> Path:
    """``samples[i]`` ``(coils, n)`` complex is acquisition ``i`` with header ``heads[i]``."""
    table = np.zeros(len(heads), dtype=ACQUISITION)
    for i, (head, data) in enumerate(zip(heads, samples, strict=True)):
        table[i]["head"] = head
        table[i]["traj"] = np.zeros(0, np.float32)
        table[i]["data"] = np.ascontiguousarray(data, np.complex64).view(np.float32).ravel()
    with h5py.File(path, "w") as f:
        g = f.create_group("dataset")
        g.create_dataset("xml", data=[xml.encode()], dtype=h5py.string_dtype())
        g.create_dataset("data", data=table, maxshape=(None,), chunks=True)
    return path


def write_scan(path: Path, kspace: np.ndarray, *, lines: Sequence[int] | None = None,
               repetitions: int = 1, noise: np.ndarray | None = None,
               fov_mm: tuple[float, float, float] = (200.0, 200.0, 5.0),
               recon_rows: int | None = None, dwell_us: tuple[float, float] = (5.0, 5.0),
               trajectory: str = "cartesian", position: Sequence[float] = (0.0, 0.0, 0.0),
               directions: Sequence[Sequence[float]] = ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
               step1_offset: int = 0) -> Path:
    """One 2-D Cartesian slice ``kspace`` ``(coils, readout, phase)`` as raw acquisitions.

    ``lines`` are the phase encodes measured (default: all), once per repetition; ``noise``
    ``(coils, n)`` is written first as one noise scan (``dwell_us = (noise, imaging)``).
    ``recon_rows`` below the readout length declares readout oversampling (the recon FOV is the
    encoded one scaled by ``recon_rows / readout``). ``step1_offset`` shifts every line's
    ``kspace_encode_step_1`` (a header that disagrees with its data when it leaves the matrix).
    """
    coils, nx, ny = kspace.shape
    rows = nx if recon_rows is None else recon_rows
    xml = build_header(encoded_matrix=(nx, ny, 1), encoded_fov_mm=fov_mm,
                       recon_matrix=(rows, ny, 1),
                       recon_fov_mm=(fov_mm[0] * rows / nx, fov_mm[1], fov_mm[2]),
                       coils=coils, field_strength_t=3.0, trajectory=trajectory)
    heads, samples = [], []
    if noise is not None:
        head = np.zeros((), HEAD)
        head["flags"] = NOISE_FLAG
        head["number_of_samples"] = noise.shape[1]
        head["active_channels"] = head["available_channels"] = coils
        head["sample_time_us"] = dwell_us[0]
        heads.append(head)
        samples.append(noise)
    for rep in range(repetitions):
        for y in range(ny) if lines is None else lines:
            head = np.zeros((), HEAD)
            head["number_of_samples"] = nx
            head["active_channels"] = head["available_channels"] = coils
            head["center_sample"] = nx // 2
            head["sample_time_us"] = dwell_us[1]
            head["position"] = position
            head["read_dir"], head["phase_dir"], head["slice_dir"] = directions
            head["idx"]["kspace_encode_step_1"] = y + step1_offset
            head["idx"]["repetition"] = rep
            heads.append(head)
            samples.append(kspace[:, :, y])
    return write_acquisitions(path, xml, np.array(heads, dtype=HEAD), samples)


def imaging_head(coils: int, samples: int, step1: int, **fields: object) -> np.ndarray:
    """One imaging acquisition header; ``fields`` set header fields, ``idx_<name>`` counters."""
    head = np.zeros((), HEAD)
    head["number_of_samples"] = samples
    head["active_channels"] = head["available_channels"] = coils
    head["center_sample"] = samples // 2
    head["sample_time_us"] = 5.0
    head["read_dir"], head["phase_dir"], head["slice_dir"] = (1, 0, 0), (0, 1, 0), (0, 0, 1)
    head["idx"]["kspace_encode_step_1"] = step1
    for name, value in fields.items():
        if name.startswith("idx_"):
            head["idx"][name[4:]] = value
        else:
            head[name] = value
    return head


def fft2c(image: np.ndarray) -> np.ndarray:
    """Centred orthonormal 2-D FFT over the last two axes (mrirecon's convention)."""
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image, axes), norm="ortho"), axes)


def ifft2c(kspace: np.ndarray) -> np.ndarray:
    """The inverse of :func:`fft2c`."""
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes), norm="ortho"), axes)
