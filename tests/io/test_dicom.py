"""DICOM reader/writer: round trips, geometry against nibabel, series handling and bad inputs.

Real files only: pydicom's bundled test data (MR_small, MR_truncated, the dicomdirtests tree)
and nibabel's (a real Siemens mosaic and a real Philips Enhanced MR), all read offline.
"""

from __future__ import annotations

import copy
import gzip
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import EnhancedMRImageStorage

import mrirecon.io.dicom as dicom_io
from mrirecon.data import LPS_TO_RAS, Volume
from mrirecon.errors import InputFileError, InvalidParameterError, OutputError
from mrirecon.io.dicom import PATIENT_STUDY, read_dicom, write_dicom


def _testdata(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} not installed")
    return Path(path)


MR_SMALL = _testdata("MR_small.dcm")
DICOMDIRTESTS = _testdata("dicomdirtests/DICOMDIR").parent
CT_STACK = DICOMDIRTESTS / "98892001" / "CT5N"  # 5 parallel axial slices 2.5 mm apart
MR_PILOTS = DICOMDIRTESTS / "98892003" / "MR2"  # 3 series (two tri-plane pilots, a localizer)


def _nibabel_file(name: str, tmp_path: Path) -> Path:
    import nibabel

    src = Path(nibabel.__file__).parent / "nicom" / "tests" / "data" / name
    if not src.exists():
        pytest.skip(f"nibabel test file {name} not installed")
    out = tmp_path / name.removesuffix(".gz")
    out.write_bytes(gzip.decompress(src.read_bytes()))
    return out


