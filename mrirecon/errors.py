"""The errors mrirecon raises on purpose.

Every expected failure (bad parameter, unreadable file, output already present) is a
:class:`MriReconError`. Its message is one line that names what was received and what was
expected; the command line prints it in red on stderr and exits with :attr:`exit_code`, never
with a traceback. Anything else that escapes is a bug.
"""

from __future__ import annotations


class MriReconError(Exception):
    """An expected failure, shown to the user as one line. Runtime failures exit with 1."""

    exit_code = 1


class InvalidParameterError(MriReconError, ValueError):
    """A parameter value the library cannot use (a usage error: exit code 2)."""

    exit_code = 2


class InputFileError(MriReconError):
    """An input file that is missing, unreadable, corrupt or of the wrong kind."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class OutputError(MriReconError):
    """An output that exists (without ``overwrite``) or cannot be written."""


def one_line(exc: BaseException) -> str:
    """An exception's message for a one-line error.

    Its first non-empty line, whitespace folded (its type name if it has no message). The
    package's one such helper, for wrapping third-party errors into :class:`InputFileError` and
    :class:`MriReconError` messages.
    """
    for line in str(exc).splitlines():
        if line.strip():
            return " ".join(line.split())
    return type(exc).__name__
