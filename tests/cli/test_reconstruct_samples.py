"""``mrirecon reconstruct --samples N``: posterior mean and std maps from a cINN, in every format,
with the input's geometry; reproducible draws; the bad inputs refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mrirecon.cli.app import app
from mrirecon.io import load
from mrirecon.io.fastmri_h5 import read_reconstruction

runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoints) -> dict[str, Path]:
    return tiny_checkpoints


def sample(scan: Path, out: Path, ckpt: Path, *extra) -> object:
    return runner.invoke(app, ["reconstruct", str(scan), "-o", str(out), "--model", str(ckpt),
                               "--device", "cpu", *map(str, extra)])


def test_mean_and_std_written_with_provenance_and_panel(simulated_scans, checkpoints,
                                                        tmp_path) -> None:
    scan = simulated_scans / "MR_small.h5"
    result = sample(scan, tmp_path, checkpoints["cinn"], "--samples", 6, "--sample-batch", 4,
                    "--save-samples", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)[0]
    assert record["samples"] == 6 and record["sampled_slices_per_second"] > 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["MR_small_mean.h5", "MR_small_samples.h5", "MR_small_std.h5",
                     "MR_small_uncertainty.png"]
    mean = read_reconstruction(tmp_path / "MR_small_mean.h5")
    std = read_reconstruction(tmp_path / "MR_small_std.h5")
    assert mean.provenance["statistic"] == "posterior mean"
    assert mean.provenance["posterior"] == {"samples": 6, "temperature": 1.0, "seed": 0,
                                            "sample_batch": 4}
    assert mean.shape == std.shape == (1, 64, 64)
    assert np.all(std.data >= 0) and std.data.max() > 0 and np.isfinite(mean.data).all()
    with h5py.File(tmp_path / "MR_small_samples.h5") as f:
        draws = f["samples"][:]
    assert draws.shape == (1, 6, 64, 64)
    assert not np.allclose(draws[0, 0], draws[0, 1])  # samples differ
    np.testing.assert_allclose(draws.mean(axis=1), mean.data, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(draws.std(axis=1, ddof=1), std.data, rtol=1e-3, atol=1e-4)
    assert (tmp_path / "MR_small_uncertainty.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_draws_other_seed_other_draws(simulated_scans, checkpoints,
                                                     tmp_path) -> None:
    scan = simulated_scans / "MR_small.h5"
    stds = []
    for run, seed in (("a", 3), ("b", 3), ("c", 4)):
        result = sample(scan, tmp_path / run, checkpoints["cinn"], "--samples", 4,
                        "--sample-seed", seed)
        assert result.exit_code == 0, result.output
        stds.append(read_reconstruction(tmp_path / run / "MR_small_std.h5").data)
    np.testing.assert_array_equal(stds[0], stds[1])
    assert not np.array_equal(stds[0], stds[2])


@pytest.mark.parametrize("fmt,suffix", [("nifti", ".nii.gz"), ("dicom", "")])
def test_other_formats_keep_the_input_geometry(simulated_scans, checkpoints, tmp_path,
                                               fmt, suffix) -> None:
    scan = simulated_scans / "example4d.h5"
    result = sample(scan, tmp_path / "s", checkpoints["cinn"], "--samples", 3, "--format", fmt)
    assert result.exit_code == 0, result.output
    plain = runner.invoke(app, ["reconstruct", str(scan), "-o", str(tmp_path / "zf"),
                                "--method", "zero-filled", "--format", fmt])
    assert plain.exit_code == 0, plain.output
    reference = load(tmp_path / "zf" / f"example4d{suffix}")
    for what in ("mean", "std"):
        volume = load(tmp_path / "s" / f"example4d_{what}{suffix}")
        assert volume.shape == reference.shape
        np.testing.assert_allclose(volume.affine, reference.affine, atol=1e-4)


@pytest.mark.parametrize("args,code,message", [
    (["--samples", "1"], 2, "--samples must be >= 2"),
    (["--samples", "4", "--temperature", "0"], 2, "--temperature must be > 0"),
    (["--samples", "4", "--sample-batch", "0"], 2, "--sample-batch must be >= 1"),
    (["--sample-batch", "2"], 2, "needs --samples N"),
    (["--samples", "4", "--method", "cs"], 2, "cannot sample"),
])
def test_bad_sampling_options(simulated_scans, tmp_path, args, code, message) -> None:
    result = runner.invoke(app, ["reconstruct", str(simulated_scans / "MR_small.h5"), "-o",
                                 str(tmp_path / "out"), *args])
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "out").exists()


def test_model_that_cannot_sample(simulated_scans, checkpoints, tmp_path) -> None:
    result = sample(simulated_scans / "MR_small.h5", tmp_path / "out", checkpoints["irim"],
                    "--samples", 4)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot sample" not in lines[0] and "cinn.v1" in lines[0]
    assert not (tmp_path / "out").exists()


def test_sample_batch_that_does_not_fit(simulated_scans, checkpoints, tmp_path,
                                        monkeypatch) -> None:
    from mrirecon.models.cinn import CINN

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")

    monkeypatch.setattr(CINN, "sample", out_of_memory)
    result = sample(simulated_scans / "MR_small.h5", tmp_path / "out", checkpoints["cinn"],
                    "--samples", 64, "--sample-batch", 64)
    assert result.exit_code == 1  # one line for the file, then the batch's count of failures
    lines = result.stderr.strip().splitlines()
    assert "--sample-batch 64 does not fit in memory" in lines[0]
    assert lines[1:] == ["1 of 1 inputs failed"]
    assert not list((tmp_path / "out").glob("*"))
