"""Running one job per input file: progress on a TTY, failures reported and skipped."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mrirecon.cli._console import err, error_line, info
from mrirecon.errors import MriReconError

T = TypeVar("T")


def progress_bar(label: str) -> Progress:
    """The progress bar of every command.

    On stderr, only when it is a terminal, and gone when done.
    """
    columns = (TextColumn(f"{label} {{task.description}}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    return Progress(*columns, console=err, disable=not err.is_terminal, transient=True)


def run_batch(items: Sequence[T], job: Callable[[Any], dict[str, Any]], label: str, *,
              prepare: Callable[[T], Any] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Run ``job`` on every item; returns the records of those that worked and the failure count.

    With ``prepare``, ``job`` gets ``prepare(item)`` instead of the item, and the next item is
    prepared in a background thread while ``job`` runs on the current one (reading input *i+1*
    overlaps reconstructing input *i*; at most two prepared items exist at once). Records keep
    the order of ``items``.

    A :class:`~mrirecon.errors.MriReconError` from one item (in ``prepare`` or ``job``) is printed
    as one line and the batch goes on; a rich progress bar is shown on stderr when it is a
    terminal.
    """
    records: list[dict[str, Any]] = []
    failed = 0
    with progress_bar(label) as bar, ThreadPoolExecutor(1, "mrirecon-prefetch") as pool:
        task = bar.add_task("", total=len(items))

        def ahead(index: int) -> Future | None:
            if prepare is None or index >= len(items):
                return None
            return pool.submit(prepare, items[index])

        pending = ahead(0)
        for index, item in enumerate(items):
            current, pending = pending, ahead(index + 1)
            bar.update(task, description=str(item))
            try:
                records.append(job(item if current is None else current.result()))
            except MriReconError as exc:
                error_line(naming(item, str(exc)))
                failed += 1
            except BaseException:
                if pending is not None:
                    pending.cancel()
                raise
            bar.advance(task)
    return records, failed


def naming(item: Any, message: str) -> str:
    """``message``, led by ``item``'s path unless it names the file already."""
    text = str(item)
    if text in message or Path(text).name in message:
        return message
    return f"{text}: {message}"


def skip_done(paths: Sequence[Path], outputs_of: Callable[[Path], Iterable[Path]]) -> list[Path]:
    """``--skip-existing``: the inputs with an output still missing; one line on the others.

    An input whose outputs cannot be named (``outputs_of`` raises a
    :class:`~mrirecon.errors.MriReconError`: a missing file, an unknown format) is kept, so that
    its reader reports it.
    """
    todo = []
    for path in paths:
        try:
            outputs = list(outputs_of(path))
        except MriReconError:
            outputs = []
        if not outputs or not all(p.exists() for p in outputs):
            todo.append(path)
    if len(todo) < len(paths):
        info(f"--skip-existing: {len(paths) - len(todo)} of {len(paths)} inputs already have "
             "their outputs; left out")
    return todo
