"""Running one job per input file: progress on a TTY, failures reported and skipped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mrirecon.cli._console import err, error_line
from mrirecon.errors import MriReconError

T = TypeVar("T")


def progress_bar(label: str) -> Progress:
    """The progress bar of every command: on stderr, only when it is a terminal, and gone
    when done."""
    columns = (TextColumn(f"{label} {{task.description}}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    return Progress(*columns, console=err, disable=not err.is_terminal, transient=True)


def run_batch(items: Sequence[T], job: Callable[[T], dict[str, Any]],
              label: str) -> tuple[list[dict[str, Any]], int]:
    """Run ``job`` on every item; returns the records of those that worked and the failure count.

    A :class:`~mrirecon.errors.MriReconError` from one item is printed as one line and the batch
    goes on; a rich progress bar is shown on stderr when it is a terminal.
    """
    records: list[dict[str, Any]] = []
    failed = 0
    with progress_bar(label) as bar:
        task = bar.add_task("", total=len(items))
        for item in items:
            bar.update(task, description=str(item))
            try:
                records.append(job(item))
            except MriReconError as exc:
                error_line(str(exc))
                failed += 1
            bar.advance(task)
    return records, failed
