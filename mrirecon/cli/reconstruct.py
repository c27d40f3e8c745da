"""``mrirecon reconstruct``: k-space (or images, simulated first) -> reconstructed images."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from mrirecon.cli._batch import run_batch
from mrirecon.cli._console import emit_json, info, print_table, warn_outside_domain
from mrirecon.errors import InvalidParameterError
from mrirecon.recon.methods import Method
from mrirecon.sampling.spec import MaskKind


class OutputFormat(str, Enum):
    """The ``--format`` choices: fastMRI HDF5, NIfTI or DICOM."""

    H5 = "h5"
    NIFTI = "nifti"
    DICOM = "dicom"


_FORMATS = {OutputFormat.H5: "fastmri", OutputFormat.NIFTI: "nifti", OutputFormat.DICOM: "dicom"}


def _print_records(records: list[dict[str, Any]]) -> None:
    """The results table: one row per reconstructed input."""
    print_table(["input", "output", "method", "slices", "R", "seconds", "k-space"],
                [[r["input"], r["output"], r["method"], r["slices"],
                  f"{r['acceleration']:.2f}", f"{r['seconds']:.2f}",
                  "simulated" if r["simulated"] else "measured"] for r in records])


def reconstruct_command(
    inputs: Annotated[list[Path], typer.Argument(
        help="fastMRI HDF5 k-space files; DICOM or NIfTI images are simulated first.",
        show_default=False)],
    out_dir: Annotated[Path, typer.Option("--output", "-o", help="Output folder.",
                                          show_default=False)],
    method: Annotated[Method | None, typer.Option(
        "--method", help="A classical method instead of a learned model \\[default: the shipped "
        "i-RIM, see --model].", show_default=False)] = None,
    model: Annotated[Path | None, typer.Option(
        "--model", help="A trained RIM, i-RIM or cINN checkpoint (.safetensors) \\[default: "
        "the shipped i-RIM, or with --samples the shipped cINN, when no --method is given].",
        show_default=False)] = None,
    accel: Annotated[float, typer.Option("--accel", help="Acceleration for fully sampled "
                                         "inputs.")] = 4.0,
    center_fraction: Annotated[float | None, typer.Option(
        "--center-fraction", help="Fully sampled centre fraction \\[default: 0.32 / accel].")
    ] = None,
    mask_kind: Annotated[MaskKind, typer.Option("--mask-kind", help="Mask pattern.")] = (
        MaskKind.RANDOM),
    mask_file: Annotated[Path | None, typer.Option(
        "--mask", help="A mask file from `mrirecon mask` (instead of --mask-kind).")] = None,
    lamda: Annotated[float | None, typer.Option(
        "--lamda", min=0.0, help="Regularisation weight of sense/cs, relative to the slice's "
        "zero-filled maximum \\[default: tuned, see README].")] = None,
    max_iter: Annotated[int | None, typer.Option(
        "--max-iter", min=1, help="Solver iterations of sense/cs \\[default: tuned].")] = None,
    fmt: Annotated[OutputFormat | None, typer.Option(
        "--format", help="Output format \\[default: the input's].")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    amp: Annotated[bool, typer.Option(
        "--amp/--no-amp", help="Run RIM/i-RIM networks in bfloat16 autocast on CUDA (physics "
        "stays float32; ignored on CPU).")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Slices per batch.")] = 8,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Base seed of the per-file masks.")
                    ] = 0,
    series: Annotated[str | None, typer.Option("--series", help="DICOM SeriesInstanceUID.")
                      ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")
                         ] = False,
    samples: Annotated[int | None, typer.Option(
        "--samples", help="Draw N posterior samples with a cINN (default: the shipped cINN) "
        "and write <stem>_mean, <stem>_std and <stem>_uncertainty.png.", show_default=False)
    ] = None,
    temperature: Annotated[float, typer.Option(
        "--temperature", help="Scale of the latent Gaussian when sampling.")] = 1.0,
    sample_batch: Annotated[int | None, typer.Option(
        "--sample-batch", help="Samples drawn at once per slice batch \\[default: all].",
        show_default=False)] = None,
    sample_seed: Annotated[int, typer.Option("--sample-seed", min=0,
                                             help="Seed of the posterior draws.")] = 0,
    save_samples: Annotated[bool, typer.Option(
        "--save-samples", help="Also write the samples to <stem>_samples.h5.")] = False,
    prefetch: Annotated[bool, typer.Option(
        "--prefetch/--no-prefetch", help="Read the next input into memory while the current one "
        "is reconstructed (two undersampled volumes held at once); --no-prefetch reads each "
        "slice batch when it is needed.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> int:
    """Reconstruct undersampled k-space; fully sampled inputs are undersampled first.

    Fully sampled inputs get a deterministic per-file mask (seed from --seed and the file name;
    spec, seed and achieved acceleration are recorded in the output); files that carry a mask
    use it. One output per input, same stem, in the input's format unless --format.
    With --samples N, a conditional invertible network draws N images from the posterior:
    the outputs are their mean and pixelwise standard deviation (the uncertainty map).
    """
    from mrirecon.device import resolve_device
    from mrirecon.inference import ReadInput, read_input, reconstruct_input, sample_input
    from mrirecon.recon.methods import build_reconstructor
    from mrirecon.sampling import MaskOptions

    sampling = samples is not None
    if save_samples and not sampling:
        raise InvalidParameterError("--save-samples needs --samples N")
    options = MaskOptions(kind=mask_kind, acceleration=accel, center_fraction=center_fraction,
                          seed=seed, mask_file=mask_file)  # checked before any file is touched
    reconstructor = build_reconstructor(
        method, model=model, device=resolve_device(device), batch_size=batch_size, amp=amp,
        samples=samples, temperature=temperature, sample_batch=sample_batch,
        sample_seed=sample_seed, lamda=lamda, max_iter=max_iter)
    out_fmt = _FORMATS[fmt] if fmt else None

    def read(path: Path) -> ReadInput:
        return read_input(path, out_dir, options, fmt=out_fmt, series=series,
                          overwrite=overwrite, posterior=sampling, keep_samples=save_samples,
                          in_memory=prefetch)

    def job(item: ReadInput) -> dict[str, Any]:
        if sampling:
            record = sample_input(item, reconstructor, overwrite=overwrite)
        else:
            record = reconstruct_input(item, reconstructor, overwrite=overwrite)
        if record["outside_domain"]:
            warn_outside_domain(item.path, record["outside_domain"])
        return record

    if prefetch:
        records, failed = run_batch(inputs, job, reconstructor.name, prepare=read)
    else:
        records, failed = run_batch(inputs, lambda path: job(read(path)), reconstructor.name)
    if json_out:
        emit_json(records)
    else:
        _print_records(records)
    if failed:
        info(f"{failed} of {failed + len(records)} inputs failed")
    return 1 if failed else 0
