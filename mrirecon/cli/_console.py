"""The command line's one stderr console and its one error path.

Results and ``--json`` go to stdout (plain ``print``); messages, warnings and progress go to
stderr through :data:`err`. Expected failures (:class:`~mrirecon.errors.MriReconError`, click
usage errors) become one red line and an exit code; they never show a traceback.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from mrirecon.errors import MriReconError
from mrirecon.jsonutil import strict_dumps

# click's exception classes, wherever this Typer keeps click (real or vendored)
_click_exceptions = importlib.import_module(typer.BadParameter.__module__)
UsageError = _click_exceptions.UsageError
ClickException = _click_exceptions.ClickException

err = Console(stderr=True, soft_wrap=True, highlight=False)


def error_line(message: str) -> None:
    """Print ``error: message`` on stderr as one line (newlines folded)."""
    one_line = " ".join(str(message).split())
    err.print(f"[bold red]error:[/] {escape(one_line)}")


def warn(path: Any, message: str) -> None:
    """One ``warning: path: message`` line on stderr."""
    err.print(f"[yellow]warning:[/] {escape(str(path))}: {escape(' '.join(message.split()))}")


def warn_outside_domain(path: Any, notes: list[str]) -> None:
    """One ``warning:`` line on stderr: ``path`` lies outside the model's training domain."""
    warn(path, f"outside the model's training domain: {'; '.join(notes)}")


def info(message: str) -> None:
    """A message for people (stderr)."""
    err.print(message)


def emit_json(data: Any) -> None:
    """Machine-readable output on stdout, as strict JSON.

    A non-finite number becomes ``null``, and a warning on stderr says how many there were.
    """
    replaced: list[int] = []
    print(strict_dumps(data, replaced, indent=2))
    if replaced:
        err.print(f"[yellow]warning:[/] {len(replaced)} non-finite number(s) (NaN or Inf) "
                  "written as null in the JSON output")


def print_table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    """Print results on stdout: a rich table on a terminal, tab-separated lines in a pipe.

    In a pipe the header comes first, so ``cut``/``awk`` work on the lines. Nothing at all is
    printed when there are no rows.
    """
    if not rows:
        return
    if sys.stdout.isatty():
        from rich.table import Table

        table = Table(*columns, title=title, title_justify="left")
        for row in rows:
            table.add_row(*(str(v) for v in row))
        Console(soft_wrap=True).print(table)
    else:
        print("\t".join(columns))
        for row in rows:
            print("\t".join(str(v) for v in row))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so the command unwinds (and cleans up) as on Ctrl-C."""


_TERMINATED: list[int] = []  # set by the SIGTERM handler: the exit code becomes 143


def _raise_terminated(signum: int, frame: Any) -> None:
    _TERMINATED.append(signum)
    raise Terminated()


def _on_sigterm() -> Any:
    """Make SIGTERM raise :class:`Terminated`.

    Returns the previous handler, or ``None`` off the main thread (where none can be set).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


class CliGroup(TyperGroup):
    """Typer's group with our error path: one line on stderr and a meaningful exit code.

    Exit codes: 0 success, 1 runtime failure (bad file, output exists), 2 usage error (bad
    option value), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Both signals unwind
    the command like an exception, so outputs being written are removed and finished ones
    kept.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        """Run the command; with ``standalone_mode``, exit with the code instead of returning it."""
        previous = _on_sigterm()
        _TERMINATED.clear()
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False,
                              windows_expand_args=windows_expand_args, **extra)
            code = rv if isinstance(rv, int) else 0
        except MriReconError as exc:
            error_line(str(exc))
            code = exc.exit_code
        except UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            error_line(exc.format_message() + hint)
            code = exc.exit_code
        except ClickException as exc:
            error_line(exc.format_message())
            code = exc.exit_code
        except typer.Abort:
            error_line("aborted")
            code = 130
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        if _TERMINATED:  # typer turns the KeyboardInterrupt it raised into exit 130
            code = 143
        if standalone_mode:
            sys.exit(code)
        return code
