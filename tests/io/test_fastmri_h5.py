"""fastMRI HDF5: write/read round trips, laziness, fastMRI's own reading, bad inputs, safe writes.

The files are made here from a small numerical phantom (ellipses, smooth coil maps) so that
``kspace`` and its RSS/ESC target are consistent the way fastMRI's are.
"""

from __future__ import annotations

import io
import pickle
import xml.etree.ElementTree as etree
from pathlib import Path

import h5py
import numpy as np
import pytest

from mrirecon import __version__
from mrirecon.data import KSpace, Volume
from mrirecon.errors import InputFileError, InvalidParameterError, OutputError
from mrirecon.io import fastmri_h5, h5source
from mrirecon.io.fastmri_h5 import (
    H5SliceSource,
    check_finite,
    read_kspace,
    read_reconstruction,
    write_dataset,
    write_reconstruction,
)
from mrirecon.io.ismrmrd import build_header

H, W, RECON = 64, 48, 32  # readout rows, phase-encode columns, square recon matrix


def fastmri_metadata(xml: bytes) -> dict:
    """fastMRI's ``SliceDataset._retrieve_metadata`` (and ``et_query``) on a header, restated."""
    root = etree.fromstring(xml)

    def et_query(qlist: list[str]) -> str:
        path = "." + "".join(f"//ismrmrd_namespace:{el}" for el in qlist)
        return root.find(path, {"ismrmrd_namespace": "http://www.ismrm.org/ISMRMRD"}).text

    enc_size = tuple(int(et_query(["encoding", "encodedSpace", "matrixSize", a])) for a in "xyz")
    recon_size = tuple(int(et_query(["encoding", "reconSpace", "matrixSize", a])) for a in "xyz")
    lims = ["encoding", "encodingLimits", "kspace_encoding_step_1"]
    padding_left = enc_size[1] // 2 - int(et_query(lims + ["center"]))
    padding_right = padding_left + int(et_query(lims + ["maximum"])) + 1
    return {"padding_left": padding_left, "padding_right": padding_right,
            "encoding_size": enc_size, "recon_size": recon_size}


def phantom(n: int, coils: int, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """Centred orthonormal k-space ``(n, coils, h, w)`` of ellipse slices, and its target.

    The target is fastMRI's: the root-sum-of-squares (one coil: the magnitude) of the inverse
    FFT, centre-cropped to ``RECON x RECON``.
    """
    y, x = np.mgrid[-1:1:h * 1j, -1:1:w * 1j]
    slices = []
    for s in range(n):
        r = 0.85 - 0.4 * s / max(n - 1, 1)
        img = ((x / r) ** 2 + (y / (0.9 * r)) ** 2 < 1) + 0.5 * ((x - 0.2) ** 2 + y ** 2 < 0.04)
        slices.append(img * np.exp(1j * np.pi * 0.3 * x))
    images = np.asarray(slices)[:, None]
    angles = (2 * np.pi * np.arange(coils) / coils)[:, None, None]
    distance2 = (x - 0.8 * np.cos(angles)) ** 2 + (y - 0.8 * np.sin(angles)) ** 2
    maps = np.exp(-distance2) * np.exp(1j * angles)  # smooth magnitude, a phase per coil
    coil_images = images * (maps if coils > 1 else 1.0)
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coil_images, axes=(-2, -1)),
                                         norm="ortho"), axes=(-2, -1)).astype(np.complex64)
    rss = np.sqrt((np.abs(coil_images) ** 2).sum(axis=1))
    top, left = (h - RECON) // 2, (w - RECON) // 2
    return kspace, rss[:, top:top + RECON, left:left + RECON].astype(np.float32)


def header(n: int = 1, coils: int | None = None) -> str:
    """0.5 mm pixels, 3 mm slices; readout oversampled x2 like fastMRI's knee data."""
    return build_header(encoded_matrix=(H, W, 1), encoded_fov_mm=(H / 2, W / 2, 3.0),
                        recon_matrix=(RECON, RECON, 1), recon_fov_mm=(RECON / 2, RECON / 2, 3.0),
                        n_slices=n, coils=coils, field_strength_t=3.0)


