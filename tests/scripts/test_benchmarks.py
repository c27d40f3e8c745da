"""Benchmark scripts run in a tiny configuration on CPU and print valid JSON."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run(script: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True,
                         text=True, check=True, timeout=300)
    return json.loads(out.stdout)


def test_mask_acceleration_bench_tiny() -> None:
    data = run("bench/mask_acceleration.py", "--shape", "32", "64", "--seeds", "2",
               "--accels", "4")
    kinds = {r["kind"] for r in data["results"]}
    assert {"random", "poisson", "gaussian"} <= kinds
    for r in data["results"]:
        assert r["achieved_min"] <= r["achieved_mean"] <= r["achieved_max"]


# scripts/bench/{throughput,train_step,flops}.py: tiny configurations, one CPU thread (the
# tiny tensors gain nothing from more, and on a busy machine OpenMP threads only contend)

TINY = ("--device", "cpu", "--threads", "1")


def check_report(data: dict, benchmark: str) -> None:
    assert data["benchmark"] == benchmark and data["results"]
    machine = data["machine"]
    assert {"platform", "cpu", "torch", "torch_threads", "device", "device_name"} <= set(machine)
    assert machine["device"] == "cpu" and machine["torch_threads"] == 1
    assert isinstance(data["settings"], dict)


def test_throughput_cli_row_tiny() -> None:
    """The "CLI, whole volume, per slice" row: the CLI on a written file, against in-memory."""
    data = run("bench/throughput.py", "--geometry", "32x32x1", "--slices", "3", "--repeats", "1",
               "--methods", "irim", "cli", "--cli-batch-size", "1", "2", "--cli-volumes", "2",
               "--cli-prefetch", "both", *TINY)
    check_report(data, "throughput")
    cli = [r for r in data["results"] if r["method"] == "cli"]
    assert [(r["batch_size"], r["prefetch"]) for r in cli] == [
        (1, True), (1, False), (2, True), (2, False)]
    for r in cli:
        assert r["label"] == "CLI, whole volume, per slice" and r["slices_timed"] == 6
        assert 0 < r["seconds"] < r["wall_seconds"] and r["startup_seconds"] > 0
        assert r["in_memory_ratio"] == pytest.approx(
            r["seconds_per_slice"] / data["results"][0]["seconds_per_slice"])


def test_throughput_tiny() -> None:
    data = run("bench/throughput.py", "--geometry", "32x32x1", "32x32x4", "--slices", "2",
               "--repeats", "1", "--methods", "zero-filled", "irim", "cinn", *TINY)
    check_report(data, "throughput")
    rows = {(r["geometry"], r["method"]): r for r in data["results"]}
    assert set(rows) == {(g, m) for g in ("32x32x1", "32x32x4")
                         for m in ("zero-filled", "irim", "cinn")}
    for r in rows.values():
        assert r["slices_timed"] == 2 and r["seconds"] > 0 and r["slices_per_second"] > 0
    for geometry in ("32x32x1", "32x32x4"):
        assert rows[(geometry, "irim")]["weights"].startswith("shipped default")
        cinn = rows[(geometry, "cinn")]
        assert cinn["weights"].startswith(("shipped default", "random"))
        assert cinn["samples"] == 8


def test_throughput_skips_sense_on_single_coil_and_rejects_bad_geometry() -> None:
    data = run("bench/throughput.py", "--geometry", "32x32x1", "--slices", "1", "--repeats",
               "1", "--methods", "zero-filled", "sense", *TINY)
    assert [r["method"] for r in data["results"]] == ["zero-filled"]
    assert data["notes"] == ["32x32x1: sense needs multi-coil data; skipped"]
    bad = subprocess.run([sys.executable, str(SCRIPTS / "bench/throughput.py"), "--geometry",
                          "32x32"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "ROWSxCOLSxCOILS" in bad.stderr and not bad.stdout


def test_train_step_tiny_irim_memory_stays_flat() -> None:
    """The memory-free i-RIM's saved bytes stay flat in T; the RIM's and the i-RIM's that stores
    its activations (``--stored-irim``) grow with T."""
    data = run("bench/train_step.py", "--size", "32", "--steps", "2", "4", "--hidden", "8",
               "--repeats", "1", "--stored-irim", *TINY)
    check_report(data, "train_step")
    rows = {(r["model"], r.get("memory_free"), r["hidden"], r["steps"]): r
            for r in data["results"]}
    assert set(rows) == {(m, f, 8, t) for m, f in (("rim.v1", None), ("irim.v1", True),
                                                   ("irim.v1", False)) for t in (2, 4)}
    for r in rows.values():
        assert r["step_seconds"] > 0 and r["forward_seconds"] > 0
        assert r["memory_bytes"] > 0 and r["parameters"] > 0
        assert r["memory_kind"] == "saved_for_backward"
    free = [rows[("irim.v1", True, 8, t)]["memory_bytes"] for t in (2, 4)]
    stored = [rows[("irim.v1", False, 8, t)]["memory_bytes"] for t in (2, 4)]
    plain = [rows[("rim.v1", None, 8, t)]["memory_bytes"] for t in (2, 4)]
    assert free[1] <= 1.1 * free[0] and plain[1] >= 1.5 * plain[0]
    assert stored[1] >= 1.5 * stored[0] and all(f < s for f, s in zip(free, stored, strict=True))


def rim_flops_per_pixel_step(hidden: int = 64, channels: int = 2) -> int:
    """Multiply-adds x 2 of one RIM step per pixel (rim.py's RIMCell): 5x5 conv in, two
    ConvGRUs (3x3 gate and candidate convs on [input, state]), 3x3 conv mid and out."""
    gru = 9 * (2 * hidden) * (2 * hidden) + 9 * (2 * hidden) * hidden
    return 2 * (25 * 2 * channels * hidden + 2 * gru + 9 * hidden * hidden + 9 * hidden * channels)


def test_flops_tiny_counts_the_rim_exactly() -> None:
    data = run("bench/flops.py", "--size", "32", "--matmul-size", "64", "--batch-size", "2",
               "--repeats", "1", *TINY)
    check_report(data, "flops")
    peak = data["peak"]
    assert peak["matmul_size"] == 64 and peak["dtype"] == "float32"
    assert peak["flops_per_second"] > 0
    rows = {r["model"]: r for r in data["results"]}
    assert set(rows) == {"irim.v1", "rim.v1"}
    for r in rows.values():
        assert r["flops_per_slice"] > 0 and r["slices_per_second"] > 0
    fft = 5 * 32 * 32 * math.log2(32 * 32)  # one complex 32x32 transform
    rim = rows["rim.v1"]  # 8 steps, each one A^H (A x - y): one FFT and one inverse FFT
    assert rim["flops_per_slice"] == 8 * 32 * 32 * rim_flops_per_pixel_step()
    assert rim["fft_flops_per_slice"] == pytest.approx(8 * 2 * fft)
    from mrirecon.models.checkpoint import read_metadata
    from mrirecon.models.default import default_checkpoint

    steps = read_metadata(default_checkpoint())["config"]["steps"]  # the shipped i-RIM's
    assert rows["irim.v1"]["fft_flops_per_slice"] == pytest.approx(steps * 2 * fft)


def test_generalisation_suite_run_reports_per_domain_and_paired_gains(simulated_scans,
                                                                       tiny_checkpoints,
                                                                       tmp_path) -> None:
    """``generalisation.py run`` on a two-domain suite (the simulated MR_small and example4d
    scans under suite names): one row per (domain, coil group, R, method), record counts equal to
    files x mask repeats, and gains that are the mean of the paired PSNR differences."""
    import shutil

    suite = tmp_path / "suite"
    suite.mkdir()
    files = [("mr-small_c04.h5", "MR_small.h5", "mr-small", 4),
             ("epi_c01.h5", "example4d.h5", "epi", 1)]
    for name, source, _, _ in files:
        shutil.copy(simulated_scans / source, suite / name)
    (suite / "suite.json").write_text(json.dumps({"files": [
        {"file": name, "domain": domain, "coils": coils} for name, _, domain, coils in files]}))
    data = run("bench/generalisation.py", "run", str(suite), "--methods", "zero-filled",
               "--model", str(tiny_checkpoints["irim"]), "--accel", "4", "--mask-repeats", "2",
               "--device", "cpu", "--markdown", str(tmp_path / "suite.md"))
    assert "simulated from magnitude images" in data["note"]
    rows = {(r["domain"], r["coil_group"], r["method"]): r for r in data["results"]}
    label = Path(tiny_checkpoints["irim"]).stem
    assert set(rows) == {("mr-small", "multi", "zero-filled"), ("mr-small", "multi", label),
                         ("epi", "single", "zero-filled"), ("epi", "single", label)}
    assert all(r["records"] == 2 and r["failed"] == 0 for r in rows.values())
    records = data["records"]
    for group, domain in (("multi", "mr-small"), ("single", "epi")):
        name = next(f for f, _, d, _ in files if d == domain)
        zero = {r["mask_seed"]: r["psnr"] for r in records
                if r["file"] == name and r["method"] == "zero-filled"}
        gains = [r["psnr"] - zero[r["mask_seed"]] for r in records
                 if r["file"] == name and r["method"] == label]
        summary = next(s for s in data["gain_vs_zero_filled"] if s["coil_group"] == group)
        assert summary["psnr_gain_mean"] == pytest.approx(sum(gains) / len(gains))
        assert summary["worst_domain"] == domain
    assert "| mr-small |" in (tmp_path / "suite.md").read_text()


@pytest.fixture()
def generalisation(monkeypatch):
    """``scripts/bench/generalisation.py`` as a module (its ``_common`` importable)."""
    import importlib.util

    monkeypatch.syspath_prepend(str(SCRIPTS / "bench"))
    spec = importlib.util.spec_from_file_location("generalisation",
                                                  SCRIPTS / "bench" / "generalisation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generalisation_calibration_cells_columns_and_targets(generalisation) -> None:
    """From fake records (no model run): a cell's calibration is the mean over its volumes (NaN
    left out), before/after the std calibration where the records have both, the worst domain
    is picked per field, and the targets pass or fail per cell, the PSNR one only against
    ``--reference-model``."""
    files = {Path("mr-small_c04.h5"): ("mr-small", 4), Path("epi_c01.h5"): ("epi", 1)}
    psnr = {("mr-small_c04.h5", "zero-filled"): 25.0, ("mr-small_c04.h5", "irim"): 32.0,
            ("mr-small_c04.h5", "cinn"): 31.8, ("epi_c01.h5", "zero-filled"): 24.0,
            ("epi_c01.h5", "irim"): 30.0, ("epi_c01.h5", "cinn"): 29.0}
    calibrated = {  # per file, the two masks' within_2std, corr, calibration error
        "mr-small_c04.h5": [(0.94, 0.6, 0.02), (0.96, 0.7, 0.04)],
        "epi_c01.h5": [(0.90, 0.3, 0.05), (0.88, math.nan, 0.07)]}
    records = []
    for (file, method), value in psnr.items():
        for seed in (0, 1):
            record = {"file": file, "method": method, "acceleration": 4.0, "mask_seed": seed,
                      "psnr": value, "ssim": 0.8}
            if method == "cinn":
                within, corr, error = calibrated[file][seed]
                record |= {"within_1std": within - 0.2, "within_2std": within,
                           "within_3std": 0.99, "corr_std_error": corr,
                           "calibration_error": error, "mean_std": 0.01}
                if file == "mr-small_c04.h5":  # the same draws before a std scale of 1.5
                    record |= {"std_scale": 1.5, "within_2std_uncalibrated": within - 0.14,
                               "calibration_error_uncalibrated": error + 0.08}
            records.append(record)
    methods = ["zero-filled", "irim", "cinn"]
    rows, _ = generalisation.aggregate(records, files, methods, [4.0], 2, [])
    cells, summary = generalisation.calibration(records, files, rows, methods)
    assert [(c["domain"], c["method"]) for c in cells] == [("epi", "cinn"), ("mr-small", "cinn")]
    epi, small = cells  # in the suite's domain order
    assert small["records"] == 2 and small["std_scale"] == pytest.approx(1.5)
    assert small["within_2std"] == pytest.approx(0.95)
    assert small["within_2std_uncalibrated"] == pytest.approx(0.81)
    assert small["calibration_error"] == pytest.approx(0.03)
    assert epi["corr_std_error"] == pytest.approx(0.3)  # the NaN left out
    assert "std_scale" not in epi and "within_2std_uncalibrated" not in epi
    assert [(s["coil_group"], s["domains"]) for s in summary] == [("multi", 1), ("single", 1)]
    assert summary[1]["within_2std_worst_domain"] == "epi"
    assert summary[1]["corr_std_error_worst"] == pytest.approx(0.3)

    table = generalisation.calibration_markdown(cells, generalisation.targets(cells, rows, None))
    assert "| mr-small | multi | 4 | cinn | 0.810 → 0.950 | 0.750 | 0.990 | 0.110 → 0.030 |" \
        " 0.65 |" in table
    assert "| epi | single | 4 | cinn | 0.890 | 0.690 | 0.990 | 0.060 | 0.30 |" in table

    checks = generalisation.targets(cells, rows, "irim")
    passed = {c["domain"]: c["passed"] for c in checks["cells"]}
    assert passed["mr-small"] == {"coverage_2std": True, "corr_std_error": True,
                                  "psnr_vs_reference": True, "all": True}  # 31.8 >= 32 - 0.5
    assert passed["epi"] == {"coverage_2std": False, "corr_std_error": False,
                             "psnr_vs_reference": False, "all": False}
    assert checks["cells"][1]["reference_psnr_mean"] == pytest.approx(32.0)
    assert checks["counts"]["cinn"] == {
        "cells": 2, "coverage_2std": {"passed": 1, "evaluated": 2},
        "corr_std_error": {"passed": 1, "evaluated": 2},
        "psnr_vs_reference": {"passed": 1, "evaluated": 2}, "all": {"passed": 1, "evaluated": 2}}
    alone = generalisation.targets(cells, rows, None)
    assert alone["cells"][1]["passed"]["psnr_vs_reference"] is None
    assert alone["cells"][1]["passed"]["all"] is True
    assert alone["counts"]["cinn"]["psnr_vs_reference"] is None
    # a sweep without samples: no calibration cells, the markdown as before
    plain = [r for r in records if r["method"] != "cinn"]
    rows, _ = generalisation.aggregate(plain, files, methods[:2], [4.0], 2, [])
    assert generalisation.calibration(plain, files, rows, methods[:2]) == ([], [])


def test_generalisation_run_rejects_a_bad_reference_and_samples_without_a_sampler(
        tiny_checkpoints, tmp_path) -> None:
    """Both are refused before any sweep: a ``--reference-model`` that labels no ``--model``,
    and ``--samples`` with no ``--model`` that can sample."""
    irim = str(tiny_checkpoints["irim"])
    for extra, message in ((["--reference-model", "nope"], "not the label of a --model"),
                           (["--samples", "4"], "needs a --model that can sample")):
        out = subprocess.run([sys.executable, str(SCRIPTS / "bench/generalisation.py"), "run",
                              str(tmp_path), "--model", irim, *extra], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode != 0 and message in out.stderr and not out.stdout


@pytest.mark.skipif(shutil.which("bart") is None, reason="bart not found (Debian package bart)")
def test_bart_cs_tiny_compares_both_tools_at_their_best_weight() -> None:
    data = run("bench/bart_cs.py", "--accels", "4", "--iters", "5", "--threads", "1",
               "--datasets", "bart-phantom", "--ours-lamdas", "1e-3", "3e-3",
               "--bart-lamdas", "1e-2")
    assert data["benchmark"] == "bart_cs" and data["settings"]["bart_version"].startswith("v0")
    assert {r["tool"] for r in data["results"]} == {"zero-filled", "mrirecon", "bart"}
    assert len(data["sweep"]) == 1 + 2 + 1
    [best] = data["best"]
    ours = max((r for r in data["sweep"] if r["tool"] == "mrirecon"), key=lambda r: r["psnr"])
    assert best["lamda"]["mrirecon"] == ours["lamda"] and best["lamda"]["bart"] == 1e-2
    bart = next(r for r in data["results"] if r["tool"] == "bart")
    assert best["ours_minus_bart_db"] == pytest.approx(ours["psnr"] - bart["psnr"])
    assert all(math.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1 for r in data["sweep"])
    [alone] = data["best_per_dataset"]
    assert alone["mrirecon_psnr"] == ours["psnr"] and alone["bart_psnr"] == bart["psnr"]


def test_adapt_trace_scores_every_check_against_the_holdout_floor(simulated_scans,
                                                                  tiny_checkpoints,
                                                                  tmp_path) -> None:
    """``adapt.py --trace``: every check's PSNR beside its hold-out loss, and the loss floor (the
    fully sampled image through the same maps) below every loss: exactly 0 for one coil, whose
    map only removes the phase, above 0 for four coils whose ACS maps miss detail."""
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(simulated_scans / "example4d.h5", suite / "epi_c01.h5")
    shutil.copy(simulated_scans / "MR_small.h5", suite / "mr-small_c04.h5")
    traced, results = {}, []
    for accel, name in (("3", "epi_c01.h5"), ("2", "mr-small_c04.h5")):  # each splittable
        data = run("bench/adapt.py", str(suite), "--model", str(tiny_checkpoints["irim"]),
                   "--files", name, "--accel", accel, "--steps", "10", "--trace",
                   "--patience", "100", "--threads", "1",
                   "--markdown", str(tmp_path / f"{name}.md"))
        results += data["results"]
        traced |= {r["domain"]: r for r in data["results"] if "trace" in r}
    assert set(traced) == {"epi", "mr-small"} and data["settings"]["trace"]
    for domain, row in traced.items():
        shipped = next(r for r in results if r["domain"] == domain and r["steps"] == 0)
        steps = [c["step"] for c in row["trace"]]
        assert steps == [0, 5, 10] and row["trace"][0]["psnr"] == shipped["psnr"]
        losses = [c["holdout_loss"] for c in row["trace"]]
        assert row["holdout_floor"] <= min(losses) and losses[0] == row["holdout_loss"][0]
        assert row["psnr_at_lowest_loss"] in [c["psnr"] for c in row["trace"]]
        assert row["corr_loss_psnr"] is None or -1 <= row["corr_loss_psnr"] <= 1
    assert traced["epi"]["holdout_floor"] < 1e-4 < traced["mr-small"]["holdout_floor"]
    assert "hold-out floor" in (tmp_path / "epi_c01.h5.md").read_text()
    with pytest.raises(subprocess.CalledProcessError) as refused:  # a report is never replaced
        run("bench/adapt.py", str(suite), "--files", "epi_c01.h5", "--steps", "1",
            "--markdown", str(tmp_path / "epi_c01.h5.md"))
    assert "output exists; pass --overwrite" in refused.value.stderr


@pytest.fixture()
def mini_suite(generalisation, tmp_path):
    """``(suite, sources, magnitude, record)``: the suite's MR_small file with 4 coils, built by
    ``generalisation.write_file`` from a sources folder holding pydicom's MR_small.dcm, the
    magnitude it was simulated from (scaled to max 1) and its ``suite.json`` record."""
    from pydicom.data import get_testdata_file

    sources, suite = tmp_path / "sources", tmp_path / "suite"
    sources.mkdir()
    suite.mkdir()
    shutil.copy(get_testdata_file("MR_small.dcm", download=False),
                sources / "pydicom_MR_small.dcm")
    image = generalisation.mr_small(sources)
    record = generalisation.write_file(suite / "mr-small_c04.h5", "mr-small", 4, image, False)
    return suite, sources, image[0] / image[0].max(), record


def test_noiseless_target_is_the_simulated_image_without_its_noise(generalisation,
                                                                    mini_suite) -> None:
    """For several coils (RSS 1) the noise-free reference is the magnitude the file was simulated
    from; the file's own reference differs from it by about the noise (its suite.json record
    says by how many dB); a file its sources do not reproduce, a missing source and a file
    outside the suite are one error each."""
    import h5py

    from mrirecon.errors import InputFileError
    from mrirecon.io.fastmri_h5 import read_kspace
    from mrirecon.metrics import psnr

    suite, sources, magnitude, record = mini_suite
    path = suite / "mr-small_c04.h5"
    clean = generalisation.noiseless_target(path, sources)
    assert clean.shape == magnitude.shape
    np.testing.assert_allclose(clean, magnitude, atol=1e-5)
    noisy = np.asarray(read_kspace(path).targets["reconstruction_rss"][:])
    rms = float(np.sqrt(np.mean((noisy - clean) ** 2)))
    noise = generalisation.DOMAINS["mr-small"][2]  # per coil and pixel; RSS of 4 coils
    assert 0.3 * noise < rms < 3 * noise
    assert record["reference_psnr_noise_free"] == pytest.approx(psnr(clean, noisy), abs=0.01)
    with h5py.File(path, "r+") as f:
        f["reconstruction_rss"][0, 10, 10] += 0.5
    with pytest.raises(InputFileError, match="does not reproduce its reference"):
        generalisation.noiseless_target(path, sources)
    with pytest.raises(InputFileError, match="missing source"):
        generalisation.noiseless_target(path, suite)
    with pytest.raises(InputFileError, match="not a generalisation.v1 suite file"):
        generalisation.noiseless_target(_plain(path), sources)


def test_noise_free_suite_copy_swaps_only_the_reference(mini_suite, tmp_path) -> None:
    """``generalisation.py noise-free``: the same k-space, the noise-free image as reference
    (with its max and norm), provenance and suite.json saying so; no overwrite without asking."""
    import h5py

    suite, sources, magnitude, record = mini_suite
    out = tmp_path / "clean"
    (suite / "suite.json").write_text(json.dumps({"suite": "generalisation.v1",
                                                  "files": [record, {"file": "gone.h5"}]}))
    with pytest.raises(subprocess.CalledProcessError) as missing:  # all or nothing
        run("bench/generalisation.py", "noise-free", str(suite), str(out), "--sources",
            str(sources))
    assert "gone.h5" in missing.value.stderr and not list(out.glob("*"))
    (suite / "suite.json").write_text(json.dumps({"suite": "generalisation.v1",
                                                  "files": [record]}))
    index = run("bench/generalisation.py", "noise-free", str(suite), str(out),
                "--sources", str(sources))
    assert index["reference"] == "noise-free" and index["files"] == [record]
    with h5py.File(suite / record["file"]) as noisy, h5py.File(out / record["file"]) as clean:
        np.testing.assert_array_equal(noisy["kspace"][:], clean["kspace"][:])
        np.testing.assert_allclose(clean["reconstruction_rss"][:], magnitude, atol=1e-5)
        assert clean.attrs["max"] == pytest.approx(float(magnitude.max()), rel=1e-5)
        assert json.loads(clean.attrs["mrirecon_provenance"])["reference"] == "noise-free"
    assert json.loads((out / "suite.json").read_text())["reference"] == "noise-free"
    with pytest.raises(subprocess.CalledProcessError) as refused:
        run("bench/generalisation.py", "noise-free", str(suite), str(out), "--sources",
            str(sources))
    assert "exists" in refused.value.stderr and len(refused.value.stderr.splitlines()) == 1


def test_ssdu_bench_scores_earlier_checkpoints_on_another_suite(mini_suite, tiny_checkpoints,
                                                                tmp_path) -> None:
    """``ssdu.py --score-only``: no training, the two checkpoints in OUT_DIR scored on the
    given suite (here one with noise-free references), one row per (domain, coils, R) with
    the gap; without the checkpoints, one error line."""
    suite, sources, _, record = mini_suite
    (suite / "suite.json").write_text(json.dumps({"suite": "generalisation.v1",
                                                  "files": [record]}))
    clean = tmp_path / "clean"
    run("bench/generalisation.py", "noise-free", str(suite), str(clean), "--sources",
        str(sources))
    out = tmp_path / "out"
    out.mkdir()
    for kind, model in (("supervised", "irim"), ("ssdu", "rim")):
        shutil.copy(tiny_checkpoints[model], out / f"{kind}.safetensors")
    data = run("bench/ssdu.py", str(out), "--suite", str(clean), "--score-only", "--methods",
               "zero-filled", "--threads", "1")
    assert data["settings"]["score_only"] and not (out / "data").exists()
    assert {(r["domain"], r["coils"], r["R"]) for r in data["results"]} == {
        ("mr-small", "multi", 4.0), ("mr-small", "multi", 8.0)}
    for row in data["results"]:
        assert row["ssdu_minus_supervised"] == pytest.approx(row["ssdu"] - row["supervised"],
                                                             abs=1e-3)
    (out / "ssdu.safetensors").unlink()
    with pytest.raises(subprocess.CalledProcessError) as refused:
        run("bench/ssdu.py", str(out), "--suite", str(clean), "--score-only")
    assert refused.value.stderr.strip().endswith("ssdu.safetensors: file not found (run "
                                                 "without --score-only first)")


def _plain(path: Path) -> Path:
    """A copy of ``path`` without the suite's provenance."""
    import h5py

    copy = path.with_name("plain.h5")
    shutil.copy(path, copy)
    with h5py.File(copy, "r+") as f:
        prov = json.loads(f.attrs["mrirecon_provenance"])
        prov.pop("suite")
        f.attrs["mrirecon_provenance"] = json.dumps(prov)
    return copy


