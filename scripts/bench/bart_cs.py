"""Our compressed sensing against BART's ``ecalib`` + ``pics -l1`` on the same data and masks.

    python scripts/bench/bart_cs.py [--accels 4 8] [--iters 100] [--threads 2]
        [--datasets sample bart-phantom shepp-logan] [--ours-lamdas ...] [--bart-lamdas ...]

Three multi-coil datasets, each read by a different mrirecon reader (all synthetic or simulated
from magnitude images, none measured on a scanner):

* ``sample``: the bundled sample scan (fastMRI HDF5; 4-coil k-space simulated from 3 Colin27
  slices, 128x128);
* ``bart-phantom``: ``bart phantom -k -s 8 -x 128`` (a .cfl: BART's analytic 8-coil phantom);
* ``shepp-logan``: ``ismrmrd_generate_cartesian_shepp_logan -m 128 -c 8 -n 0.05 -C`` (raw
  ISMRMRD; noise scan, 2x readout oversampling, read as ``reconstruct`` reads it).

Each fully sampled k-space gets fastMRI ``random`` masks (the per-file masks ``reconstruct``
draws, seed 0) with a centre fraction of 0.08 at every acceleration (``--center-fraction``):
10 centre lines of 128, enough for both tools' ESPIRiT. fastMRI's 8x default of 0.04 leaves 5,
on which ``bart ecalib`` aborts with its 6x6 kernel and gives broken maps with a 3x3 one, while
ours falls back to ACS maps: that compares calibrations, not solvers. The target is the RSS of
the full data.

Ours is ``reconstruct --method cs`` (:class:`~mrirecon.recon.sigpy_baselines.CompressedSensing`:
ESPIRiT maps, FISTA L1-wavelet with cycle spinning); BART's is ``bart ecalib -m1`` then
``bart pics -S -l1 -r LAMBDA -i ITERS`` per slice, on the same undersampled k-space written as
.cfl (with a 3x3 calibration kernel where the centre block is narrower than 8 lines, the
narrowest ecalib accepts). The weight is swept on a log grid for each tool, and each tool is
reported at the weight that gives it the best PSNR averaged over the datasets, per acceleration
(tuned on these same data: an upper bound for both). Time is wall time per slice, coil maps
included; BART's includes starting two processes and the .cfl round trip.

JSON on stdout, a markdown table on stderr. Needs ``bart`` (and ``ismrmrd-tools`` for the third
dataset; it is left out when missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import emit

from mrirecon import metrics
from mrirecon.data import KSpace
from mrirecon.inference import undersample
from mrirecon.io import load
from mrirecon.io.cfl import read_cfl_array, write_cfl_array
from mrirecon.models.default import sample_scan
from mrirecon.physics.calibration import calibration_width
from mrirecon.recon.sigpy_baselines import CompressedSensing
from mrirecon.recon.zero_filled import ZeroFilled
from mrirecon.sampling import MaskKind, MaskOptions, draw_mask

OURS_LAMDAS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
BART_LAMDAS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


DATASETS = ("sample", "bart-phantom", "shepp-logan")


def datasets(work: Path, names: list[str]) -> dict[str, Path]:
    """Name -> file of each dataset (generated into ``work`` with the reference tools)."""
    found = {"sample": Path(sample_scan())} if "sample" in names else {}
    if "bart-phantom" in names:
        _tool(["bart", "phantom", "-k", "-s", "8", "-x", "128", "phantom"], work)
        found["bart-phantom"] = work / "phantom.cfl"
    if "shepp-logan" in names and shutil.which("ismrmrd_generate_cartesian_shepp_logan"):
        _tool(["ismrmrd_generate_cartesian_shepp_logan", "-m", "128", "-c", "8", "-n", "0.05",
               "-C", "-o", "shepp_logan.h5"], work)
        found["shepp-logan"] = work / "shepp_logan.h5"
    return found


def _tool(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def bart_cs(kspace: KSpace, lamda: float, iters: int, work: Path) -> tuple[np.ndarray, float]:
    """``ecalib -m1`` + ``pics -S -l1`` per slice: ``(|image| (slices, rows, cols), seconds)``."""
    images, seconds = [], 0.0
    width = calibration_width(np.asarray(kspace.mask), kspace.shape[-2:])
    # ecalib's 6x6 kernel needs a calibration region wider than 6: narrower ones (8x masks)
    # get a smaller kernel, as its casorati matrix requires
    calib = [] if width >= 8 else ["-k", str(max(3, width - 2)), "-r", str(width)]
    for s in range(kspace.n_slices):
        k = kspace.slice(s)  # (coils, rows, cols) -> READ PHS1 1 COIL
        write_cfl_array(work / "k", k.transpose(1, 2, 0)[:, :, None, :], overwrite=True)
        seconds += _tool(["bart", "ecalib", "-m1", *calib, "k", "maps"], work)
        seconds += _tool(["bart", "pics", "-S", "-l1", "-r", f"{lamda:g}", "-i", str(iters),
                          "k", "maps", "img"], work)
        images.append(np.abs(np.asarray(read_cfl_array(work / "img.cfl"))).reshape(k.shape[1:]))
    return np.stack(images).astype(np.float32), seconds


def ours_cs(kspace: KSpace, lamda: float, iters: int) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    image = CompressedSensing(lamda=lamda, max_iter=iters)(kspace).data
    return image, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accels", type=float, nargs="+", default=(4.0, 8.0))
    parser.add_argument("--iters", type=int, default=100, help="iterations of both solvers")
    parser.add_argument("--center-fraction", type=float, default=0.08,
                        help="fully sampled centre fraction of every mask")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--ours-lamdas", type=float, nargs="+", default=list(OURS_LAMDAS))
    parser.add_argument("--bart-lamdas", type=float, nargs="+", default=list(BART_LAMDAS))
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of both tools")
    args = parser.parse_args()
    if shutil.which("bart") is None:
        raise SystemExit("error: bart not found; install the Debian package bart")
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # BART's OpenMP threads
    sweep: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = datasets(work, args.datasets)
        for name, path in files.items():
            full = load(path)
            assert isinstance(full, KSpace)
            target = ZeroFilled()(full).data
            for accel in args.accels:
                options = MaskOptions(kind=MaskKind.RANDOM, acceleration=accel,
                                      center_fraction=args.center_fraction, seed=0)
                mask = draw_mask(full.shape[-2:], options, path.name)
                kspace = undersample(full, mask)
                base = {"dataset": name, "accel": accel, "slices": full.n_slices,
                        "coils": full.n_coils, "matrix": list(full.shape[-2:]),
                        "achieved_accel": round(mask.achieved_acceleration, 3)}
                zf = metrics.volume_metrics(target, ZeroFilled()(kspace).data)
                sweep.append({**base, "tool": "zero-filled", "lamda": None, **zf,
                              "seconds_per_slice": None})
                for tool, lamdas in (("mrirecon", args.ours_lamdas),
                                     ("bart", args.bart_lamdas)):
                    for lamda in lamdas:
                        image, seconds = (ours_cs(kspace, lamda, args.iters) if tool == "mrirecon"
                                          else bart_cs(kspace, lamda, args.iters, work))
                        sweep.append({**base, "tool": tool, "lamda": lamda,
                                      **metrics.volume_metrics(target, image),
                                      "seconds_per_slice": seconds / full.n_slices})
                        print(f"{name} {accel:g}x {tool} lamda={lamda:g}: "
                              f"{sweep[-1]['psnr']:.2f} dB", file=sys.stderr)
    results, best = _best(sweep, args.accels)
    emit("bart_cs", torch.device("cpu"), {"accels": list(args.accels), "iters": args.iters,
                                          "center_fraction": args.center_fraction,
                                          "threads": args.threads,
                                          "ours_lamdas": args.ours_lamdas,
                                          "bart_lamdas": args.bart_lamdas,
                                          "datasets": sorted(files),
                                          "bart_version": _bart_version()},
         results,
         [("dataset", "dataset"), ("accel", "R", lambda v: f"{v:g}"), ("tool", "tool"),
          ("lamda", "lambda", lambda v: "-" if v is None else f"{v:g}"),
          ("psnr", "PSNR (dB)", lambda v: f"{v:.2f}"), ("ssim", "SSIM", lambda v: f"{v:.4f}"),
          ("seconds_per_slice", "s/slice", lambda v: "-" if v is None else f"{v:.2f}")],
         best=best, best_per_dataset=_best_per_dataset(sweep), sweep=sweep,
         notes=["k-space is synthetic or simulated from magnitude images (see the docstring)",
                "each tool at its best weight per acceleration, averaged over the datasets",
                *[f"{b['dataset']} {b['accel']:g}x at each tool's best weight for it alone: "
                  f"mrirecon - bart = {b['ours_minus_bart_db']:+.2f} dB"
                  for b in _best_per_dataset(sweep)],
                *[f"{b['accel']:g}x: mrirecon - bart = {b['ours_minus_bart_db']:+.2f} dB "
                  f"PSNR (mean over datasets)" for b in best]])


def _best(sweep: list[dict[str, Any]], accels: list[float]
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows at each tool's best weight per acceleration, and the per-acceleration summary."""
    results, best = [], []
    for accel in accels:
        chosen: dict[str, float | None] = {"zero-filled": None}
        for tool in ("mrirecon", "bart"):
            rows = [r for r in sweep if r["tool"] == tool and r["accel"] == accel]
            lamdas = sorted({r["lamda"] for r in rows})
            chosen[tool] = max(lamdas, key=lambda lam: np.mean(
                [r["psnr"] for r in rows if r["lamda"] == lam]))
        picked = [r for r in sweep if r["accel"] == accel and r["lamda"] == chosen[r["tool"]]]
        results.extend(picked)
        mean = {tool: float(np.mean([r["psnr"] for r in picked if r["tool"] == tool]))
                for tool in chosen}
        best.append({"accel": accel, "lamda": chosen, "mean_psnr": mean,
                     "ours_minus_bart_db": mean["mrirecon"] - mean["bart"]})
    return results, best


def _best_per_dataset(sweep: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each tool at its best weight for each (dataset, acceleration): the spread of the gap."""
    out = []
    for key in sorted({(r["dataset"], r["accel"]) for r in sweep}):
        rows = [r for r in sweep if (r["dataset"], r["accel"]) == key]
        top = {tool: max((r for r in rows if r["tool"] == tool), key=lambda r: r["psnr"])
               for tool in ("mrirecon", "bart")}
        out.append({"dataset": key[0], "accel": key[1],
                    **{f"{tool}_lamda": r["lamda"] for tool, r in top.items()},
                    **{f"{tool}_psnr": r["psnr"] for tool, r in top.items()},
                    "ours_minus_bart_db": top["mrirecon"]["psnr"] - top["bart"]["psnr"]})
    return out


def _bart_version() -> str:
    return subprocess.run(["bart", "version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
