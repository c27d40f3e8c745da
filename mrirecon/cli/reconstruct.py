"""``mrirecon reconstruct``: k-space (or images, simulated first) -> reconstructed images."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mrirecon.cli._batch import run_batch, skip_done
from mrirecon.cli._console import emit_json, info, print_table, warn, warn_outside_domain
from mrirecon.errors import InvalidParameterError
from mrirecon.recon.methods import Method
from mrirecon.sampling.spec import MaskKind

if TYPE_CHECKING:  # torch-free imports for the CLI's start-up
    from mrirecon.inference import ReadInput
    from mrirecon.recon.protocols import ReconstructorProtocol


class OutputFormat(str, Enum):
    """The ``--format`` choices: fastMRI HDF5, NIfTI, DICOM or BART ``.cfl``/``.hdr``."""

    H5 = "h5"
    NIFTI = "nifti"
    DICOM = "dicom"
    CFL = "cfl"


_FORMATS = {OutputFormat.H5: "fastmri", OutputFormat.NIFTI: "nifti", OutputFormat.DICOM: "dicom",
            OutputFormat.CFL: "cfl"}


def _print_records(records: list[dict[str, Any]]) -> None:
    """The results table: one row per reconstructed input."""
    print_table(["input", "output", "method", "slices", "R", "seconds", "k-space"],
                [[r["input"], r["output"], r["method"], r["slices"],
                  f"{r['acceleration']:.2f}", f"{r['seconds']:.2f}",
                  "simulated" if r["simulated"] else "measured"] for r in records])


# Options of reconstruct_command, one alias each (the help texts are the CLI's).
_Inputs = Annotated[list[Path], typer.Argument(
    help="k-space files (fastMRI HDF5, raw ISMRMRD, BART .cfl), or folders of them; "
    "DICOM or NIfTI images are simulated first; - reads paths from stdin.",
    show_default=False)]
_OutDir = Annotated[Path, typer.Option("--output", "-o", help="Output folder.",
    show_default=False)]
_Method = Annotated[Method | None, typer.Option(
    "--method", help="A classical method instead of a learned model \\[default: the shipped "
    "i-RIM, see --model].", show_default=False)]
_Model = Annotated[Path | None, typer.Option(
    "--model", help="A trained RIM, i-RIM or cINN checkpoint (.safetensors), or a shipped one "
    "by name (default, default-cinn) \\[default: "
    "the shipped i-RIM, or with --samples the shipped cINN, when no --method is given].",
    show_default=False)]
_Accel = Annotated[float | None, typer.Option("--accel", help="Acceleration for fully sampled "
    "inputs \\[default: 4].", show_default=False)]
_CenterFraction = Annotated[float | None, typer.Option(
    "--center-fraction", help="Fully sampled centre fraction \\[default: 0.32 / accel].")]
_MaskKind = Annotated[MaskKind | None, typer.Option(
    "--mask-kind", help="Mask pattern \\[default: random].", show_default=False)]
_MaskFile = Annotated[Path | None, typer.Option(
    "--mask", help="A mask file from `mrirecon mask` (instead of --mask-kind).")]
_Lamda = Annotated[float | None, typer.Option(
    "--lamda", min=0.0, help="Regularisation weight of sense/cs, relative to the slice's "
    "zero-filled maximum \\[default: tuned, see README].")]
_MaxIter = Annotated[int | None, typer.Option(
    "--max-iter", min=1, help="Solver iterations of sense/cs \\[default: tuned].")]
_Fmt = Annotated[OutputFormat | None, typer.Option(
    "--format", help="Output format \\[default: the input's; fastMRI HDF5 for raw ISMRMRD].")]
_Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
_Amp = Annotated[bool, typer.Option(
    "--amp/--no-amp", help="Run RIM/i-RIM networks in bfloat16 autocast on CUDA (physics "
    "stays float32; ignored on CPU).")]
_BatchSize = Annotated[int | None, typer.Option(
    "--batch-size", min=1, help="Slices per batch \\[default: 1 on CPU, 8 on CUDA].",
    show_default=False)]
_Seed = Annotated[int, typer.Option("--seed", min=0, help="Base seed of the per-file masks.")]
_Series = Annotated[str | None, typer.Option(
    "--series", help="DICOM SeriesInstanceUID, or the ISMRMRD volume to read "
    "(e.g. contrast=0,repetition=1).")]
_Prewhiten = Annotated[bool, typer.Option(
    "--prewhiten/--no-prewhiten", help="Pre-whiten raw ISMRMRD coils with the noise scans' "
    "covariance.")]
_Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]
_SkipExisting = Annotated[bool, typer.Option(
    "--skip-existing", help="Leave out inputs whose outputs all exist (reruns of a batch).")]
_Samples = Annotated[int | None, typer.Option(
    "--samples", help="Draw N posterior samples with a cINN (default: the shipped cINN) "
    "and write <stem>_mean, <stem>_std and <stem>_uncertainty.png.", show_default=False)]
_Temperature = Annotated[float, typer.Option(
    "--temperature", help="Scale of the latent Gaussian when sampling.")]
_SampleBatch = Annotated[int | None, typer.Option(
    "--sample-batch", help="Samples drawn at once per slice batch \\[default: all].",
    show_default=False)]
_SampleSeed = Annotated[int, typer.Option("--sample-seed", min=0,
    help="Seed of the posterior draws.")]
_SaveSamples = Annotated[bool, typer.Option(
    "--save-samples", help="Also write the samples to <stem>_samples.h5.")]
_Prefetch = Annotated[bool, typer.Option(
    "--prefetch/--no-prefetch", help="Read the next input into memory while the current one "
    "is reconstructed (two undersampled volumes held at once); --no-prefetch reads each "
    "slice batch when it is needed.")]
_JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON records.")]
_Adapt = Annotated[int | None, typer.Option(
    "--adapt", help="Fine-tune the learned model on each input's own measured k-space for up "
    "to STEPS steps first (self-supervised, early-stopped on held-back samples).",
    metavar="STEPS", show_default=False)]
_AdaptMinutes = Annotated[float | None, typer.Option(
    "--adapt-minutes", help="Time budget of each adaptation, in minutes.", show_default=False)]
_AdaptLr = Annotated[float | None, typer.Option(
    "--adapt-lr", help="Adam learning rate of the adaptation \\[default: 1e-4].",
    show_default=False)]
_AdaptMinGain = Annotated[float | None, typer.Option(
    "--adapt-min-gain", help="Relative drop of the held-back loss that a check must make to be "
    "kept and to reset the patience \\[default: 0.01; larger is more conservative].",
    show_default=False)]


class AdaptPer(str, Enum):
    """The ``--adapt-per`` choices."""

    VOLUME = "volume"
    SLICE = "slice"


_AdaptPer = Annotated[AdaptPer, typer.Option(
    "--adapt-per", help="One adaptation per input volume, or one per slice.")]
_SaveAdapted = Annotated[bool, typer.Option(
    "--save-adapted", help="Also write the adapted weights to <stem>_adapted.safetensors "
    "(reuse them with --model).")]


def reconstruct_command(
    inputs: _Inputs,
    out_dir: _OutDir,
    method: _Method = None,
    model: _Model = None,
    accel: _Accel = None,
    center_fraction: _CenterFraction = None,
    mask_kind: _MaskKind = None,
    mask_file: _MaskFile = None,
    lamda: _Lamda = None,
    max_iter: _MaxIter = None,
    fmt: _Fmt = None,
    device: _Device = "auto",
    amp: _Amp = False,
    batch_size: _BatchSize = None,
    seed: _Seed = 0,
    series: _Series = None,
    prewhiten: _Prewhiten = True,
    overwrite: _Overwrite = False,
    skip_existing: _SkipExisting = False,
    samples: _Samples = None,
    temperature: _Temperature = 1.0,
    sample_batch: _SampleBatch = None,
    sample_seed: _SampleSeed = 0,
    save_samples: _SaveSamples = False,
    prefetch: _Prefetch = True,
    adapt: _Adapt = None,
    adapt_minutes: _AdaptMinutes = None,
    adapt_lr: _AdaptLr = None,
    adapt_min_gain: _AdaptMinGain = None,
    adapt_per: _AdaptPer = AdaptPer.VOLUME,
    save_adapted: _SaveAdapted = False,
    json_out: _JsonOut = False,
) -> int:
    """Reconstruct undersampled k-space; fully sampled inputs are undersampled first.

    Fully sampled inputs get a deterministic per-file mask (seed from --seed and the file name;
    spec, seed and achieved acceleration are recorded in the output); files that carry a mask
    use it. One output per input, same stem, in the input's format unless --format; inputs
    that share a stem (a/scan.h5 b/scan.h5) get their folders mirrored under --output.
    With --samples N, a conditional invertible network draws N images from the posterior:
    the outputs are their mean and pixelwise standard deviation (the uncertainty map).
    With --adapt STEPS, the learned model is first fine-tuned on each input's own k-space
    (zero-shot self-supervision: README, "Adapting to a scan").
    """
    from mrirecon.device import resolve_device
    from mrirecon.inference import input_outputs, read_input
    from mrirecon.io.inputs import expand_inputs, output_subfolders
    from mrirecon.recon.methods import build_reconstructor
    from mrirecon.sampling import MaskOptions

    if save_samples and samples is None:
        raise InvalidParameterError("--save-samples needs --samples N")
    if skip_existing and overwrite:
        raise InvalidParameterError("--skip-existing and --overwrite contradict each other; "
                                    "give one")
    if mask_file is not None:
        drawn = [name for name, value in (("--accel", accel), ("--mask-kind", mask_kind),
                                          ("--center-fraction", center_fraction))
                 if value is not None]
        if drawn:
            raise InvalidParameterError(f"--mask {mask_file} fixes the sampling; "
                                        f"{' and '.join(drawn)} would be ignored: drop "
                                        f"{'them' if len(drawn) > 1 else 'it'}")
    adaptation = _adapt_options(adapt, adapt_minutes, adapt_lr, adapt_min_gain, adapt_per,
                                save_adapted, method, samples, seed)
    options = MaskOptions(kind=mask_kind or MaskKind.RANDOM,
                          acceleration=4.0 if accel is None else accel,
                          center_fraction=center_fraction,
                          seed=seed, mask_file=mask_file)  # checked before any file is touched
    paths = expand_inputs(inputs)  # a mixed or empty folder stops here, nothing written
    folders = {path: out_dir / sub for path, sub in output_subfolders(paths).items()}
    fmt_name = _FORMATS[fmt] if fmt else None
    if skip_existing:
        paths = skip_done(paths, lambda path: input_outputs(
            path, folders[path], fmt_name, posterior=samples is not None,
            keep_samples=save_samples, adapted=save_adapted).values())
        if not paths:
            return 0
    reconstructor = build_reconstructor(
        method, model=model, device=resolve_device(device), batch_size=batch_size, amp=amp,
        samples=samples, temperature=temperature, sample_batch=sample_batch,
        sample_seed=sample_seed, lamda=lamda, max_iter=max_iter)
    if adaptation is not None:
        reconstructor = _adapting(reconstructor, adaptation)
    settings = partial(read_input, options=options, fmt=fmt_name, series=series,
                       overwrite=overwrite, posterior=samples is not None,
                       keep_samples=save_samples, in_memory=prefetch, prewhiten=prewhiten,
                       adapted=save_adapted)

    def read(path: Path) -> ReadInput:
        return settings(path, folders[path])

    records, failed = _run(paths, reconstructor, read, overwrite=overwrite, prefetch=prefetch)
    if json_out:
        emit_json(records)
    else:
        _print_records(records)
    if failed:
        info(f"{failed} of {failed + len(records)} inputs failed")
    return 1 if failed else 0


def _adapt_options(steps: int | None, minutes: float | None, lr: float | None,
                   min_gain: float | None, per: AdaptPer, save: bool, method: Method | None,
                   samples: int | None, seed: int) -> Any:
    """The :class:`~mrirecon.train.adapt.AdaptOptions` the flags ask for, or ``None``."""
    if steps is None:
        given = [flag for flag, on in (("--adapt-minutes", minutes is not None),
                                       ("--adapt-lr", lr is not None),
                                       ("--adapt-min-gain", min_gain is not None),
                                       ("--adapt-per", per is not AdaptPer.VOLUME),
                                       ("--save-adapted", save)) if on]
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise InvalidParameterError(f"{' and '.join(given)} {verb} --adapt STEPS")
        return None
    if method is not None:
        raise InvalidParameterError(f"--adapt fine-tunes a learned model; --method "
                                    f"{method.value} has no weights (drop --method to adapt "
                                    "the default i-RIM, or give --model)")
    if samples is not None:
        raise InvalidParameterError("--adapt fine-tunes a RIM or i-RIM; it cannot be combined "
                                    "with --samples")
    if save and per is AdaptPer.SLICE:
        raise InvalidParameterError("--save-adapted keeps one model per input; --adapt-per "
                                    "slice makes one per slice")
    from mrirecon.train.adapt import AdaptOptions

    defaults = AdaptOptions(steps=steps)
    return AdaptOptions(steps=steps, minutes=minutes, per_slice=per is AdaptPer.SLICE, seed=seed,
                        lr=defaults.lr if lr is None else lr,
                        min_gain=defaults.min_gain if min_gain is None else min_gain)


def _adapting(reconstructor: Any, options: Any) -> Any:
    """``reconstructor`` wrapped to adapt its model to every input first."""
    from mrirecon.recon.learned import LearnedReconstructor
    from mrirecon.recon.protocols import Sampler
    from mrirecon.train.adapt import AdaptingReconstructor

    if not isinstance(reconstructor, LearnedReconstructor) or isinstance(reconstructor,
                                                                         Sampler):
        raise InvalidParameterError(f"--adapt fine-tunes a RIM or i-RIM; "
                                    f"{reconstructor.name} cannot be adapted")
    return AdaptingReconstructor(reconstructor, options)


def _run(inputs: list[Path], reconstructor: ReconstructorProtocol,
         read: Callable[[Path], ReadInput], *, overwrite: bool,
         prefetch: bool) -> tuple[list[dict[str, Any]], int]:
    """Read, reconstruct (or sample) and write every input; ``(records, failures)``.

    With ``prefetch`` the next input is read while the current one is reconstructed.
    """
    from mrirecon.inference import reconstruct_input, sample_input
    from mrirecon.recon.protocols import Sampler

    def job(item: ReadInput) -> dict[str, Any]:
        if "mean" in item.outputs:  # read for a posterior: mean, std and panel
            assert isinstance(reconstructor, Sampler)  # build_reconstructor checked it
            record = sample_input(item, reconstructor, overwrite=overwrite)
        else:
            record = reconstruct_input(item, reconstructor, overwrite=overwrite)
        if record["outside_domain"]:
            warn_outside_domain(item.path, record["outside_domain"])
        for note in record["notes"]:  # e.g. CS/SENSE falling back to ACS coil maps
            warn(item.path, note)
        return record

    if prefetch:
        return run_batch(inputs, job, reconstructor.name, prepare=read)
    return run_batch(inputs, lambda path: job(read(path)), reconstructor.name)
