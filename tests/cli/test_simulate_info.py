"""``mrirecon simulate`` and ``mrirecon info`` on real bundled images (pydicom, nibabel)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mrirecon.cli.app import app

runner = CliRunner()
pydicom = pytest.importorskip("pydicom")
nibabel = pytest.importorskip("nibabel")

MR_SMALL = Path(pydicom.data.get_testdata_file("MR_small.dcm"))
MR_TRUNCATED = Path(pydicom.data.get_testdata_file("MR_truncated.dcm"))
EXAMPLE4D = Path(nibabel.__file__).parent / "tests" / "data" / "example4d.nii.gz"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_simulate_dicom_then_read_back(tmp_path) -> None:
    from mrirecon.io.fastmri_h5 import read_kspace

    result = invoke("simulate", MR_SMALL, "-o", tmp_path, "--coils", 4, "--noise", 0.0)
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split("\t") == ["input", "output", "slices", "coils", "matrix", "seed",
                                   "seconds"]
    assert row.split("\t")[:5] == [str(MR_SMALL), str(tmp_path / "MR_small.h5"), "1", "4",
                                    "64x64"]
    ks = read_kspace(tmp_path / "MR_small.h5")
    assert ks.shape == (1, 4, 64, 64) and ks.mask is None
    ds = pydicom.dcmread(MR_SMALL)
    spacing = [float(v) for v in ds.PixelSpacing]
    assert ks.encoded_matrix[:2] == (64, 64)
    np.testing.assert_allclose(ks.encoded_fov_mm[:2], [64 * spacing[0], 64 * spacing[1]],
                               rtol=1e-5)
    target = np.asarray(ks.targets["reconstruction_rss"][:])
    pixels = ds.pixel_array.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1) or 1)
    np.testing.assert_allclose(target[0], pixels, atol=1e-3 * pixels.max())
    assert ks.header["attrs"]["simulated"]
    from mrirecon.io import load
    from mrirecon.physics.simulate import SimulationParams, simulate_kspace
    from mrirecon.sampling import seed_from_name

    volume = load(MR_SMALL)
    np.testing.assert_allclose(ks.affine, volume.affine)  # geometry travels with the k-space
    assert ks.image_header["dicom"]["StudyInstanceUID"] == ds.StudyInstanceUID
    expected, _ = simulate_kspace(volume.data, SimulationParams(
        coils=4, noise=0.0, seed=seed_from_name("MR_small.h5")))
    np.testing.assert_array_equal(ks.slices(0, 1), expected)


def test_simulate_nifti_single_coil_with_matrix(tmp_path) -> None:
    if not EXAMPLE4D.exists():
        pytest.skip("nibabel test data not installed")
    from mrirecon.io.fastmri_h5 import read_kspace

    result = invoke("simulate", EXAMPLE4D, "-o", tmp_path, "--coils", 1, "--matrix", 32,
                    "--json")
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.stdout)
    assert record["coils"] == 1 and record["matrix"] == [32, 32]
    ks = read_kspace(tmp_path / "example4d.h5")
    assert not ks.is_multicoil and "reconstruction_esc" in ks.targets


def test_simulate_is_reproducible_and_seeded_per_file(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert invoke("simulate", MR_SMALL, "-o", out, "--coils", 2).exit_code == 0
    import h5py

    with h5py.File(a / "MR_small.h5") as fa, h5py.File(b / "MR_small.h5") as fb:
        np.testing.assert_array_equal(fa["kspace"][()], fb["kspace"][()])


def test_simulate_reports_bad_inputs_and_goes_on(tmp_path) -> None:
    out = tmp_path / "out"
    result = invoke("simulate", MR_TRUNCATED, tmp_path / "missing.nii", MR_SMALL, "-o", out,
                    "--coils", 2)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert "MR_truncated.dcm" in errors[0] and "missing.nii" in errors[1]
    assert "Traceback" not in result.output
    assert sorted(p.name for p in out.iterdir()) == ["MR_small.h5"]


def test_simulate_refuses_to_overwrite(tmp_path) -> None:
    assert invoke("simulate", MR_SMALL, "-o", tmp_path, "--coils", 2).exit_code == 0
    before = (tmp_path / "MR_small.h5").read_bytes()
    result = invoke("simulate", MR_SMALL, "-o", tmp_path, "--coils", 3)
    assert result.exit_code == 1 and "output exists; pass --overwrite" in result.stderr
    assert (tmp_path / "MR_small.h5").read_bytes() == before
    assert invoke("simulate", MR_SMALL, "-o", tmp_path, "--coils", 3,
                  "--overwrite").exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["MR_small.h5"]


def test_simulate_rejects_kspace_input(tmp_path) -> None:
    assert invoke("simulate", MR_SMALL, "-o", tmp_path, "--coils", 2).exit_code == 0
    result = invoke("simulate", tmp_path / "MR_small.h5", "-o", tmp_path / "again")
    assert result.exit_code == 1 and "holds k-space already" in result.stderr


def test_info_on_three_real_files(tmp_path) -> None:
    assert invoke("simulate", MR_SMALL, "-o", tmp_path, "--coils", 4).exit_code == 0
    files = [MR_SMALL, EXAMPLE4D, tmp_path / "MR_small.h5"]
    result = invoke("info", *files)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert "dicom image volume" in lines[0] and "1x64x64" in lines[0]
    assert "nifti image volume" in lines[1] and "voxel" in lines[1]
    assert "fastmri multi-coil k-space" in lines[2] and "1x4x64x64" in lines[2]
    assert "simulated" in lines[2] and "fully sampled" in lines[2]
    records = json.loads(invoke("info", *files, "--json").stdout)
    assert [r["format"] for r in records] == ["dicom", "nifti", "fastmri"]
    assert records[2]["coils"] == 4 and records[2]["encoded_matrix"][:2] == [64, 64]


def test_info_bad_files(tmp_path) -> None:
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    result = invoke("info", MR_TRUNCATED, junk, MR_SMALL)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "MR_truncated.dcm" in errors[0] and "junk.h5" in errors[1]
    assert len(result.stdout.splitlines()) == 1