def make_file(path: Path, n: int = 4, coils: int = 1,
              **kwargs) -> tuple[Path, np.ndarray, np.ndarray]:
    kspace, target = phantom(n, coils)
    key = "reconstruction_esc" if coils == 1 else "reconstruction_rss"
    args = {"header_xml": header(n, coils), "targets": {key: target},
            "attrs": {"acquisition": "CORPD_FBK", "patient_id": "p001"}, **kwargs}
    write_dataset(path, kspace[:, 0] if coils == 1 else kspace, **args)
    return path, kspace, target


AFFINE = np.array([[0.0, 0.0, 0.5, -12.0], [0.0, -0.5, 0.0, 8.0], [3.0, 0.0, 0.0, -4.5],
                   [0.0, 0.0, 0.0, 1.0]])


# --- round trips --------------------------------------------------------------------------


def test_single_coil_round_trip(tmp_path: Path) -> None:
    path, kspace, target = make_file(tmp_path / "knee.h5", n=4, coils=1)
    ks = read_kspace(path)
    assert isinstance(ks, KSpace) and ks.shape == (4, 1, H, W) and not ks.is_multicoil
    np.testing.assert_array_equal(ks.slices(0, 4), kspace)
    np.testing.assert_array_equal(ks.slice(2), kspace[2])
    assert ks.slice(2).dtype == np.complex64
    assert ks.encoded_matrix == (H, W, 1) and ks.recon_matrix == (RECON, RECON, 1)
    assert ks.encoded_fov_mm == (32.0, 24.0, 3.0) and ks.recon_fov_mm == (16.0, 16.0, 3.0)
    assert ks.header["single_coil"] is True and ks.header["ismrmrd_xml"] == header(4, 1)
    assert ks.header["ismrmrd"]["field_strength_t"] == 3.0
    attrs = ks.header["attrs"]
    assert attrs["acquisition"] == "CORPD_FBK" and attrs["patient_id"] == "p001"
    assert attrs["max"] == pytest.approx(float(target.max()))
    assert attrs["norm"] == pytest.approx(float(np.linalg.norm(target)), rel=1e-6)
    assert attrs["mrirecon_version"] == __version__
    assert list(ks.targets) == ["reconstruction_esc"]
    np.testing.assert_array_equal(np.asarray(ks.targets["reconstruction_esc"]), target)
    assert ks.mask is None and ks.affine is None and ks.image_header == {} == ks.provenance
    assert ks.source == str(path)


def test_multi_coil_round_trip_with_our_extras(tmp_path: Path) -> None:
    mask = np.zeros(W, bool)
    mask[::4] = mask[W // 2 - 4:W // 2 + 4] = True
    image_header = {"format": "dicom", "dicom": {"PatientID": "p001", "StudyDate": "20240101"}}
    provenance = {"simulated": True, "simulation": {"coils": 4, "seed": 7}}
    path, kspace, target = make_file(tmp_path / "brain.h5", n=3, coils=4, mask=mask,
                                     affine=AFFINE, image_header=image_header,
                                     provenance=provenance, attrs={"acquisition": "AXT2",
                                                                   "max": 2.5, "simulated": True})
    ks = read_kspace(path)
    assert ks.shape == (3, 4, H, W) and ks.is_multicoil and ks.header["single_coil"] is False
    np.testing.assert_array_equal(ks.slices(0, 3), kspace)
    np.testing.assert_array_equal(ks.mask, mask[None])
    np.testing.assert_array_equal(ks.affine, AFFINE)
    assert ks.image_header == image_header and ks.provenance == provenance
    assert ks.header["attrs"]["max"] == 2.5 and ks.header["attrs"]["simulated"] is True
    assert not set(fastmri_h5.OWN_ATTRS) & set(ks.header["attrs"])
    np.testing.assert_array_equal(ks.targets["reconstruction_rss"][1], target[1])


def test_one_coil_4d_kspace_is_stored_single_coil(tmp_path: Path) -> None:
    kspace, target = phantom(2, 1)
    write_dataset(tmp_path / "a.h5", kspace, header_xml=header(2),
                  targets={"reconstruction_esc": target}, attrs={})
    with h5py.File(tmp_path / "a.h5") as f:
        assert f["kspace"].shape == (2, H, W)
    np.testing.assert_array_equal(read_kspace(tmp_path / "a.h5").slices(0, 2), kspace)


def test_target_is_the_rss_of_the_kspace(tmp_path: Path) -> None:
    """The phantom file is self-consistent the way fastMRI's are (guards the fixture itself)."""
    path, _, _ = make_file(tmp_path / "b.h5", n=2, coils=4)
    ks = read_kspace(path)
    coil_images = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(ks.slice(1), axes=(-2, -1)),
                                               norm="ortho"), axes=(-2, -1))
    rss = np.sqrt((np.abs(coil_images) ** 2).sum(0))
    top, left = (H - RECON) // 2, (W - RECON) // 2
    np.testing.assert_allclose(rss[top:top + RECON, left:left + RECON],
                               ks.targets["reconstruction_rss"][1], atol=1e-5)


