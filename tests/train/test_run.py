"""The pieces a run is made of: its state and saves, the schedule, the epoch loader, DDP setup."""

from __future__ import annotations

import math

import pytest
import torch

from mrirecon.models.checkpoint import read_metadata
from mrirecon.models.registry import build
from mrirecon.train import distributed
from mrirecon.train.config import load_config
from mrirecon.train.loader import EpochLoader, datasets
from mrirecon.train.optimiser import build_optimiser, lr_factor, total_steps
from mrirecon.train.run import Run
from mrirecon.train.runlog import RunLog
from mrirecon.train.start import restore
from mrirecon.train.state import seed_everything


def make_run(tmp_path, *overrides: str) -> Run:
    cfg = load_config(None, ["model=rim.v1", "model_config.steps=2", "model_config.hidden=4",
                             f"out={tmp_path}", *overrides])
    model = build(cfg.model, cfg.model_config)
    optimizer, scheduler = build_optimiser(model, cfg.optim, 10)
    log = RunLog(tmp_path, append=False, enabled=False)
    return Run(cfg, model, optimizer, scheduler, log, tmp_path, {"note": "meta"}, total=10,
               steps_per_epoch=5, main=True)


@pytest.mark.parametrize(("metric", "scores", "best_step"),
                         [("ssim", [0.5, 0.7, 0.6], 2), ("nmse", [0.3, 0.1, 0.2], 2)])
def test_best_follows_the_metric_and_saves_best(tmp_path, metric, scores, best_step) -> None:
    run = make_run(tmp_path, f"best_metric={metric}")
    for step, score in enumerate(scores, start=1):
        run.step = step
        run.record_validation({"psnr": 20.0, "ssim": 0.5, "nmse": 0.2, metric: score})
        assert run.val[metric] == score
    assert run.best_record["step"] == best_step
    extra = read_metadata(tmp_path / "best.safetensors")["extra"]
    assert extra["step"] == best_step and extra["note"] == "meta"
    assert extra["val_metrics"][metric] == scores[best_step - 1]
    assert sorted(run.checkpoints()) == ["best"]


def test_save_last_then_restore_gives_the_counters_back(tmp_path) -> None:
    run = make_run(tmp_path)
    loss = sum(p.square().sum() for p in run.model.parameters())
    lr = run.optimise(loss)
    assert run.step == 1 and lr == pytest.approx(run.cfg.optim.lr * lr_factor(10, 0, "cosine")(0))
    run.epoch, run.seconds_before = 0, 5.0
    run.record_validation({"psnr": 20.0, "ssim": 0.5, "nmse": 0.2})
    run.save_last()
    assert sorted(run.checkpoints()) == ["best", "last", "state"]
    other = make_run(tmp_path / "other", f"resume={tmp_path}")
    counters = restore(other.cfg, other.model, other.optimizer, other.scheduler)
    assert counters["step"] == 1 and counters["best_record"]["step"] == 1
    assert counters["seconds_before"] >= 5.0
    for p, q in zip(run.model.parameters(), other.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_learning_rate_warms_up_then_follows_a_half_cosine() -> None:
    f = lr_factor(total=10, warmup=2, schedule="cosine")
    assert [f(0), f(1)] == [0.5, 1.0]
    assert f(2) == 1.0 and f(6) == pytest.approx(0.5) and f(10) == pytest.approx(0.0)
    assert lr_factor(10, 0, "constant")(7) == 1.0
    cfg = load_config(None, ["max_steps=7", "epochs=1"])
    assert total_steps(cfg, 5) == 5 and total_steps(cfg, 100) == 7


def test_epoch_loader_resumed_mid_epoch_gives_the_remaining_batches(train_val_folders) -> None:
    cfg = load_config(None, [f"data.train=[{train_val_folders / 'train'}]", "data.batch_size=4"])
    train_set, val_set = datasets(cfg, rank=0)
    assert val_set is None
    loader = EpochLoader(train_set, cfg, rank=0, world=1, device=torch.device("cpu"))
    assert loader.steps_per_epoch == math.ceil(len(train_set) / 4)
    seed_everything(0)
    epoch, batches = loader.batches(loader.steps_per_epoch)  # the start of epoch 1
    whole = [b["mask"] for b in batches]
    epoch_again, rest = loader.batches(loader.steps_per_epoch + 2)
    assert epoch == epoch_again == 1
    rest = [b["mask"] for b in rest]
    assert len(rest) == len(whole) - 2
    for a, b in zip(whole[2:], rest, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_one_process_needs_no_process_group(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dist = distributed.setup(torch.device("cpu"))
    assert (dist.rank, dist.world, dist.main) == (0, 1, True)
    net = torch.nn.Linear(2, 2)
    assert dist.wrap(net) is net and dist.any(True) and not dist.any(False)
    dist.barrier()
    dist.close()
