"""``mrirecon train``: a YAML configuration plus overrides -> a trained model in a run folder.

Thin: options become dotted overrides (applied after ``--set``, so they win), the library's
:func:`mrirecon.train.loop.train` does the work. Torch is imported inside the command body.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from mrirecon.cli._batch import progress_bar
from mrirecon.cli._console import emit_json, info
from mrirecon.errors import MriReconError


def _overrides(sets: list[str], flags: dict[str, Any]) -> list[str]:
    """``--set`` items, then one ``key=value`` per given flag (values as JSON, valid YAML)."""
    extra = [f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None]
    return [*sets, *extra]


def train_command(
    config: Annotated[Path | None, typer.Argument(
        help="YAML training configuration (defaults when omitted).", show_default=False)] = None,
    sets: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a key: section.key=value (repeatable), e.g. optim.lr=1e-4.",
        show_default=False)] = None,
    model: Annotated[str | None, typer.Option("--model", help="Registered model name, e.g. "
                                              "irim.v1.", show_default=False)] = None,
    data: Annotated[list[Path] | None, typer.Option(
        "--data", help="Training files or folders (repeatable).", show_default=False)] = None,
    val_data: Annotated[list[Path] | None, typer.Option(
        "--val-data", help="Validation files or folders (repeatable).", show_default=False)
    ] = None,
    out: Annotated[Path | None, typer.Option("--output", "-o", help="Run folder.",
                                             show_default=False)] = None,
    old_out: Annotated[Path | None, typer.Option(
        "--out", help="The old spelling of --output; kept for one release.",
        show_default=False, hidden=True)] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Stop after N steps.",
                                                  show_default=False)] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Stop after N epochs.",
                                               show_default=False)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Slices per step.",
                                                   show_default=False)] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.",
                                             show_default=False)] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda.",
                                               show_default=False)] = None,
    amp: Annotated[bool | None, typer.Option("--amp/--no-amp", help="bf16 autocast on CUDA.",
                                             show_default=False)] = None,
    resume: Annotated[Path | None, typer.Option(
        "--resume", help="Run folder or last.safetensors to continue from.",
        show_default=False)] = None,
    max_minutes: Annotated[float | None, typer.Option(
        "--max-minutes", help="Wall-clock budget; checkpoint and stop when spent.",
        show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Reuse a non-empty run folder.")
                         ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> int:
    """Train a learned reconstruction (RIM, i-RIM) on fastMRI-format files.

    Writes config.yaml, log.csv, last.safetensors, best.safetensors (best validation
    best_metric, SSIM by default) and state.pt (for --resume) to the run folder. Ctrl-C saves
    last.safetensors and state.pt and exits 130; a spent --max-minutes budget saves them too and
    exits 0 (continue with --resume).
    --resume RUN_DIR without a CONFIG continues with the run's saved config.yaml.
    """
    from mrirecon.device import resolve_device
    from mrirecon.train.config import load_config
    from mrirecon.train.loop import train

    out = out if out is not None else old_out
    flags = {"model": model, "out": None if out is None else str(out), "max_steps": max_steps,
             "epochs": epochs, "data.batch_size": batch_size, "optim.lr": lr, "device": device,
             "amp": amp, "resume": None if resume is None else str(resume),
             "max_minutes": max_minutes,
             "data.train": None if not data else [str(p) for p in data],
             "data.val": None if not val_data else [str(p) for p in val_data]}
    if config is None and resume is not None:  # continue a run with the config it saved
        run_dir = resume if resume.is_dir() else resume.parent
        if (run_dir / "config.yaml").is_file():
            config = run_dir / "config.yaml"
    try:
        cfg = load_config(config, _overrides(sets or [], flags))
    except MriReconError as exc:  # name the configuration file the problem is in
        if config is not None and str(config) not in str(exc):
            exc.args = (f"{config}: {exc}",)
        raise
    resolve_device(cfg.device)  # CUDA asked for but absent: one line before any work
    with progress_bar("train") as bar:
        task = bar.add_task("", total=None)
        start = time.perf_counter()
        first: list[int] = []

        def progress(event: dict[str, Any]) -> None:
            step, total = event["step"], event["total"]
            if not first:
                first.append(step)
            rate = (step - first[0] + 1) / max(time.perf_counter() - start, 1e-9)
            eta = (total - step) / rate if rate > 0 else float("nan")
            if "loss" in event:
                text = f"loss {event['loss']:.4f}  {rate:.1f} it/s  ETA {eta:.0f}s"
            else:
                text = "val " + _metrics(event["val"])
            bar.update(task, total=total, completed=step, description=text)

        try:
            summary = train(cfg, progress=progress, overwrite=overwrite)
        except MriReconError as exc:  # e.g. a crop too small for SSIM: name the run's config
            name = config or cfg.out
            if str(name) not in str(exc):
                exc.args = (f"{name}: {exc}",)
            raise
    if json_out:
        emit_json(summary)
    else:
        _print_summary(summary)
    if summary["stopped"] == "max_minutes":  # a planned stop: exit 0, the run is resumable
        info(f"time budget spent at step {summary['steps']}/{summary['total_steps']}: saved "
             f"last.safetensors and state.pt; continue with --resume {summary['out']}")
    elif summary["interrupted"]:
        info("interrupted: saved last.safetensors and state.pt; continue with --resume "
             f"{summary['out']}")
        return 130
    return 0


def _metrics(val: dict[str, float]) -> str:
    """Validation metrics as one short text: PSNR/SSIM/NMSE or the held-back k-space loss."""
    if "kspace_loss" in val:
        return f"held-back k-space loss {val['kspace_loss']:.4f}"
    return f"PSNR {val['psnr']:.2f}  SSIM {val['ssim']:.4f}  NMSE {val['nmse']:.4g}"


def _print_summary(summary: dict[str, Any]) -> None:
    best = summary["best"]
    print(f"steps\t{summary['steps']}/{summary['total_steps']}")
    print(f"seconds\t{summary['seconds']}")
    if summary.get("validation") == "held-back":
        print("validation\theld-back k-space loss on Lambda (no fully sampled validation data; "
              "best by kspace_loss)")
    if best is not None:
        print(f"best\tstep {best['step']}  "
              + _metrics({k: v for k, v in best.items() if k != "step"}))
    for name, path in summary["checkpoints"].items():
        print(f"{name}\t{path}")
