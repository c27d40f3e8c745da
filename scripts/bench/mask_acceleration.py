"""Requested vs achieved acceleration for every mask kind (JSON on stdout, a table on stderr).

    python scripts/bench/mask_acceleration.py [--shape 640 368] [--seeds 20]

Achieved acceleration is total / sampled k-space locations, averaged (with min and max) over
seeds 0..N-1; draw time is the mean wall time of one ``make_mask`` call.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

from mrirecon.sampling import MaskKind, MaskSpec, make_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=(640, 368))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--accels", type=float, nargs="+", default=(4, 8))
    args = parser.parse_args()
    rows = []
    for kind in MaskKind:
        for accel in args.accels:
            achieved, seconds = [], []
            for seed in range(args.seeds):
                start = time.perf_counter()
                mask = make_mask(MaskSpec(kind=kind, acceleration=accel, shape=tuple(args.shape),
                                          seed=seed))
                seconds.append(time.perf_counter() - start)
                achieved.append(mask.achieved_acceleration)
            rows.append({"kind": kind.value, "requested": accel,
                         "center_fraction": mask.spec.center_fraction,
                         "achieved_mean": round(float(np.mean(achieved)), 3),
                         "achieved_min": round(float(np.min(achieved)), 3),
                         "achieved_max": round(float(np.max(achieved)), 3),
                         "draw_ms": round(1000 * float(np.median(seconds)), 2)})
    machine = {"python": platform.python_version(), "cpu": platform.processor() or
               platform.machine(), "system": platform.platform()}
    print(json.dumps({"shape": list(args.shape), "seeds": args.seeds, "machine": machine,
                      "results": rows}, indent=2))
    print("| kind | requested | achieved (mean, min-max) | draw ms |", file=sys.stderr)
    print("|---|---|---|---|", file=sys.stderr)
    for r in rows:
        print(f"| {r['kind']} | {r['requested']:g}x | {r['achieved_mean']:.2f}x "
              f"({r['achieved_min']:.2f}-{r['achieved_max']:.2f}) | {r['draw_ms']} |",
              file=sys.stderr)


if __name__ == "__main__":
    main()
