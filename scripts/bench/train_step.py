"""RIM vs memory-free i-RIM: time and memory of one training step (JSON).

    python scripts/bench/train_step.py [--size 320] [--steps 4 8 16] [--hidden 16 32]
        [--repeats 3] [--stored-irim] [--device auto] [--threads N] [--seed 0]

One training step = forward, :func:`~mrirecon.train.losses.reconstruction_loss` (the training
defaults: SSIM weight 1, L1 weight 0) and backward, on one single-coil ``size x size`` slice (a
smooth random phantom, fastMRI random 4x mask), batch 1, inputs made by the same
:func:`~mrirecon.recon.learned.prepare_batch` as training. Models: the registry defaults
``rim.v1`` and ``irim.v1`` (memory-free) with ``steps`` and ``hidden`` overridden (for the
i-RIM ``hidden`` is the width of its U-Net couplings); ``--stored-irim`` adds the i-RIM with
``memory_free: false`` (every activation stored, as the default i-RIM is trained on a CPU).
Time: median of ``--repeats`` steps after one warm-up step (``step_seconds``), then of as many
forward passes alone under ``torch.inference_mode`` after one more warm-up
(``forward_seconds``, what reconstruction costs per slice). Memory (``memory_kind``): on CUDA
``cuda_max_allocated``, the peak of ``torch.cuda.max_memory_allocated`` over one step (weights
and inputs included; the allocation before the step is ``baseline_bytes``); on the CPU
``saved_for_backward``, the bytes autograd keeps for the backward pass
(:func:`~mrirecon.models.invertible.saved_tensor_bytes`), since a CPU process's resident memory
hides them. Each i-RIM row carries ``memory_free`` and ``irim_rim_memory_ratio``, its memory
over the RIM's of the same ``hidden`` and ``steps``.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from _common import (
    MASK,
    add_common_arguments,
    emit,
    median,
    mib,
    progress,
    random_mask,
    release_memory,
    reset_peak_memory,
    scan,
    setup,
    time_calls,
    timed,
)

from mrirecon.models.invertible import saved_tensor_bytes
from mrirecon.models.registry import build
from mrirecon.recon.model_inputs import prepare_batch, run_model
from mrirecon.train.config import LossConfig
from mrirecon.train.losses import reconstruction_loss

MODELS = ("rim.v1", "irim.v1")


def measure(name: str, config: dict[str, Any], batch: Any, target: torch.Tensor,
            device: torch.device, repeats: int) -> dict[str, Any]:
    """Step time and memory of one model (see the module docstring)."""
    torch.manual_seed(0)
    model = build(name, config).to(device).train()
    weights = LossConfig()

    def loss() -> torch.Tensor:
        return reconstruction_loss(run_model(model, batch), target, ssim=weights.ssim,
                                   l1=weights.l1)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        loss().backward()

    def forward() -> None:
        with torch.inference_mode():
            run_model(model, batch)

    timed(step, device)  # warm-up
    seconds = time_calls([step] * repeats, device)
    model.zero_grad(set_to_none=True)
    row: dict[str, Any] = {}
    if device.type == "cuda":
        reset_peak_memory(device)
        baseline = torch.cuda.memory_allocated(device)
        timed(step, device)
        row.update(memory_bytes=torch.cuda.max_memory_allocated(device),
                   memory_kind="cuda_max_allocated", baseline_bytes=baseline)
    else:
        row.update(memory_bytes=saved_tensor_bytes(loss), memory_kind="saved_for_backward")
    timed(forward, device)  # warm-up
    forward_seconds = time_calls([forward] * repeats, device)
    return {"model": name, **config,
            "parameters": sum(p.numel() for p in model.parameters()),
            "step_seconds": median(seconds), "step_seconds_min": min(seconds),
            "forward_seconds": median(forward_seconds), **row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--hidden", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stored-irim", action="store_true",
                        help="also the i-RIM with memory_free=false (activations stored)")
    add_common_arguments(parser)
    args = parser.parse_args()
    if args.repeats < 1 or args.size < 8:
        parser.error("--repeats must be >= 1 and --size >= 8")
    device = setup(args)
    n = args.size
    full, target = scan(1, n, n, 1, seed=args.seed)
    mask = random_mask(n, n, seed=args.seed).to(device)
    batch = prepare_batch((full.to(device) * mask), mask)
    target = target.to(device) / batch.scale[:, None, None].float()
    variants = [(name, {}) for name in MODELS]
    if args.stored_irim:
        variants.append(("irim.v1", {"memory_free": False}))
    results = []
    for name, extra in variants:
        for hidden in args.hidden:
            for steps in args.steps:
                label = " ".join([name, *(f"{k}={v}" for k, v in extra.items())])
                progress(f"{label} hidden={hidden} steps={steps}")
                results.append(measure(name, {"hidden": hidden, "steps": steps, **extra}, batch,
                                       target, device, args.repeats))
                release_memory(device)
    rim = {(r["hidden"], r["steps"]): r["memory_bytes"] for r in results
           if r["model"] == "rim.v1"}
    for r in results:
        if r["model"] == "irim.v1":
            r.setdefault("memory_free", True)
            r["irim_rim_memory_ratio"] = r["memory_bytes"] / rim[(r["hidden"], r["steps"])]
    settings = {"size": n, "coils": 1, "batch": 1, "steps": args.steps, "hidden": args.hidden,
                "repeats": args.repeats, "stored_irim": args.stored_irim, "seed": args.seed,
                "loss": {"ssim": LossConfig().ssim, "l1": LossConfig().l1},
                "mask": MASK,
                "timed": "forward + loss + backward, median of repeats after one warm-up; "
                         "forward_seconds: the forward alone under inference_mode"}
    emit("train_step", device, settings, results,
         [("model", "model"), ("hidden", "hidden"), ("steps", "T"),
          ("memory_free", "memory-free"), ("parameters", "params"), ("step_seconds", "s/step"),
          ("forward_seconds", "s/forward"),
          ("memory_bytes", "memory MiB", mib), ("memory_kind", "memory kind"),
          ("irim_rim_memory_ratio", "i-RIM/RIM memory")])


if __name__ == "__main__":
    main()
