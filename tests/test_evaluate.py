"""Evaluation on k-space simulated from real bundled images: sweeps, files mode, report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
from helpers import Counting
from pydicom.data import get_testdata_file

from mrirecon import evaluate, metrics, report
from mrirecon.data import Volume
from mrirecon.errors import InputFileError, InvalidParameterError, MriReconError, OutputError
from mrirecon.evaluate import (
    SweepOptions,
    VolumeOutputs,
    compare_files,
    summarize_records,
    sweep,
)
from mrirecon.evaluate.calibration import pool_pixels
from mrirecon.inference import prepare_kspace, reconstruct_file, reference_image
from mrirecon.io.fastmri_h5 import read_reconstruction, write_reconstruction
from mrirecon.recon.methods import build_reconstructor
from mrirecon.sampling import MaskOptions, draw_mask

MR_SMALL = Path(get_testdata_file("MR_small.dcm", download=False))
EXAMPLE4D = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data(simulated_scans) -> Path:
    return simulated_scans


@pytest.fixture(scope="module")
def files(data) -> list[Path]:
    return [data / "MR_small.h5", data / "example4d.h5"]


@pytest.fixture(scope="module")
def swept(files) -> evaluate.SweepRecords:
    return sweep(files, [2, 4, 8], ["zero-filled"])


def metrics_of(records) -> dict:
    return {(r["file"], r["acceleration"]): (r["psnr"], r["ssim"], r["nmse"]) for r in records}


def test_reference_of_a_fully_sampled_file_is_its_target(files) -> None:
    for path in files:
        kspace = prepare_kspace(path)
        reference = reference_image(kspace)
        full = build_reconstructor("zero-filled")(kspace).data
        np.testing.assert_allclose(full, reference, rtol=1e-5, atol=1e-5 * reference.max())
    with pytest.raises(InvalidParameterError, match="acceleration must be a number > 1, got 1"):
        sweep(files, [1], ["zero-filled"])
    with pytest.raises(InvalidParameterError, match="unknown method 'rim'"):
        sweep(files, [4], ["rim"])


def test_zero_filled_psnr_decreases_with_acceleration(swept) -> None:
    assert len(swept) == 6 and not swept.notes
    for name in ("MR_small.h5", "example4d.h5"):
        rows = [r for r in swept if r["file"] == name]
        assert [r["acceleration"] for r in rows] == [2, 4, 8]
        psnr = [r["psnr"] for r in rows]
        ssim = [r["ssim"] for r in rows]
        assert psnr[0] > psnr[1] > psnr[2] and ssim[0] > ssim[1] > ssim[2]
        assert all(r["simulated"] and r["achieved_acceleration"] > 1 for r in rows)
    summary = summarize_records(swept)
    assert [(s["method"], s["acceleration"], s["n"]) for s in summary] == [
        ("zero-filled", 2, 2), ("zero-filled", 4, 2), ("zero-filled", 8, 2)]
    assert summary[0]["psnr_ci95_low"] < summary[0]["psnr_mean"] < summary[0]["psnr_ci95_high"]
    # panels: the middle slice of the first file, target and zero-filled, per acceleration
    assert swept.panel_file == "MR_small.h5" and sorted(swept.panels) == [2, 4, 8]
    assert set(swept.panels[4]) == {"target", "zero-filled"}
    assert swept.panels[4]["target"].shape == (64, 64)


def test_sweep_agrees_with_reconstruct_then_compare(files, swept, tmp_path) -> None:
    recon = build_reconstructor("zero-filled")
    for path in files:
        reconstruct_file(path, tmp_path, recon, MaskOptions(acceleration=4.0))
    compared = compare_files(tmp_path, files[0].parent)
    assert [r["file"] for r in compared] == ["MR_small.h5", "example4d.h5"]
    by_key = metrics_of(swept)
    for r in compared:
        assert r["method"] == "zero-filled" and r["acceleration"] == 4
        expected = by_key[(r["file"], 4.0)]
        np.testing.assert_allclose((r["psnr"], r["ssim"], r["nmse"]), expected, rtol=1e-6)
        sweep_row = next(s for s in swept if s["file"] == r["file"] and s["acceleration"] == 4)
        assert r["achieved_acceleration"] == sweep_row["achieved_acceleration"]
    # filters: acquisition of the simulated targets, acceleration from the recorded mask spec
    assert len(compare_files(tmp_path, files[0].parent, acquisition="SIMULATED",
                             acceleration=4)) == 2
    with pytest.raises(InvalidParameterError, match="acceleration 8"):
        compare_files(tmp_path, files[0].parent, acceleration=8)
    with pytest.raises(InvalidParameterError, match="acquisition 'CORPD_FBK'.*SIMULATED"):
        compare_files(tmp_path, files[0].parent, acquisition="CORPD_FBK")


def test_masks_are_the_same_in_every_run(files, swept) -> None:
    kspace = prepare_kspace(files[1])
    options = MaskOptions(acceleration=4.0, seed=3)
    first = draw_mask(kspace.shape[-2:], options, files[1].name)
    again = draw_mask(prepare_kspace(files[1]).shape[-2:], options, files[1].name)
    np.testing.assert_array_equal(first.array, again.array)
    other = draw_mask(kspace.shape[-2:], options, files[0].name)  # another file, another mask
    assert other.spec.seed != first.spec.seed
    assert metrics_of(sweep(files, [2, 4, 8], ["zero-filled"])) == metrics_of(swept)
    reseeded = metrics_of(sweep(files, [4], ["zero-filled"], seed=1))
    assert reseeded[("example4d.h5", 4.0)] != metrics_of(swept)[("example4d.h5", 4.0)]


def test_mask_repeats_add_one_record_per_mask_seed(files, swept) -> None:
    repeated = sweep(files, [4, 8], ["zero-filled"], seed=0, mask_repeats=3)
    assert len(repeated) == 2 * 2 * 3
    assert sorted({r["mask_seed"] for r in repeated}) == [0, 1, 2]
    by_seed = {(r["file"], r["acceleration"], r["mask_seed"]): r for r in repeated}
    single = {(r["file"], r["acceleration"]): r for r in swept}
    for (name, accel, mask_seed), record in by_seed.items():
        if mask_seed == 0:  # the base seed's records are a plain sweep's
            assert record["psnr"] == single[(name, accel)]["psnr"]
    reseeded = metrics_of(sweep(files, [8], ["zero-filled"], seed=2))
    assert by_seed[("example4d.h5", 8.0, 2)]["psnr"] == reseeded[("example4d.h5", 8.0)][0]
    assert len({by_seed[("example4d.h5", 8.0, s)]["psnr"] for s in range(3)}) == 3
    summary = {(s["method"], s["acceleration"]): s for s in summarize_records(repeated)}
    assert summary[("zero-filled", 8.0)]["n"] == 6
    mean = np.mean([r["psnr"] for r in repeated if r["acceleration"] == 8.0])
    assert summary[("zero-filled", 8.0)]["psnr_mean"] == pytest.approx(mean)
    assert repeated.panel_file == "MR_small.h5" and sorted(repeated.panels) == [4, 8]
    with pytest.raises(InvalidParameterError, match="mask repeats must be >= 1"):
        sweep(files, [4], ["zero-filled"], mask_repeats=0)


def test_built_reconstructors_are_swept_and_write_what_reconstruct_writes(files, swept,
                                                                          tmp_path) -> None:
    recon = Counting(build_reconstructor("zero-filled"))
    out = sweep(files, [4], [recon], outputs=VolumeOutputs(tmp_path / "sweep"))
    assert recon.calls == 2  # once per file (the panel reuses it, the reference is the target)
    assert metrics_of(out) == {k: v for k, v in metrics_of(swept).items() if k[1] == 4}
    assert out.panels[4].keys() == swept.panels[4].keys()
    for path in files:
        reconstruct_file(path, tmp_path / "direct", recon.inner, MaskOptions(acceleration=4.0))
        written = read_reconstruction(tmp_path / "sweep" / "zero-filled" / path.name)
        direct = read_reconstruction(tmp_path / "direct" / path.name)
        np.testing.assert_array_equal(written.data, direct.data)
        np.testing.assert_array_equal(written.affine, direct.affine)
        assert written.header == direct.header
        assert written.provenance["mask"] == direct.provenance["mask"]
    by_key = metrics_of(out)
    for r in compare_files(tmp_path / "sweep" / "zero-filled", files[0].parent):
        assert (r["psnr"], r["ssim"], r["nmse"]) == pytest.approx(by_key[(r["file"], 4.0)])
    # an existing output fails before anything is reconstructed
    again = Counting(build_reconstructor("zero-filled"))
    with pytest.raises(OutputError, match=r"MR_small\.h5: output exists"):
        sweep(files, [4], [again], outputs=VolumeOutputs(tmp_path / "sweep"))
    assert again.calls == 0
    sweep(files[:1], [4], [again], outputs=VolumeOutputs(tmp_path / "sweep", overwrite=True))
    assert again.calls == 1


def test_written_volumes_are_laid_out_by_rate_and_seed(files, tmp_path) -> None:
    out = sweep(files[:1], [2, 4], ["zero-filled"], mask_repeats=2,
                outputs=VolumeOutputs(tmp_path, "nifti"))
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.nii.gz")) == [
        f"zero-filled/R{r}/seed{s}/MR_small.nii.gz" for r in (2, 4) for s in (0, 1)]
    assert len(out) == 4
    one = sweep(files[:1], [4], ["zero-filled"], outputs=VolumeOutputs(tmp_path / "one", "nifti"))
    assert (tmp_path / "one" / "zero-filled" / "MR_small.nii.gz").is_file() and len(one) == 1


def test_options_object_and_keywords_agree(files, swept) -> None:
    plain = metrics_of(sweep(files, [4], ["zero-filled"], seed=1))
    assert metrics_of(sweep(files, [4], ["zero-filled"], options=SweepOptions(seed=1))) == plain
    assert metrics_of(sweep(files, [4], ["zero-filled"], options=SweepOptions(seed=5),
                            seed=1)) == plain  # keywords replace the options' fields
    assert plain != {k: v for k, v in metrics_of(swept).items() if k[1] == 4}
    with pytest.raises(TypeError, match="sede"):
        sweep(files, [4], ["zero-filled"], sede=1)


def test_already_undersampled_file_is_refused(files, tmp_path) -> None:
    masked = tmp_path / "masked.h5"
    shutil.copy(files[0], masked)
    with h5py.File(masked, "a") as f:
        f.create_dataset("mask", data=np.arange(64) % 2 == 0)
    with pytest.raises(InputFileError, match=r"masked\.h5: already undersampled.*--predictions"):
        sweep([masked], [4], ["zero-filled"])


def test_methods_needing_coils_are_skipped_on_single_coil(files) -> None:
    pytest.importorskip("mrirecon.recon.sigpy_baselines")
    pytest.importorskip("sigpy")
    out = sweep(files, [2], ["zero-filled", "sense"], center_fraction=0.2)
    assert [(r["file"], r["method"]) for r in out] == [
        ("MR_small.h5", "zero-filled"), ("MR_small.h5", "sense"), ("example4d.h5", "zero-filled")]
    assert out.notes == ["example4d.h5: sense needs multi-coil data; skipped on this single-coil "
                         "file"]
    assert set(out.panels[2]) == {"target", "zero-filled", "sense"}
    with pytest.raises(MriReconError, match="nothing to evaluate: example4d.h5: sense needs"):
        sweep(files[1:], [2], ["sense"])


def test_a_failing_reconstruction_is_skipped_with_a_note(files) -> None:
    pytest.importorskip("sigpy")
    # a centre fraction of 0.01 keeps 1 of 64 centre lines: nothing to estimate coil maps from
    out = sweep(files[:1], [2, 8], ["zero-filled", "sense"], center_fraction=0.01)
    done = [(r["method"], r["acceleration"]) for r in out]
    assert ("zero-filled", 8) in done and ("sense", 8) not in done
    assert any("R=8: sense failed (" in note and "calibration region" in note
               for note in out.notes)


def test_narrow_calibration_is_a_note_not_a_failure(files) -> None:
    pytest.importorskip("sigpy")
    # 0.05 of 64 columns at 8x: 3 centre lines, too few for ESPIRiT; SENSE takes ACS maps
    out = sweep(files[:1], [8], ["zero-filled", "sense"], center_fraction=0.05)
    assert [r["method"] for r in out] == ["zero-filled", "sense"]
    assert out.notes == ["MR_small.h5 R=8: sense: 3 fully sampled centre lines, fewer than the 8 "
                         "ESPIRiT needs: ACS coil maps instead"]


def test_files_mode_errors(files, tmp_path) -> None:
    preds, targets = tmp_path / "preds", files[0].parent
    recon = build_reconstructor("zero-filled")
    reconstruct_file(files[0], preds, recon, MaskOptions(acceleration=4.0))
    with pytest.raises(InputFileError, match=r"no prediction for 1 of 2 targets: example4d\.h5"):
        compare_files(preds, targets)
    write_reconstruction(Volume(np.ones((24, 40, 48), np.float32)), preds / "example4d.h5")
    with pytest.raises(MriReconError, match=r"example4d\.h5 is 24x40x48 but its target .*"
                       r"example4d\.h5 is 24x48x48"):
        compare_files(preds, targets)
    with pytest.raises(InputFileError, match="predictions folder not found"):
        compare_files(tmp_path / "nowhere", targets)
    with pytest.raises(InputFileError, match="no .h5 target files"):
        compare_files(preds, _empty(tmp_path))


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("spec, message", [
    ("", "empty threshold spec"),
    ("psnr", "bad threshold 'psnr'"),
    ("ssmi=0.8", "bad threshold 'ssmi=0.8'"),
    ("psnr=thirty", "'thirty' is not a finite number"),
    ("psnr=30,psnr=31", "threshold for psnr given twice"),
])
def test_threshold_parse_errors(spec: str, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        evaluate.parse_thresholds(spec)


def test_thresholds_compare_the_worst_group(swept) -> None:
    summary = summarize_records(swept)
    worst = min(s["psnr_mean"] for s in summary)
    assert evaluate.parse_thresholds(" PSNR = 30 , nmse=0.5") == {"psnr": 30.0, "nmse": 0.5}
    assert evaluate.check_thresholds(summary, f"psnr={worst - 0.01},nmse=1") == []
    failed = evaluate.check_thresholds(summary, f"psnr={worst + 0.01},ssim=0.99,nmse=0.01")
    assert len(failed) == 3
    assert failed[0].startswith(f"psnr {worst:.4g} (zero-filled, R=8) is below the threshold")
    assert "nmse" in failed[2] and "above" in failed[2]


def test_report_files_and_no_partial_report(swept, tmp_path) -> None:
    summary = summarize_records(swept)
    out = tmp_path / "report"
    written = report.write_report(out, swept, summary, panels=swept.panels,
                                  panel_file=swept.panel_file, notes=["a note"])
    names = sorted(p.name for p in written)
    assert names == sorted(p.name for p in out.iterdir())  # no temporary files left
    assert {"panel_R2.png", "panel_R4.png", "panel_R8.png", "psnr_vs_acceleration.png",
            "ssim_vs_acceleration.png", "records.csv", "summary.json"} <= set(names)
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_SIGNATURE
    header = (out / "records.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["file", "method", "acceleration"]
    assert json.loads((out / "summary.json").read_text())["notes"] == ["a note"]
    assert len(json.loads((out / "records.json").read_text())) == 6
    # an existing report file without overwrite: error before anything is written
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "summary.json").write_text("keep me")
    with pytest.raises(OutputError, match="summary.json: output exists"):
        report.write_report(fresh, swept, summary, panels=swept.panels)
    assert [p.name for p in fresh.iterdir()] == ["summary.json"]
    assert (fresh / "summary.json").read_text() == "keep me"
    report.write_report(fresh, swept, summary, overwrite=True)
    assert (fresh / "summary.json").read_text() != "keep me"


def test_report_without_matplotlib_writes_tables(swept, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(report, "plots_available", lambda: False)
    written = report.write_report(tmp_path, swept, summarize_records(swept), panels=swept.panels)
    assert sorted(p.name for p in written) == sorted(report.TABLES)


def test_render_failure_leaves_nothing(swept, tmp_path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("render failed")

    monkeypatch.setattr(report, "draw_panel", broken)
    with pytest.raises(RuntimeError, match="render failed"):
        report.write_report(tmp_path / "r", swept, summarize_records(swept), panels=swept.panels,
                            panel_file=swept.panel_file)
    assert list((tmp_path / "r").iterdir()) == []


# --- posterior samplers: calibration ----------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoints) -> dict[str, Path]:
    return tiny_checkpoints


@pytest.fixture(scope="module")
def sampled(files, checkpoints) -> evaluate.SweepRecords:
    return sweep(files, [4], ["zero-filled"], models=[checkpoints["cinn"]], samples=3,
                 sample_seed=1)


def test_sampler_records_carry_calibration_in_range(sampled) -> None:
    assert evaluate.CALIBRATION == metrics.CALIBRATION_KEYS
    assert [(r["file"], r["method"], r["acceleration"]) for r in sampled] == [
        (f, m, 4) for f in ("MR_small.h5", "example4d.h5") for m in ("zero-filled", "cinn.v1")]
    for r in sampled:
        if r["method"] == "zero-filled":
            assert not set(evaluate.CALIBRATION) & set(r)
            continue
        assert -1 <= r["corr_std_error"] <= 1
        assert 0 <= r["within_1std"] <= r["within_2std"] <= 1
        assert r["mean_std"] > 0 and np.isfinite(r["psnr"])
    summary = summarize_records(sampled)
    by = {(s["method"], s["acceleration"]): s for s in summary}
    cinn, zf = by[("cinn.v1", 4)], by[("zero-filled", 4)]
    rows = [r for r in sampled if r["method"] == "cinn.v1"]
    assert cinn["within_1std_mean"] == pytest.approx(np.mean([r["within_1std"] for r in rows]))
    assert all(f"{k}_{s}" in cinn for k in evaluate.CALIBRATION
               for s in ("mean", "std", "ci95_low", "ci95_high"))
    assert not any(k.startswith(evaluate.CALIBRATION) for k in zf)
    # the reliability plot's pixels: every pixel of both volumes (fewer than the cap)
    assert list(sampled.calibration_pixels) == [("cinn.v1", 4.0)]
    pixels = sampled.calibration_pixels[("cinn.v1", 4.0)]
    assert pixels["pixels"] == 64 * 64 + 24 * 48 * 48 == pixels["std"].size
    assert pixels["error"].shape == pixels["std"].shape and pixels["std"].min() >= 0


def test_sampling_is_reproducible_and_seeded(files, checkpoints, sampled) -> None:
    again = sweep(files[:1], [4], ["zero-filled"], models=[checkpoints["cinn"]], samples=3,
                  sample_seed=1)
    first = next(r for r in sampled if r["method"] == "cinn.v1")
    assert again[1]["mean_std"] == first["mean_std"] and again[1]["psnr"] == first["psnr"]
    other = sweep(files[:1], [4], ["zero-filled"], models=[checkpoints["cinn"]], samples=3,
                  sample_seed=2)
    assert other[1]["mean_std"] != first["mean_std"]
    # a sampler built elsewhere is told apart by its protocol and configured the same way
    built = build_reconstructor(model=checkpoints["cinn"])
    prebuilt = sweep(files[:1], [4], ["zero-filled", built], samples=3, sample_seed=1)
    assert [r["method"] for r in prebuilt] == ["zero-filled", "cinn.v1"]
    assert prebuilt[1]["mean_std"] == first["mean_std"] and prebuilt[1]["psnr"] == first["psnr"]
    # without samples: the posterior mean of the default draws, no calibration
    plain = sweep(files[:1], [4], ["zero-filled"], models=[checkpoints["cinn"]])
    assert [r["method"] for r in plain] == ["zero-filled", "cinn.v1"]
    assert "mean_std" not in plain[1] and plain[1]["psnr"] != first["psnr"]
    assert plain.calibration_pixels == {}


@pytest.mark.parametrize("kwargs, message", [
    (dict(samples=1), r"--samples must be >= 2"),
    (dict(samples=4, temperature=0.0), r"--temperature must be > 0, got 0.0"),
    (dict(samples=4, models=()), r"--samples 4 needs a model that can sample .*got no --model"),
    (dict(samples=4, models="irim"), r"needs a model that can sample .*; got irim\.v1$"),
])
def test_sampling_options_are_checked(files, checkpoints, kwargs, message) -> None:
    if kwargs.get("models") == "irim":
        kwargs["models"] = [checkpoints["irim"]]
    with pytest.raises(InvalidParameterError, match=message):
        sweep(files, [4], ["zero-filled"], **kwargs)


def test_pixel_pool_keeps_a_proportional_uniform_subsample() -> None:
    rng = np.random.default_rng(0)
    pool = pool_pixels(None, np.zeros(300, np.float32), np.zeros(300, np.float32), rng, cap=100)
    assert pool["std"].size == 100 and pool["pixels"] == 300
    pool = pool_pixels(pool, np.ones(100, np.float32), np.ones(100, np.float32), rng, cap=100)
    assert pool["pixels"] == 400 and pool["std"].size == 100
    assert int(pool["std"].sum()) == 25  # 100 of 400 pixels, a quarter from the second volume
    np.testing.assert_array_equal(pool["std"], pool["error"])  # pairs stay together


def test_summary_of_calibration_leaves_out_undefined_correlations() -> None:
    base = {"method": "cinn.v1", "acceleration": 4.0, "psnr": 30.0, "ssim": 0.9, "nmse": 0.01,
            "within_1std": 0.6, "within_2std": 0.9, "mean_std": 1.0}
    rows = summarize_records([{**base, "corr_std_error": 0.2},
                              {**base, "corr_std_error": float("nan")},
                              {**base, "corr_std_error": 0.4}])
    assert rows[0]["corr_std_error_mean"] == pytest.approx(0.3)
    assert rows[0]["within_1std_mean"] == pytest.approx(0.6) and rows[0]["n"] == 3
    only_nan = summarize_records([{**base, "corr_std_error": float("nan")}])
    assert np.isnan(only_nan[0]["corr_std_error_mean"])


def test_report_draws_the_calibration_plot(sampled, tmp_path) -> None:
    summary = summarize_records(sampled)
    assert report.CALIBRATION_PLOT not in {p.name for p in report.report_files(tmp_path)}
    expected = report.report_files(tmp_path / "r", sorted(sampled.panels), calibration=True)
    written = report.write_report(tmp_path / "r", sampled, summary, panels=sampled.panels,
                                  panel_file=sampled.panel_file,
                                  calibration_pixels=sampled.calibration_pixels)
    assert written == expected
    assert (tmp_path / "r" / "calibration.png").read_bytes()[:8] == PNG_SIGNATURE
    header = (tmp_path / "r" / "records.csv").read_text().splitlines()[0].split(",")
    assert set(evaluate.CALIBRATION) <= set(header) and "sampling_seed" in header
    assert "within_2std_ci95_high" in (tmp_path / "r" / "summary.csv").read_text()


def test_the_panel_has_its_tiles_scores_and_an_error_colour_bar(monkeypatch, tmp_path) -> None:
    """target | zero-filled | methods | |error| x5, PSNR/SSIM in the titles, a bar in units."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    saved: list[Figure] = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    rng = np.random.default_rng(0)
    target = rng.random((32, 32)).astype(np.float32) * 10
    images = {"target": target, "zero-filled": target * 0.5, "cs": target * 0.9}
    scores = {"zero-filled": {"psnr": 20.0, "ssim": 0.5}, "cs": {"psnr": 30.0, "ssim": 0.9}}
    report.draw_panel(images, scores, tmp_path / "panel.png")
    axes = saved[0].axes
    titles = [ax.get_title() for ax in axes[:4]]
    assert titles == ["target", "zero-filled\n20.00 dB, SSIM 0.500", "cs\n30.00 dB, SSIM 0.900",
                      f"|error| x{report.ERROR_GAIN:g}\ncs"]
    assert len(axes) == 5 and axes[4].get_ylabel() == "|error| (target units)"
    error = axes[3].images[0]
    np.testing.assert_allclose(error.get_array(), np.abs(target - images["cs"]), rtol=1e-6)
    assert error.get_clim() == pytest.approx((0.0, target.max() / report.ERROR_GAIN))
