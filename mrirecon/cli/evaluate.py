"""``mrirecon evaluate``: score reconstructions with the fastMRI metrics; tables, report, gates.

Two modes. Sweep mode (DATA given): fully sampled files are undersampled at each ``--accel`` with
the per-file masks ``mrirecon reconstruct`` draws, reconstructed by each of ``--methods`` and
scored against their targets. Files mode (``--predictions`` and ``--targets``): reconstruction
files already written are scored against the targets of the same name, as fastMRI's
``evaluate.py`` does. With ``--samples N`` the ``cinn.v1`` models among ``--model`` draw N
posterior samples per slice and are also scored on the calibration of their standard deviation.
The library does the work (:mod:`mrirecon.evaluate`,
:mod:`mrirecon.report`); torch is imported only inside the command body.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mrirecon.cli._batch import progress_bar
from mrirecon.cli._console import UsageError, emit_json, error_line, info, print_table, warn
from mrirecon.cli._options import float_values, split_values
from mrirecon.errors import MriReconError
from mrirecon.sampling.spec import MaskKind


def evaluate_command(
    data: Annotated[list[Path] | None, typer.Argument(
        help="Sweep mode: fully sampled fastMRI k-space files or folders of them, or DICOM/NIfTI "
        "images (simulated first); - reads paths from stdin.", show_default=False,
        metavar="DATA")] = None,
    accel: Annotated[list[str] | None, typer.Option(
        "--accel", help="Sweep mode: accelerations to sweep, repeat (--accel 2 --accel 4) or "
        "list (--accel 2,4,8) \\[default: 4]. Files mode: only predictions made at this one "
        "acceleration.", show_default=False, metavar="R[,R...]")] = None,
    methods: Annotated[list[str] | None, typer.Option(
        "--methods", help="Methods to sweep: zero-filled, sense, cs; repeat or list "
        "(--methods zero-filled,sense,cs) \\[default: zero-filled].", show_default=False,
        metavar="METHOD[,METHOD...]")
    ] = None,
    model: Annotated[list[Path] | None, typer.Option(
        "--model", help="Sweep mode: also evaluate this RIM/i-RIM/cINN checkpoint, or a shipped "
        "one by name (default, default-cinn); repeatable.", show_default=False)] = None,
    samples: Annotated[int | None, typer.Option(
        "--samples", help="Sweep mode: cINN models draw N posterior samples; also score how "
        "well their std predicts the error (corr(std,|err|), fraction within 1 and 2 std) "
        "\\[default: posterior mean of 16 draws, no calibration].", show_default=False)] = None,
    temperature: Annotated[float, typer.Option(
        "--temperature", help="With --samples: scale of the latent Gaussian.")] = 1.0,
    sample_seed: Annotated[int, typer.Option(
        "--sample-seed", min=0, help="With --samples: seed of the posterior draws.")] = 0,
    mask_kind: Annotated[MaskKind, typer.Option("--mask-kind", help="Mask pattern.")] = (
        MaskKind.RANDOM),
    center_fraction: Annotated[float | None, typer.Option(
        "--center-fraction", help="Fully sampled centre fraction \\[default: 0.32 / accel].")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Base seed of the per-file masks "
                                      "(as in mrirecon reconstruct).")] = 0,
    mask_repeats: Annotated[int, typer.Option(
        "--mask-repeats", min=1, help="Sweep mode: masks per file and acceleration (seeds "
        "--seed, --seed + 1, ...); the summary averages over files and masks.")] = 1,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", min=1, help="Slices per batch \\[default: 1 on CPU, 8 on CUDA].",
        show_default=False)] = None,
    report_dir: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Report folder: records/summary CSV+JSON, plots, panels.",
        show_default=False)] = None,
    predictions: Annotated[Path | None, typer.Option(
        "--predictions", help="Files mode: folder of reconstruction .h5 files.",
        show_default=False)] = None,
    targets: Annotated[Path | None, typer.Option(
        "--targets", help="Files mode: folder of target .h5 files of the same names.",
        show_default=False)] = None,
    acceleration: Annotated[float | None, typer.Option(
        "--acceleration", help="The old spelling of --accel (files mode); kept for one release.",
        show_default=False, hidden=True)] = None,
    acquisition: Annotated[str | None, typer.Option(
        "--acquisition", help="Files mode: only targets of this acquisition (e.g. CORPD_FBK).",
        show_default=False)] = None,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing", help="Files mode: targets without a prediction are reported but do "
        "not make the exit code 1.")] = False,
    fail_below: Annotated[str | None, typer.Option(
        "--fail-below", help="Exit 1 if a (method, R) mean misses a threshold, e.g. "
        "psnr=30,ssim=0.8 (nmse=V is an upper bound).", show_default=False,
        metavar="METRIC=V[,...]")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing report "
                                            "files.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary and records as "
                                           "JSON.")] = False,
) -> int:
    """Evaluate reconstructions (fastMRI NMSE, PSNR, SSIM; mean and 95% CI over volumes).

    Sweep mode: mrirecon evaluate DATA... --accel 2,4,8 --methods zero-filled,cs -o report/.
    Files mode: mrirecon evaluate --predictions recon/ --targets data/ [--accel 4].
    A file that cannot be scored is reported in one line and left out; the others are scored.
    In files mode each target without a prediction is reported in one line too.
    Exit codes: 0 all good, 1 a --fail-below threshold missed, a file skipped, a target without
    a prediction (unless --allow-missing) or a runtime error, 2 usage error.
    """
    from mrirecon import evaluate, report
    from mrirecon.fileutil import check_writable

    sweep_mode = bool(data)
    paths: list[Path] = []
    skipped: list[dict[str, str]] = []  # files that could not be scored
    missing: list[str] = []  # files mode: targets without a prediction
    if sweep_mode and (predictions or targets):
        raise UsageError("give either DATA files (sweep mode) or --predictions and --targets "
                         "(files mode), not both")
    if not sweep_mode and not (predictions and targets):
        raise UsageError("give DATA files to sweep, or both --predictions and --targets")
    if acceleration is not None:  # the old spelling of --accel
        accel = [*(accel or []), repr(acceleration)]
    if sweep_mode and acquisition is not None:
        raise UsageError("--acquisition filters files mode (--predictions/--targets)")
    if not sweep_mode and (methods or model or mask_repeats > 1):
        raise UsageError("--methods, --model and --mask-repeats belong to sweep mode "
                         "(DATA files)")
    if sweep_mode and allow_missing:
        raise UsageError("--allow-missing belongs to files mode (--predictions/--targets)")
    if not sweep_mode and samples is not None:
        raise UsageError("--samples belongs to sweep mode (DATA files with a cINN --model)")
    if samples is not None:
        from mrirecon.recon.posterior import check_sampling

        check_sampling(samples, temperature, None)
    if fail_below is not None:
        evaluate.parse_thresholds(fail_below)  # a bad spec fails before any work
    if sweep_mode:
        from mrirecon.io.inputs import expand_inputs

        accels, names = evaluate.check_sweep_options(
            float_values(accel or ["4"], "--accel"), split_values(methods or ["zero-filled"]),
            mask_kind=mask_kind.value, center_fraction=center_fraction)
        paths = expand_inputs(data or [])  # a mixed or empty folder stops here
        total = len(paths)
    else:
        file_accel = _one_acceleration(accel)
    plots = report.plots_available()
    if report_dir is not None:
        check_writable(report.report_files(report_dir, accels if sweep_mode else [],
                                           plots=plots, calibration=samples is not None),
                       overwrite)

    if sweep_mode:
        from mrirecon.device import resolve_device

        options = evaluate.SweepOptions(
            mask_kind=mask_kind.value, center_fraction=center_fraction, seed=seed,
            mask_repeats=mask_repeats, device=resolve_device(device), batch_size=batch_size,
            models=model or (), samples=samples, temperature=temperature,
            sample_seed=sample_seed)
        try:
            with _progress() as step:
                swept = evaluate.sweep(
                    paths, accels, names, options=options, progress=step,
                    on_error=lambda path, exc: skipped.append(_skip(path, exc)))
        except MriReconError as exc:
            if not skipped:
                raise
            info(str(exc))  # each file already had its error line: the summary is not another
            return 1
        records: list[dict[str, Any]] = swept
        notes, panels, panel_file = swept.notes, swept.panels, swept.panel_file
        pixels = swept.calibration_pixels
    else:
        assert predictions is not None and targets is not None  # files mode: both given (above)
        try:
            records = evaluate.compare_files(
                predictions, targets, acceleration=file_accel, acquisition=acquisition,
                on_missing=lambda target: missing.append(_missing(target, predictions,
                                                                  allow_missing)),
                on_error=lambda path, exc: skipped.append(_skip(path, exc)))
        except MriReconError as exc:
            if not (skipped or missing):
                raise
            info(str(exc))  # each file already had its error line: the summary is not another
            return 1
        notes, panels, panel_file, pixels = [], {}, None, {}
        total = len(records) + len(skipped) + len(missing)
    for note in notes:
        info(f"[yellow]warning:[/] {note}")
    skip_notes = ([f"{len(skipped)} of {total} files skipped: "
                   + "; ".join(f"{s['file']} ({s['error']})" for s in skipped)]
                  if skipped else [])
    if missing:
        skip_notes.append(f"{len(missing)} of {total} targets without a prediction: "
                          + ", ".join(missing))
    summary = evaluate.summarize_records(records)
    failures = evaluate.check_thresholds(summary, fail_below) if fail_below else []
    written: list[Path] = []
    if report_dir is not None:
        written = report.write_report(report_dir, records, summary, panels=panels,
                                      panel_file=panel_file, notes=[*notes, *skip_notes],
                                      calibration_pixels=pixels, overwrite=overwrite)
        if not plots:
            info("matplotlib is not installed: plots and panels skipped (pip install matplotlib)")
    if json_out:
        emit_json({"summary": summary, "records": list(records),
                                    "notes": notes, "skipped": skipped, "missing": missing,
                                    "failed_thresholds": failures,
                                    "report_files": [str(p) for p in written]})
    else:
        calibrated = any(f"{evaluate.CALIBRATION[0]}_mean" in r for r in summary)
        extra = list(_CALIBRATION_COLUMNS) if calibrated else []
        print_table(["method", "R", "PSNR (dB)", "SSIM", "NMSE", *extra, "s/slice", "n"],
                    [_row(r, calibrated) for r in summary],
                    title="fastMRI metrics, mean +/- 95% CI")
        if written:
            info(f"report: {len(written)} files in {report_dir}")
    for failure in failures:
        error_line(f"threshold missed: {failure}")
    if skipped:
        info(f"{len(skipped)} of {total} files skipped")
    if missing:
        info(f"{len(missing)} of {total} targets have no prediction"
             + (" (--allow-missing)" if allow_missing else ""))
    return 1 if failures or skipped or (missing and not allow_missing) else 0


def _one_acceleration(accel: list[str] | None) -> float | None:
    """Files mode's ``--accel``: one acceleration to filter on, or ``None``."""
    if not accel:
        return None
    values = list(dict.fromkeys(float_values(accel, "--accel")))
    if len(values) > 1:
        raise UsageError("files mode filters on one acceleration; got --accel "
                         f"{','.join(f'{v:g}' for v in values)}")
    return values[0]


