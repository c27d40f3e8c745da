"""The ``mrirecon`` command line: the Typer app (:mod:`~mrirecon.cli.app`), a module per command."""