def test_adapt_bench_scores_against_the_noise_free_image_with_sources(mini_suite,
                                                                      tiny_checkpoints,
                                                                      tmp_path) -> None:
    """``adapt.py --sources``: every row also scored against the noise-free image (its own gain
    column), every check of the trace too, and the floor with the suite's true coil maps, which
    leaves only the noise outside their span."""
    suite, sources, _, _ = mini_suite
    data = run("bench/adapt.py", str(suite), "--model", str(tiny_checkpoints["irim"]),
               "--accel", "2", "--steps", "10", "--trace", "--patience", "100",
               "--sources", str(sources), "--threads", "1",
               "--markdown", str(tmp_path / "clean.md"), "--json-out", str(tmp_path / "t.json"))
    shipped, adapted = data["results"]
    assert data["settings"]["sources"] == str(sources)
    for row in (shipped, adapted):
        assert math.isfinite(row["psnr_clean"]) and row["psnr_clean"] != row["psnr"]
    assert adapted["gain_clean_db"] == pytest.approx(adapted["psnr_clean"]
                                                     - shipped["psnr_clean"], abs=2e-3)
    trace = adapted["trace"]
    assert trace[0]["psnr_clean"] == shipped["psnr_clean"]
    assert adapted["psnr_clean_at_lowest_loss"] in [c["psnr_clean"] for c in trace]
    assert adapted["best_psnr_clean_on_curve"] == max(c["psnr_clean"] for c in trace)
    assert 0 < adapted["holdout_floor_true_maps"]
    assert "noise-free at lowest loss" in (tmp_path / "clean.md").read_text()
    # replaying the bench's own rule on its trace keeps the step the adaptation kept
    gain = str(data["settings"]["min_gain"])
    replayed = run("bench/adapt_replay.py", str(tmp_path / "t.json"), "--min-gain", gain,
                   "--patience", "100")["runs"][0]["cells"][0]
    assert replayed["kept_step"] == adapted["best_step"] and replayed["truncated"]
    assert replayed["gain_clean_db"] == pytest.approx(adapted["gain_clean_db"], abs=2e-3)


