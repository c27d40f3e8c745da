"""``mrirecon demo`` and the shipped default model and sample scan."""

from __future__ import annotations

import json

import nibabel as nib
from helpers import Counting
from typer.testing import CliRunner

from mrirecon.cli.app import app
from mrirecon.models.checkpoint import read_metadata
from mrirecon.models.default import default_checkpoint, sample_scan

runner = CliRunner()


def test_shipped_files_are_small_and_self_describing() -> None:
    assert sample_scan().stat().st_size <= 2 * 2**20
    assert default_checkpoint().stat().st_size <= 25 * 2**20
    meta = read_metadata(default_checkpoint())
    assert meta["name"] == "irim.v1" and len(meta["sha256"]) == 64


def test_demo_runs_and_the_default_irim_beats_zero_filled(tmp_path, monkeypatch) -> None:
    from mrirecon.recon import methods

    built: list[Counting] = []
    build = methods.build_reconstructor

    def counting(*args, **kwargs) -> Counting:
        built.append(Counting(build(*args, **kwargs)))
        return built[-1]

    monkeypatch.setattr(methods, "build_reconstructor", counting)
    result = runner.invoke(app, ["demo", "-o", str(tmp_path), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    summary = {r["method"]: r for r in json.loads(result.stdout)["summary"]}
    assert set(summary) == {"zero-filled", "cs", "irim.v1"}
    assert summary["irim.v1"]["psnr_mean"] > summary["zero-filled"]["psnr_mean"]
    assert summary["irim.v1"]["ssim_mean"] > summary["zero-filled"]["ssim_mean"]
    for method in summary:
        image = nib.load(tmp_path / method / "sample_colin27.nii.gz")
        assert image.shape == (128, 128, 3)
    assert (tmp_path / "report" / "panel_R4.png").is_file()
    # each method is reconstructed once: the sweep scores the volume and writes it
    assert sorted((r.name, r.calls) for r in built) == [
        ("cs", 1), ("irim.v1", 1), ("zero-filled", 1)]
    again = runner.invoke(app, ["demo", "-o", str(tmp_path), "--device", "cpu"])
    assert again.exit_code == 1 and "output exists" in again.stderr


def test_reconstruct_uses_the_default_model_without_method(tmp_path) -> None:
    result = runner.invoke(app, ["reconstruct", str(sample_scan()), "-o", str(tmp_path),
                                 "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["method"] == "irim.v1"