# --- what fastMRI's own code reads --------------------------------------------------------


@pytest.mark.parametrize("coils", [1, 4])
def test_file_is_what_fastmri_slice_dataset_reads(tmp_path: Path, coils: int) -> None:
    """``SliceDataset`` (metadata and ``__getitem__``) restated on our file."""
    mask = np.zeros(W, bool)
    mask[W // 2 - 3:W // 2 + 3] = True
    path, kspace, target = make_file(tmp_path / "file1.h5", n=3, coils=coils, mask=mask)
    with h5py.File(path, "r") as hf:
        raw = hf["ismrmrd_header"][()]
        assert isinstance(raw, bytes)
        meta = fastmri_metadata(raw)
        num_slices = hf["kspace"].shape[0]
        recons_key = "reconstruction_esc" if coils == 1 else "reconstruction_rss"
        slice_kspace = hf["kspace"][1]
        file_mask = np.asarray(hf["mask"]) if "mask" in hf else None
        slice_target = hf[recons_key][1] if recons_key in hf else None
        attrs = dict(hf.attrs)
        assert hf["kspace"].dtype == np.complex64 and hf[recons_key].dtype == np.float32
    assert meta == {"padding_left": 0, "padding_right": W, "encoding_size": (H, W, 1),
                    "recon_size": (RECON, RECON, 1)}
    assert num_slices == 3
    np.testing.assert_array_equal(slice_kspace, kspace[1, 0] if coils == 1 else kspace[1])
    assert slice_kspace.shape == ((H, W) if coils == 1 else (coils, H, W))
    assert file_mask.dtype == bool and file_mask.shape == (W,)
    np.testing.assert_array_equal(file_mask, mask)
    np.testing.assert_array_equal(slice_target, target[1])
    assert attrs["max"] == pytest.approx(target.max()) and attrs["acquisition"] == "CORPD_FBK"


def test_reconstruction_file_is_a_fastmri_submission(tmp_path: Path) -> None:
    data = phantom(3, 1)[1]
    vol = Volume(data, affine=AFFINE, header={"format": "dicom", "dicom": {"PatientID": "p"}},
                 provenance={"method": "zero-filled", "seed": 3}, source="in.h5")
    out = write_reconstruction(vol, tmp_path / "out" / "file1.h5")
    assert out == tmp_path / "out" / "file1.h5"
    with h5py.File(out, "r") as f:  # what fastMRI's evaluate.py reads
        assert list(f) == ["reconstruction"]
        recons = f["reconstruction"][()]
        assert recons.dtype == np.float32 and recons.shape == (3, RECON, RECON)
        assert f.attrs["mrirecon_version"] == __version__
        np.testing.assert_array_equal(f.attrs["affine"], AFFINE)
    np.testing.assert_array_equal(recons, data)
    back = read_reconstruction(out)
    np.testing.assert_array_equal(back.data, data)
    np.testing.assert_array_equal(back.affine, AFFINE)
    assert back.header == vol.header and back.provenance == vol.provenance
    assert back.source == str(out)


def test_complex_volume_is_written_as_magnitude(tmp_path: Path) -> None:
    data = (np.ones((2, 4, 4)) * (3 + 4j)).astype(np.complex64)
    out = write_reconstruction(Volume(data), tmp_path / "c.h5")
    np.testing.assert_allclose(read_reconstruction(out).data, 5.0)


def test_reads_plain_fastmri_submission_and_targets(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "sub.h5", "w") as f:
        f.create_dataset("reconstruction", data=np.ones((2, 8, 8), np.float64))
    vol = read_reconstruction(tmp_path / "sub.h5")
    assert vol.data.dtype == np.float32 and vol.shape == (2, 8, 8)
    np.testing.assert_array_equal(vol.affine, np.eye(4))
    assert vol.header["format"] == "fastmri" and vol.provenance == {}
    path, _, target = make_file(tmp_path / "t.h5", n=2, coils=4)
    np.testing.assert_array_equal(read_reconstruction(path).data, target)


def test_reads_a_file_written_by_other_tools(tmp_path: Path) -> None:
    """Fixed-length header bytes, numpy attribute types, a uint8 mask: all read as plain values."""
    kspace, _ = phantom(2, 1)
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace[:, 0], chunks=(1, H, W), compression="gzip")
        f.create_dataset("ismrmrd_header", data=np.bytes_(header(2).encode()))
        f.create_dataset("mask", data=(np.arange(W) % 3 == 0).astype(np.uint8))
        f.attrs["max"] = np.float32(1.5)
        f.attrs["acceleration"] = np.int64(3)
        f.attrs["patient_id"] = np.bytes_(b"abc")
        f.attrs["num_low_frequency"] = np.array([4, 5])
    ks = read_kspace(path)
    assert ks.header["attrs"] == {"max": 1.5, "acceleration": 3, "patient_id": "abc",
                                  "num_low_frequency": [4, 5]}
    assert type(ks.header["attrs"]["acceleration"]) is int
    assert ks.encoded_matrix == (H, W, 1) and ks.mask.sum() == len(range(0, W, 3))
    np.testing.assert_array_equal(ks.slice(1)[0], kspace[1, 0])


