"""FLOPs per slice of the default i-RIM (and RIM), the device's measured peak, and the ratio.

    python scripts/bench/flops.py [--size 320] [--models irim rim] [--batch-size B]
        [--repeats 5] [--matmul-size N] [--device auto] [--amp] [--threads N] [--seed 0]

Per model, on one single-coil ``size x size`` slice (smooth random phantom, fastMRI random 4x
mask), the network's forward pass ``model(x0, grad_fn)`` (data-consistency gradients included;
coil maps, normalisation and :func:`~mrirecon.recon.learned.prepare_batch` excluded):

* ``flops_per_slice``: counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions
  and matrix products, 2 FLOPs per multiply-add; element-wise operations are not counted);
* ``fft_flops_per_slice``: FFTs, which ``FlopCounterMode`` does not count, estimated from the
  ``aten._fft_*`` calls it sees as ``5 N log2 N`` per complex ``N``-point transform (half of
  that for real-input/real-output transforms);
* ``slices_per_second``: achieved throughput of the same forward at ``--batch-size`` slices
  (median of ``--repeats`` calls after one warm-up; CUDA synchronised), and the achieved FLOP/s
  with and without the FFT estimate;
* ``peak_fraction``: achieved FLOP/s over the measured peak: the best of ``--repeats`` runs of
  10 ``n x n`` matrix products (``--matmul-size``; float32 on the CPU, bfloat16 on CUDA),
  ``2 n^3`` FLOPs each. The model runs in float32 (TF32 convolutions where cuDNN allows them)
  unless ``--amp`` (bfloat16 autocast, CUDA only), so without ``--amp`` the bf16 peak on CUDA is
  an upper bound the model cannot reach.

Models: ``irim`` the shipped default i-RIM; ``rim`` the registry default ``rim.v1`` with random
weights (same FLOPs as trained ones).
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
    giga,
    median,
    progress,
    random_mask,
    scan,
    setup,
    time_calls,
    timed,
)
from torch.utils.flop_counter import FlopCounterMode

from mrirecon.recon.model_inputs import call_model, padded_inputs, prepare_batch

aten = torch.ops.aten
MATMUL_CALLS = 10  # matrix products per timed call


def _fft_flops(x_shape: Any, dim: Any, *args: Any, out_shape: Any = None,
               real: bool = False, **kwargs: Any) -> int:
    """``5 N log2 N`` FLOPs per transform of ``N = prod(sizes over dim)`` points.

    Half of that for a real-input or real-output transform; the larger of input and output sets
    the sizes.
    """
    shape = max(tuple(x_shape), tuple(out_shape), key=math.prod)
    n = math.prod(shape[d % len(shape)] for d in dim)
    per = 5 * n * math.log2(n) if n > 1 else 0.0
    return int(round(per * math.prod(shape) / n * (0.5 if real else 1.0)))


def _real_fft_flops(*args: Any, **kwargs: Any) -> int:
    return _fft_flops(*args, real=True, **kwargs)


FFT_FORMULAS = {aten._fft_c2c: _fft_flops, aten._fft_r2c: _real_fft_flops,
                aten._fft_c2r: _real_fft_flops}


def count_flops(fn: Any) -> tuple[int, int, dict[str, int]]:
    """``(counted FLOPs, FFT FLOP estimate, counted FLOPs by operator)`` of ``fn()``."""
    with FlopCounterMode(display=False, custom_mapping=FFT_FORMULAS) as counter:
        fn()
    by_op = counter.get_flop_counts().get("Global", {})
    fft = sum(v for op, v in by_op.items() if op in FFT_FORMULAS)
    counted = {str(op): int(v) for op, v in by_op.items() if op not in FFT_FORMULAS}
    return sum(counted.values()), int(fft), counted


def matmul_peak(size: int, device: torch.device, repeats: int) -> dict[str, Any]:
    """Best FLOP/s of ``n x n`` matrix products (float32 on the CPU, bfloat16 on CUDA)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, dtype=dtype, generator=generator)
    b = torch.randn(size, size, device=device, dtype=dtype, generator=generator)

    def products() -> None:
        for _ in range(MATMUL_CALLS):
            torch.mm(a, b)

    with torch.inference_mode():
        timed(products, device)  # warm-up
        seconds = min(time_calls([products] * repeats, device)) / MATMUL_CALLS
    return {"matmul_size": size, "dtype": str(dtype).removeprefix("torch."),
            "seconds_per_matmul": seconds, "flops_per_second": 2 * size**3 / seconds}


def load(name: str, device: torch.device) -> tuple[torch.nn.Module, str, str]:
    """The model benchmarked as ``name`` (``irim`` or ``rim``).

    Returns it with its registry name and where its weights come from.
    """
    if name == "irim":
        from mrirecon.models.checkpoint import load_checkpoint
        from mrirecon.models.default import default_checkpoint

        path = default_checkpoint()
        model, meta = load_checkpoint(path, device=device)
        return model.eval(), meta["name"], f"shipped default ({path.name})"
    from mrirecon.models.registry import build

    return build("rim.v1").to(device).eval(), "rim.v1", "random (registry default)"


