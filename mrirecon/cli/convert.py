"""``mrirecon convert``: raw k-space (ISMRMRD, BART .cfl) -> fastMRI HDF5 for train/evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrirecon.cli._batch import run_batch
from mrirecon.cli._console import emit_json, info, print_table


def convert_command(
    inputs: Annotated[list[Path], typer.Argument(
        help="Raw ISMRMRD HDF5 files or BART .cfl files (or folders of them); - reads paths "
        "from stdin.", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder for the .h5 files.",
                                          show_default=False)],
    prewhiten: Annotated[bool, typer.Option(
        "--prewhiten/--no-prewhiten", help="Pre-whiten ISMRMRD coils with the noise scans' "
        "covariance.")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing files.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> int:
    """Convert raw k-space to fastMRI-format HDF5 that train, evaluate and fastMRI read.

    One file per volume: a raw ISMRMRD file holding several (contrast, repetition, phase, set)
    gives <stem>_<counter><N>.h5 for each. Readout oversampling is removed and coils are
    pre-whitened as reconstruct does; the geometry comes from the ISMRMRD header. Undersampled
    acquisitions keep their measured mask; fully sampled ones get the RSS (or ESC) target.
    """
    from mrirecon.conversion import convert_file
    from mrirecon.io.inputs import expand_inputs, output_subfolders

    paths = expand_inputs(inputs)
    folders = {path: out_dir / sub for path, sub in output_subfolders(paths).items()}

    def job(path: Path) -> dict:
        written = convert_file(path, folders[path], prewhiten=prewhiten, overwrite=overwrite)
        return {"input": str(path), "files": written}

    results, failed = run_batch(paths, job, "converting")
    records = [r for result in results for r in result["files"]]
    if json_out:
        emit_json(records)
    else:
        print_table(["input", "output", "volume", "slices", "coils", "matrix", "sampled",
                     "seconds"],
                    [[r["input"], r["output"], r["volume"] or "-", r["slices"], r["coils"],
                      "x".join(map(str, r["matrix"])), r["sampled"], f"{r['seconds']:.2f}"]
                     for r in records])
    if failed:
        info(f"{failed} of {failed + len(results)} inputs failed")
    return 1 if failed else 0
