"""``mrirecon simulate``: magnitude images (DICOM/NIfTI) -> simulated fastMRI-format k-space."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrirecon.cli._batch import run_batch, skip_done
from mrirecon.cli._console import emit_json, info, print_table


def simulate_command(
    inputs: Annotated[list[Path], typer.Argument(
        help="DICOM files or series folders, NIfTI files or folders of them; - reads paths "
        "from stdin.",
        show_default=False)],
    out_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder for the .h5 files.",
                                          show_default=False)],
    coils: Annotated[int, typer.Option("--coils", min=1, max=64,
                                       help="Receive coils (1 = single-coil file).")] = 8,
    noise: Annotated[float, typer.Option("--noise", min=0.0, help="Noise std per k-space "
                                         "sample, relative to the image maximum.")] = 0.01,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Base seed; each file's seed is "
                                      "derived from it and the file name.")] = 0,
    matrix: Annotated[int | None, typer.Option("--matrix", min=8, help="Resample slices to "
                                               "MATRIX x MATRIX (field of view kept).")] = None,
    series: Annotated[str | None, typer.Option("--series", help="DICOM SeriesInstanceUID, for "
                                               "folders holding several series.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing files.")] = False,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing", help="Leave out inputs whose .h5 exists (reruns of a batch).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> int:
    """Simulate fastMRI-format k-space from magnitude images (DICOM or NIfTI).

    Smooth synthetic phase, birdcage coil maps and complex Gaussian noise; one HDF5 file per
    input with the ESC (one coil) or RSS target and the true matrix and field of view. The
    inputs are magnitude images: the k-space is simulated, and the files say so.
    """
    from mrirecon.errors import InvalidParameterError
    from mrirecon.io.inputs import expand_inputs, output_subfolders
    from mrirecon.physics.simulate import SimulationParams
    from mrirecon.simulation import output_name, simulate_file

    if skip_existing and overwrite:
        raise InvalidParameterError("--skip-existing and --overwrite contradict each other; "
                                    "give one")
    paths = expand_inputs(inputs)  # a mixed or empty folder stops here, nothing written
    folders = {path: out_dir / sub for path, sub in output_subfolders(paths).items()}
    if skip_existing:
        paths = skip_done(paths, lambda path: [folders[path] / output_name(path)])
    params = SimulationParams(coils=coils, noise=noise, seed=seed)

    def job(path: Path) -> dict:
        return simulate_file(path, folders[path], params, matrix=matrix, series=series,
                             overwrite=overwrite)

    records, failed = run_batch(paths, job, "simulating")
    if json_out:
        emit_json(records)
    else:
        print_table(["input", "output", "slices", "coils", "matrix", "seed", "seconds"],
                    [[r["input"], r["output"], r["slices"], r["coils"],
                      "x".join(map(str, r["matrix"])), r["seed"], f"{r['seconds']:.2f}"]
                     for r in records])
    if failed:
        info(f"{failed} of {failed + len(records)} inputs failed")
    return 1 if failed else 0
