"""The training loop end to end on tiny models and real (simulated) scans."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest
import torch

from mrirecon.errors import InputFileError, InvalidParameterError, MriReconError, OutputError
from mrirecon.models.checkpoint import load_checkpoint, read_metadata
from mrirecon.recon.protocols import Sampler
from mrirecon.train.config import load_config
from mrirecon.train.dataset import SliceDataset, find_files
from mrirecon.train.loop import train
from mrirecon.train.losses import reconstruction_loss
from mrirecon.train.runlog import LOG_COLUMNS
from mrirecon.train.state import load_state
from mrirecon.train.validation import validate

RIM = ["model=rim.v1", "model_config.steps=2", "model_config.hidden=8"]


@pytest.fixture(scope="module")
def folders(train_val_folders) -> Path:
    return train_val_folders


def config(folders: Path, out: Path, *extra: str):
    return load_config(None, [*RIM, f"data.train=[{folders / 'train'}]",
                              f"data.val=[{folders / 'val'}]", "data.batch_size=2",
                              "mask.accelerations=[4]", "optim.lr=1e-2", "log_every=1",
                              "val_every=10", "device=cpu", f"out={out}", *extra])


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)[0].state_dict()


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# losses ---------------------------------------------------------------------------------------

def test_loss_is_zero_for_perfect_estimate_and_has_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 16, 16, generator=g)
    perfect = target.to(torch.complex64)
    loss = reconstruction_loss([perfect, perfect], target, ssim=1.0, l1=1.0)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    noisy = (target + 0.1 * torch.rand(2, 16, 16, generator=g)).to(torch.complex64)
    noisy.requires_grad_(True)
    loss = reconstruction_loss([noisy], target, ssim=1.0, l1=0.5)
    loss.backward()
    assert float(loss.detach()) > 0 and noisy.grad is not None and noisy.grad.abs().sum() > 0


def test_loss_rejects_images_smaller_than_ssim_window() -> None:
    target = torch.rand(1, 6, 32)
    with pytest.raises(InvalidParameterError, match="at least 7x7"):
        reconstruction_loss([target.to(torch.complex64)], target, ssim=1.0, l1=0.0)
    assert float(reconstruction_loss([target.to(torch.complex64)], target, ssim=0.0,
                                     l1=1.0)) == 0.0


def test_mse_term_is_the_mean_squared_magnitude_error() -> None:
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 16, 16, generator=g)
    estimate = torch.polar(target + 0.2 * torch.rand(2, 16, 16, generator=g),
                           torch.rand(2, 16, 16, generator=g))
    expected = ((estimate.abs() - target) ** 2).mean()
    loss = reconstruction_loss([estimate], target, ssim=0.0, l1=0.0, mse=2.0)
    assert float(loss) == pytest.approx(2 * float(expected), rel=1e-6)


def test_last_step_loss_ignores_the_earlier_estimates() -> None:
    g = torch.Generator().manual_seed(2)
    target = torch.rand(1, 16, 16, generator=g)
    early = (target + torch.rand(1, 16, 16, generator=g)).to(torch.complex64).requires_grad_()
    last = (target + 0.1 * torch.rand(1, 16, 16, generator=g)).to(torch.complex64)
    last.requires_grad_()
    weights = {"ssim": 1.0, "l1": 1.0, "mse": 1.0}
    only_last = reconstruction_loss([early, last], target, steps="last", **weights)
    only_last.backward()
    only_last = float(only_last.detach())
    assert early.grad is None and last.grad.abs().sum() > 0
    assert only_last == pytest.approx(
        float(reconstruction_loss([last.detach()], target, **weights)), rel=1e-6)
    both = reconstruction_loss([early.detach(), last.detach()], target, **weights)
    assert float(both) > only_last
    with pytest.raises(InvalidParameterError, match="'all' or 'last'"):
        reconstruction_loss([last], target, steps="first", **weights)


# validation -----------------------------------------------------------------------------------

def test_validation_over_mask_repeats_is_the_mean_over_seeds(folders) -> None:
    from helpers import TINY_MODELS

    from mrirecon.models.registry import build

    torch.manual_seed(0)
    model = build("rim.v1", TINY_MODELS["rim.v1"])
    files = find_files(folders / "val")

    def score(**kw) -> dict[str, float]:
        ds = SliceDataset(files, accelerations=(4,), train=False, **kw)
        return validate(model, ds, torch.device("cpu"), batch_size=8)

    each = [score(seed=s) for s in (2, 3, 4)]
    together = score(seed=2, val_repeats=3)
    for key in ("psnr", "ssim", "nmse"):
        assert together[key] == pytest.approx(sum(e[key] for e in each) / 3, rel=1e-6)
    assert len({round(e["psnr"], 6) for e in each}) == 3  # the masks really differ


@pytest.mark.parametrize(("metric", "pick"), [("psnr", max), ("nmse", min)])
def test_best_checkpoint_follows_best_metric(folders, tmp_path, metric, pick) -> None:
    out = tmp_path / "run"
    summary = train(config(folders, out, "max_steps=6", "val_every=2", f"best_metric={metric}",
                           "mask.val_repeats=2"))
    val = [r for r in rows(out) if r["val_psnr"]]
    assert len(val) == 3
    chosen = pick(val, key=lambda r: float(r[f"val_{metric}"]))
    assert summary["best"]["step"] == int(chosen["step"])
    assert read_metadata(out / "best.safetensors")["extra"]["step"] == int(chosen["step"])


def test_best_metric_and_val_repeats_are_checked() -> None:
    with pytest.raises(InvalidParameterError, match="best_metric.*ssim, psnr, nmse or kspace_loss"):
        load_config(None, ["best_metric=loss"])
    with pytest.raises(InvalidParameterError, match="mask.val_repeats.*>= 1"):
        load_config(None, ["mask.val_repeats=0"])


# the loop -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_rim_trains_and_writes_a_run_folder(folders, tmp_path) -> None:
    out = tmp_path / "run"
    summary = train(config(folders, out, "max_steps=20"))
    assert summary["steps"] == 20 and not summary["interrupted"]
    for name in ("config.yaml", "last.safetensors", "best.safetensors", "state.pt", "log.csv"):
        assert (out / name).is_file(), name
    log = rows(out)
    assert list(log[0]) == LOG_COLUMNS
    losses = [float(r["loss"]) for r in log if r["loss"]]
    assert len(losses) == 20
    assert sum(losses[-5:]) < sum(losses[:5])
    val = [r for r in log if r["val_ssim"]]
    assert [int(r["step"]) for r in val] == [10, 20]
    assert summary["best"]["ssim"] == max(float(r["val_ssim"]) for r in val)
    model, meta = load_checkpoint(out / "best.safetensors")
    assert meta["name"] == "rim.v1" and meta["config"]["hidden"] == 8
    extra = meta["extra"]
    assert extra["train_data"] == {"files": ["example4d.h5"], "slices": 24}
    assert extra["mask"]["accelerations"] == [4.0] and "99th percentile" in extra["normalisation"]
    assert read_metadata(out / "last.safetensors")["extra"]["step"] == 20
    assert load_state(out / "state.pt")["step"] == 20
    assert load_config(out / "config.yaml").model_config["steps"] == 2

    from typer.testing import CliRunner

    from mrirecon.cli.app import app

    result = CliRunner().invoke(app, ["reconstruct", str(folders / "val" / "example4d.h5"),
                                      "-o", str(tmp_path / "recon"), "--model",
                                      str(out / "best.safetensors"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "recon" / "example4d.h5").is_file()


@pytest.mark.slow
def test_resume_is_exact(folders, tmp_path) -> None:
    straight = train(config(folders, tmp_path / "a", "max_steps=20"))
    stop = threading.Event()

    def progress(event: dict) -> None:
        if event["step"] == 10:
            stop.set()

    half = train(config(folders, tmp_path / "b", "max_steps=20"), progress=progress, stop=stop)
    assert half["interrupted"] and half["steps"] == 10
    assert load_state(tmp_path / "b" / "state.pt")["step"] == 10
    resumed = train(config(folders, tmp_path / "b", "max_steps=20",
                           f"resume={tmp_path / 'b'}"))
    assert resumed["steps"] == straight["steps"] == 20
    a = weights(tmp_path / "a" / "last.safetensors")
    b = weights(tmp_path / "b" / "last.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)
    la = [r["loss"] for r in rows(tmp_path / "a") if r["loss"]]
    lb = [r["loss"] for r in rows(tmp_path / "b") if r["loss"]]
    assert [float(x) for x in la] == pytest.approx([float(x) for x in lb], abs=1e-6)


def test_refuses_non_empty_run_folder(folders, tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not empty"):
        train(config(folders, out, "max_steps=1"))
    summary = train(config(folders, out, "max_steps=1"), overwrite=True)
    assert summary["steps"] == 1 and (out / "notes.txt").read_text() == "keep me"


def test_a_run_that_failed_before_its_first_save_does_not_block_the_rerun(
        folders, tmp_path, monkeypatch) -> None:
    import mrirecon.train.loop as loop

    out = tmp_path / "run"

    def fail(*args, **kwargs):
        raise MriReconError("the first step failed")

    with monkeypatch.context() as patch:
        patch.setattr(loop, "batch_loss", fail)
        with pytest.raises(MriReconError, match="the first step failed"):
            train(config(folders, out, "max_steps=2"))
    assert not out.exists()  # it made the folder and saved nothing: it leaves nothing
    out.mkdir()
    (out / "log.csv").write_text("step\n")  # what a run killed before its first save leaves
    assert train(config(folders, out, "max_steps=2"))["steps"] == 2  # no --overwrite needed
    with pytest.raises(OutputError, match="not empty"):  # now it holds checkpoints
        train(config(folders, out, "max_steps=2"))


def test_stop_event_saves_last_and_state(folders, tmp_path) -> None:
    out = tmp_path / "run"
    stop = threading.Event()
    stop.set()
    summary = train(config(folders, out, "max_steps=5"), stop=stop)
    assert summary["interrupted"] and summary["steps"] == 0
    assert (out / "last.safetensors").is_file() and (out / "state.pt").is_file()
    assert not (out / "best.safetensors").exists()


def test_empty_training_set_is_an_error(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    cfg = load_config(None, [*RIM, f"data.train=[{tmp_path / 'empty'}]", "max_steps=1",
                             f"out={tmp_path / 'run'}", "device=cpu"])
    with pytest.raises(Exception, match="no .h5 files found"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_corrupt_training_file_fails_before_the_run_folder_exists(folders, tmp_path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    good = next((folders / "train").glob("*.h5"))
    (bad / "cut.h5").write_bytes(good.read_bytes()[:5000])
    with pytest.raises(InputFileError, match="truncated HDF5"):
        train(config(folders, tmp_path / "run", "max_steps=1", f"data.train=[{bad}]"))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_irim_trains_on_crops(folders, tmp_path) -> None:
    out = tmp_path / "run"
    cfg = load_config(None, [f"data.train=[{folders / 'train'}]", f"data.val=[{folders / 'val'}]",
                             "model=irim.v1", "model_config.steps=2",
                             "model_config.state_channels=6", "model_config.levels=2",
                             "model_config.blocks_per_level=1", "model_config.hidden=8",
                             "model_config.grad_hidden=8", "data.crop=32", "data.batch_size=2",
                             "max_steps=5", "device=cpu", f"out={out}"])
    summary = train(cfg)
    assert summary["steps"] == 5 and summary["best"] is not None
    assert load_checkpoint(out / "best.safetensors")[1]["name"] == "irim.v1"


def _ddp_worker(rank: int, port: int, folders: Path, out: Path) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE="2", LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    masks: list[torch.Tensor] = []

    def progress(event: dict) -> None:
        if "masks" in event:
            masks.append(event["masks"].clone())

    summary = train(config(folders, out, "max_steps=4", "val_every=100"), progress=progress)
    assert summary["steps"] == 4 and summary["world_size"] == 2
    torch.save({"masks": masks, "spread": summary["weight_spread"]},
               out.parent / f"rank{rank}.pt")


@pytest.mark.slow
def test_ddp_two_gloo_processes(folders, tmp_path) -> None:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    mp.spawn(_ddp_worker, args=(port, folders, out), nprocs=2, join=True)
    assert [int(r["step"]) for r in rows(out) if r["loss"]] == [1, 2, 3, 4]
    assert (out / "best.safetensors").is_file() and load_state(out / "state.pt")["step"] == 4
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # both ranks end with the same weights (every rank measures its distance to rank 0's) ...
    assert ranks[0]["spread"] == ranks[1]["spread"] == 0.0
    # ... trained on different masks at every step
    assert len(ranks[0]["masks"]) == len(ranks[1]["masks"]) == 4
    for a, b in zip(ranks[0]["masks"], ranks[1]["masks"], strict=True):
        assert a.shape == b.shape and not torch.equal(a, b)


# killed runs ----------------------------------------------------------------------------------

class _Killed(BaseException):
    """Stands for the process dying: nothing in the loop catches it."""


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["state", "last"])
def test_write_interrupted_midway_keeps_checkpoints_whole(folders, tmp_path, monkeypatch,
                                                          victim) -> None:
    """A save dying after writing half its bytes leaves the previous files readable, no
    temporary file behind, and a resume that still ends on the straight run's weights."""
    import mrirecon.models.checkpoint as checkpoint_module
    import mrirecon.train.state as state_module

    straight = tmp_path / "straight"
    train(config(folders, straight, "max_steps=12", "val_every=4"))
    module, name = {"state": (state_module.torch, "save"),
                    "last": (checkpoint_module, "save_file")}[victim]
    real = getattr(module, name)
    calls = {"n": 0}

    target = {"state": ".state.pt.", "last": ".last.safetensors."}[victim]

    def dying_write(obj, path, *args, **kwargs):
        if Path(path).name.startswith(target):  # atomic_path's temporary name
            calls["n"] += 1
        if calls["n"] < 3:  # the saves at step 4 and 8 succeed, the one at step 12 dies
            return real(obj, path, *args, **kwargs)
        real(obj, path, *args, **kwargs)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise _Killed

    monkeypatch.setattr(module, name, dying_write)
    out = tmp_path / "run"
    with pytest.raises(_Killed):
        train(config(folders, out, "max_steps=12", "val_every=4"))
    monkeypatch.setattr(module, name, real)
    assert not list(out.glob(".*.part*"))
    last = read_metadata(out / "last.safetensors")["extra"]["step"]
    state = load_state(out / "state.pt")["step"]
    assert last == 8 and state == (8 if victim == "state" else 12)
    load_checkpoint(out / "last.safetensors")  # whole and loadable
    summary = train(config(folders, out, "max_steps=12", "val_every=4", f"resume={out}"))
    assert summary["steps"] == 12
    a, b = weights(straight / "last.safetensors"), weights(out / "last.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_continues_from_last_checkpoint(folders, tmp_path) -> None:
    """``mrirecon train`` killed with SIGKILL, then ``mrirecon train --resume RUN_DIR``: the run
    goes on from the last saved step and ends on the weights of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    overrides = [*RIM, f"data.train=[{folders / 'train'}]", f"data.val=[{folders / 'val'}]",
                 "data.batch_size=2", "mask.accelerations=[4]", "optim.lr=1e-2", "log_every=1",
                 "val_every=5", "device=cpu", "max_steps=60"]
    def command(out: Path) -> list[str]:
        args = [sys.executable, "-m", "mrirecon", "train", "--output", str(out)]
        for item in overrides:
            args += ["--set", item]
        return args

    # both runs in subprocesses with one thread: float sums then agree bit for bit
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight = tmp_path / "straight"
    subprocess.run(command(straight), env=env, check=True, capture_output=True, timeout=300)

    out = tmp_path / "run"
    proc = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    saved = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "state.pt").is_file():
            saved = load_state(out / "state.pt")["step"]
            if saved >= 10:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with proc.stderr:
        stderr = proc.stderr.read().decode()
    assert proc.returncode == -signal.SIGKILL, stderr
    saved = load_state(out / "state.pt")["step"]
    assert 10 <= saved < 60
    logged = max(int(r["step"]) for r in rows(out))
    assert logged >= saved

    result = subprocess.run([sys.executable, "-m", "mrirecon", "train", "--resume", str(out)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert not list(out.glob(".*.part*"))
    log = rows(out)
    steps = [int(r["step"]) for r in log if r["loss"]]
    assert steps == list(range(1, 61))  # rows after the kill's last save were replaced
    a, b = weights(straight / "last.safetensors"), weights(out / "last.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)


# likelihood models ------------------------------------------------------------------------------

@pytest.mark.slow
def test_cinn_trains_by_likelihood_and_validates_its_posterior_mean(folders, tmp_path) -> None:
    from mrirecon.recon.methods import build_reconstructor

    out = tmp_path / "run"
    cfg = load_config(None, [f"data.train=[{folders / 'train'}]", f"data.val=[{folders / 'val'}]",
                             "model=cinn.v1", "model_config.levels=2",
                             "model_config.blocks_per_level=2", "model_config.hidden=8",
                             "model_config.cond_channels=4", "model_config.cond_hidden=8",
                             "data.batch_size=2", "mask.accelerations=[4]", "optim.lr=3e-3",
                             "log_every=1", "val_every=15", "max_steps=30", "device=cpu",
                             f"out={out}"])
    summary = train(cfg)
    assert summary["steps"] == 30
    losses = [float(r["loss"]) for r in rows(out) if r["loss"]]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.2  # bits per dimension fall
    val = [r for r in rows(out) if r["val_psnr"]]
    assert [int(r["step"]) for r in val] == [15, 30]
    assert all(float(r["val_psnr"]) > 10 for r in val)
    sampler = build_reconstructor(model=out / "best.safetensors")
    assert isinstance(sampler, Sampler) and sampler.name == "cinn.v1"


def test_init_replaces_a_part_the_run_names_by_file(folders, tmp_path) -> None:
    """A cINN fine-tuned with ``init`` and a new ``irim_checkpoint`` keeps its flow's weights
    and conditions on the new i-RIM (not the copy inside the init checkpoint)."""
    from mrirecon.models.checkpoint import save_checkpoint
    from mrirecon.models.registry import build

    irim_config = {"steps": 1, "state_channels": 4, "levels": 2, "hidden": 2, "grad_hidden": 2}
    irims = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        irims.append(save_checkpoint(tmp_path / f"irim{seed}.safetensors",
                                     build("irim.v1", irim_config), name="irim.v1",
                                     config=irim_config))
    flow = ["model=cinn.v1", "model_config.levels=2", "model_config.blocks_per_level=1",
            "model_config.hidden=4", "model_config.cond_channels=2", "model_config.cond_hidden=4",
            "model_config.conditioner=irim", "data.batch_size=2", "mask.accelerations=[4]",
            "log_every=1", "val_every=5", "device=cpu", f"data.train=[{folders / 'train'}]",
            f"data.val=[{folders / 'val'}]"]
    first = tmp_path / "first"
    train(load_config(None, [*flow, f"model_config.irim_checkpoint={irims[0]}", "max_steps=1",
                             f"out={first}"]))
    start = weights(first / "last.safetensors")
    second = tmp_path / "second"
    cfg = load_config(None, [*flow, f"model_config.irim_checkpoint={irims[1]}", "max_steps=1",
                             "optim.lr=1e-12", f"init={first / 'last.safetensors'}",
                             f"out={second}"])
    train(cfg)
    tuned, new_irim = weights(second / "last.safetensors"), weights(irims[1])
    assert all(torch.equal(tuned[f"irim.{k}"], v) for k, v in new_irim.items())
    assert not all(torch.equal(start[f"irim.{k}"], v) for k, v in new_irim.items())
    flow_keys = [k for k in start if not k.startswith("irim.") and "initialized" not in k]
    assert all(torch.allclose(tuned[k], start[k], atol=1e-6) for k in flow_keys)


def test_init_starts_a_new_run_from_a_checkpoints_weights(folders, tmp_path) -> None:
    first = tmp_path / "first"
    train(config(folders, first, "max_steps=2", "model_config.hidden=6"))
    start = weights(first / "last.safetensors")
    second = tmp_path / "second"  # model_config.hidden=8 from RIM is replaced by the checkpoint's
    summary = train(config(folders, second, "max_steps=1", "optim.lr=1e-9",
                           f"init={first / 'last.safetensors'}"))
    assert summary["steps"] == 1 and load_state(second / "state.pt")["step"] == 1
    assert load_config(second / "config.yaml").model_config["hidden"] == 6
    after = weights(second / "last.safetensors")
    for key in start:
        torch.testing.assert_close(after[key], start[key], atol=1e-6, rtol=0)
    with pytest.raises(InvalidParameterError, match="holds rim.v1"):
        train(config(folders, tmp_path / "third", "max_steps=1", "model=irim.v1",
                     f"init={first / 'last.safetensors'}"))
