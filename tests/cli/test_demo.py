"""``mrirecon demo`` and the shipped default model and sample scan."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import pytest
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


@pytest.mark.slow
def test_demo_script_on_a_fresh_clone_makes_the_png(tmp_path) -> None:
    """The quick start's first command, ``scripts/demo.sh``, on a fresh clone writes the panel.

    The clone is of the committed tree. Its virtual environment sees this one's packages (a
    ``.pth`` file) so that nothing is downloaded: setup.sh still installs the clone (editable,
    with the plots extra) into it, offline.
    """
    root = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True, timeout=120)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    purelib = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
         "['purelib'])"], check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "_outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(MRIRECON_VENV=str(venv), PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0")
    done = subprocess.run([str(clone / "scripts" / "demo.sh")], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    panel = Path("demo-out") / "report" / "panel_R4.png"
    assert (clone / panel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"panel: {panel}" in done.stderr.splitlines()
