"""Folders and ``-`` as inputs, the shipped models by name, sweeps that survive a bad file, and
``evaluate --accel`` in files mode (issue 20)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from mrirecon.cli.app import app
from mrirecon.io.fastmri_h5 import read_reconstruction

runner = CliRunner()
MR_SMALL = Path(get_testdata_file("MR_small.dcm", download=False))


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def scores(doc: dict) -> list[dict]:
    """A JSON report's records without their timings."""
    return [{k: v for k, v in r.items() if k != "seconds_per_slice"} for r in doc["records"]]


@pytest.fixture
def folder(simulated_scans, tmp_path) -> Path:
    """A folder holding copies of the two simulated scans (and a note that is not an input)."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("MR_small.h5", "example4d.h5"):
        shutil.copy(simulated_scans / name, data / name)
    (data / "README.txt").write_text("not an input")
    return data


def test_reconstruct_a_folder_of_h5_files(folder, tmp_path) -> None:
    out = tmp_path / "out"
    result = invoke("reconstruct", folder, "-o", out, "--method", "zero-filled", "--json")
    assert result.exit_code == 0, result.output
    assert [Path(r["input"]).name for r in json.loads(result.stdout)] == ["MR_small.h5",
                                                                         "example4d.h5"]
    assert sorted(p.name for p in out.iterdir()) == ["MR_small.h5", "example4d.h5"]


def test_evaluate_a_folder_of_h5_files_as_the_files(folder) -> None:
    by_folder = invoke("evaluate", folder, "--device", "cpu", "--json")
    by_files = invoke("evaluate", folder / "MR_small.h5", folder / "example4d.h5", "--device",
                      "cpu", "--json")
    assert by_folder.exit_code == by_files.exit_code == 0, by_folder.output
    a, b = json.loads(by_folder.stdout), json.loads(by_files.stdout)
    assert scores(a) == scores(b) and len(a["records"]) == 2 and a["skipped"] == []


@pytest.mark.parametrize("command", [["reconstruct", "-o", "OUT", "--method", "zero-filled"],
                                     ["evaluate", "--device", "cpu", "-o", "OUT"],
                                     ["info"], ["simulate", "-o", "OUT"]])
def test_a_mixed_folder_is_one_error_line_and_nothing_written(folder, tmp_path,
                                                              command) -> None:
    shutil.copy(MR_SMALL, folder / "image.dcm")
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else a for a in command]
    result = invoke(args[0], folder, *args[1:])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: {folder}/: holds 2 .h5 files and 1 DICOM file; give one kind"]
    assert result.stdout == "" and not out.exists()


def test_dash_reads_the_inputs_from_stdin(folder, tmp_path) -> None:
    out = tmp_path / "out"
    listing = f"{folder / 'example4d.h5'}\n\n{folder / 'MR_small.h5'}\n"
    result = invoke("reconstruct", "-", "-o", out, "--method", "zero-filled", "--json",
                    input=listing)
    assert result.exit_code == 0, result.output
    assert [Path(r["input"]).name for r in json.loads(result.stdout)] == ["example4d.h5",
                                                                         "MR_small.h5"]
    info = invoke("info", "-", "--json", input=str(folder))
    assert info.exit_code == 0 and len(json.loads(info.stdout)) == 2


def test_model_default_names_the_shipped_i_rim(simulated_scans, tmp_path) -> None:
    from mrirecon.models.default import default_checkpoint

    result = invoke("reconstruct", simulated_scans / "MR_small.h5", "--model", "default",
                    "--device", "cpu", "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["method"] == "irim.v1"
    listed = invoke("models", "--json")
    shipped = {c["alias"]: c["file"] for r in json.loads(listed.stdout) for c in r["shipped"]}
    assert shipped["default"] == str(default_checkpoint()) and "default-cinn" in shipped
    described = invoke("models", "default", "--json")
    assert described.exit_code == 0 and json.loads(described.stdout)[0]["name"] == "irim.v1"


def test_a_file_named_like_an_alias_wins_and_unknown_names_fail_as_before(
        simulated_scans, tmp_path, monkeypatch) -> None:
    from mrirecon.models.default import default_checkpoint, resolve_model

    monkeypatch.chdir(tmp_path)
    assert resolve_model("default") == default_checkpoint()
    Path("default").write_bytes(b"not a checkpoint")
    assert resolve_model("default") == Path("default")
    result = invoke("reconstruct", simulated_scans / "MR_small.h5", "--model", "nodefault",
                    "-o", tmp_path / "o")
    assert result.exit_code == 1 and "nodefault: no such checkpoint file" in result.stderr


def test_evaluate_labels_the_shipped_model_by_name(simulated_scans) -> None:
    result = invoke("evaluate", simulated_scans / "MR_small.h5", "--model", "default",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    methods = [line.split("\t")[0] for line in result.stdout.strip().splitlines()[1:]]
    assert methods == ["zero-filled", "default (irim.v1)"]


def test_a_sweep_survives_a_corrupt_file(folder, tmp_path) -> None:
    good = invoke("evaluate", folder, "--device", "cpu", "--json")
    (folder / "broken.h5").write_bytes(b"this is not HDF5")
    out = tmp_path / "report"
    result = invoke("evaluate", folder, "--device", "cpu", "--json", "-o", out)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.h5" in errors[0]
    assert "1 of 3 files skipped" in result.stderr
    doc = json.loads(result.stdout)
    assert scores(doc) == scores(json.loads(good.stdout))
    assert [Path(s["file"]).name for s in doc["skipped"]] == ["broken.h5"]
    assert (out / "records.csv").is_file()


def test_a_sweep_of_only_bad_files_fails_and_bad_options_stop_at_once(folder) -> None:
    (folder / "MR_small.h5").write_bytes(b"broken")
    (folder / "example4d.h5").write_bytes(b"broken")
    result = invoke("evaluate", folder, "--device", "cpu")
    assert result.exit_code == 1
    assert "nothing to evaluate: no file could be scored (2 failed)" in result.stderr
    bad = invoke("evaluate", folder, "--methods", "magic")
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_files_mode_takes_accel_and_the_old_acceleration(simulated_scans, tmp_path) -> None:
    recon = tmp_path / "recon"
    made = invoke("reconstruct", simulated_scans / "MR_small.h5", simulated_scans /
                  "example4d.h5", "-o", recon, "--accel", "4", "--method", "zero-filled")
    assert made.exit_code == 0, made.output
    new = invoke("evaluate", "--predictions", recon, "--targets", simulated_scans, "--accel",
                 "4", "--json")
    old = invoke("evaluate", "--predictions", recon, "--targets", simulated_scans,
                 "--acceleration", "4", "--json")
    assert new.exit_code == old.exit_code == 0, new.output
    assert scores(json.loads(new.stdout)) == scores(json.loads(old.stdout))
    assert len(json.loads(new.stdout)["records"]) == 2
    two = invoke("evaluate", "--predictions", recon, "--targets", simulated_scans, "--accel",
                 "4,8")
    assert two.exit_code == 2 and "files mode filters on one acceleration" in two.stderr
    assert "--acceleration" not in invoke("evaluate", "--help").stdout


@pytest.fixture
def bids(tmp_path) -> Path:
    """A BIDS-like tree: two subjects, each with an ``anat/T1w.nii.gz`` (different images)."""
    nib = pytest.importorskip("nibabel")
    root = tmp_path / "bids"
    for i, subject in enumerate(("sub-01", "sub-02")):
        (root / subject / "anat").mkdir(parents=True)
        image = np.zeros((32, 32, 2), np.float32)
        image[8 + 4 * i: 24, 8:24] = 100.0 + 50 * i
        nib.save(nib.Nifti1Image(image, np.eye(4)), root / subject / "anat" / "T1w.nii.gz")
    return root


def test_same_named_inputs_get_mirrored_folders(bids, tmp_path) -> None:
    """sub-*/anat/T1w.nii.gz once overwrote each other (data loss with --overwrite)."""
    sim = tmp_path / "sim"
    done = invoke("simulate", bids, "-o", sim, "--coils", "2", "--json")
    assert done.exit_code == 0, done.output
    h5 = sorted(p.relative_to(sim).as_posix() for p in sim.rglob("*.h5"))
    assert h5 == ["sub-01/anat/T1w.h5", "sub-02/anat/T1w.h5"]
    out = tmp_path / "out"
    for attempt in ((), ("--overwrite",)):
        result = invoke("reconstruct", *sorted(sim.rglob("*.h5")), "-o", out, "--method",
                        "zero-filled", *attempt)
        assert result.exit_code == 0, result.output
    first, second = (read_reconstruction(out / s / "anat" / "T1w.h5").data
                     for s in ("sub-01", "sub-02"))
    assert first.shape == second.shape and (first != second).any()  # two outputs, not one


def test_an_input_given_twice_or_a_stem_clash_in_one_folder_is_refused(folder, tmp_path) -> None:
    twice = invoke("reconstruct", folder / "MR_small.h5", folder / "MR_small.h5",
                   "-o", tmp_path / "a", "--method", "zero-filled")
    assert twice.exit_code == 2 and "given more than once" in twice.stderr
    shutil.copy(folder / "MR_small.h5", folder / "MR_small.hdf5")
    clash = invoke("reconstruct", folder / "MR_small.h5", folder / "MR_small.hdf5",
                   "-o", tmp_path / "b", "--method", "zero-filled")
    assert clash.exit_code == 2 and "would write the same outputs" in clash.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_skip_existing_reruns_only_what_is_missing(folder, tmp_path) -> None:
    out = tmp_path / "out"
    first = invoke("reconstruct", folder / "MR_small.h5", "-o", out, "--method", "zero-filled")
    assert first.exit_code == 0, first.output
    stamp = (out / "MR_small.h5").stat().st_mtime_ns
    again = invoke("reconstruct", folder, "-o", out, "--method", "zero-filled", "--json",
                   "--skip-existing")
    assert again.exit_code == 0, again.output
    assert [Path(r["input"]).name for r in json.loads(again.stdout)] == ["example4d.h5"]
    assert "1 of 2 inputs already have their outputs" in again.stderr
    assert (out / "MR_small.h5").stat().st_mtime_ns == stamp
    both = invoke("reconstruct", folder, "-o", out, "--skip-existing", "--overwrite")
    assert both.exit_code == 2 and "contradict" in both.stderr


def test_files_mode_scores_the_pairs_that_exist(folder, tmp_path) -> None:
    """A predictions folder covering some targets: score those, one line per missing target."""
    recon = tmp_path / "recon"
    made = invoke("reconstruct", folder / "MR_small.h5", "-o", recon, "--method", "zero-filled")
    assert made.exit_code == 0, made.output
    shutil.copy(folder / "MR_small.h5", folder / "third.h5")
    with h5py.File(recon / "third.h5", "w") as f:  # a prediction of the wrong shape
        f["reconstruction"] = np.ones((2, 8, 8), np.float32)
    strict = invoke("evaluate", "--predictions", recon, "--targets", folder, "--json")
    assert strict.exit_code == 1
    doc = json.loads(strict.stdout)
    assert [r["file"] for r in doc["records"]] == ["MR_small.h5"]
    assert doc["missing"] == [str(folder / "example4d.h5")]
    assert [s["file"] for s in doc["skipped"]] == [str(recon / "third.h5")]
    lines = strict.stderr.strip().splitlines()
    assert f"error: {folder / 'example4d.h5'}: no prediction example4d.h5 in {recon}" in lines
    assert any("third.h5 is 2x8x8 but its target" in line for line in lines)
    (recon / "third.h5").unlink()
    (folder / "third.h5").unlink()
    allowed = invoke("evaluate", "--predictions", recon, "--targets", folder, "--allow-missing")
    assert allowed.exit_code == 0, allowed.output
    assert "1 of 2 targets have no prediction (--allow-missing)" in allowed.stderr
    none = invoke("evaluate", "--predictions", tmp_path / "recon-empty", "--targets", folder)
    assert none.exit_code == 1 and "predictions folder not found" in none.stderr
