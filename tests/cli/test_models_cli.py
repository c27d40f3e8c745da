"""``mrirecon models`` and ``mrirecon reconstruct --model CKPT`` with RIM and i-RIM checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_MODELS as TINY
from typer.testing import CliRunner

from mrirecon.cli.app import app
from mrirecon.io.fastmri_h5 import read_reconstruction
from mrirecon.models.checkpoint import save_checkpoint
from mrirecon.models.registry import build

runner = CliRunner()


def test_models_lists_the_registry() -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    names = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"rim.v1", "irim.v1"} <= set(names)
    assert names["rim.v1"]["parameters"] > 0 and names["irim.v1"]["defaults"]["steps"] == 8


@pytest.mark.parametrize("name", ["rim.v1", "irim.v1"])
def test_reconstruct_with_a_checkpoint(simulated_scans, tmp_path, name: str) -> None:
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / f"{name}.safetensors", build(name, TINY[name]), name=name,
                           config=TINY[name])
    result = runner.invoke(app, ["reconstruct", str(simulated_scans / "MR_small.h5"),
                                 str(simulated_scans / "example4d.h5"), "--model", str(ckpt),
                                 "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    assert [r["method"] for r in json.loads(result.stdout)] == [name, name]
    volume = read_reconstruction(tmp_path / "out" / "MR_small.h5")
    assert volume.shape == (1, 64, 64) and np.isfinite(volume.data).all()
    assert volume.provenance["parameters"]["model"] == name
    assert len(volume.provenance["parameters"]["checkpoint_sha256"]) == 64


def test_bad_checkpoints_are_one_line_errors(simulated_scans, tmp_path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    scan = str(simulated_scans / "MR_small.h5")
    for ckpt, message in [(bad, "bad.safetensors: "), (tmp_path / "none.safetensors",
                                                       "none.safetensors: ")]:
        result = runner.invoke(app, ["reconstruct", scan, "--model", str(ckpt), "-o",
                                     str(tmp_path / "o")])
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
        assert not (tmp_path / "o").exists()
    mixed = runner.invoke(app, ["reconstruct", scan, "--model", str(bad), "--method", "cs",
                                "-o", str(tmp_path / "o")])
    assert mixed.exit_code == 2 and "give --model or --method cs, not both" in mixed.stderr


def test_evaluate_sweeps_a_checkpoint(simulated_scans, tmp_path) -> None:
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "rim.safetensors", build("rim.v1", TINY["rim.v1"]),
                           name="rim.v1", config=TINY["rim.v1"])
    result = runner.invoke(app, ["evaluate", str(simulated_scans / "MR_small.h5"), "--accel",
                                 "4", "--model", str(ckpt), "--json"])
    assert result.exit_code == 0, result.output
    methods = {r["method"] for r in json.loads(result.stdout)["records"]}
    assert methods == {"zero-filled", "rim.v1"}


DOMAIN = {"coils": [2, 8], "matrix": [32, 128], "accelerations": [2, 12],
          "mask_kinds": ["random", "equispaced"], "sources": [{"file": "mni152_2009a.nii.gz"}]}


@pytest.fixture
def domain_checkpoint(tmp_path):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "irim.safetensors", build("irim.v1", TINY["irim.v1"]),
                           name="irim.v1", config=TINY["irim.v1"], extra={"domain": DOMAIN})


def test_domain_warning_for_a_file_outside_and_not_for_one_inside(simulated_scans, tmp_path,
                                                                    domain_checkpoint) -> None:
    """MR_small.h5 (4 coils, 64x64) lies inside the declared domain; example4d.h5 (1 coil) does
    not: one warning line for it, none for the other, and both are reconstructed."""
    result = runner.invoke(app, ["reconstruct", str(simulated_scans / "MR_small.h5"),
                                 str(simulated_scans / "example4d.h5"), "--model",
                                 str(domain_checkpoint), "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "example4d.h5: outside the model's training domain: 1 coil (trained on 2-8)" \
        in warnings[0]
    records = {Path(r["input"]).name: r for r in json.loads(result.stdout)}
    assert records["MR_small.h5"]["outside_domain"] == []
    assert records["example4d.h5"]["outside_domain"] == ["1 coil (trained on 2-8)"]
    # another mask kind than the declared ones, on the file inside
    result = runner.invoke(app, ["reconstruct", str(simulated_scans / "MR_small.h5"),
                                 "--model", str(domain_checkpoint), "--mask-kind", "poisson",
                                 "-o", str(tmp_path / "out2")])
    assert result.exit_code == 0, result.output
    assert "poisson mask (trained on random, equispaced)" in result.stderr


def test_evaluate_notes_files_outside_the_domain(simulated_scans, domain_checkpoint) -> None:
    result = runner.invoke(app, ["evaluate", str(simulated_scans / "MR_small.h5"),
                                 str(simulated_scans / "example4d.h5"), "--accel", "4",
                                 "--model", str(domain_checkpoint), "--json"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "training domain" in line]
    assert len(warnings) == 1 and "example4d.h5 R=4" in warnings[0]


def test_models_shows_a_checkpoints_domain(domain_checkpoint) -> None:
    result = runner.invoke(app, ["models", str(domain_checkpoint), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)[0]
    assert record["domain"] == DOMAIN
    assert record["domain_summary"].startswith("2-8 coils; 32-128 px per side; 2-12x")
    shipped = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    irim = next(r for r in shipped if r["name"] == "irim.v1")
    assert [Path(c["file"]).name for c in irim["shipped"]] == ["irim-default.safetensors"]
