"""i-RIM size study: the same training budget at several U-Net widths, scored on the OOD suite.

    python scripts/bench/size_study.py [--hidden 16,32,64] [--steps 240]
        [--config configs/size-study.yaml] [--suite data/suite] [--out runs/size-study]
        [--threads 1] [--mask-repeats 1]

For each width it runs ``mrirecon train CONFIG --set model_config.hidden=H`` from scratch (same
steps, data, seed and schedule for every width), then ``generalisation.py run`` on the suite with
zero-filled as the baseline, and prints one JSON document: per width the parameter count, steps,
training seconds and seconds per step, and per (coil group, R) the mean and the worst-domain PSNR
gain over zero-filled. A width whose run folder already holds ``best.safetensors`` is scored
without retraining (delete the folder to retrain). All k-space is simulated from magnitude images.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import _common
import torch
from safetensors import safe_open

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def parameters(checkpoint: Path) -> int:
    """Distinct weights in a checkpoint (tensors shared under two names count once)."""
    seen: dict[tuple[int, tuple[int, ...]], int] = {}
    with safe_open(str(checkpoint), framework="pt") as f:
        for key in f.keys():
            tensor = f.get_tensor(key)
            seen[(tensor.data_ptr(), tuple(tensor.shape))] = tensor.numel()
    return sum(seen.values())


def train_seconds(log: Path) -> tuple[int, float]:
    """(last step, seconds at it) from a run's ``log.csv``."""
    with log.open() as f:
        rows = list(csv.DictReader(f))
    return int(rows[-1]["step"]), float(rows[-1]["seconds"])


def run_width(hidden: int, args: argparse.Namespace, env: dict[str, str]) -> dict:
    """Train (unless done) and score one width."""
    run = Path(args.out) / f"h{hidden}"
    if not (run / "best.safetensors").exists():
        subprocess.run([str(Path(sys.executable).with_name("mrirecon")), "train", args.config,
                        "--output", str(run), "--overwrite",
                        "--set", f"model_config.hidden={hidden}",
                        "--set", f"max_steps={args.steps}", "--set", f"val_every={args.steps}"],
                       check=True, env=env)
    suite = run / "suite.json"
    subprocess.run([sys.executable, str(HERE / "generalisation.py"), "run", args.suite,
                    "--methods", "zero-filled", "--accel", "4,8",
                    "--mask-repeats", str(args.mask_repeats),
                    "--model", str(run / "best.safetensors"), "--json-out", str(suite),
                    "--markdown", str(run / "suite.md"), "--overwrite"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    steps, seconds = train_seconds(run / "log.csv")
    gains = [{k: row[k] for k in ("coil_group", "acceleration", "psnr_gain_mean",
                                  "psnr_gain_min", "worst_domain")}
             for row in json.loads(suite.read_text())["gain_vs_zero_filled"]
             if row["method"] == "best"]
    return {"hidden": hidden, "parameters": parameters(run / "best.safetensors"),
            "steps": steps, "train_seconds": seconds, "seconds_per_step": seconds / steps,
            "gain_vs_zero_filled": gains}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", default="16,32,64", help="U-Net widths [default: 16,32,64]")
    parser.add_argument("--steps", type=int, default=240,
                        help="training steps of every width, from scratch [default: 240]")
    parser.add_argument("--config", default=str(ROOT / "configs/size-study.yaml"))
    parser.add_argument("--suite", default=str(ROOT / "data/suite"))
    parser.add_argument("--out", default=str(ROOT / "runs/size-study"))
    parser.add_argument("--threads", type=int, default=1,
                        help="OpenMP/torch threads of every child process [default: 1]")
    parser.add_argument("--mask-repeats", type=int, default=1, help="suite masks per file and R")
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    results = [run_width(int(h), args, env) for h in args.hidden.split(",")]
    print(json.dumps({"benchmark": "size_study.v1", "machine": _common.machine(torch.device("cpu")),
                      "threads": args.threads, "config": args.config, "suite": args.suite,
                      "note": "k-space simulated from magnitude images; one training budget "
                              "(steps) for every width, from scratch",
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
