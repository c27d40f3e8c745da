"""The ``mrirecon`` command: a thin Typer app, one module per subcommand.

Heavy libraries (torch, sigpy) are imported inside command bodies, never at module level, so
that ``mrirecon --help`` and ``--version`` answer instantly (a test checks torch stays unloaded).
"""

from __future__ import annotations

from typing import Annotated

import typer

from mrirecon import __version__
from mrirecon.cli import (
    calibrate,
    convert,
    demo,
    evaluate,
    info,
    mask,
    models,
    reconstruct,
    simulate,
    train,
)
from mrirecon.cli._console import CliGroup

app = typer.Typer(
    cls=CliGroup,
    name="mrirecon",
    help="MRI reconstruction from undersampled k-space: masks, classical and learned "
    "reconstruction, uncertainty, fastMRI/ISMRMRD/BART/DICOM/NIfTI I/O.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        print(f"mrirecon {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:
    """MRI reconstruction from undersampled k-space."""


app.command("mask")(mask.mask_command)
app.command("simulate")(simulate.simulate_command)
app.command("info")(info.info_command)
app.command("convert")(convert.convert_command)
app.command("reconstruct")(reconstruct.reconstruct_command)
app.command("models")(models.models_command)
app.command("evaluate")(evaluate.evaluate_command)
app.command("demo")(demo.demo_command)
app.command("train")(train.train_command)
app.command("calibrate")(calibrate.calibrate_command)


def main() -> None:
    """Console-script entry point."""
    app()
