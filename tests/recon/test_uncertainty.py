"""Calibration of uncertainty maps: the fit, its storage in a checkpoint, and its use."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mrirecon.calibrate import calibrate_checkpoint
from mrirecon.cli.app import app
from mrirecon.errors import InputFileError, InvalidParameterError
from mrirecon.inference import prepare_kspace, undersample
from mrirecon.metrics import GAUSSIAN_COVERAGE
from mrirecon.models.checkpoint import read_metadata, save_checkpoint
from mrirecon.models.registry import build
from mrirecon.recon.methods import build_reconstructor
from mrirecon.recon.uncertainty import (
    Calibration,
    calibration_error,
    choose,
    coverage,
    fit_scale,
    ratios,
)
from mrirecon.sampling import MaskOptions, draw_mask

runner = CliRunner()
TINY_CINN = {"levels": 2, "blocks_per_level": 1, "hidden": 4, "cond_channels": 4,
             "cond_hidden": 4}


def overconfident(n: int, seed: int, factor: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Errors drawn from a known Gaussian posterior (std varying per pixel) and a reported std
    ``factor`` times too small."""
    g = np.random.default_rng(seed)
    sigma = g.uniform(0.1, 2.0, n)
    return g.normal(0.0, sigma), sigma / factor


@pytest.mark.parametrize("method", ["conformal", "gaussian"])
def test_fit_recovers_the_scale_of_a_known_gaussian_posterior(method: str) -> None:
    error, std = overconfident(200_000, seed=1)
    scale = fit_scale(ratios(error, std), method)
    assert scale == pytest.approx(2.0, rel=0.02)
    after = coverage(ratios(error, std), scale)
    for k in (1, 2, 3):
        assert after[k] == pytest.approx(GAUSSIAN_COVERAGE[k], abs=0.01)


def test_calibrating_on_one_split_improves_coverage_on_another() -> None:
    fit_error, fit_std = overconfident(50_000, seed=2, factor=1.7)
    test_error, test_std = overconfident(50_000, seed=3, factor=1.7)
    parts = np.array_split(ratios(fit_error, fit_std), 10)
    method, scale, measured = choose(parts)
    held = ratios(test_error, test_std)
    before, after = coverage(held)[2], coverage(held, scale)[2]
    assert before < 0.85 and abs(after - GAUSSIAN_COVERAGE[2]) < 0.01
    assert calibration_error(held, scale) < calibration_error(held) / 5
    assert method in measured["held_out_calibration_error"]


def test_malformed_calibration_metadata_is_refused() -> None:
    for bad in ({"method": "magic", "scale": 1.0}, {"method": "conformal", "scale": -1},
                {"method": "conformal", "scale": math.inf}, [1, 2],
                {"method": "gaussian", "scale": 1.0, "data": "x"}):
        with pytest.raises(InvalidParameterError):
            Calibration.from_dict(bad)
    with pytest.raises(InvalidParameterError, match="at least 2 slices"):
        choose([np.ones(10)])


@pytest.fixture
def tiny_cinn(tmp_path):
    torch.manual_seed(0)
    model = build("cinn.v1", TINY_CINN)
    return save_checkpoint(tmp_path / "cinn.safetensors", model, name="cinn.v1",
                           config=TINY_CINN)