# --- laziness -----------------------------------------------------------------------------


class LoggingFile(io.FileIO):
    """A read-only file that records ``(offset, length)`` of every read HDF5 makes."""

    def __init__(self, path: Path, log: list[tuple[int, int]]) -> None:
        super().__init__(path, "r")
        self.log = log

    def readinto(self, buffer) -> int:  # type: ignore[override]
        start = self.tell()
        n = super().readinto(buffer)
        self.log.append((start, n or 0))
        return n

    def read(self, size: int = -1) -> bytes:
        start = self.tell()
        data = super().read(size)
        self.log.append((start, len(data)))
        return data


def covered(log: list[tuple[int, int]], lo: int, hi: int) -> set[int]:
    """The byte offsets that logged reads *starting* in ``[lo, hi)`` touched.

    HDF5 reads object headers speculatively (512 bytes), which may run a few bytes into the
    data that follow them; such metadata reads start before the data and are not counted.
    """
    return {b for start, n in log if lo <= start < hi for b in range(start, min(start + n, hi))}


def test_reading_touches_only_the_requested_slices(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Byte-level proof on a 40-slice multi-coil file: opening reads no k-space sample, a slice
    read reads exactly that slice's bytes."""
    path, kspace, _ = make_file(tmp_path / "big.h5", n=40, coils=4)
    with h5py.File(path, "r") as f:
        start = f["kspace"].id.get_offset()  # contiguous layout: slices lie end to end
        total = f["kspace"].id.get_storage_size()
    per_slice = total // 40
    assert per_slice == 4 * H * W * 8 and per_slice > 64 * 1024  # larger than HDF5's sieve buffer
    log: list[tuple[int, int]] = []
    files: list[LoggingFile] = []

    def logging_open(p: Path) -> h5py.File:
        files.append(LoggingFile(p, log))
        return h5py.File(files[-1], "r")

    monkeypatch.setattr(h5source, "_open_h5", logging_open)
    try:
        ks = read_kspace(path)
        assert log and not covered(log, start, start + total)
        spill = sum(min(s + n, start + total) - start for s, n in log if s < start < s + n)
        assert spill <= 512  # at most a speculative metadata read's tail, never a slice
        for i in (0, 17, 39):
            log.clear()
            np.testing.assert_array_equal(ks.slice(i), kspace[i])
            lo = start + i * per_slice
            assert covered(log, start, start + total) == set(range(lo, lo + per_slice))
        log.clear()
        np.testing.assert_array_equal(ks.data[[30, 5]], kspace[[30, 5]])
        got = covered(log, start, start + total)
        assert got == set(range(start + 5 * per_slice, start + 6 * per_slice)) | set(
            range(start + 30 * per_slice, start + 31 * per_slice))
    finally:
        for f in files:
            f.close()


def test_source_indexing_matches_numpy(tmp_path: Path) -> None:
    path, kspace, _ = make_file(tmp_path / "s.h5", n=6, coils=1)
    src = read_kspace(path).data
    assert isinstance(src, H5SliceSource) and src.shape == (6, 1, H, W) and len(src) == 6
    for index in (3, -1, np.int64(2), slice(1, 5, 2), slice(None, None, -2), [4, 0, 4],
                  np.array([True, False] * 3), (2, 0, slice(10, 20)), (slice(0, 2), ..., 5),
                  (..., 3), slice(3, 3), [], ()):
        np.testing.assert_array_equal(src[index], kspace[index], err_msg=str(index))
    np.testing.assert_array_equal(np.asarray(src), kspace)
    with pytest.raises(IndexError, match="out of range for 6 slices"):
        src[6]


def test_source_pickles_and_reads_after_unpickling(tmp_path: Path) -> None:
    path, kspace, target = make_file(tmp_path / "p.h5", n=3, coils=4)
    ks = read_kspace(path)
    ks.slice(0)  # a used source pickles as well as a fresh one
    clone = pickle.loads(pickle.dumps(ks))
    assert len(pickle.dumps(ks.data)) < 1024  # the path and shape, no data
    np.testing.assert_array_equal(clone.slice(2), kspace[2])
    np.testing.assert_array_equal(clone.targets["reconstruction_rss"][2], target[2])


# --- bad inputs ---------------------------------------------------------------------------


def _truncated(tmp_path: Path) -> Path:
    path, _, _ = make_file(tmp_path / "cut.h5", n=4, coils=4)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _corrupt(tmp_path: Path) -> Path:
    """A valid signature and superblock start, then garbage where the metadata should be."""
    path, _, _ = make_file(tmp_path / "bad.h5", n=2)
    raw = bytearray(path.read_bytes())
    raw[48:2048] = b"\xff" * (2048 - 48)
    path.write_bytes(bytes(raw))
    return path


def _raw(tmp_path: Path, name: str, **datasets) -> Path:
    path = tmp_path / name
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)
    return path


