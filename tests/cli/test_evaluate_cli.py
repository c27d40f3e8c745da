"""``mrirecon evaluate`` in both modes on k-space simulated from real bundled images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from mrirecon.cli.app import app

runner = CliRunner()
MR_SMALL = Path(get_testdata_file("MR_small.dcm", download=False))
EXAMPLE4D = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"


@pytest.fixture(scope="module")
def data(simulated_scans) -> Path:
    return simulated_scans


def invoke(*args):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def files(data: Path) -> list[Path]:
    return [data / "MR_small.h5", data / "example4d.h5"]


def test_sweep_mode_json_and_report(data, tmp_path) -> None:
    out = tmp_path / "report"
    result = invoke(*files(data), "--accel", "2,4", "--accel", "8", "--device", "cpu",
                    "-o", out, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    summary = doc["summary"]
    assert [(s["method"], s["acceleration"], s["n"]) for s in summary] == [
        ("zero-filled", 2, 2), ("zero-filled", 4, 2), ("zero-filled", 8, 2)]
    psnr = [s["psnr_mean"] for s in summary]
    assert psnr[0] > psnr[1] > psnr[2]
    assert len(doc["records"]) == 6 and doc["failed_thresholds"] == []
    assert {Path(p).name for p in doc["report_files"]} == {p.name for p in out.iterdir()}
    assert (out / "panel_R8.png").read_bytes()[:4] == b"\x89PNG"


def test_files_mode_matches_sweep(data, tmp_path) -> None:
    recon = tmp_path / "recon"
    made = runner.invoke(app, ["reconstruct", *map(str, files(data)), "-o", str(recon),
                               "--accel", "4", "--device", "cpu", "--method", "zero-filled"])
    assert made.exit_code == 0, made.output
    compared = invoke("--predictions", recon, "--targets", data, "--json")
    assert compared.exit_code == 0, compared.output
    swept = invoke(*files(data), "--accel", "4", "--device", "cpu", "--json")
    a, b = json.loads(compared.stdout)["summary"], json.loads(swept.stdout)["summary"]
    assert len(a) == len(b) == 1 and a[0]["acceleration"] == 4
    for key in ("psnr_mean", "ssim_mean", "nmse_mean", "psnr_ci95_low"):
        assert a[0][key] == pytest.approx(b[0][key], rel=1e-6)
    # the plain table on stdout (tab-separated when not a terminal)
    table = invoke("--predictions", recon, "--targets", data, "--acceleration", "4")
    assert table.exit_code == 0, table.output
    header, row = table.stdout.strip().splitlines()[-2:]
    assert header.split("\t") == ["method", "R", "PSNR (dB)", "SSIM", "NMSE", "s/slice", "n"]
    assert row.split("\t")[:2] == ["zero-filled", "4"] and row.endswith("\t2")
    nothing = invoke("--predictions", recon, "--targets", data, "--acquisition", "AXT2")
    assert nothing.exit_code == 2 and "no target" in nothing.stderr


@pytest.mark.parametrize("args, message", [
    ([], "give DATA files to sweep, or both --predictions and --targets"),
    (["X.h5", "--targets", "."], "not both"),
    (["--predictions", "."], "give DATA files to sweep, or both"),
    (["--predictions", ".", "--targets", ".", "--methods", "cs"],
     "--methods, --model and --mask-repeats belong"),
    (["--predictions", ".", "--targets", ".", "--mask-repeats", "2"],
     "--methods, --model and --mask-repeats belong"),
    (["--predictions", ".", "--targets", ".", "--accel", "2,4"],
     "files mode filters on one acceleration; got --accel 2,4"),
    (["X.h5", "--acquisition", "CORPD_FBK"], "--acquisition filters files mode"),
    (["X.h5", "--accel", "1"], "acceleration must be a number > 1"),
    (["X.h5", "--accel", "two"], "--accel 'two' is not a number"),
    (["X.h5", "--methods", "zero-filled,magic"], "unknown method 'magic'"),
    (["X.h5", "--fail-below", "psnr>30"], "bad threshold 'psnr>30'"),
    (["X.h5", "--samples", "1"], "--samples must be >= 2 (a standard deviation needs two draws)"),
    (["X.h5", "--samples", "4", "--temperature", "0"], "--temperature must be > 0"),
    (["--predictions", ".", "--targets", ".", "--samples", "4"],
     "--samples belongs to sweep mode"),
])
def test_usage_errors(args, message) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and result.stdout == ""


def test_fail_below_prints_table_then_fails(data) -> None:
    result = invoke(*files(data), "--accel", "4,8", "--device", "cpu",
                    "--fail-below", "psnr=10,ssim=0.99,nmse=0.001")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].startswith("method\tR\tPSNR")
    failed = [line for line in result.stderr.splitlines() if "threshold missed" in line]
    assert len(failed) == 2 and "ssim" in failed[0] and "nmse" in failed[1]
    ok = invoke(*files(data), "--device", "cpu", "--fail-below", "psnr=5")
    assert ok.exit_code == 0 and "threshold" not in ok.stderr


def test_existing_report_fails_before_any_work(data, tmp_path, monkeypatch) -> None:
    import mrirecon.evaluate

    out = tmp_path / "report"
    out.mkdir()
    (out / "records.csv").write_text("old")

    def no_work(*args, **kwargs):
        raise AssertionError("the sweep ran although the report cannot be written")

    monkeypatch.setattr(mrirecon.evaluate, "sweep", no_work)
    result = invoke(*files(data), "-o", out)
    assert result.exit_code == 1 and "records.csv: output exists" in result.stderr
    assert [p.name for p in out.iterdir()] == ["records.csv"]
    assert (out / "records.csv").read_text() == "old"


def test_image_inputs_are_simulated_and_skips_are_warned(data) -> None:
    pytest.importorskip("mrirecon.recon.sigpy_baselines")
    result = invoke(MR_SMALL, data / "example4d.h5", "--methods", "zero-filled", "--methods",
                    "sense", "--accel", "2", "--center-fraction", "0.2", "--device", "cpu",
                    "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)["records"]
    assert [(r["file"], r["method"], r["simulated"]) for r in records] == [
        ("MR_small.dcm", "zero-filled", True), ("MR_small.dcm", "sense", True),
        ("example4d.h5", "zero-filled", True)]
    assert result.stderr.strip() == ("warning: example4d.h5: sense needs multi-coil data; "
                                     "skipped on this single-coil file")


def test_missing_matplotlib_skips_plots_with_one_message(data, tmp_path, monkeypatch) -> None:
    from mrirecon import report

    monkeypatch.setattr(report, "plots_available", lambda: False)
    result = invoke(data / "MR_small.h5", "--device", "cpu", "-o", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(report.TABLES)
    assert [line for line in result.stderr.splitlines() if "not installed" in line] == [
        "matplotlib is not installed: plots and panels skipped (pip install matplotlib)"]


def test_evaluate_help_does_not_import_torch() -> None:
    code = ("import sys\n"
            "from mrirecon.cli.app import main\n"
            "sys.argv = ['mrirecon', 'evaluate', '--help']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules, 'torch imported by evaluate --help'\n"
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported by --help'\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# --- posterior samplers: --samples ------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoints) -> dict[str, Path]:
    return tiny_checkpoints


def test_samples_without_a_sampler_is_refused_in_one_line(data, checkpoints) -> None:
    result = invoke(data / "MR_small.h5", "--model", checkpoints["rim"], "--samples", 4,
                    "--device", "cpu")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: --samples 4 needs a model that can sample (a cinn.v1 checkpoint "
                     "given with --model); got rim.v1"] and result.stdout == ""


def test_samples_adds_calibration_to_table_report_and_plot(data, checkpoints, tmp_path) -> None:
    out = tmp_path / "report"
    args = ["--accel", "4", "--model", checkpoints["cinn"], "--samples", 3, "--temperature", 0.8,
            "--sample-seed", 2, "--device", "cpu"]
    result = invoke(*files(data), *args, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    cinn = next(s for s in doc["summary"] if s["method"] == "cinn.v1")
    zero = next(s for s in doc["summary"] if s["method"] == "zero-filled")
    assert 0 <= cinn["within_1std_mean"] <= cinn["within_2std_mean"] <= 1
    assert -1 <= cinn["corr_std_error_mean"] <= 1 and "mean_std_mean" not in zero
    assert all("mean_std" in r for r in doc["records"] if r["method"] == "cinn.v1")
    assert (out / "calibration.png").read_bytes()[:4] == b"\x89PNG"
    assert "calibration.png" in {Path(p).name for p in doc["report_files"]}
    header = (out / "records.csv").read_text().splitlines()[0].split(",")
    assert {"corr_std_error", "within_1std", "within_2std", "mean_std"} <= set(header)
    assert "corr_std_error_mean" in (out / "summary.csv").read_text().splitlines()[0]
    assert json.loads((out / "records.json").read_text())[1]["within_2std"] is not None
    # the plain table: three calibration columns, "-" for methods that cannot sample
    table = invoke(data / "MR_small.h5", *args)
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.strip().splitlines()[-3:]
    assert header.split("\t") == ["method", "R", "PSNR (dB)", "SSIM", "NMSE", "corr(std,|err|)",
                                  "<=1std", "<=2std", "s/slice", "n"]
    cells = {row.split("\t")[0]: row.split("\t") for row in rows}
    assert cells["zero-filled"][5:8] == ["-", "-", "-"]
    assert 0 <= float(cells["cinn.v1"][6]) <= float(cells["cinn.v1"][7]) <= 1  # one volume
    # an existing calibration.png is refused before any work
    for path in out.iterdir():
        if path.name != "calibration.png":
            path.unlink()
    again = invoke(data / "MR_small.h5", *args, "-o", out)
    assert again.exit_code == 1 and "calibration.png: output exists" in again.stderr
    assert [p.name for p in out.iterdir()] == ["calibration.png"]
