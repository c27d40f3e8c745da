"""``mrirecon calibrate``: fit a posterior sampler's std scale on your own fully sampled data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrirecon.cli._console import emit_json, info
from mrirecon.cli._options import float_values


def calibrate_command(
    model: Annotated[Path, typer.Argument(
        help="A cINN checkpoint (.safetensors), or default-cinn for the shipped one.",
        show_default=False)],
    data: Annotated[list[Path], typer.Argument(
        help="Fully sampled fastMRI HDF5 files (or folders of them) to calibrate on; keep them "
        "apart from the data you validate on.", show_default=False)],
    out: Annotated[Path, typer.Option("--output", "-o", help="The calibrated checkpoint.",
                                      show_default=False)],
    accel: Annotated[list[str] | None, typer.Option(
        "--accel", help="Accelerations drawn on each file \\[default: 4,8].",
        show_default=False, metavar="R[,R...]")] = None,
    samples: Annotated[int, typer.Option("--samples", min=2,
                                         help="Posterior samples per volume.")] = 16,
    seed: Annotated[int, typer.Option("--seed", min=0,
                                      help="Base seed of the masks and draws.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", min=1, help="Slices per batch \\[default: 1 on CPU, 8 on CUDA].",
        show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --output.")] = False,
) -> int:
    """Calibrate a cINN's uncertainty maps so that k std cover the Gaussian share of the error.

    Draws posterior samples of each file at each --accel (the per-file masks of reconstruct and
    evaluate), fits one std scale (split-conformal or Gaussian, whichever calibrates a held-out
    half of the slices better) and writes the checkpoint again with the calibration in its
    metadata; reconstruct --samples and evaluate --samples apply it. Prints the calibration as
    JSON.
    """
    from mrirecon.calibrate import calibrate_checkpoint
    from mrirecon.device import resolve_device
    from mrirecon.io.predictions import hdf5_files
    from mrirecon.models.default import resolve_model

    accels = float_values(accel or ["4", "8"], "--accel")
    paths = [f for p in data for f in (hdf5_files(p) if p.is_dir() else [p])]
    result = calibrate_checkpoint(resolve_model(model), paths, out, accelerations=accels,
                                  samples=samples,
                                  seed=seed, device=resolve_device(device),
                                  batch_size=batch_size, overwrite=overwrite,
                                  progress=lambda what: info(f"sampling {what}"))
    emit_json(result)
    return 0
