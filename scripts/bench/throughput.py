"""Reconstruction throughput (slices/s) of every method at fastMRI-like geometries (JSON).

    python scripts/bench/throughput.py [--geometry 320x320x1 640x368x15] [--slices N]
        [--batch-size B] [--methods zero-filled sense cs rim irim cinn] [--repeats 3]
        [--samples 8] [--max-seconds 30] [--device auto] [--amp] [--threads N] [--seed 0]
        [--cli-batch-size B [B ...]] [--cli-volumes 1] [--cli-prefetch on|off|both]

Input per geometry (ROWSxCOLSxCOILS): ``--slices`` smooth random phantom images simulated into
coil k-space (smooth phase, birdcage maps, 1% noise) and undersampled with fastMRI's random 4x
mask. Timed: :meth:`Reconstructor.reconstruct_batch` under ``torch.inference_mode()`` on
k-space already on the device (host transfer and file I/O excluded), ``--batch-size`` slices
per call, after one untimed warm-up call, with ``torch.cuda.synchronize()`` around each call on
CUDA. A method stops repeating once its timed calls exceed ``--max-seconds`` (``stopped_early``).

Methods: ``zero-filled``, ``sense`` and ``cs`` (sigpy, always on the CPU one slice at a time;
SENSE is skipped on single-coil geometries), ``rim`` (registry default ``rim.v1`` with random
weights: timing only), ``irim`` (the shipped default i-RIM), ``cinn`` (the shipped default cINN,
or a registry-default ``cinn.v1`` with random weights when none is shipped; its throughput is
also given in sampled slice-images per second, ``--samples`` draws per slice). ``--amp`` runs
the RIM and i-RIM networks under bfloat16 autocast on CUDA (the cINN stays float32).

``cli`` is the row "CLI, whole volume, per slice": the fully sampled k-space written as
``--cli-volumes`` fastMRI files and reconstructed by ``mrirecon reconstruct`` (a subprocess, the
default i-RIM, default options but ``--device``; ``--cli-batch-size`` adds ``--batch-size``, one
row each). Its ``seconds_per_slice`` is the CLI's own per-input time (read, undersample with the
per-file 4x mask, reconstruct, write) summed over the inputs and divided by their slices: net of
start-up (imports, loading the model), which is given as ``startup_seconds``; no warm-up call.
``in_memory_ratio`` divides it by the ``irim`` row's s/slice of the same geometry, when both
ran. ``--cli-prefetch both`` gives a row with and one without ``--prefetch`` (which reads the
next input in a thread while the current one is reconstructed).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import (
    MASK,
    add_common_arguments,
    default_batch_size,
    emit,
    geometry,
    median,
    progress,
    random_mask,
    release_memory,
    reset_peak_memory,
    scan,
    setup,
    time_calls,
    timed,
)

from mrirecon.errors import MriReconError

METHODS = ("zero-filled", "sense", "cs", "rim", "irim", "cinn", "cli")
SIGPY = ("sense", "cs")


def reconstructor(method: str, device: torch.device, args: argparse.Namespace
                  ) -> tuple[Any, dict[str, Any]]:
    """The reconstructor of ``method`` and what the results should say about its model."""
    from mrirecon.recon.methods import build_reconstructor

    common = {"device": device, "batch_size": args.batch_size}
    if method not in ("rim", "irim", "cinn"):
        return build_reconstructor(method, **common), {}
    from mrirecon.models import default
    from mrirecon.models.registry import build

    if method == "irim":
        path = default.default_checkpoint()
        recon = build_reconstructor(model=path, amp=args.amp, **common)
        return recon, {"model": "irim.v1", "weights": f"shipped default ({path.name})"}
    if method == "rim":
        from mrirecon.recon.learned import LearnedReconstructor

        recon = LearnedReconstructor(build("rim.v1").eval(), "rim.v1", amp=args.amp, **common)
        return recon, {"model": "rim.v1", "weights": "random (registry default; timing only)"}
    try:
        path = default.default_sampler()
    except MriReconError:
        from mrirecon.recon.posterior import PosteriorSampler

        recon = PosteriorSampler(build("cinn.v1").eval(), "cinn.v1", **common)
        weights = (f"random (registry default; the shipped {default.DEFAULT_SAMPLER} is "
                   "missing; timing only)")
    else:
        recon = build_reconstructor(model=path, **common)
        weights = f"shipped default ({path.name})"
    recon.configure(samples=args.samples, seed=0)
    return recon, {"model": "cinn.v1", "weights": weights}


def bench(method: str, kspace: torch.Tensor, mask: torch.Tensor, device: torch.device,
          args: argparse.Namespace) -> dict[str, Any]:
    """Time one method on device-resident k-space (see the module docstring)."""
    recon, info = reconstructor(method, device, args)
    bs = args.batch_size
    batches = [kspace[i : i + bs] for i in range(0, kspace.shape[0], bs)]
    calls = [lambda b=b: recon.reconstruct_batch(b, mask) for b in batches] * args.repeats
    with torch.inference_mode():
        warmup = batches[0][:1] if method in SIGPY else batches[0]  # sigpy: nothing to warm
        timed(lambda: recon.reconstruct_batch(warmup, mask), device)
        reset_peak_memory(device)
        seconds = time_calls(calls, device, args.max_seconds)
    slices = sum(int(batches[i % len(batches)].shape[0]) for i in range(len(seconds)))
    total = sum(seconds)
    params = recon.parameters()
    row = {"method": method, **info,
           "runs_on": params.get("device", str(recon.device)),
           "precision": params.get("precision"),
           "batch_size": bs, "slices_timed": slices, "seconds": round(total, 6),
           "slices_per_second": slices / total, "seconds_per_slice": total / slices,
           "stopped_early": len(seconds) < len(calls)}
    if method == "cinn":
        row.update(samples=recon.samples, sample_batch=recon.sample_batch,
                   samples_per_second=recon.samples * slices / total)
    if device.type == "cuda":
        row["cuda_max_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
    return row


def write_scan(path: Path, kspace: torch.Tensor) -> Path:
    """Fully sampled ``(slices, coils, rows, cols)`` k-space as a fastMRI-format file."""
    from mrirecon.io.fastmri_h5 import write_dataset
    from mrirecon.io.ismrmrd import build_header

    slices, coils, rows, cols = kspace.shape
    header = build_header(encoded_matrix=(rows, cols, 1), encoded_fov_mm=(rows, cols, 1.0),
                          recon_matrix=(rows, cols, 1), recon_fov_mm=(rows, cols, 1.0),
                          coils=coils)
    data = kspace.numpy()
    return write_dataset(path, data if coils > 1 else data[:, 0], header_xml=header,
                         attrs={"simulated": True})


def bench_cli(kspace: torch.Tensor, device: torch.device, args: argparse.Namespace,
              batch_size: int | None, prefetch: bool) -> dict[str, Any]:
    """``mrirecon reconstruct`` on ``--cli-volumes`` files of ``kspace`` (module docstring)."""
    from mrirecon.device import default_batch_size as cli_default

    with tempfile.TemporaryDirectory() as tmp:
        inputs = [str(write_scan(Path(tmp) / f"volume{i}.h5", kspace))
                  for i in range(args.cli_volumes)]
        command = [sys.executable, "-m", "mrirecon", "reconstruct", *inputs, "-o",
                   str(Path(tmp) / "out"), "--device", str(device), "--json", "--overwrite",
                   "--prefetch" if prefetch else "--no-prefetch"]
        if batch_size is not None:
            command += ["--batch-size", str(batch_size)]
        walls, inside = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            walls.append(time.perf_counter() - start)
            if done.returncode != 0:
                raise MriReconError(f"mrirecon reconstruct failed: {done.stderr.strip()}")
            inside.append(sum(r["seconds"] for r in json.loads(done.stdout)))
    slices = kspace.shape[0] * args.cli_volumes
    seconds = median(inside)
    return {"method": "cli", "label": "CLI, whole volume, per slice", "model": "irim.v1",
            "weights": "shipped default", "runs_on": str(device),
            "batch_size": batch_size or cli_default(device),
            "batch_size_given": batch_size is not None, "prefetch": prefetch,
            "volumes": args.cli_volumes, "slices_timed": slices, "seconds": round(seconds, 4),
            "slices_per_second": slices / seconds, "seconds_per_slice": seconds / slices,
            "wall_seconds": round(median(walls), 4),
            "startup_seconds": round(median(walls) - seconds, 4), "stopped_early": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geometry", type=geometry, nargs="+",
                        default=[(320, 320, 1), (640, 368, 15)], metavar="ROWSxCOLSxCOILS")
    parser.add_argument("--slices", type=int, default=None,
                        help="slices per geometry [default: 2 x batch size]")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="slices per reconstruct_batch call [default: 16 on CUDA, 4 on CPU]")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--repeats", type=int, default=3, help="passes over the slices")
    parser.add_argument("--samples", type=int, default=8, help="cINN draws per slice")
    parser.add_argument("--max-seconds", type=float, default=30.0,
                        help="stop repeating a method once its timed calls exceed this")
    parser.add_argument("--cli-batch-size", type=int, nargs="+", default=None,
                        help="cli: run with these --batch-size values [default: the CLI's]")
    parser.add_argument("--cli-volumes", type=int, default=1, help="cli: input files per run")
    parser.add_argument("--cli-prefetch", choices=("on", "off", "both"), default="on",
                        help="cli: with --prefetch (the default), --no-prefetch or both")
    parser.add_argument("--amp", action="store_true",
                        help="bfloat16 autocast of the RIM/i-RIM networks (CUDA only)")
    add_common_arguments(parser)
    args = parser.parse_args()
    device = setup(args)
    args.batch_size = args.batch_size or default_batch_size(device)
    args.slices = args.slices or 2 * args.batch_size
    if min(args.batch_size, args.slices, args.repeats, args.cli_volumes,
           *(args.cli_batch_size or [1])) < 1 or args.samples < 2:
        parser.error("--batch-size, --slices, --repeats, --cli-batch-size and --cli-volumes "
                     "must be >= 1, --samples >= 2")
    cli_batches: list[int | None] = list(args.cli_batch_size or [None])
    cli_prefetch = {"on": [True], "off": [False], "both": [True, False]}[args.cli_prefetch]
    args.amp = bool(args.amp and device.type == "cuda")
    torch.manual_seed(args.seed)
    results, notes = [], []
    for rows, cols, coils in args.geometry:
        name = f"{rows}x{cols}x{coils}"
        progress(f"{name}: simulating {args.slices} slices")
        full, _ = scan(args.slices, rows, cols, coils, seed=args.seed)
        mask = random_mask(rows, cols, seed=args.seed)
        kspace = (full * mask).to(device)
        mask = mask.to(device)
        for method in args.methods:
            if method == "sense" and coils == 1:
                notes.append(f"{name}: sense needs multi-coil data; skipped")
                continue
            progress(f"{name}: {method}")
            try:
                rows_of = ([bench_cli(full, device, args, b, p) for b in cli_batches
                            for p in cli_prefetch] if method == "cli"
                           else [bench(method, kspace, mask, device, args)])
            except MriReconError as exc:
                notes.append(f"{name}: {method} failed ({exc}); skipped")
                continue
            results += [{"geometry": name, "rows": rows, "cols": cols, "coils": coils, **row}
                        for row in rows_of]
            release_memory(device)
        in_memory = [r for r in results if r["geometry"] == name and r["method"] == "irim"]
        for row in results:
            if row["geometry"] == name and row["method"] == "cli" and in_memory:
                row["in_memory_ratio"] = row["seconds_per_slice"] / in_memory[0][
                    "seconds_per_slice"]
        del full
    settings = {"geometries": [f"{r}x{c}x{k}" for r, c, k in args.geometry],
                "slices": args.slices, "batch_size": args.batch_size, "repeats": args.repeats,
                "methods": args.methods, "samples": args.samples,
                "max_seconds": args.max_seconds if math.isfinite(args.max_seconds) else None,
                "amp": args.amp, "seed": args.seed, "cli_volumes": args.cli_volumes,
                "mask": MASK,
                "timed": "reconstruct_batch on device-resident k-space, inference_mode, after "
                         "one warm-up call; CUDA synchronised around each call"}
    emit("throughput", device, settings, results,
         [("geometry", "geometry"), ("method", "method"), ("runs_on", "runs on"),
          ("batch_size", "batch"), ("prefetch", "prefetch"), ("slices_timed", "slices"),
          ("slices_per_second", "slices/s"), ("seconds_per_slice", "s/slice"),
          ("samples_per_second", "samples/s"), ("in_memory_ratio", "CLI / in-memory"),
          ("startup_seconds", "start-up s"), ("stopped_early", "stopped early")],
         notes=notes)


if __name__ == "__main__":
    main()