def test_calibration_survives_save_and_load_and_reconstruct_applies_it(
        simulated_scans, tiny_cinn, tmp_path) -> None:
    scan = simulated_scans / "example4d.h5"
    out = tmp_path / "calibrated.safetensors"
    result = calibrate_checkpoint(tiny_cinn, [scan], out, accelerations=[4.0], samples=3)
    stored = read_metadata(out)["extra"]["calibration"]
    assert stored["scale"] == result["scale"] > 0 and stored["data"]["files"] == [scan.name]
    assert stored["data"]["slices"] == 24 and stored["method"] in ("conformal", "gaussian")

    kspace = prepare_kspace(scan)
    under = undersample(kspace, draw_mask(kspace.shape[-2:], MaskOptions(acceleration=4),
                                          scan.name))
    raw = build_reconstructor(model=tiny_cinn, samples=3).sample(under)
    calibrated = build_reconstructor(model=out, samples=3)
    assert calibrated.std_scale == stored["scale"] and "calibrated" in calibrated.calibration_note
    post = calibrated.sample(under)
    np.testing.assert_array_equal(post.mean.data, raw.mean.data)  # the mean is untouched
    np.testing.assert_allclose(post.std.data, raw.std.data * np.float32(stored["scale"]),
                               rtol=1e-6)
    assert post.std.provenance["calibration"]["calibrated"] is True
    assert raw.std.provenance["calibration"] == {"calibrated": False}

    recon = tmp_path / "recon"
    args = ["reconstruct", str(scan), "-o", str(recon), "--model", str(out), "--samples", "3"]
    assert runner.invoke(app, args).exit_code == 0
    from mrirecon.io import load

    std = load(recon / "example4d_std.h5")
    np.testing.assert_allclose(std.data, post.std.data, rtol=1e-5)
    assert std.provenance["calibration"]["scale"] == stored["scale"]
    report = tmp_path / "report"  # evaluate scores the same draws before and after
    args = ["evaluate", str(scan), "--accel", "4", "--methods", "zero-filled", "--model",
            str(out), "--samples", "3", "-o", str(report), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    records = json.loads((report / "records.json").read_text())
    sampled = [r for r in records if "within_2std" in r]
    assert sampled and all(r["std_scale"] == pytest.approx(stored["scale"]) for r in sampled)
    assert all(r["within_2std"] >= r["within_2std_uncalibrated"] for r in sampled)
    # the ceiling depends on the errors only: one value, no "before" copy
    assert all("corr_ceiling" in r and "corr_ceiling_uncalibrated" not in r for r in sampled)
    assert (report / "calibration.png").read_bytes()[:4] == b"\x89PNG"
    png = (recon / "example4d_uncertainty.png").read_bytes()  # colour bars: an RGBA figure
    width, height, depth, colour = struct.unpack(">IIBB", png[16:26])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and colour == 6 and width == 1200 and height == 360


def test_calibrate_bad_inputs_are_one_line_and_write_nothing(simulated_scans, tiny_cinn,
                                                             tmp_path) -> None:
    irim_config = {"steps": 1, "state_channels": 4, "levels": 2, "hidden": 2, "grad_hidden": 2}
    irim = save_checkpoint(tmp_path / "irim.safetensors", build("irim.v1", irim_config),
                           name="irim.v1", config=irim_config)
    one_slice = simulated_scans / "MR_small.h5"
    out = tmp_path / "out.safetensors"
    for model, data, message in ((irim, simulated_scans / "example4d.h5", "cannot sample"),
                                 (tiny_cinn, one_slice, "at least 2 slices")):
        result = runner.invoke(app, ["calibrate", str(model), str(data), "-o", str(out),
                                     "--accel", "4", "--samples", "2"])
        lines = result.stderr.strip().splitlines()
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert message in lines[-1] and len([ln for ln in lines if "error" in ln]) == 1
        assert not out.exists()


def test_a_checkpoint_with_malformed_calibration_is_one_line(simulated_scans, tiny_cinn,
                                                             tmp_path) -> None:
    data = tiny_cinn.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = json.loads(header["__metadata__"]["mrirecon"])
    meta["extra"]["calibration"] = {"method": "conformal", "scale": "big"}
    header["__metadata__"]["mrirecon"] = json.dumps(meta)
    text = json.dumps(header).encode()
    tiny_cinn.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])
    with pytest.raises(InputFileError, match="calibration scale"):
        build_reconstructor(model=tiny_cinn, samples=2)
    result = runner.invoke(app, ["reconstruct", str(simulated_scans / "MR_small.h5"), "-o",
                                 str(tmp_path / "r"), "--model", str(tiny_cinn), "--samples", "2"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "calibration scale" in result.stderr.strip().splitlines()[-1]


def test_per_acceleration_scales_interpolate_in_log_r() -> None:
    cal = Calibration("conformal", 1.5, by_acceleration={"4.0": 1.2, "8.0": 1.8})
    assert cal.scale_for(4.0) == pytest.approx(1.2) and cal.scale_for(8.0) == pytest.approx(1.8)
    assert cal.scale_for(math.sqrt(32)) == pytest.approx(1.5)  # halfway in log R
    assert cal.scale_for(2.0) == pytest.approx(1.2) and cal.scale_for(16.0) == pytest.approx(1.8)
    assert cal.scale_for(None) == 1.5
    again = Calibration.from_dict(cal.to_dict())
    assert again == cal
    for bad in ({"4": -1.0}, {"x": 1.0}, {"0.5": 1.0}, {"4": "big"}):
        with pytest.raises(InvalidParameterError, match="by_acceleration"):
            Calibration.from_dict({**cal.to_dict(), "by_acceleration": bad})