def test_adapt_replay_applies_the_early_stopping_rule_to_recorded_checks(tmp_path) -> None:
    """A hand-made trace: the check each (min gain, patience) keeps, whether the trace ran out
    first, the gains of the kept check and the summary; a report without a trace is one line."""
    losses = [1.0, 0.995, 0.98, 0.985, 0.99, 0.97]
    trace = [{"step": 5 * i, "holdout_loss": loss, "psnr": 30.0 + i, "psnr_clean": 31.0 - i}
             for i, loss in enumerate(losses)]
    report = {"benchmark": "adapt", "results": [
        {"domain": "natural", "coils": 8, "R": 4.0, "steps": 0},
        {"domain": "natural", "coils": 8, "R": 4.0, "steps": 25, "trace": trace}]}
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(report))
    data = run("bench/adapt_replay.py", str(path), "--min-gain", "0,0.01,0.05",
               "--patience", "2,10")
    kept = {(r["min_gain"], r["patience"]): r["cells"][0] for r in data["runs"]}
    # 0: 0.995 and 0.98 are gains, then two without -> stop at 20 keeping 10
    assert kept[0.0, 2]["kept_step"] == 10 and not kept[0.0, 2]["truncated"]
    # 1%: 0.995 is not a gain, 0.98 is; patience 2 stops at 20, before 0.97 (< 0.98 * 0.99)
    assert kept[0.01, 2]["kept_step"] == 10 and kept[0.01, 10]["kept_step"] == 25
    assert kept[0.01, 10]["truncated"] and kept[0.05, 10]["kept_step"] == 0
    assert kept[0.01, 2]["gain_db"] == 2.0 and kept[0.01, 2]["gain_clean_db"] == -2.0
    line = next(x for x in data["summary"] if x["min_gain"] == 0.01 and x["patience"] == 2)
    assert line["changed"] == 1 and line["at_least_1db"] == 1
    assert line["below_minus_0_2db_clean"] == 1
    (tmp_path / "plain.json").write_text(json.dumps({"benchmark": "adapt", "results": []}))
    with pytest.raises(subprocess.CalledProcessError) as refused:
        run("bench/adapt_replay.py", str(tmp_path / "plain.json"))
    assert refused.value.stderr.strip() == (f"error: {tmp_path / 'plain.json'}: no traced "
                                            "cells: write it with scripts/bench/adapt.py --trace")
