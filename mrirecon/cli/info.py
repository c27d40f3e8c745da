"""``mrirecon info``: one line per file (or JSON) saying what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrirecon.cli._console import emit_json, error_line
from mrirecon.errors import MriReconError


def info_command(
    files: Annotated[list[Path], typer.Argument(
        help="fastMRI HDF5, raw ISMRMRD, BART .cfl, NIfTI or DICOM files or folders; - reads "
        "paths from stdin.",
        show_default=False)],
    series: Annotated[
        str | None, typer.Option("--series", help="DICOM SeriesInstanceUID, or ISMRMRD volume "
                                 "(contrast=0,repetition=1), to describe.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> int:
    """Describe files: kind, shape, coils, dtype, matrix, FOV, voxel size, orientation, mask.

    Every file is tried; those that cannot be read are reported on stderr and make the exit
    code 1.
    """
    from mrirecon.io.info import file_info, info_line
    from mrirecon.io.inputs import expand_inputs

    records, failed = [], 0
    for path in expand_inputs(files):
        try:
            record = file_info(path, series=series)
        except MriReconError as exc:
            error_line(str(exc))
            failed += 1
            continue
        records.append(record)
        if not json_out:
            print(info_line(record))
    if json_out:
        emit_json(records)
    return 1 if failed else 0
