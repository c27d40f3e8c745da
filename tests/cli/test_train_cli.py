"""``mrirecon train`` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mrirecon.cli.app import app

runner = CliRunner()
RIM = ["--set", "model_config.steps=2", "--set", "model_config.hidden=8"]


@pytest.fixture(scope="module")
def data(train_val_folders) -> Path:
    return train_val_folders


def test_train_with_flags_and_json(data, tmp_path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--model", "rim.v1", *RIM, "--set", "val_every=100",
                                 "--data", str(data / "train"), "--val-data", str(data / "val"),
                                 "--output", str(out), "--max-steps", "3", "--batch-size", "2",
                                 "--lr", "1e-3", "--device", "cpu", "--no-amp", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 3 and summary["best"]["ssim"] > 0
    assert Path(summary["checkpoints"]["best"]).is_file()
    text = (out / "config.yaml").read_text()
    assert "lr: 0.001" in text and "batch_size: 2" in text
    again = runner.invoke(app, ["train", "--model", "rim.v1", *RIM, "--data", str(data / "train"),
                                "-o", str(out), "--max-steps", "1", "--device", "cpu"])
    assert again.exit_code == 1 and "not empty" in again.stderr
    # --out: the old spelling of --output, a hidden alias for one release
    plain = runner.invoke(app, ["train", "--model", "rim.v1", *RIM, "--data", str(data / "train"),
                                "--out", str(out), "--max-steps", "1", "--device", "cpu",
                                "--overwrite"])
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.splitlines()[0] == "steps\t1/1"


def test_config_file_and_unknown_key(data, tmp_path) -> None:
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"model: rim.v1\nmodel_config: {{steps: 2, hidden: 8}}\nmax_steps: 1\n"
                   f"device: cpu\nout: {tmp_path / 'run'}\ndata: {{train: [{data / 'train'}]}}\n")
    assert runner.invoke(app, ["train", str(cfg)]).exit_code == 0
    bad = runner.invoke(app, ["train", str(cfg), "--set", "optim.lrr=1"])
    assert bad.exit_code == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "optim.lrr" in bad.stderr


def test_missing_data_folder_is_one_line(tmp_path) -> None:
    result = runner.invoke(app, ["train", "--model", "rim.v1", *RIM, "--data",
                                 str(tmp_path / "nowhere"), "--output", str(tmp_path / "run"),
                                 "--max-steps", "1", "--device", "cpu"])
    assert result.exit_code == 1
    assert "file or folder not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_resume_a_run_folder_without_its_config(data, tmp_path) -> None:
    out = tmp_path / "run"
    first = runner.invoke(app, ["train", "--model", "rim.v1", *RIM, "--data", str(data / "train"),
                                "--output", str(out), "--max-steps", "2", "--device", "cpu"])
    assert first.exit_code == 0, first.output
    more = runner.invoke(app, ["train", "--resume", str(out), "--max-steps", "4", "--json"])
    assert more.exit_code == 0, more.output
    assert json.loads(more.stdout)["steps"] == 4


def test_a_spent_time_budget_is_a_planned_stop(data, tmp_path) -> None:
    """--max-minutes checkpoints, says how to continue and exits 0 (Ctrl-C is 130)."""
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--model", "rim.v1", *RIM, "--data", str(data / "train"),
                                 "--output", str(out), "--max-steps", "50", "--device", "cpu",
                                 "--max-minutes", "1e-9", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["stopped"] == "max_minutes" and summary["steps"] < 50
    assert "continue with --resume" in result.stderr
    assert (out / "state.pt").is_file() and (out / "last.safetensors").is_file()


def test_readme_training_block_on_sources_of_different_widths(tmp_path) -> None:
    """The README's recipe: simulate sources of different matrices, train the shipped config.

    Two real images of different widths (96x128 and 64x64), simulated with 8 coils; batches of
    4 mix them (items of different shapes run one by one), and validation runs per volume.
    """
    import nibabel
    from pydicom.data import get_testdata_file

    sources = [Path(nibabel.__file__).parent / "tests" / "data" / "example4d.nii.gz",
               Path(get_testdata_file("MR_small.dcm", download=False))]
    train, val = tmp_path / "data" / "train" / "mc", tmp_path / "data" / "val" / "mc"
    for folder in (train, val):
        made = runner.invoke(app, ["simulate", *map(str, sources), "-o", str(folder),
                                   "--coils", "8"])
        assert made.exit_code == 0, made.output
    config = Path(__file__).parents[2] / "configs" / "irim-multicoil.yaml"
    out = tmp_path / "runs" / "irim"
    common = ["--set", "model_config.hidden=8", "--set", "model_config.steps=2",
              "--set", "model_config.levels=2", "--set", "val_every=100", "--device", "cpu"]
    first = runner.invoke(app, ["train", str(config), "--set", f"data.train=[{train}]",
                                "--set", f"data.val=[{val}]", *common, "--max-steps", "8",
                                "--output", str(out), "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["steps"] == 8
    more = runner.invoke(app, ["train", "--resume", str(out), "--max-steps", "10", "--json"])
    assert more.exit_code == 0, more.output
    assert json.loads(more.stdout)["steps"] == 10
