"""The run log: log.csv rows, the loss window, progress events, truncation on resume."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from mrirecon.train.runlog import LOG_COLUMNS, RunLog


def read(out: Path) -> list[dict[str, str]]:
    with open(out / "log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_loss_rows_every_n_steps_and_at_the_last_with_the_window_mean(tmp_path) -> None:
    events: list[dict] = []
    log = RunLog(tmp_path, append=False, enabled=True, every=2, total=3, progress=events.append)
    for step, loss in ((1, 1.0), (2, 3.0), (3, 5.0)):
        log.step(step, 0, loss, lr=0.1 * step, seconds=1.23456, masks=f"m{step}")
    log.validation(3, 0, seconds=2.0, val={"psnr": 30.0, "ssim": 0.9, "nmse": 0.01})
    log.validated(3, 0, {"psnr": 30.0, "ssim": 0.9, "nmse": 0.01})
    log.close()
    with open(tmp_path / "log.csv", newline="") as fh:
        assert fh.readline().strip() == ",".join(LOG_COLUMNS)
    rows = read(tmp_path)
    assert [(r["step"], r["loss"], r["lr"], r["seconds"]) for r in rows[:2]] == [
        ("2", "2.0", "0.2", "1.235"), ("3", "5.0", str(0.1 * 3), "1.235")]
    assert rows[2]["loss"] == "" and rows[2]["val_ssim"] == "0.9" and rows[2]["seconds"] == "2.0"
    assert log.loss == 5.0
    assert [e["step"] for e in events] == [1, 2, 3, 3]
    assert events[0] == {"step": 1, "total": 3, "epoch": 0, "loss": 1.0, "lr": 0.1,
                         "masks": "m1"}
    assert events[-1] == {"step": 3, "total": 3, "epoch": 0,
                          "val": {"psnr": 30.0, "ssim": 0.9, "nmse": 0.01}}


def test_unlogged_steps_are_the_final_loss(tmp_path) -> None:
    log = RunLog(tmp_path, append=False, enabled=True, every=10, total=100)
    assert math.isnan(log.loss)
    log.step(1, 0, 2.0, 0.1, 0.0, None)
    log.step(2, 0, 4.0, 0.1, 0.0, None)
    log.close()
    assert log.loss == pytest.approx(3.0) and read(tmp_path) == []


def test_disabled_log_writes_nothing_but_reports_progress(tmp_path) -> None:
    events: list[dict] = []
    log = RunLog(tmp_path, append=False, enabled=False, every=1, total=1, progress=events.append)
    log.step(1, 0, 1.0, 0.1, 0.0, None)
    log.close()
    assert not (tmp_path / "log.csv").exists() and len(events) == 1 and log.loss == 1.0


def test_append_drops_rows_after_the_resumed_step(tmp_path) -> None:
    log = RunLog(tmp_path, append=False, enabled=True, every=1, total=10)
    for step in range(1, 6):
        log.step(step, 0, float(step), 0.1, 0.0, None)
    log.close()
    log = RunLog(tmp_path, append=True, enabled=True, until=3, every=1, total=10)
    log.step(4, 0, 40.0, 0.1, 0.0, None)
    log.close()
    assert [(r["step"], r["loss"]) for r in read(tmp_path)] == [
        ("1", "1.0"), ("2", "2.0"), ("3", "3.0"), ("4", "40.0")]
    assert not list(tmp_path.glob(".*.part*"))
