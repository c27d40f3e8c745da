"""``run_batch``: one job per input, the next input prepared while the current one runs."""

from __future__ import annotations

import threading

import pytest

from mrirecon.cli._batch import run_batch
from mrirecon.errors import InputFileError


def test_next_item_is_prepared_while_the_current_job_runs(capsys) -> None:
    started = {i: threading.Event() for i in range(3)}
    prepared_in = set()

    def prepare(i: int) -> int:
        started[i].set()
        prepared_in.add(threading.current_thread().name)
        return 10 * i

    def job(value: int) -> dict:
        # Without overlap, prepare(next) would only start after this job returns.
        if value < 20:
            assert started[value // 10 + 1].wait(timeout=10), "next item was not prepared ahead"
        return {"value": value}

    records, failed = run_batch([0, 1, 2], job, "test", prepare=prepare)
    assert failed == 0 and [r["value"] for r in records] == [0, 10, 20]
    assert all(name.startswith("mrirecon-prefetch") for name in prepared_in)


def test_failures_while_preparing_are_reported_in_order(capsys) -> None:
    def prepare(name: str) -> str:
        if name.startswith("bad"):
            raise InputFileError(name, "not an HDF5 file")
        return name.upper()

    records, failed = run_batch(["a", "bad1", "b", "bad2"], lambda v: {"v": v}, "test",
                                prepare=prepare)
    assert failed == 2 and [r["v"] for r in records] == ["A", "B"]
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 2 and "bad1" in errors[0] and "bad2" in errors[1]


def test_unexpected_errors_propagate_and_stop_the_batch() -> None:
    seen = []

    def job(value: int) -> dict:
        seen.append(value)
        if value == 1:
            raise RuntimeError("bug")
        return {}

    with pytest.raises(RuntimeError, match="bug"):
        run_batch([0, 1, 2, 3], job, "test", prepare=lambda i: i)
    assert seen == [0, 1]