def _bad_attr(tmp_path: Path, key: str, value) -> Path:
    path, _, _ = make_file(tmp_path / f"attr_{key}.h5", n=2)
    with h5py.File(path, "a") as f:
        f.attrs[key] = value
    return path


BAD_INPUTS = {
    "missing": (lambda d: d / "nope.h5", "file not found"),
    "directory": (lambda d: (d / "dir.h5").mkdir() or d / "dir.h5", "is a directory"),
    "text named .h5": (lambda d: (d / "notes.h5").write_text("hello") and d / "notes.h5",
                       "not an HDF5 file"),
    "empty file": (lambda d: (d / "empty.h5").write_bytes(b"") or d / "empty.h5",
                   "not an HDF5 file"),
    "truncated": (_truncated, r"truncated HDF5 file \(\d+ of \d+ bytes\)"),
    "corrupt": (lambda d: _corrupt(d), "corrupt HDF5 file"),
    "no kspace": (lambda d: _raw(d, "nok.h5", reconstruction_esc=np.zeros((2, 4, 4))),
                  "no 'kspace' dataset \\(holds: reconstruction_esc\\)"),
    "real kspace": (lambda d: _raw(d, "real.h5", kspace=np.zeros((2, 8, 6), np.float32)),
                    "k-space is real-valued \\(float32\\); expected complex"),
    "rank 2": (lambda d: _raw(d, "r2.h5", kspace=np.zeros((8, 6), np.complex64)),
               "k-space has shape \\(8, 6\\); expected \\(slices, H, W\\)"),
    "rank 5": (lambda d: _raw(d, "r5.h5", kspace=np.zeros((1, 2, 2, 8, 6), np.complex64)),
               "k-space has shape"),
    "empty kspace": (lambda d: _raw(d, "e.h5", kspace=np.zeros((0, 8, 6), np.complex64)),
                     "k-space has shape \\(0, 8, 6\\)"),
    "mask length": (lambda d: _raw(d, "m.h5", kspace=np.zeros((2, 8, 6), np.complex64),
                                   mask=np.ones(5, bool)),
                    "mask has shape \\(5,\\) but k-space has 8 rows and 6 columns"),
    "bad header": (lambda d: _raw(d, "x.h5", kspace=np.zeros((2, 8, 6), np.complex64),
                                  ismrmrd_header="<ismrmrdHeader><enc"),
                   "ismrmrd_header: ISMRMRD header is not well-formed XML"),
    "target slices": (lambda d: _raw(d, "t.h5", kspace=np.zeros((2, 8, 6), np.complex64),
                                     reconstruction_rss=np.zeros((3, 4, 4), np.float32)),
                      "reconstruction_rss has shape \\(3, 4, 4\\); expected \\(2, rows, cols\\)"),
    "bad affine": (lambda d: _bad_attr(d, "affine", np.eye(3)), "attribute affine is float64"),
    "bad json": (lambda d: _bad_attr(d, "mrirecon_provenance", "{oops"),
                 "attribute mrirecon_provenance is not valid JSON"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_input_file_error(tmp_path: Path, case: str) -> None:
    make, match = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(InputFileError, match=match) as info:
        read_kspace(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message and info.value.path == path


def test_nan_is_reported_when_the_slice_is_read(tmp_path: Path) -> None:
    kspace = phantom(4, 2)[0]
    kspace[2, 1, 5, 7] = np.nan
    path = _raw(tmp_path, "nan.h5", kspace=kspace)
    ks = read_kspace(path)  # lazy: opening does not scan the data
    np.testing.assert_array_equal(ks.slice(1), kspace[1])
    with pytest.raises(InputFileError, match=r"nan\.h5: kspace slice 2 contains NaN or Inf"):
        ks.slice(2)
    with pytest.raises(InputFileError, match="kspace slice 2 contains"):
        ks.slices(0, 4)
    with pytest.raises(InputFileError, match=r"nan\.h5: kspace slice 2"):
        check_finite(ks)
    kspace[2, 1, 5, 7] = np.inf
    with pytest.raises(InputFileError, match="<memory>: kspace slice 2 contains NaN or Inf"):
        check_finite(KSpace(kspace, source="<memory>"))
    check_finite(KSpace(phantom(2, 2)[0]))


def test_read_reconstruction_errors_name_the_file(tmp_path: Path) -> None:
    cases = {_raw(tmp_path, "k.h5", kspace=np.zeros((2, 8, 6), np.complex64)):
             "no 'reconstruction' dataset",
             _raw(tmp_path, "r2.h5", reconstruction=np.zeros((8, 6), np.float32)):
             "expected a non-empty real \\(slices, rows, cols\\)",
             _raw(tmp_path, "n.h5", reconstruction=np.full((1, 2, 2), np.nan, np.float32)):
             "reconstruction contains NaN", tmp_path / "none.h5": "file not found"}
    for path, match in cases.items():
        with pytest.raises(InputFileError, match=match) as info:
            read_reconstruction(path)
        assert str(info.value).startswith(str(path))


# --- safe writing -------------------------------------------------------------------------


def test_refuses_to_overwrite_and_leaves_the_old_file(tmp_path: Path) -> None:
    path, _, _ = make_file(tmp_path / "d.h5", n=2)
    before = path.read_bytes()
    with pytest.raises(OutputError, match="output exists"):
        make_file(path, n=3)
    vol = Volume(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(OutputError, match="output exists"):
        write_reconstruction(vol, path)
    assert path.read_bytes() == before
    write_reconstruction(vol, path, overwrite=True)
    assert read_reconstruction(path).shape == (2, 4, 4)
    make_file(path, n=3, overwrite=True)
    assert read_kspace(path).n_slices == 3


@pytest.mark.parametrize("writer", ["dataset", "reconstruction"])
def test_failure_mid_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          writer: str) -> None:
    def fail(*args, **kwargs) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(fastmri_h5, "_write_attrs", fail)  # after the datasets are written
    out = tmp_path / "out"
    out.mkdir()
    old = tmp_path / "old.h5"
    old.write_bytes(b"previous result")

    def write(path: Path, overwrite: bool = False) -> None:
        if writer == "dataset":
            make_file(path, n=2, overwrite=overwrite)
        else:
            write_reconstruction(Volume(np.ones((2, 4, 4))), path, overwrite=overwrite)

    with pytest.raises(RuntimeError, match="disk full"):
        write(out / "new.h5")
    assert list(out.iterdir()) == []
    with pytest.raises(RuntimeError, match="disk full"):
        write(old, overwrite=True)
    assert old.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.h5", "out"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"kspace": np.zeros((2, H, W), np.float32)}, "kspace must be non-empty complex"),
        ({"kspace": np.zeros((H, W), np.complex64)}, "kspace must be non-empty complex"),
        ({"kspace": np.full((2, H, W), np.nan, np.complex64)}, "kspace contains NaN"),
        ({"header_xml": "<ismrmrdHeader"}, "header_xml: ISMRMRD header is not well-formed"),
        ({"header_xml": '<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"/>'},
         "header_xml lacks"),
        ({"targets": {"reconstruction": np.zeros((2, 4, 4))}}, "target 'reconstruction'"),
        ({"targets": {"reconstruction_esc": np.zeros((3, 4, 4))}}, "to match 2 k-space slices"),
        ({"mask": np.ones(W + 1)}, f"mask has shape \\({W + 1},\\)"),
        ({"mask": np.ones((3, W))}, f"mask has shape \\(3, {W}\\)"),
        ({"attrs": {"affine": 1}}, "are written by mrirecon"),
        ({"attrs": {"thing": object()}}, "attribute 'thing' is object"),
        ({"attrs": {"names": ["a", "b"]}}, "attribute 'names' is list of <U1"),
        ({"affine": np.eye(3)}, "affine must be a finite 4x4"),
    ],
)
def test_write_dataset_rejects_bad_arguments_and_writes_nothing(tmp_path: Path, change: dict,
                                                                match: str) -> None:
    args = {"kspace": phantom(2, 1)[0][:, 0], "header_xml": header(2), "targets": {},
            "attrs": {}, **change}
    with pytest.raises(InvalidParameterError, match=match):
        write_dataset(tmp_path / "x.h5", args.pop("kspace"), **args)
    assert list(tmp_path.iterdir()) == []


def test_two_d_mask_with_equal_rows_is_stored_one_d(tmp_path: Path) -> None:
    mask = np.zeros((H, W), bool)
    mask[:, ::2] = True
    make_file(tmp_path / "m.h5", n=2, mask=mask)
    with h5py.File(tmp_path / "m.h5") as f:
        assert f["mask"].shape == (W,)
    np.testing.assert_array_equal(read_kspace(tmp_path / "m.h5").mask, mask[:1])


def test_header_is_parsed_by_etree_from_the_file(tmp_path: Path) -> None:
    path, _, _ = make_file(tmp_path / "h.h5", n=2, coils=4)
    with h5py.File(path) as f:
        root = etree.fromstring(f["ismrmrd_header"][()])
    assert root.tag == "{http://www.ismrm.org/ISMRMRD}ismrmrdHeader"