def _nibabel_volume(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """nibabel's data and affine converted to our (slice, row, col) layout and RAS+."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom.dicomwrappers import wrapper_from_data

        wrapper = wrapper_from_data(ds)
        data = np.asarray(wrapper.get_data(), dtype=np.float32)
        affine = LPS_TO_RAS @ wrapper.affine[:, [2, 0, 1, 3]]  # (row, col, slice) -> ours
    return (data.transpose(2, 0, 1) if data.ndim == 3 else data[None]), affine


def _same_grid(ours: Volume, data: np.ndarray, affine: np.ndarray, atol: float = 1e-4) -> None:
    """Same voxels at the same places, allowing the slice axis to run the other way."""
    affine = affine.copy()
    if np.dot(affine[:3, 0], ours.affine[:3, 0]) < 0:
        affine[:3, 3] += (data.shape[0] - 1) * affine[:3, 0]
        affine[:3, 0] *= -1
        data = data[::-1]
    np.testing.assert_allclose(ours.affine, affine, atol=atol)
    np.testing.assert_allclose(ours.data, data, rtol=1e-6)


def _geometry_close(a: Volume, b: Volume) -> None:
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-4)


# --- round trips --------------------------------------------------------------------------


def test_round_trip_keeps_pixels_geometry_patient_and_study(tmp_path):
    src = read_dicom(MR_SMALL)
    paths = write_dicom(src, tmp_path / "out", description="round trip")
    assert [p.name for p in paths] == ["IM_0001.dcm"]
    back = read_dicom(tmp_path / "out")
    _geometry_close(back, src)
    np.testing.assert_array_equal(back.data, src.data)  # integer data is stored exactly
    for kw in PATIENT_STUDY:
        assert back.header["dicom"].get(kw) == src.header["dicom"].get(kw), kw
    assert back.header["dicom"]["FrameOfReferenceUID"] == src.header["dicom"]["FrameOfReferenceUID"]
    old, new = pydicom.dcmread(MR_SMALL), pydicom.dcmread(paths[0])
    assert new.SeriesInstanceUID != old.SeriesInstanceUID
    assert new.SOPInstanceUID != old.SOPInstanceUID
    assert new.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert list(new.ImageType[:2]) == ["DERIVED", "SECONDARY"]
    assert new.SeriesDescription == "round trip"
    assert new.ContributingEquipmentSequence[0].SoftwareVersions.startswith("mrirecon ")


def test_round_trip_of_float_stack_within_rescale_precision(tmp_path):
    src = read_dicom(CT_STACK)
    assert src.shape == (5, 16, 16)
    rng = np.random.default_rng(0)
    floats = (src.data * 1e-3 + rng.normal(0, 1e-4, src.shape)).astype(np.float32)
    recon = src.with_data(floats, method="zero_filled", seed=3)
    paths = write_dicom(recon, tmp_path / "out", description="float")
    assert len(paths) == 5 and len({pydicom.dcmread(p).SOPInstanceUID for p in paths}) == 5
    back = read_dicom(tmp_path / "out")
    _geometry_close(back, src)
    slope = float(pydicom.dcmread(paths[0]).RescaleSlope)
    assert slope == pytest.approx(np.ptp(floats) / 65535, rel=1e-6)
    assert np.abs(back.data - floats).max() <= 0.51 * slope
    assert back.provenance == {**recon.provenance, "mrirecon_version": dicom_io.__version__}


def test_complex_volume_is_written_as_magnitude(tmp_path):
    data = np.exp(1j * np.linspace(0, 3, 2 * 4 * 5)).reshape(2, 4, 5).astype(np.complex64) * 7
    write_dicom(Volume(data), tmp_path / "out", description="complex")
    back = read_dicom(tmp_path / "out")
    np.testing.assert_allclose(back.data, np.abs(data), atol=1e-3)


def test_non_dicom_source_gets_new_study_and_placeholder_patient(tmp_path):
    affine = np.diag([-2.0, -0.5, 0.7, 1.0])
    affine[:3, 3] = [10, -20, 30]
    volume = Volume(np.arange(3 * 6 * 4, dtype=np.float32).reshape(3, 6, 4), affine)
    paths = write_dicom(volume, tmp_path / "out", description="phantom", series_number=7)
    ds = pydicom.dcmread(paths[0])
    assert ds.PatientName == "Anonymous^" and ds.PatientID.startswith("MRIRECON-")
    assert ds.StudyInstanceUID and ds.FrameOfReferenceUID and ds.SeriesNumber == 7
    back = read_dicom(tmp_path / "out")
    _same_grid(back, volume.data, volume.affine)  # slice step opposes row x col: reversed
    assert np.dot(back.affine[:3, 0], volume.affine[:3, 0]) < 0
    flipped = Volume(volume.data[::-1], volume.affine @ np.diag([-1.0, 1, 1, 1]))
    write_dicom(flipped, tmp_path / "out2", description="phantom")
    back = read_dicom(tmp_path / "out2")  # slice step along row x col: read back as written
    _geometry_close(back, flipped)
    np.testing.assert_array_equal(back.data, flipped.data)


# --- geometry against nibabel -------------------------------------------------------------


def test_single_slice_affine_equals_nibabel():
    ours = read_dicom(MR_SMALL)
    data, affine = _nibabel_volume(pydicom.dcmread(MR_SMALL))
    _same_grid(ours, data, affine)


def test_stack_affine_matches_each_file_and_nibabel(tmp_path):
    ours = read_dicom(CT_STACK)
    datasets = [pydicom.dcmread(p) for p in sorted(CT_STACK.iterdir())]
    for ds in datasets:  # every file's first pixel sits where our affine puts its slice
        data, affine = _nibabel_volume(ds)
        ras = LPS_TO_RAS[:3, :3] @ np.array(ds.ImagePositionPatient, dtype=float)
        origins = [ours.affine[:3] @ [k, 0, 0, 1] for k in range(ours.shape[0])]
        k = int(np.argmin([np.linalg.norm(o - ras) for o in origins]))
        np.testing.assert_allclose(ours.affine @ [k, 0, 0, 1], [*ras, 1], atol=1e-4)
        np.testing.assert_allclose(ours.affine[:3, 1:3], affine[:3, 1:3], atol=1e-6)
        np.testing.assert_array_equal(ours.data[k], data[0])
    np.testing.assert_allclose(np.linalg.norm(ours.affine[:3, 0]), 2.5, atol=1e-5)


def test_enhanced_mr_matches_nibabel_and_per_frame_positions(tmp_path):
    path = _nibabel_file("philips_mprage.dcm.gz", tmp_path)
    ours = read_dicom(path)
    ds = pydicom.dcmread(path)
    assert ours.shape == (176, 256, 256)
    data, affine = _nibabel_volume(ds)
    # nibabel's slice axis is normal * SpacingBetweenSlices; ours is the mean step between the
    # real frame positions, which differ by ~1e-5 mm a slice (1.3e-3 mm over 176 slices)
    _same_grid(ours, data, affine, atol=2e-3)
    frame_origins = np.array(
        [LPS_TO_RAS[:3, :3] @ np.array(f.PlanePositionSequence[0].ImagePositionPatient, float)
         for f in ds.PerFrameFunctionalGroupsSequence]
    )  # fmt: skip
    slice_origins = (ours.affine @ np.c_[np.arange(176), np.zeros((176, 2)), np.ones(176)].T).T
    distances = np.linalg.norm(frame_origins[:, None] - slice_origins[None, :, :3], axis=-1)
    assert distances.min(axis=1).max() < 1e-3  # every frame has its slice, and vice versa
    assert sorted(distances.argmin(axis=1)) == list(range(176))


def _enhanced_from_mr_small(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Three-frame Enhanced MR built from MR_small: frames stored in reverse slice order, with
    per-frame positions and per-frame rescale."""
    ds = pydicom.dcmread(MR_SMALL)
    raw = ds.pixel_array.astype(np.int16)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = EnhancedMRImageStorage
    ds.NumberOfFrames = 3
    ds.PixelData = np.stack([raw, raw // 2, raw // 4]).tobytes()
    shared = Dataset()
    orient, measures = Dataset(), Dataset()
    orient.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # sagittal
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.25], 1.5
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = [orient], [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames, expected = [], []
    for k, x in enumerate([4.0, 2.0, 0.0]):  # LPS x decreasing; normal (0,1,0)x(0,0,-1) = -x
        frame, pos, pvt = Dataset(), Dataset(), Dataset()
        pos.ImagePositionPatient = [x, -10.0, 20.0]
        pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = k + 1, -5, "US"
        frame.PlanePositionSequence, frame.PixelValueTransformationSequence = [pos], [pvt]
        frames.append(frame)
        expected.append((raw // 2**k) * (k + 1) - 5.0)
    ds.PerFrameFunctionalGroupsSequence = frames
    for kw in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        del ds[kw]
    out = tmp_path / "enhanced.dcm"
    ds.save_as(out)
    return out, np.stack(expected)


def test_enhanced_mr_per_frame_geometry_and_rescale(tmp_path):
    path, frames = _enhanced_from_mr_small(tmp_path)
    vol = read_dicom(path)
    assert vol.shape == (3, 64, 64)
    np.testing.assert_allclose(vol.data, frames)  # stored order already runs along +normal
    np.testing.assert_allclose(vol.affine @ [0, 0, 0, 1], [-4.0, 10.0, 20.0, 1])
    np.testing.assert_allclose(vol.affine[:3, :3], [[2, 0, 0], [0, 0, -0.25], [0, -0.5, 0]])
    assert vol.header["dicom"]["SliceThickness"] == 1.5


def test_mosaic_split_into_slices_with_nibabel_geometry(tmp_path):
    path = _nibabel_file("siemens_dwi_1000.dcm.gz", tmp_path)
    ds = pydicom.dcmread(path)
    tiles, n, size = 7, 48, 128  # 896 = 7 * 128; 48 images in the mosaic (CSA header)
    rows, cols = np.mgrid[:size, :size]

    def tile(k: int) -> np.ndarray:  # distinct per tile and not symmetric; 12-bit safe
        return (64 * k + (rows + 2 * cols) % 64).astype(np.uint16)

    pattern = np.zeros((tiles * size, tiles * size), np.uint16)
    for k in range(n):  # row-major tiling, as Siemens stores it
        r0, c0 = divmod(k, tiles)
        pattern[r0 * size : (r0 + 1) * size, c0 * size : (c0 + 1) * size] = tile(k)
    ds.PixelData = pattern.tobytes()
    ds.save_as(path)
    vol = read_dicom(path)
    assert vol.shape == (n, size, size)
    data, affine = _nibabel_volume(pydicom.dcmread(path))
    _same_grid(vol, data, affine)
    order = range(n) if np.dot(vol.affine[:3, 0], affine[:3, 0]) > 0 else range(n - 1, -1, -1)
    for k, j in enumerate(order):
        np.testing.assert_array_equal(vol.data[k], tile(j))
    voxel = np.linalg.norm(vol.affine[:3, :3], axis=0)
    np.testing.assert_allclose(voxel, [3.0, 1.796875, 1.796875], atol=1e-4)


def test_mosaic_without_csa_header_fails_cleanly(tmp_path):
    path = _nibabel_file("siemens_dwi_1000.dcm.gz", tmp_path)
    ds = pydicom.dcmread(path)
    for tag in [t for t in ds.keys() if t.group == 0x0029]:
        del ds[tag]
    ds.save_as(path)
    with pytest.raises(InputFileError, match="MOSAIC"):
        read_dicom(path)


# --- series handling ----------------------------------------------------------------------


def test_multi_series_folder_lists_series_and_series_picks_one():
    with pytest.raises(InputFileError) as info:
        read_dicom(MR_PILOTS)
    message = str(info.value)
    assert "3 series found" in message and "choose one with --series UID" in message
    uids = {str(pydicom.dcmread(p).SeriesInstanceUID) for p in MR_PILOTS.iterdir()}
    assert all(uid in message for uid in uids)
    assert "FAST LOCALIZER, 1 slices" in message and "T/S/C RF FAST PILOT, 3 slices" in message
    assert "\n" not in message
    localizer = pydicom.dcmread(MR_PILOTS / "15970")
    vol = read_dicom(MR_PILOTS, series=localizer.SeriesInstanceUID)
    assert vol.shape == (1, 16, 16)
    assert vol.header["dicom"]["SeriesInstanceUID"] == localizer.SeriesInstanceUID
    with pytest.raises(InputFileError, match="series 1.2.3 not found; 3 series found"):
        read_dicom(MR_PILOTS, series="1.2.3")


def test_folder_skips_dicomdir_and_non_dicom_files_and_accepts_file_lists(tmp_path):
    shutil.copy(MR_SMALL, tmp_path / "a.dcm")
    shutil.copy(DICOMDIRTESTS / "DICOMDIR", tmp_path / "DICOMDIR")
    (tmp_path / "notes.txt").write_text("not dicom")
    (tmp_path / "sub").mkdir()
    shutil.copy(_testdata("rtplan.dcm"), tmp_path / "sub" / "plan.dcm")
    assert read_dicom(tmp_path).shape == (1, 64, 64)
    assert read_dicom([tmp_path / "a.dcm"]).source == str(tmp_path / "a.dcm")
    files = sorted(CT_STACK.iterdir())
    _geometry_close(read_dicom(files[::-1]), read_dicom(CT_STACK))  # order does not matter


def test_non_uniform_spacing_uses_mean_and_warns(tmp_path):
    files = sorted(CT_STACK.iterdir())
    for f in files[:2] + files[3:]:  # drop one slice: gaps 2.5, 5, 2.5 mm
        shutil.copy(f, tmp_path / f.name)
    vol = read_dicom(tmp_path)
    assert vol.shape[0] == 4
    assert np.linalg.norm(vol.affine[:3, 0]) == pytest.approx(10 / 3, abs=1e-4)
    assert any("non-uniform slice spacing" in w for w in vol.header["warnings"])


# --- validator ----------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not found")
@pytest.mark.parametrize("source", ["dicom", "array"])
def test_written_file_passes_dciodvfy(tmp_path, source):
    if source == "dicom":
        volume = read_dicom(CT_STACK).with_data(read_dicom(CT_STACK).data * 0.01, method="x")
    else:
        volume = Volume(np.linspace(0, 1, 2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8))
    paths = write_dicom(volume, tmp_path / "out", description="dciodvfy check")
    result = subprocess.run(["dciodvfy", str(paths[0])], capture_output=True, text=True)
    errors = [ln for ln in (result.stdout + result.stderr).splitlines() if "Error" in ln]
    assert not errors, "\n".join(errors)


# --- bad inputs and outputs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("missing", "no such file or directory"),
        ("MR_truncated.dcm", "pixel data cannot be read"),
        ("rtplan.dcm", r"without pixel data \(RT Plan Storage\)"),
        ("DICOMDIR", "without pixel data"),
        ("README.txt", "not a readable DICOM file"),
        ("TINY_ALPHA", "no DICOM images found"),
        ("MR700", "inconsistent slice orientations"),
        ("MR2/4950", "inconsistent slice orientations"),
    ],
)
def test_bad_inputs_raise_one_line_input_file_errors(tmp_path, path, problem):
    paths = {
        "missing": tmp_path / "nope.dcm",
        "DICOMDIR": DICOMDIRTESTS / "DICOMDIR",
        "README.txt": DICOMDIRTESTS / "README.txt",
        "TINY_ALPHA": DICOMDIRTESTS / "TINY_ALPHA",  # a DICOMDIR tree whose images lack pixels
        "MR700": DICOMDIRTESTS / "98892003" / "MR700",
        "MR2/4950": [MR_PILOTS / "4950", MR_PILOTS / "4981"],
    }
    target = paths.get(path) or _testdata(path)
    with pytest.raises(InputFileError, match=problem) as info:
        read_dicom(target)
    assert "\n" not in str(info.value)


def test_inconsistent_slice_shapes(tmp_path):
    ds = pydicom.dcmread(MR_SMALL)
    ds.save_as(tmp_path / "a.dcm")
    ds.Rows, ds.Columns, ds.PixelData = 32, 32, ds.PixelData[: 32 * 32 * 2]
    ds.ImagePositionPatient = [-83.9063, -91.2, 8.0]
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "b.dcm")
    with pytest.raises(InputFileError, match="inconsistent slice shapes .*32x32, 64x64"):
        read_dicom(tmp_path)


def test_duplicate_positions_are_refused(tmp_path):
    shutil.copy(MR_SMALL, tmp_path / "a.dcm")
    shutil.copy(MR_SMALL, tmp_path / "b.dcm")
    with pytest.raises(InputFileError, match="2 slices at only 1 distinct positions"):
        read_dicom(tmp_path)


def test_existing_output_is_not_touched_without_overwrite(tmp_path):
    out = tmp_path / "out"
    write_dicom(read_dicom(CT_STACK), out, description="first")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(OutputError, match="not empty; pass --overwrite"):
        write_dicom(read_dicom(MR_SMALL), out, description="second")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        write_dicom(read_dicom(MR_SMALL), tmp_path / "file", description="x")


def test_overwrite_replaces_the_series_and_drops_stale_slices(tmp_path):
    out = tmp_path / "out"
    write_dicom(read_dicom(CT_STACK), out, description="first")
    (out / "keep.txt").write_text("user file")
    paths = write_dicom(read_dicom(MR_SMALL), out, description="second", overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["IM_0001.dcm", "keep.txt"]
    assert pydicom.dcmread(paths[0]).SeriesDescription == "second"


def test_failure_midway_leaves_no_partial_output(tmp_path, monkeypatch):
    real = pydicom.dcmwrite
    calls = []

    def flaky(filename, dataset, **kwargs):
        calls.append(filename)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(filename, dataset, **kwargs)

    monkeypatch.setattr(dicom_io.pydicom, "dcmwrite", flaky)
    out = tmp_path / "new" / "out"
    with pytest.raises(OutputError, match="No space left on device"):
        write_dicom(read_dicom(CT_STACK), out, description="x")
    assert not out.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    calls.clear()
    with pytest.raises(OutputError):
        write_dicom(read_dicom(CT_STACK), existing, description="x")
    assert list(existing.iterdir()) == []


def test_non_finite_and_sheared_volumes_are_refused(tmp_path):
    data = np.ones((2, 4, 4), np.float32)
    data[0, 0, 0] = np.nan
    with pytest.raises(InvalidParameterError, match="1 NaN or infinite"):
        write_dicom(Volume(data), tmp_path / "a", description="x")
    sheared = np.eye(4)
    sheared[1, 2] = 0.5  # column axis leans towards the row axis
    with pytest.raises(InvalidParameterError, match="non-perpendicular"):
        write_dicom(Volume(np.ones((2, 4, 4)), sheared), tmp_path / "b", description="x")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_header_is_json_friendly():
    import json

    vol = read_dicom(MR_SMALL)
    assert json.loads(json.dumps(vol.header)) == vol.header
    assert vol.header["dicom"]["PatientName"] == "CompressedSamples^MR1"
    assert copy.deepcopy(vol.header)["format"] == "dicom"
