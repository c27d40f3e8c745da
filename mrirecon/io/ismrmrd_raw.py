"""ISMRMRD raw acquisitions (``/dataset/data`` and ``/dataset/xml``) read into :class:`KSpace`.

Read with h5py against the ISMRMRD 1.x HDF5 schema rather than the ``ismrmrd`` package: h5py is
already our HDF5 library, the schema is a stable compound type (an ``AcquisitionHeader`` struct,
a variable-length ``traj`` and a variable-length ``data`` of interleaved float32 complex values,
channel-major ``[coil][sample]``), and every failure then passes through :func:`open_h5` into one
error line naming the file.

What the reader does, in order (the steps are recorded in the k-space's provenance):

1. **Select.** Noise scans (flag 19) go to the noise covariance; navigator, phase-correction,
   feedback, dummy and coil-correction scans are dropped; imaging and parallel-calibration lines
   are kept (calibration lines are measured k-space at their own positions, and give SENSE and CS
   their ACS region). Lines flagged reverse are flipped. ``contrast``, ``repetition``, ``phase``
   and ``set`` name volumes (:func:`volume_keys`); one is chosen with a selection string such as
   ``"contrast=1,repetition=0"``. Repeated lines (``average``, or a line measured twice) are
   averaged.
2. **Place.** Readout sample ``s`` (after ``discard_pre``) of a line goes to row
   ``enc_x // 2 - (center_sample - discard_pre) + s``; phase-encode step ``e1`` goes to column
   ``e1 - center + enc_y // 2`` (``center`` from ``encodingLimits/kspace_encoding_step_1``, as
   fastMRI places its lines), so the k-space centre sits at ``(H // 2, W // 2)`` like every
   centred FFT in mrirecon. Anything outside the encoded matrix is a header that disagrees with
   its data. Partial Fourier (asymmetric phase or readout coverage) stays zero-filled.
3. **Pre-whiten** (unless switched off): ``Psi = N N^H / (Ns - 1)`` from the noise samples,
   ``W = s L^-1`` with ``L L^H = Psi`` and ``s = sqrt(rnb * t_data / t_noise)`` (dwell times;
   ``rnb`` the header's ``relativeReceiverNoiseBandwidth``, 1 when absent), as Gadgetron's noise
   adjustment does, with unit noise variance per complex sample. Coil ``c`` becomes
   ``sum_d W[c, d] y_d``.
4. **Remove readout oversampling** where the encoded readout FOV exceeds the recon FOV: inverse
   FFT along the readout, keep the central ``enc_x * fov_recon_x / fov_enc_x`` rows, FFT back.
5. **3-D**: a fully sampled ``kspace_encode_step_2`` is inverse-transformed into slices
   (hybrid space); undersampling along it cannot be held by a per-slice mask and is refused.

The mask is the set of phase-encode columns actually measured, so undersampled raw data is
reconstructed as acquired. Geometry comes from the acquisition headers (``position``, direction
cosines, in the patient LPS frame) turned into our RAS+ ``(slice, row, col)`` affine.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mrirecon.data import KSpace
from mrirecon.errors import InputFileError, InvalidParameterError, one_line
from mrirecon.io.h5source import open_h5
from mrirecon.io.ismrmrd import parse_header
from mrirecon.npfft import fftc, ifftc

#: ISMRMRD acquisition flag bits (``ismrmrd.h``: flag ``b`` is ``1 << (b - 1)``).
FLAGS = {"noise": 19, "calibration": 20, "calibration_and_imaging": 21, "reverse": 22,
         "navigation": 23, "phasecorr": 24, "hpfeedback": 26, "dummyscan": 27,
         "rtfeedback": 28, "surfacecoilcorrection": 29, "phase_stabilisation_reference": 30,
         "phase_stabilisation": 31}
#: Scans that are not k-space of the image and are dropped.
DROPPED = ("navigation", "phasecorr", "hpfeedback", "dummyscan", "rtfeedback",
           "surfacecoilcorrection", "phase_stabilisation_reference", "phase_stabilisation")
#: The counters that tell volumes apart (a selection string names them).
VOLUME_COUNTERS = ("contrast", "repetition", "phase", "set")

__all__ = ["FLAGS", "VOLUME_COUNTERS", "is_ismrmrd", "read_ismrmrd", "raw_summary",
           "volume_keys", "whitening_matrix"]


def is_ismrmrd(path: str | Path) -> bool:
    """True when ``path`` is an HDF5 file holding an ISMRMRD ``dataset`` (``data`` and ``xml``)."""
    try:
        with h5py.File(path, "r") as f:
            return _group(f) is not None
    except (OSError, ValueError, KeyError, RuntimeError):
        return False


def read_ismrmrd(path: str | Path, *, volume: str | None = None,
                 prewhiten: bool = True) -> KSpace:
    """Read the Cartesian acquisitions of one volume of ``path`` (see the module docstring).

    Parameters
    ----------
    path
        An HDF5 file holding an ISMRMRD ``dataset`` group.
    volume
        ``"contrast=C,repetition=R,..."``: which volume, needed when the file holds several
        (:func:`volume_keys` lists them). Counters left out must have one value.
    prewhiten
        Pre-whiten the coils with the noise scans' covariance (when the file has noise scans).

    Raises
    ------
    InputFileError
        No acquisitions, a non-Cartesian trajectory, a header that disagrees with the data, or
        several volumes and no (or no matching) selection.
    """
    path = Path(path)
    xml, acqs = _read_raw(path)
    try:
        hdr = parse_header(xml)
    except ValueError as exc:
        raise InputFileError(path, f"ISMRMRD header: {exc}") from None
    traj = (hdr.get("trajectory") or "cartesian").lower()
    if traj != "cartesian":
        raise InputFileError(path, f"trajectory is {traj!r}; only Cartesian ISMRMRD data can be "
                             "read (grid non-Cartesian data first, e.g. with BART or Gadgetron)")
    if hdr["encoded_matrix"] is None or hdr["encoded_fov_mm"] is None:
        raise InputFileError(path, "ISMRMRD header has no encodedSpace matrixSize/fieldOfView_mm")
    heads = acqs["head"]
    flags = heads["flags"].astype(np.uint64)
    is_noise = _flag(flags, "noise")
    keep = ~is_noise & ~np.any([_flag(flags, name) for name in DROPPED], axis=0)
    if not keep.any():
        raise InputFileError(path, f"holds no imaging acquisitions ({len(acqs)} acquisitions, "
                             f"{int(is_noise.sum())} of them noise scans)")
    keys = volume_keys_of(heads[keep])
    chosen = _choose(keys, volume, path)
    sel = np.flatnonzero(keep)
    sel = sel[[tuple(k) == chosen for k in _counters(heads[sel])]]
    notes: list[str] = []
    grid, counts, geometry = _place(path, hdr, acqs, sel, notes)
    sampled = np.asarray(counts.any(axis=(0, 2)))  # (enc_z, enc_y)
    data = grid / np.maximum(counts, 1)[:, None]
    whitened = False
    if prewhiten and is_noise.any():
        w = whitening_matrix(_samples(acqs, np.flatnonzero(is_noise), path),
                             _dwell(heads, is_noise), _dwell(heads, keep),
                             hdr.get("receiver_noise_bandwidth"))
        if w.shape[0] != data.shape[1]:
            raise InputFileError(path, f"noise scans have {w.shape[0]} coils, imaging data "
                                 f"{data.shape[1]}")
        data = np.einsum("cd,sdzxy->sczxy", w, data)
        whitened = True
    elif prewhiten:
        notes.append("no noise scans: coils not pre-whitened")
    data, enc, fov = _remove_oversampling(data, hdr, notes)
    data, sampled = _to_slices(data, sampled, path, notes)
    mask = sampled[None, :]
    full = bool(mask.all())
    provenance = {"raw": {"format": "ismrmrd", "volume": dict(zip(VOLUME_COUNTERS, chosen,
                                                                 strict=True)),
                          "acquisitions": int(sel.size), "noise_acquisitions": int(is_noise.sum()),
                          "prewhitened": whitened, "notes": notes}}
    return KSpace(
        data=data.astype(np.complex64), mask=None if full else mask,
        encoded_matrix=enc, encoded_fov_mm=fov, recon_matrix=hdr["recon_matrix"],
        recon_fov_mm=hdr["recon_fov_mm"],
        header={"ismrmrd_xml": xml, "ismrmrd": hdr, "attrs": {},
                "single_coil": data.shape[1] == 1},
        affine=_affine(geometry, data.shape, fov, enc), provenance=provenance, source=str(path))


def volume_keys(path: str | Path) -> list[dict[str, int]]:
    """The volumes of an ISMRMRD file: one ``{counter: value}`` per distinct counter tuple."""
    _, acqs = _read_raw(Path(path))
    heads = acqs["head"]
    flags = heads["flags"].astype(np.uint64)
    keep = ~_flag(flags, "noise") & ~np.any([_flag(flags, n) for n in DROPPED], axis=0)
    return [dict(zip(VOLUME_COUNTERS, k, strict=True)) for k in volume_keys_of(heads[keep])]


def raw_summary(path: str | Path) -> dict[str, Any]:
    """Counts for ``mrirecon info``: acquisitions, noise scans, coils, volumes, trajectory."""
    xml, acqs = _read_raw(Path(path))
    heads = acqs["head"]
    noise = _flag(heads["flags"].astype(np.uint64), "noise")
    try:
        trajectory = parse_header(xml).get("trajectory")
    except ValueError:
        trajectory = None
    return {"acquisitions": int(len(acqs)), "noise_acquisitions": int(noise.sum()),
            "channels": sorted({int(c) for c in heads["active_channels"]}),
            "trajectory": trajectory, "volumes": volume_keys(path)}


def whitening_matrix(noise: np.ndarray, noise_dwell_us: float, data_dwell_us: float,
                     receiver_noise_bandwidth: float | None = None) -> np.ndarray:
    """``W = s L^-1`` (module docstring, step 3) from noise samples ``(coils, samples)``.

    ``W Psi W^H = s^2 I``: the whitened noise of the noise scan itself has covariance ``s^2 I``,
    that of the imaging data (other dwell time) the identity.
    """
    coils, n = noise.shape
    if n < 2:
        raise ValueError(f"noise scans hold {n} sample; a covariance needs at least 2")
    psi = noise @ noise.conj().T / (n - 1)
    try:
        chol = np.linalg.cholesky(psi)
    except np.linalg.LinAlgError:
        raise ValueError("the noise covariance is singular (a dead or duplicated coil)") from None
    rnb = 1.0 if not receiver_noise_bandwidth else float(receiver_noise_bandwidth)
    scale = np.sqrt(rnb * data_dwell_us / noise_dwell_us) if noise_dwell_us > 0 else 1.0
    return (scale * np.linalg.inv(chol)).astype(np.complex64)


# --- reading ------------------------------------------------------------------------------


def _group(f: h5py.File) -> h5py.Group | None:
    for name in ("dataset", *f.keys()):
        g = f.get(name)
        if isinstance(g, h5py.Group) and isinstance(g.get("xml"), h5py.Dataset) and \
                isinstance(g.get("data"), h5py.Dataset) and g["data"].dtype.names and \
                "head" in g["data"].dtype.names:
            return g
    return None


def _read_raw(path: Path) -> tuple[str, np.ndarray]:
    with open_h5(path) as f:
        try:
            g = _group(f)
            if g is None:
                raise InputFileError(path, "no ISMRMRD dataset (a group with 'xml' and an "
                                     "acquisition 'data' table)")
            raw = g["xml"][()]
            raw = raw.reshape(-1)[0] if isinstance(raw, np.ndarray) else raw
            xml = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
            acqs = g["data"][()]
        except (OSError, KeyError, RuntimeError, IndexError) as exc:
            raise InputFileError(path, f"corrupt ISMRMRD file ({one_line(exc)})") from None
    if acqs.size == 0:
        raise InputFileError(path, "ISMRMRD file holds no acquisitions")
    names = acqs.dtype.names or ()
    if "data" not in names:
        raise InputFileError(path, "ISMRMRD acquisitions have no 'data' field")
    return xml, acqs


def _flag(flags: np.ndarray, name: str) -> np.ndarray:
    return ((flags >> np.uint64(FLAGS[name] - 1)) & np.uint64(1)).astype(bool)


def _counters(heads: np.ndarray) -> np.ndarray:
    idx = heads["idx"]
    return np.stack([idx[c].astype(int) for c in VOLUME_COUNTERS], axis=-1)


def volume_keys_of(heads: np.ndarray) -> list[tuple[int, ...]]:
    """The distinct ``(contrast, repetition, phase, set)`` tuples of some acquisition headers."""
    return sorted({tuple(int(v) for v in row) for row in _counters(heads)})


def _choose(keys: list[tuple[int, ...]], volume: str | None, path: Path) -> tuple[int, ...]:
    wanted = _parse_selection(volume) if volume else {}
    matches = [k for k in keys if all(k[VOLUME_COUNTERS.index(c)] == v for c, v in
                                      wanted.items())]
    if len(matches) == 1:
        return matches[0]
    varying = [c for i, c in enumerate(VOLUME_COUNTERS) if len({k[i] for k in keys}) > 1]
    listing = "; ".join(",".join(f"{c}={k[VOLUME_COUNTERS.index(c)]}" for c in varying)
                        for k in keys[:6]) + ("; ..." if len(keys) > 6 else "")
    if not matches:
        raise InputFileError(path, f"no volume matches {volume!r}; it holds {listing}")
    raise InputFileError(path, f"holds {len(matches)} volumes ({listing}); choose one with "
                         f"--series {','.join(f'{c}=N' for c in varying)}, or split them "
                         "with mrirecon convert")


def _parse_selection(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name.strip() not in VOLUME_COUNTERS or not value.strip().lstrip("-").isdigit():
            raise InvalidParameterError(
                f"ISMRMRD volume selection {text!r}: expected counter=N pairs with counters "
                f"among {', '.join(VOLUME_COUNTERS)} (e.g. contrast=0,repetition=1)")
        out[name.strip()] = int(value)
    return out


def _samples(acqs: np.ndarray, rows: np.ndarray, path: Path) -> np.ndarray:
    """The samples of acquisitions ``rows`` side by side: ``(coils, total samples)``."""
    parts = [_line(acqs, i, path)[0] for i in rows]
    if len({p.shape[0] for p in parts}) != 1:
        raise InputFileError(path, "noise scans have differing numbers of coils")
    return np.concatenate(parts, axis=1)


def _line(acqs: np.ndarray, i: int, path: Path) -> tuple[np.ndarray, Any]:
    head = acqs["head"][i]
    nc, ns = int(head["active_channels"]), int(head["number_of_samples"])
    flat = np.asarray(acqs["data"][i], dtype=np.float32)
    if flat.size != 2 * nc * ns or nc < 1:
        raise InputFileError(path, f"acquisition {i} holds {flat.size // 2} complex values but "
                             f"its header says {nc} channels x {ns} samples")
    return flat.view(np.complex64).reshape(nc, ns), head


def _dwell(heads: np.ndarray, rows: np.ndarray) -> float:
    times = heads["sample_time_us"][rows]
    return float(times[0]) if times.size else 0.0


def _place(path: Path, hdr: Mapping[str, Any], acqs: np.ndarray, rows: np.ndarray,
           notes: list[str]) -> tuple[np.ndarray, np.ndarray, dict[int, Any]]:
    """Sum lines into ``(slices, coils, enc_z, enc_x, enc_y)`` with a count per line."""
    enc_x, enc_y, enc_z = (int(v) for v in hdr["encoded_matrix"])
    limits = hdr.get("enc_limits", {})
    c1 = limits.get("kspace_encoding_step_1", {}).get("center", enc_y // 2)
    c2 = limits.get("kspace_encoding_step_2", {}).get("center", enc_z // 2)
    heads = acqs["head"]
    n_slices = int(max(heads["idx"]["slice"][rows].max() + 1,
                       limits.get("slice", {}).get("maximum", -1) + 1))
    coils = {int(heads["active_channels"][i]) for i in rows}
    if len(coils) != 1:
        raise InputFileError(path, f"imaging acquisitions have differing coil counts {coils}")
    grid = np.zeros((n_slices, coils.pop(), enc_z, enc_x, enc_y), np.complex64)
    counts = np.zeros((n_slices, enc_z, enc_x, enc_y), np.int32)
    geometry: dict[int, Any] = {}
    short = False
    for i in rows:
        line, head = _line(acqs, int(i), path)
        lo, hi = int(head["discard_pre"]), line.shape[1] - int(head["discard_post"])
        line = line[:, lo:hi]
        if _flag(np.uint64(head["flags"]), "reverse"):
            line = line[:, ::-1]
        start = enc_x // 2 - (int(head["center_sample"]) - lo)
        y = int(head["idx"]["kspace_encode_step_1"]) - c1 + enc_y // 2
        z = int(head["idx"]["kspace_encode_step_2"]) - c2 + enc_z // 2 if enc_z > 1 else 0
        s = int(head["idx"]["slice"])
        if not (0 <= start and start + line.shape[1] <= enc_x and 0 <= y < enc_y
                and 0 <= z < enc_z):
            raise InputFileError(
                path, f"header disagrees with data: acquisition {int(i)} (step1 "
                f"{int(head['idx']['kspace_encode_step_1'])}, {line.shape[1]} samples, centre "
                f"{int(head['center_sample'])}) does not fit the encoded matrix "
                f"{enc_x}x{enc_y}x{enc_z}")
        short |= line.shape[1] < enc_x
        grid[s, :, z, start:start + line.shape[1], y] += line
        counts[s, z, start:start + line.shape[1], y] += 1
        geometry.setdefault(s, head)
    if short:
        notes.append("asymmetric echo: readout zero-filled to the encoded matrix")
    measured = np.flatnonzero(counts.any(axis=(0, 1, 2)))
    below, above = enc_y // 2 - measured.min(), measured.max() - enc_y // 2
    gap = int(np.diff(measured).max()) if measured.size > 1 else 1
    if abs(above - below) > gap:  # more than undersampling's spacing can explain
        notes.append(f"partial Fourier: phase encodes {measured.min()}-{measured.max()} of "
                     f"{enc_y} measured, the rest zero-filled")
    if (counts > 1).any():
        notes.append("repeated lines (averages) averaged")
    return grid, counts, geometry


def _remove_oversampling(data: np.ndarray, hdr: Mapping[str, Any], notes: list[str]
                         ) -> tuple[np.ndarray, tuple[int, int, int], tuple[float, float, float]]:
    enc = tuple(int(v) for v in hdr["encoded_matrix"])
    fov = tuple(float(v) for v in hdr["encoded_fov_mm"])
    rfov = hdr.get("recon_fov_mm")
    if rfov is None or rfov[0] >= fov[0] * (1 - 1e-6):
        return data, enc, fov  # type: ignore[return-value]
    keep = int(round(enc[0] * rfov[0] / fov[0]))
    img = ifftc(data, -2)
    lo = (enc[0] - keep) // 2
    data = fftc(img[..., lo:lo + keep, :], -2)
    notes.append(f"readout oversampling removed: {enc[0]} -> {keep} samples")
    return data, (keep, enc[1], enc[2]), (float(rfov[0]), fov[1], fov[2])


def _to_slices(data: np.ndarray, sampled: np.ndarray, path: Path, notes: list[str]
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(slices, coils, z, x, y)`` -> ``(slices * z, coils, x, y)`` and the ``(y,)`` mask."""
    n, coils, nz, nx, ny = data.shape
    if nz > 1:
        if not sampled.all(axis=1).any() or not (sampled == sampled[nz // 2]).all():
            raise InputFileError(path, "3-D acquisition undersampled along "
                                 "kspace_encode_step_2: a per-slice mask cannot hold it")
        data = ifftc(data, 2)
        notes.append(f"3-D: {nz} partitions inverse-transformed into slices")
    return (data.transpose(0, 2, 1, 3, 4).reshape(n * nz, coils, nx, ny),
            sampled[nz // 2])


def _affine(geometry: Mapping[int, Any], shape: tuple[int, ...], fov: tuple[float, ...],
            enc: tuple[int, ...]) -> np.ndarray | None:
    """RAS+ ``(slice, row, col)`` affine from the headers' LPS position and direction cosines."""
    if not geometry:
        return None
    first = geometry[min(geometry)]
    read, phase, normal = (np.asarray(first[k], float) for k in ("read_dir", "phase_dir",
                                                                  "slice_dir"))
    if min(np.linalg.norm(read), np.linalg.norm(phase), np.linalg.norm(normal)) < 0.5:
        return None  # direction cosines not filled in
    _, _, rows, cols = shape
    dx, dy, dz = fov[0] / enc[0], fov[1] / enc[1], fov[2] / enc[2]
    positions = [np.asarray(geometry[s]["position"], float) for s in sorted(geometry)]
    step = (positions[-1] - positions[0]) / (len(positions) - 1) if len(positions) > 1 else \
        normal * dz
    if enc[2] > 1:
        step = normal * dz
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = step, read * dx, phase * dy
    lps[:3, 3] = positions[0] - (rows // 2) * read * dx - (cols // 2) * phase * dy
    if enc[2] > 1:
        lps[:3, 3] -= (enc[2] // 2) * step
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
