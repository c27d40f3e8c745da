"""Scan-specific adaptation (``mrirecon reconstruct --adapt``): ZS-SSL on the input's own k-space.

The learning tests use a small RIM trained (supervised, 150 steps) on k-space simulated from
nibabel's example4d, a real EPI head (1 coil, slices 2-17, 64x64). *Mismatched*: applied to
pydicom's MR_small, a T1-like image from another source, where it is worse than zero-filled;
adaptation on MR_small's own undersampled k-space must gain. *Matched*: applied to held-out
example4d slices 18-21, where it is already good; early stopping must keep it within 0.2 dB.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from mrirecon.cli.app import app
from mrirecon.errors import InvalidParameterError
from mrirecon.io import load
from mrirecon.io.fastmri_h5 import read_reconstruction
from mrirecon.metrics import psnr
from mrirecon.models.checkpoint import read_metadata
from mrirecon.models.rim import RIM, RIMConfig
from mrirecon.physics.simulate import SimulationParams, resample_inplane, simulate_kspace
from mrirecon.recon.learned import estimate
from mrirecon.recon.model_inputs import prepare_batch, run_model
from mrirecon.sampling import MaskSpec, make_mask
from mrirecon.train.adapt import AdaptOptions, adapt

runner = CliRunner()
EXAMPLE4D = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
TRAIN, HELD_OUT = list(range(2, 18)), list(range(18, 22))


def _mask(seed: int, accel: float = 3.0) -> torch.Tensor:
    return torch.as_tensor(make_mask(MaskSpec(kind="random", acceleration=accel,
                                              shape=(64, 64), center_fraction=0.125,
                                              seed=seed)).array)


@pytest.fixture(scope="module")
def epi() -> tuple[np.ndarray, np.ndarray]:
    volume = np.asarray(nib.load(EXAMPLE4D).dataobj, dtype=np.float32)[..., 0].transpose(2, 1, 0)
    volume, _ = resample_inplane(volume, np.eye(4), (64, 64))
    return simulate_kspace(volume, SimulationParams(coils=1, noise=0.01, seed=0))


@pytest.fixture(scope="module")
def mr_small() -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(load(Path(get_testdata_file("MR_small.dcm", download=False))).data,
                       dtype=np.float32)
    return simulate_kspace(image, SimulationParams(coils=1, noise=0.01, seed=1))


@pytest.fixture(scope="module")
def epi_model(epi) -> RIM:
    kspace, target = epi
    torch.manual_seed(0)
    model = RIM(RIMConfig(steps=4, hidden=16))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    for _ in range(150):
        index = list(rng.choice(TRAIN, 4, replace=False))
        mask = _mask(int(rng.integers(2**31)))
        batch = prepare_batch(torch.as_tensor(kspace[index]) * mask, mask)
        goal = torch.as_tensor(target[index]) / batch.scale[:, None, None]
        estimates = run_model(model, batch)
        loss = sum((e.abs() - goal).abs().mean() for e in estimates) / len(estimates)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def _gain(model, kspace, target, options) -> tuple[float, float, dict]:
    """(PSNR before, PSNR after adaptation, record) on one 3x mask."""
    mask = _mask(12345)
    k = torch.as_tensor(kspace) * mask
    with torch.no_grad():
        before = psnr(target, estimate(model, k, mask).numpy())
    adapted, record = adapt(model, k, mask, options)
    with torch.no_grad():
        after = psnr(target, estimate(adapted, k, mask).numpy())
    return before, after, record


@pytest.mark.slow
def test_adapt_improves_a_mismatched_model_on_a_real_image(epi_model, mr_small) -> None:
    kspace, target = mr_small
    mask = _mask(12345)
    batch = prepare_batch(torch.as_tensor(kspace) * mask, mask)
    zero_filled = psnr(target, (batch.x0.square().sum(1).sqrt()
                                * batch.scale[:, None, None]).numpy())
    before, after, record = _gain(epi_model, kspace, target,
                                  AdaptOptions(steps=60, lr=1e-3))
    assert before < zero_filled  # the mismatch is real
    assert after > before + 1.0, (before, after, record)
    assert record["best_step"] > 0 and record["holdout_loss"][1] < record["holdout_loss"][0]
    checks = dict(record["checks"])  # every check's loss, the kept one among them
    assert checks[0] == record["holdout_loss"][0]
    assert checks[record["best_step"]] == record["holdout_loss"][1]
    gain = AdaptOptions(steps=1).min_gain  # no check beat the kept one by a gain
    assert min(checks.values()) >= record["holdout_loss"][1] * (1 - gain)
    assert max(checks) == record["steps_taken"]


@pytest.mark.slow
def test_early_stopping_keeps_a_matched_model_from_getting_worse(epi_model, epi) -> None:
    """At the default settings, 100 steps: run to the end without early stopping, the model the
    EPI slices already fit loses more than 0.2 dB on held-out slices; with it, it does not.
    (At 10x the learning rate the default rule does not protect it: README, "Adapting".)"""
    kspace, target = epi
    options = AdaptOptions(steps=100)
    unguarded = dataclasses.replace(options, min_gain=0.0, patience=100)
    before, after, record = _gain(epi_model, kspace[HELD_OUT], target[HELD_OUT], options)
    _, last, ran = _gain(epi_model, kspace[HELD_OUT], target[HELD_OUT],
                         dataclasses.replace(unguarded, check_every=100))
    assert ran["best_step"] == 100 and last < before - 0.2, (before, last, ran)
    assert after >= before - 0.2, (before, after, record)
    assert record["stopped"] == "early stopping", record


def test_adapt_budgets_are_prefixes_of_a_longer_run(epi_model, epi) -> None:
    kspace, _ = epi
    mask = _mask(7)
    k = torch.as_tensor(kspace[HELD_OUT[:1]]) * mask
    seen: dict[int, dict] = {}
    options = AdaptOptions(steps=6, lr=1e-3, check_every=3, patience=5, min_gain=0.0)
    adapt(epi_model, k, mask, options,
          on_check=lambda step, state, _model: seen.__setitem__(step, copy.deepcopy(state)))
    short, _ = adapt(epi_model, k, mask, dataclasses.replace(options, steps=3))
    for name, value in short.state_dict().items():
        torch.testing.assert_close(value, seen[3][name])


def test_the_given_model_is_left_unchanged_and_a_sparse_mask_is_refused(epi_model, epi) -> None:
    kspace, _ = epi
    before = copy.deepcopy(epi_model.state_dict())
    mask = _mask(3, accel=2.0)
    adapt(epi_model, torch.as_tensor(kspace[:1]) * mask, mask, AdaptOptions(steps=2, lr=1e-2))
    for name, value in epi_model.state_dict().items():
        assert torch.equal(value, before[name])
    sparse = torch.zeros(1, 64, dtype=torch.bool)
    sparse[0, 30:34] = True
    sparse[0, [5, 50]] = True
    with pytest.raises(InvalidParameterError, match="too few"):
        adapt(epi_model, torch.as_tensor(kspace[:1]) * sparse, sparse, AdaptOptions(steps=2))


@pytest.mark.parametrize("kwargs,message", [
    ({"steps": 0}, "--adapt takes a number of steps >= 1, got 0"),
    ({"steps": -3}, "got -3"),
    ({"steps": 5, "minutes": 0.0}, "--adapt-minutes must be > 0"),
    ({"steps": 5, "lr": -1.0}, "--adapt-lr is out of range"),
    ({"steps": 5, "min_gain": -0.01}, "--adapt-min-gain is out of range: -0.01"),
])
def test_options_are_checked(kwargs, message) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        AdaptOptions(**kwargs)


# the command line -------------------------------------------------------------------------


def reconstruct(*args):
    return runner.invoke(app, ["reconstruct", *[str(a) for a in args]])


def test_reconstruct_adapt_records_provenance_and_saves_reusable_weights(
        simulated_scans, tiny_checkpoints, tmp_path) -> None:
    scan = simulated_scans / "MR_small.h5"
    result = reconstruct(scan, "-o", tmp_path / "a", "--model", tiny_checkpoints["irim"],
                         "--adapt", 4, "--save-adapted", "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)[0]
    adaptation = record["adaptation"]
    assert adaptation["settings"]["steps"] == 4 and adaptation["settings"]["per"] == "volume"
    run = adaptation["runs"][0]
    assert run["steps_taken"] <= 4 and 0 <= run["best_step"] <= run["steps_taken"]
    assert run["stopped"] in ("steps", "early stopping") and run["seconds"] > 0
    written = read_reconstruction(tmp_path / "a" / "MR_small.h5")
    assert written.provenance["adaptation"] == adaptation
    saved = tmp_path / "a" / "MR_small_adapted.safetensors"
    meta = read_metadata(saved)
    assert meta["extra"]["adaptation"] == adaptation
    assert meta["extra"]["adapted_from"]["checkpoint"] == str(tiny_checkpoints["irim"])
    again = reconstruct(scan, "-o", tmp_path / "b", "--model", saved)
    assert again.exit_code == 0, again.stderr
    np.testing.assert_allclose(read_reconstruction(tmp_path / "b" / "MR_small.h5").data,
                               written.data, rtol=1e-4, atol=1e-6 * written.data.max())
    rerun = reconstruct(scan, "-o", tmp_path / "a", "--model", tiny_checkpoints["irim"],
                        "--adapt", 4, "--save-adapted")
    assert rerun.exit_code == 1 and "exists" in rerun.stderr


def test_reconstruct_adapt_per_slice(simulated_scans, tiny_checkpoints, tmp_path) -> None:
    result = reconstruct(simulated_scans / "example4d.h5", "-o", tmp_path, "--model",
                         tiny_checkpoints["rim"], "--adapt", 2, "--adapt-per", "slice",
                         "--adapt-minutes", 1, "--adapt-min-gain", 0.2, "--json")
    assert result.exit_code == 0, result.stderr
    adaptation = json.loads(result.stdout)[0]["adaptation"]
    assert adaptation["settings"]["min_gain"] == 0.2 and adaptation["settings"]["minutes"] == 1
    runs = adaptation["runs"]
    assert len(runs) == 24 and all(r["steps_taken"] <= 2 for r in runs)


@pytest.mark.parametrize("args,message", [
    (["--adapt", "0"], "error: --adapt takes a number of steps >= 1, got 0"),
    (["--adapt", "-2"], "got -2"),
    (["--adapt", "5", "--method", "zero-filled"], "--method zero-filled has no weights"),
    (["--adapt", "5", "--method", "cs"], "--method cs has no weights"),
    (["--adapt", "5", "--adapt-minutes", "0"], "--adapt-minutes must be > 0"),
    (["--save-adapted"], "--save-adapted needs --adapt STEPS"),
    (["--adapt-min-gain", "0.05"], "--adapt-min-gain needs --adapt STEPS"),
    (["--adapt", "5", "--adapt-min-gain", "-1"], "--adapt-min-gain is out of range"),
    (["--adapt", "5", "--adapt-per", "slice", "--save-adapted"], "one per slice"),
    (["--adapt", "5", "--samples", "4"], "cannot be combined with --samples"),
])
def test_reconstruct_adapt_bad_options(simulated_scans, tmp_path, args, message) -> None:
    result = reconstruct(simulated_scans / "MR_small.h5", "-o", tmp_path / "o", *args)
    assert result.exit_code != 0 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_reconstruct_adapt_refuses_a_sampler_and_a_sparse_acquisition(
        simulated_scans, tiny_checkpoints, tmp_path) -> None:
    result = reconstruct(simulated_scans / "MR_small.h5", "-o", tmp_path / "o", "--model",
                         tiny_checkpoints["cinn"], "--adapt", 3)
    assert result.exit_code == 2 and "cannot be adapted" in result.stderr  # a usage error
    sparse = reconstruct(simulated_scans / "MR_small.h5", "-o", tmp_path / "s", "--model",
                         tiny_checkpoints["rim"], "--adapt", 3, "--accel", 12,
                         "--center-fraction", 0.04)
    assert sparse.exit_code == 1 and "MR_small.h5" in sparse.stderr
    assert "too few" in sparse.stderr and "Traceback" not in sparse.stderr
    assert not list((tmp_path / "s").glob("*.h5"))
