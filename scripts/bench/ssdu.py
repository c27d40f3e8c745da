"""SSDU from undersampled data only against supervised training on the same data and budget.

    python scripts/bench/ssdu.py OUT_DIR --suite SUITE_DIR [--sources data/sources]
        [--steps 400] [--model irim.v1] [--methods zero-filled,cs] [--score-only]
        [--threads 2] [--overwrite]

1. Training data (into ``OUT_DIR/data``): 16 axial slices through the middle of the MNI152
   2009a T1 (``scripts/fetch_training_data.sh``, pinned by sha256), k-space simulated at
   128x128 with 8 coils and with 1 coil (``mrirecon.simulation.simulate_file``). The fully
   sampled files are the supervised run's data; each becomes two undersampled acquisitions
   (4x and 8x random masks, fastMRI centre fractions, no reference kept:
   :func:`mrirecon.simulation.write_undersampled`), the SSDU run's only data.
2. Two runs of ``mrirecon train``'s loop with the same model, seed, steps, batch and optimiser:
   ``loss.kind=supervised`` (masks drawn on the fly at 4x and 8x, SSIM loss) and
   ``loss.kind=ssdu`` (each acquisition's mask split per item). Neither validates; both are
   scored from ``last.safetensors`` (no checkpoint selection).
3. Both checkpoints scored on the validation suite (``scripts/bench/generalisation.py run``, 4x
   and 8x, 4 masks per file, zero-filled and CS alongside), which neither run saw.

``--score-only`` skips 1 and 2 and scores the two checkpoints an earlier run left in
``OUT_DIR`` (``supervised.safetensors``, ``ssdu.safetensors``) on ``--suite``, for example a
copy with noise-free references (``generalisation.py noise-free``); ``--methods`` are the
classical methods scored alongside.

Prints one JSON document (per domain, coil group and R: zero-filled, supervised and SSDU PSNR,
and SSDU minus supervised; the training commands' settings and seconds) and a markdown table on
stderr. All k-space here is simulated from magnitude images.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common
import nibabel as nib
import numpy as np

from mrirecon.physics.simulate import SimulationParams
from mrirecon.sampling import MaskOptions
from mrirecon.simulation import simulate_file, write_undersampled
from mrirecon.train.config import load_config
from mrirecon.train.loop import train
from mrirecon.train.sources import sha256_of

SOURCE = "mni152_2009a.nii.gz"
SOURCE_SHA256 = "421a10e872fd6cadae7f61d358dffbcc1795a497d61ee76c5dda2503e1a1e9e6"
SLICES = 16
MATRIX = 128
NOTE = ("all k-space here is simulated from magnitude images (MNI152 for training, the "
        "validation suite for scoring)")


def build(sources: Path, out: Path) -> tuple[Path, Path]:
    """``(fully sampled folder, undersampled folder)`` of the training data."""
    path = sources / SOURCE
    if not path.is_file():
        raise SystemExit(f"error: {path}: file not found (run scripts/fetch_training_data.sh)")
    digest = sha256_of(path)
    if digest != SOURCE_SHA256:
        raise SystemExit(f"error: {path}: sha256 {digest} is not the pinned {SOURCE_SHA256}")
    full, under = out / "full", out / "undersampled"
    full.mkdir(parents=True, exist_ok=True)
    volume = nib.load(path)
    data = np.asarray(volume.dataobj, dtype=np.float32)
    middle = data.shape[2] // 2
    part = nib.Nifti1Image(data[:, :, middle - SLICES // 2 : middle + SLICES // 2],
                           volume.affine)
    for coils in (1, 8):
        nifti = out / f"mni152_c{coils:02d}.nii.gz"
        nib.save(part, nifti)
        simulate_file(nifti, full, SimulationParams(coils=coils, seed=coils), matrix=MATRIX,
                      overwrite=True)
        for accel in (4, 8):
            write_undersampled(full / f"mni152_c{coils:02d}.h5",
                               under / f"mni152_c{coils:02d}_r{accel}.h5",
                               MaskOptions(acceleration=accel), overwrite=True)
        nifti.unlink()
    return full, under


def run_training(kind: str, data: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One training run; its summary plus the overrides that made it."""
    overrides = [f"model={args.model}", *args.model_config, f"data.train=[{data}]",
                 f"loss.kind={kind}", "data.batch_size=2", "optim.lr=1e-3",
                 "optim.warmup_steps=20", f"max_steps={args.steps}", "epochs=null",
                 "mask.accelerations=[4, 8]", "device=cpu", f"seed={args.seed}",
                 f"out={out}", f"log_every={max(args.steps // 10, 1)}"]
    start = time.perf_counter()
    summary = train(load_config(None, overrides), overwrite=args.overwrite)
    return {"overrides": overrides, "seconds": round(time.perf_counter() - start, 1),
            "steps": summary["steps"], "last_loss": summary["loss"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--suite", type=Path, required=True)
    parser.add_argument("--sources", type=Path, default=Path("data/sources"))
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--model", default="irim.v1")
    parser.add_argument("--model-config", action="append",
                        default=["model_config.steps=4", "model_config.levels=3",
                                 "model_config.hidden=16", "model_config.state_channels=8",
                                 "model_config.grad_hidden=8"])
    parser.add_argument("--methods", default="zero-filled,cs",
                        help="classical methods scored alongside [default: zero-filled,cs]")
    parser.add_argument("--score-only", action="store_true",
                        help="score the checkpoints an earlier run left in OUT_DIR")
    parser.add_argument("--overwrite", action="store_true")
    _common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    device = _common.setup(args)
    if args.score_only:
        missing = [p for p in (args.out / f"{k}.safetensors" for k in ("supervised", "ssdu"))
                   if not p.is_file()]
        if missing:
            raise SystemExit(f"error: {missing[0]}: file not found (run without --score-only "
                             "first)")
        runs: dict[str, Any] = {k: {"checkpoint": str(args.out / f"{k}.safetensors"),
                                    "trained": "earlier run"} for k in ("supervised", "ssdu")}
    else:
        full, under = build(args.sources, args.out / "data")
        runs = {kind: run_training(kind, data, args.out / kind, args)
                for kind, data in (("supervised", full), ("ssdu", under))}
        for kind in runs:  # the suite labels models by file stem
            shutil.copyfile(args.out / kind / "last.safetensors",
                            args.out / f"{kind}.safetensors")
    scored = args.out / f"suite-{args.suite.name}.json"
    bench = Path(__file__).resolve().parent / "generalisation.py"
    command = [sys.executable, str(bench), "run", str(args.suite), "--accel", "4,8",
               "--methods", args.methods, "--mask-repeats", "4",
               "--model", str(args.out / "supervised.safetensors"),
               "--model", str(args.out / "ssdu.safetensors"),
               "--json-out", str(scored), "--overwrite"]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    cells: dict[tuple, dict[str, float]] = {}
    for r in json.loads(scored.read_text())["results"]:
        key = (r["domain"], r["coil_group"], r["acceleration"])
        cells.setdefault(key, {})[r["method"]] = r["psnr_mean"]
    results = []
    for (domain, group, accel), values in cells.items():
        sup, ssdu = values.get("supervised"), values.get("ssdu")
        results.append({"domain": domain, "coils": group, "R": accel,
                        "zero_filled": values.get("zero-filled"), "cs": values.get("cs"),
                        "supervised": sup,
                        "ssdu": ssdu, "ssdu_minus_supervised": None if None in (sup, ssdu)
                        else round(ssdu - sup, 3)})
    gaps = [r["ssdu_minus_supervised"] for r in results if r["ssdu_minus_supervised"] is not None]
    summary = {"mean_gap_db": round(float(np.mean(gaps)), 3),
               "worst_gap_db": round(float(np.min(gaps)), 3), "cells": len(gaps)}
    columns = [("domain", "domain"), ("coils", "coils"), ("R", "R"),
               ("zero_filled", "zero-filled"), ("cs", "CS"), ("supervised", "supervised"),
               ("ssdu", "SSDU"),
               ("ssdu_minus_supervised", "SSDU - supervised (dB)")]
    _common.emit("ssdu", device, {"steps": args.steps, "model": args.model,
                                  "score_only": args.score_only, "methods": args.methods,
                                  "model_config": args.model_config, "source": SOURCE,
                                  "source_sha256": SOURCE_SHA256, "slices": SLICES,
                                  "matrix": MATRIX, "suite": str(args.suite)},
                 results, columns, runs=runs,
                 summary=summary, notes=[NOTE])
    return 0


if __name__ == "__main__":
    sys.exit(main())
