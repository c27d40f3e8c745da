"""``mrirecon reconstruct`` end to end on simulated k-space from real images."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from mrirecon.cli.app import app
from mrirecon.io import load
from mrirecon.io.fastmri_h5 import read_reconstruction

runner = CliRunner()
MR_SMALL = Path(get_testdata_file("MR_small.dcm", download=False))
EXAMPLE4D = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"


def invoke(*args):
    """``mrirecon reconstruct ARGS``, zero-filled unless the test picks a method or model."""
    args = [str(a) for a in args]
    if "--method" not in args and "--model" not in args:
        args += ["--method", "zero-filled"]
    return runner.invoke(app, ["reconstruct", *args])


@pytest.fixture(scope="module")
def scans(simulated_scans) -> Path:
    return simulated_scans


def test_h5_in_h5_out_with_provenance(scans, tmp_path) -> None:
    result = invoke(scans / "MR_small.h5", scans / "example4d.h5", "-o", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [Path(r["output"]).name for r in records] == ["MR_small.h5", "example4d.h5"]
    vol = read_reconstruction(tmp_path / "MR_small.h5")
    mask = vol.provenance["mask"]
    assert mask["kind"] == "random" and mask["acceleration"] == 4
    assert mask["achieved_acceleration"] == pytest.approx(records[0]["acceleration"])
    assert vol.provenance["method"] == "zero-filled" and vol.provenance["simulated"]
    np.testing.assert_allclose(vol.affine, load(MR_SMALL).affine)


def test_masks_are_deterministic_per_file_across_processes(scans, tmp_path) -> None:
    outs = []
    for run in ("a", "b"):
        cmd = [sys.executable, "-m", "mrirecon", "reconstruct", "--method", "zero-filled",
               str(scans / "MR_small.h5"),
               "-o", str(tmp_path / run), "--device", "cpu"]
        subprocess.run(cmd, check=True, capture_output=True)
        outs.append(read_reconstruction(tmp_path / run / "MR_small.h5"))
    np.testing.assert_array_equal(outs[0].data, outs[1].data)
    assert outs[0].provenance["mask"]["seed"] == outs[1].provenance["mask"]["seed"]
    assert invoke(scans / "MR_small.h5", "-o", tmp_path / "c", "--seed", 1).exit_code == 0
    other = read_reconstruction(tmp_path / "c" / "MR_small.h5")
    assert other.provenance["mask"]["seed"] != outs[0].provenance["mask"]["seed"]
    assert not np.array_equal(other.data, outs[0].data)


def test_dicom_input_gives_dicom_series_in_place(tmp_path) -> None:
    result = invoke(MR_SMALL, "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].split("\t")[-1] == "simulated"
    [written] = sorted((tmp_path / "MR_small").iterdir())
    src, out = pydicom.dcmread(MR_SMALL), pydicom.dcmread(written)
    assert out.StudyInstanceUID == src.StudyInstanceUID
    assert out.SeriesInstanceUID != src.SeriesInstanceUID
    np.testing.assert_allclose([float(v) for v in out.ImagePositionPatient],
                               [float(v) for v in src.ImagePositionPatient], atol=1e-3)
    assert "zero-filled" in out.SeriesDescription


def test_nifti_output_keeps_geometry(tmp_path) -> None:
    result = invoke(EXAMPLE4D, "-o", tmp_path, "--accel", 2, "--mask-kind", "equispaced")
    assert result.exit_code == 0, result.output
    out, src = nib.load(tmp_path / "example4d.nii.gz"), nib.load(EXAMPLE4D)
    np.testing.assert_allclose(out.affine, src.affine, atol=1e-4)
    assert out.shape == src.shape[:3]
    sidecar = json.loads((tmp_path / "example4d.json").read_text())
    assert sidecar["provenance"]["mask"]["kind"] == "equispaced"


def test_mask_file_and_file_carried_mask(scans, tmp_path) -> None:
    mask_path = tmp_path / "m.npz"
    assert runner.invoke(app, ["mask", "--shape", "64", "64", "--accel", "3", "-o",
                               str(mask_path)]).exit_code == 0
    result = invoke(scans / "MR_small.h5", "-o", tmp_path / "o", "--mask", mask_path, "--json")
    assert result.exit_code == 0, result.output
    wrong = invoke(scans / "example4d.h5", "-o", tmp_path / "o", "--mask", mask_path)
    assert wrong.exit_code == 1
    assert "mask is 1x64 but example4d.h5 has k-space 48x48" in wrong.stderr
    both = invoke(scans / "MR_small.h5", "-o", tmp_path / "c", "--mask", mask_path, "--accel", 8,
                  "--mask-kind", "equispaced")
    assert both.exit_code == 2 and not (tmp_path / "c").exists()
    assert both.stderr.strip() == (f"error: --mask {mask_path} fixes the sampling; --accel and "
                                   "--mask-kind would be ignored: drop them")


def test_failures_are_reported_and_skipped(scans, tmp_path) -> None:
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    result = invoke(junk, scans / "MR_small.h5", tmp_path / "missing.h5", "-o", tmp_path / "o")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "junk.h5" in errors[0] and "missing.h5" in errors[1]
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["MR_small.h5"]


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["--accel", "1"], 2, "acceleration must be a number > 1"),
        (["--method", "magic"], 2, "Invalid value for '--method'"),
        (["--mask-kind", "equispaced", "--accel", "2.5"], 2, "integer acceleration"),
    ],
)
def test_bad_options(scans, tmp_path, args, code, message) -> None:
    result = invoke(scans / "MR_small.h5", "-o", tmp_path / "o", *args)
    assert result.exit_code == code and message in result.stderr
    assert not (tmp_path / "o").exists()


def test_cuda_requested_but_absent(scans, tmp_path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = invoke(scans / "MR_small.h5", "-o", tmp_path, "--device", "cuda")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: CUDA was requested (--device cuda) but no CUDA "
                                     "device is available; use --device cpu or auto")


def test_existing_output_untouched_without_overwrite(scans, tmp_path) -> None:
    assert invoke(scans / "MR_small.h5", "-o", tmp_path).exit_code == 0
    before = (tmp_path / "MR_small.h5").read_bytes()
    result = invoke(scans / "MR_small.h5", "-o", tmp_path, "--accel", 8)
    assert result.exit_code == 1 and "output exists" in result.stderr
    assert (tmp_path / "MR_small.h5").read_bytes() == before
    assert invoke(scans / "MR_small.h5", "-o", tmp_path, "--accel", 8,
                  "--overwrite").exit_code == 0


def test_solver_settings_are_overridable_and_recorded(scans, tmp_path) -> None:
    result = invoke(scans / "example4d.h5", "-o", tmp_path, "--method", "cs", "--lamda", 0.01,
                    "--max-iter", 5, "--accel", 2)
    assert result.exit_code == 0, result.output
    params = read_reconstruction(tmp_path / "example4d.h5").provenance["parameters"]
    assert params["lamda"] == 0.01 and params["max_iter"] == 5
    bad = invoke(scans / "example4d.h5", "-o", tmp_path / "zf", "--lamda", 0.01)
    assert bad.exit_code == 2 and "apply to sense and cs, not to zero-filled" in bad.stderr
    single = invoke(scans / "example4d.h5", "-o", tmp_path / "s", "--method", "sense")
    assert single.exit_code == 1 and "sense needs multi-coil data" in single.stderr


def test_cs_at_narrow_calibration_warns_once_and_records_the_maps(scans, tmp_path) -> None:
    """MR_small at 4x keeps 5 of 64 centre lines: CS runs on ACS maps and says so in one line."""
    result = invoke(scans / "MR_small.h5", "-o", tmp_path, "--method", "cs", "--max-iter", 5)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {scans / 'MR_small.h5'}: cs: 5 fully sampled centre lines, "
                        "fewer than the 8 ESPIRiT needs: ACS coil maps instead"]
    provenance = read_reconstruction(tmp_path / "MR_small.h5").provenance
    assert provenance["maps_used"] == {"method": "acs", "calib_width": 5, "centre_lines": 5,
                                       "fallback": provenance["notes"][0][len("cs: "):]}


def test_bad_input_leaves_no_output_folder(tmp_path) -> None:
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_text("not hdf5")
    result = invoke(corrupt, "-o", tmp_path / "never")
    assert result.exit_code == 1 and "corrupt.h5: not an HDF5 file" in result.stderr
    assert not (tmp_path / "never").exists()


def test_input_failing_after_the_output_check_leaves_no_output_folder(scans, tmp_path) -> None:
    bad = tmp_path / "nan.h5"
    shutil.copy(scans / "MR_small.h5", bad)
    with h5py.File(bad, "r+") as f:
        kspace = f["kspace"][:]
        kspace[0, 0, 0] = np.nan
        f["kspace"][...] = kspace
    for flag in ("--prefetch", "--no-prefetch"):
        result = invoke(bad, "-o", tmp_path / "out" / flag, flag)
        assert result.exit_code == 1 and "nan.h5: kspace slice 0 contains NaN" in result.stderr
    assert not (tmp_path / "out").exists()


def test_prefetch_gives_the_same_outputs_as_lazy_reading(scans, tmp_path) -> None:
    inputs = [scans / "MR_small.h5", scans / "example4d.h5"]
    for flag in ("--prefetch", "--no-prefetch"):
        result = invoke(*inputs, "-o", tmp_path / flag, flag, "--json")
        assert result.exit_code == 0, result.stderr
        assert [Path(r["input"]).name for r in json.loads(result.stdout)] == [
            "MR_small.h5", "example4d.h5"]
    for name in ("MR_small.h5", "example4d.h5"):
        a = read_reconstruction(tmp_path / "--prefetch" / name).data
        b = read_reconstruction(tmp_path / "--no-prefetch" / name).data
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("edit", [{"steps": 0}, {"state_channels": 3}, {"hidden": "wide"}])
def test_checkpoint_with_out_of_range_config_is_one_line(simulated_scans, tmp_path, edit) -> None:
    """Review defect: ``steps: 0`` in a checkpoint's config was a ValueError traceback."""
    import struct

    from mrirecon.models.checkpoint import save_checkpoint
    from mrirecon.models.registry import build

    config = {"steps": 1, "state_channels": 4, "levels": 2, "hidden": 2, "grad_hidden": 2}
    path = save_checkpoint(tmp_path / "bad.safetensors", build("irim.v1", config),
                           name="irim.v1", config=config)
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = json.loads(header["__metadata__"]["mrirecon"])
    meta["config"].update(edit)
    header["__metadata__"]["mrirecon"] = json.dumps(meta)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])
    out = tmp_path / "out"
    result = invoke(str(simulated_scans / "MR_small.h5"), "-o", str(out), "--model", str(path))
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "model_config." in lines[0]
    assert not out.exists() or not any(out.iterdir())
