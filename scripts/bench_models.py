"""RIM vs i-RIM: forward time per slice, parameters, and bytes saved for backward (JSON).

    python scripts/bench_models.py [--size 320] [--steps 2 4 8 16] [--repeats 3] [--device cpu]

Saved bytes are counted with ``torch.autograd.graph.saved_tensors_hooks`` (every tensor autograd
keeps for the backward pass, deduplicated by storage), because the process's resident memory on
a CPU hides what is saved. Models use their registry defaults (``rim.v1``, ``irim.v1``) apart
from the number of steps; the gradient is a single-coil 4x data-consistency gradient built from
our SENSE operator, as in reconstruction. One slice, batch 1.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import torch

from mrirecon.models.invertible import saved_tensor_bytes
from mrirecon.models.registry import build
from mrirecon.recon.model_inputs import gradient_channels, prepare_batch
from mrirecon.sampling import MaskSpec, make_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--steps", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--hidden", type=int, default=None, help="override the width")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    n = args.size
    mask = torch.as_tensor(make_mask(MaskSpec(kind="random", acceleration=4, shape=(n, n),
                                              seed=0)).array, device=device)
    kspace = torch.randn(1, 1, n, n, dtype=torch.complex64, device=device) * mask
    batch = prepare_batch(kspace, mask)
    grad = gradient_channels(batch.op, batch.y)
    results = []
    for name, variants in (("rim.v1", [{}]),
                           ("irim.v1", [{"memory_free": True}, {"memory_free": False}])):
        for variant in variants:
            for steps in args.steps:
                config = {"steps": steps, **variant}
                if args.hidden:
                    config["hidden"] = args.hidden
                model = build(name, config).to(device)
                x0 = batch.x0.clone()
                with torch.inference_mode():
                    model(x0, grad)  # warm-up
                    start = time.perf_counter()
                    for _ in range(args.repeats):
                        model(x0, grad)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    seconds = (time.perf_counter() - start) / args.repeats
                saved = saved_tensor_bytes(lambda m=model, x=x0: m(x.clone().requires_grad_(True),
                                                             grad)[-1].square().sum())
                results.append({"model": name, **variant, "steps": steps,
                                "parameters": sum(p.numel() for p in model.parameters()),
                                "forward_seconds_per_slice": round(seconds, 4),
                                "saved_bytes_for_backward": saved})
                print(json.dumps(results[-1]), flush=True, file=sys.stderr)  # progress
    machine = {"device": str(device), "cpu_threads": torch.get_num_threads(),
               "torch": torch.__version__, "python": platform.python_version(),
               "platform": platform.platform()}
    print(json.dumps({"size": n, "machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
