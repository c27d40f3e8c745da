"""Reconstruction throughput (slices/s) of every method at fastMRI-like geometries (JSON).

    python scripts/bench/throughput.py [--geometry 320x320x1 640x368x15] [--slices N]
        [--batch-size B] [--methods zero-filled sense cs rim irim cinn] [--repeats 3]
        [--samples 8] [--max-seconds 30] [--device auto] [--amp] [--threads N] [--seed 0]

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
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch
from _common import (
    MASK,
    add_common_arguments,
    default_batch_size,
    emit,
    geometry,
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

METHODS = ("zero-filled", "sense", "cs", "rim", "irim", "cinn")
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
    parser.add_argument("--amp", action="store_true",
                        help="bfloat16 autocast of the RIM/i-RIM networks (CUDA only)")
    add_common_arguments(parser)
    args = parser.parse_args()
    device = setup(args)
    args.batch_size = args.batch_size or default_batch_size(device)
    args.slices = args.slices or 2 * args.batch_size
    if min(args.batch_size, args.slices, args.repeats) < 1 or args.samples < 2:
        parser.error("--batch-size, --slices and --repeats must be >= 1, --samples >= 2")
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
        del full
        for method in args.methods:
            if method == "sense" and coils == 1:
                notes.append(f"{name}: sense needs multi-coil data; skipped")
                continue
            progress(f"{name}: {method}")
            try:
                row = bench(method, kspace, mask, device, args)
            except MriReconError as exc:
                notes.append(f"{name}: {method} failed ({exc}); skipped")
                continue
            results.append({"geometry": name, "rows": rows, "cols": cols, "coils": coils,
                            **row})
            release_memory(device)
    settings = {"geometries": [f"{r}x{c}x{k}" for r, c, k in args.geometry],
                "slices": args.slices, "batch_size": args.batch_size, "repeats": args.repeats,
                "methods": args.methods, "samples": args.samples,
                "max_seconds": args.max_seconds if math.isfinite(args.max_seconds) else None,
                "amp": args.amp, "seed": args.seed,
                "mask": MASK,
                "timed": "reconstruct_batch on device-resident k-space, inference_mode, after "
                         "one warm-up call; CUDA synchronised around each call"}
    emit("throughput", device, settings, results,
         [("geometry", "geometry"), ("method", "method"), ("runs_on", "runs on"),
          ("batch_size", "batch"), ("slices_timed", "slices"),
          ("slices_per_second", "slices/s"), ("seconds_per_slice", "s/slice"),
          ("samples_per_second", "samples/s"), ("stopped_early", "stopped early")],
         notes=notes)


if __name__ == "__main__":
    main()