def _missing(target: Path, predictions: Path, allowed: bool) -> str:
    """Report a target without a prediction in one line (a warning with --allow-missing)."""
    message = f"{target}: no prediction {target.name} in {predictions}"
    if allowed:
        warn(target, f"no prediction {target.name} in {predictions}")
    else:
        error_line(message)
    return str(target)


def _skip(path: Path, exc: Exception) -> dict[str, str]:
    """Report a file the sweep cannot score in one line; its record for the summary."""
    error_line(str(exc) if str(path) in str(exc) or path.name in str(exc)
               else f"{path}: {exc}")
    return {"file": str(path), "error": " ".join(str(exc).split())}


def _pm(row: dict[str, Any], metric: str, fmt: str) -> str:
    mean, high = row[f"{metric}_mean"], row[f"{metric}_ci95_high"]
    if row["n"] < 2:
        return format(mean, fmt)
    return f"{mean:{fmt}} +/- {high - mean:{fmt}}"


#: Table headers of the calibration keys of :data:`mrirecon.evaluate.CALIBRATION` shown.
_CALIBRATION_COLUMNS = {"corr(std,|err|)": "corr_std_error", "<=1std": "within_1std",
                        "<=2std": "within_2std"}


def _row(r: dict[str, Any], calibrated: bool = False) -> list[str]:
    accel = "?" if r["acceleration"] is None else f"{r['acceleration']:g}"
    sps = r["seconds_per_slice"]
    extra = [_pm(r, key, ".3f") if f"{key}_mean" in r else "-"
             for key in (_CALIBRATION_COLUMNS.values() if calibrated else ())]
    return [r["method"], accel, _pm(r, "psnr", ".2f"), _pm(r, "ssim", ".4f"),
            _pm(r, "nmse", ".4f"), *extra, "-" if sps is None else f"{sps:.3g}", str(r["n"])]


class _progress:
    """A rich progress bar on stderr, shown only on a terminal; yields the sweep callback."""

    def __enter__(self) -> Any:
        self.bar = progress_bar("evaluate")
        self.bar.__enter__()
        self.task = self.bar.add_task("", total=None)

        def step(done: int, total: int, description: str) -> None:
            self.bar.update(self.task, completed=done, total=total, description=description)

        return step

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)
