"""``mrirecon demo``: the shipped sample scan at 4x by zero-filled, CS and the default i-RIM.

A metrics table, NIfTI outputs and a PNG panel; each method is reconstructed once, by the sweep
that scores it (:func:`mrirecon.evaluate.sweep` with the reconstructors built here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrirecon.cli._console import emit_json, info, print_table


def demo_command(
    out_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder for the outputs.")] = (
        Path("demo-out")),
    accel: Annotated[float, typer.Option("--accel", help="Acceleration.")] = 4.0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")
                         ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Reconstruct the bundled sample (simulated 4-coil k-space of 3 real head slices) at 4x.

    Writes OUT/<method>/sample_colin27.nii.gz for zero-filled, cs and the default i-RIM, and
    OUT/report/ with the fastMRI metrics (CSV/JSON) and panel_R4.png.
    """
    from mrirecon import evaluate, report
    from mrirecon.device import resolve_device
    from mrirecon.fileutil import check_writable
    from mrirecon.models.default import default_checkpoint, sample_scan
    from mrirecon.recon.methods import build_reconstructor

    sample, checkpoint = sample_scan(), default_checkpoint()
    torch_device = resolve_device(device)
    recons = [build_reconstructor(m, device=torch_device) for m in ("zero-filled", "cs")]
    recons.append(build_reconstructor(model=checkpoint, device=torch_device))
    volumes = evaluate.VolumeOutputs(out_dir, "nifti", overwrite=overwrite)
    outputs = [volumes.path(sample, r.name) for r in recons]
    report_dir = out_dir / "report"
    check_writable([*outputs, *report.report_files(report_dir, [accel],
                                                   plots=report.plots_available())], overwrite)

    # each method runs once: the sweep scores the volumes and writes them
    records = evaluate.sweep([sample], [accel], recons, outputs=volumes, device=torch_device)
    summary = evaluate.summarize_records(records)
    written = report.write_report(report_dir, records, summary, panels=records.panels,
                                  panel_file=records.panel_file, notes=records.notes,
                                  overwrite=overwrite)
    if json_out:
        emit_json({"summary": summary, "outputs": [str(p) for p in outputs],
                                    "report": [str(p) for p in written]})
        return
    print_table(["method", "R", "PSNR (dB)", "SSIM", "NMSE", "s/slice"],
                [[r["method"], f"{r['acceleration']:g}", f"{r['psnr_mean']:.2f}",
                  f"{r['ssim_mean']:.4f}", f"{r['nmse_mean']:.4f}",
                  f"{r['seconds_per_slice']:.3g}"] for r in summary],
                title="sample scan (simulated k-space of Colin27 slices), fastMRI metrics")
    info(f"NIfTI outputs in {out_dir}/<method>/, metrics in {report_dir}/")
    panels = [p for p in written if p.name.startswith("panel_")]
    for panel in panels:
        info(f"panel: {panel}")
    if not panels:
        info("no panel: matplotlib is not installed (scripts/demo.sh installs it, or "
             "pip install matplotlib)")
