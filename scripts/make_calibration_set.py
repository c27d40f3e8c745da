"""Write a calibration set for ``mrirecon calibrate``: fresh draws of the training generator.

    python scripts/make_calibration_set.py CONFIG OUT_DIR [--items 32] [--seed 7919]
        [--matrix 64,192] [--overwrite]

Reads ``data.synthetic`` of a training configuration (e.g. ``configs/default-cinn/stage2.yaml``:
the same sources, contrasts, coils and phase models), draws ``--items`` fully sampled items with a
seed no training run uses (``--seed``; training uses ``seed`` 0 of its config), at matrices in
``--matrix`` and without the training crop, and writes each as a one-slice fastMRI file
``calib_NNNN.h5`` (k-space and its RSS/ESC target). These images come from the training
*sources* but not from the validation suite's domains, which stay apart for judging the
calibration. All k-space is simulated from magnitude images.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    """Parse the arguments, draw the items and write them; print a JSON summary."""
    from mrirecon.data import Volume
    from mrirecon.fileutil import check_writable
    from mrirecon.simulation import write_simulated
    from mrirecon.train.config import load_config
    from mrirecon.train.synthetic import SyntheticDataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7919)
    parser.add_argument("--matrix", default="64,192", help="smallest,largest side")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    cfg = load_config(args.config).data.synthetic
    if cfg is None:
        sys.exit(f"error: {args.config}: no data.synthetic section")
    low, high = (int(v) for v in args.matrix.split(","))
    cfg = dataclasses.replace(cfg, matrix=[low, high], items_per_epoch=args.items)
    data = SyntheticDataset(cfg, seed=args.seed)
    outs = [args.out_dir / f"calib_{i:04d}.h5" for i in range(args.items)]
    check_writable(outs, args.overwrite)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, out in enumerate(outs):
        item = data.fully_sampled(i)
        kspace = item["kspace"].numpy()[None]
        target = item["target"].numpy()[None]
        volume = Volume(data=target, affine=np.eye(4), header={}, source=item["file"])
        record = {"generator": "mrirecon.train.synthetic", "config": str(args.config),
                  "seed": args.seed, "item": i}
        write_simulated(out, volume, {"kspace": kspace.astype(np.complex64), "target": target,
                                      "affine": np.eye(4)}, record, overwrite=args.overwrite,
                        provenance={"calibration_set": record})
        rows.append({"file": out.name, "source": item["file"], "coils": item["coils"],
                     "matrix": list(target.shape[-2:])})
    print(json.dumps({"out_dir": str(args.out_dir), "items": rows,
                      "note": "k-space simulated from magnitude images"}, indent=2))


if __name__ == "__main__":
    main()