def measure(name: str, kspace: torch.Tensor, mask: torch.Tensor, device: torch.device,
            args: argparse.Namespace, peak: float) -> dict[str, Any]:
    """FLOPs per slice and achieved throughput of one model (see the module docstring)."""
    model, registry_name, weights = load(name, device)
    batch = prepare_batch(kspace, mask)
    x0, grad, _ = padded_inputs(model, batch)
    slices = x0.shape[0]
    with torch.inference_mode():
        counted, fft, by_op = count_flops(lambda: call_model(model, x0, grad, args.amp))
        timed(lambda: call_model(model, x0, grad, args.amp), device)  # warm-up
        seconds = median(time_calls([lambda: call_model(model, x0, grad, args.amp)]
                                    * args.repeats, device))
    rate = slices / seconds
    per_slice, fft_per_slice = counted / slices, fft / slices
    return {"model": registry_name, "weights": weights, "size": args.size,
            "batch_size": slices, "precision": "bf16-autocast" if args.amp else "float32",
            "flops_per_slice": per_slice, "fft_flops_per_slice": fft_per_slice,
            "total_flops_per_slice": per_slice + fft_per_slice,
            "flops_by_op_per_slice": {op: v / slices for op, v in by_op.items()},
            "seconds_per_batch": seconds, "slices_per_second": rate,
            "achieved_flops_per_second": per_slice * rate,
            "achieved_flops_per_second_with_fft": (per_slice + fft_per_slice) * rate,
            "peak_fraction": per_slice * rate / peak,
            "peak_fraction_with_fft": (per_slice + fft_per_slice) * rate / peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--models", nargs="+", choices=("irim", "rim"), default=["irim", "rim"])
    parser.add_argument("--batch-size", type=int, default=None,
                        help="slices per timed forward [default: 16 on CUDA, 4 on CPU]")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--matmul-size", type=int, default=None,
                        help="n of the peak matmul [default: 4096 on CUDA, 1024 on CPU]")
    parser.add_argument("--amp", action="store_true",
                        help="bfloat16 autocast of the networks (CUDA only)")
    add_common_arguments(parser)
    args = parser.parse_args()
    device = setup(args)
    cuda = device.type == "cuda"
    args.batch_size = args.batch_size or default_batch_size(device)
    args.matmul_size = args.matmul_size or (4096 if cuda else 1024)
    args.amp = bool(args.amp and cuda)
    if min(args.batch_size, args.repeats, args.matmul_size) < 1 or args.size < 8:
        parser.error("--batch-size, --repeats and --matmul-size must be >= 1, --size >= 8")
    progress(f"peak: {args.matmul_size}^2 matmul")
    peak = matmul_peak(args.matmul_size, device, args.repeats)
    n = args.size
    full, _ = scan(args.batch_size, n, n, 1, seed=args.seed)
    mask = random_mask(n, n, seed=args.seed)
    kspace, mask = (full * mask).to(device), mask.to(device)
    results = []
    for name in args.models:
        progress(f"{name}: counting and timing")
        results.append(measure(name, kspace, mask, device, args, peak["flops_per_second"]))
    settings = {"size": n, "coils": 1, "batch_size": args.batch_size, "repeats": args.repeats,
                "models": args.models, "amp": args.amp, "seed": args.seed,
                "mask": MASK,
                "counted": "torch.utils.flop_counter.FlopCounterMode: convolutions and matrix "
                           "products (2 FLOPs per multiply-add); element-wise operations are "
                           "not counted",
                "fft": "not counted by FlopCounterMode; fft_flops_per_slice estimates them "
                       "as 5 N log2 N per complex N-point transform (half for real "
                       "transforms) from the aten._fft_* calls seen",
                "scope": "model(x0, grad_fn) forward, data-consistency gradients included; "
                         "prepare_batch (coil maps, normalisation) excluded"}
    emit("flops", device, settings, results,
         [("model", "model"), ("precision", "precision"), ("batch_size", "batch"),
          ("flops_per_slice", "GFLOP/slice", giga),
          ("fft_flops_per_slice", "FFT GFLOP/slice (est.)", giga),
          ("slices_per_second", "slices/s"),
          ("achieved_flops_per_second", "achieved GFLOP/s", giga),
          ("peak_fraction", "of peak"), ("peak_fraction_with_fft", "of peak (+FFT)")],
         peak=peak, notes=[f"peak: {peak['flops_per_second'] / 1e9:.4g} GFLOP/s "
                           f"({peak['dtype']} {peak['matmul_size']}^2 matmul)"])


if __name__ == "__main__":
    main()
