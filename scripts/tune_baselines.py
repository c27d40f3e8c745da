"""Choose the default ``lamda`` and ``max_iter`` of the sigpy baselines (SENSE and CS).

Simulates k-space from real magnitude images (a few evenly spaced axial slices from the middle
35-65% of the Colin27 head, ``/usr/share/mricron/templates/ch2.nii.gz`` found by
:func:`_colin27.locate` if present, else of nibabel's ``example4d.nii.gz``),
single-coil and 8-coil with noise 0.01 (:func:`mrirecon.physics.simulate.simulate_kspace`),
undersamples with fastMRI ``random`` masks at 4x over the last axis, sweeps ``lamda`` on a log
grid for a few iteration counts and scores PSNR against the fully sampled RSS/ESC target with
the volume's maximum as data range (the fastMRI protocol). Coil maps are estimated once per
slice (they do not depend on ``lamda``). Prints one JSON object on stdout and writes nothing.

Usage: ``python scripts/tune_baselines.py [--slices 4] [--size 192 160]`` (about 2-4 minutes on
2 CPU cores with the defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from _colin27 import locate, stack

from mrirecon import metrics
from mrirecon.physics.calibration import checked_calibration_width
from mrirecon.physics.coils import coil_maps
from mrirecon.physics.simulate import SimulationParams, resample_inplane, simulate_kspace
from mrirecon.recon.sigpy_baselines import SENSE, CompressedSensing, mask_weights
from mrirecon.sampling import MaskSpec, make_mask

LAMDAS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
ITERS = {"sense": [10, 30, 100], "cs": [30, 50, 100]}
#: Within this many dB of the best, prefer fewer iterations (then the larger lamda).
TOLERANCE_DB = 0.05


def load_slices(n_slices: int, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """``(n, rows, cols)`` axial magnitude slices from the middle of a real head volume."""
    import nibabel as nib

    try:
        path = locate()
    except FileNotFoundError:
        path = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
    depth = nib.load(path).shape[2]
    first, last = round(0.35 * depth), round(0.65 * depth)
    step = max(1, (last - first) // max(1, n_slices - 1))
    data, _ = stack(path, (0, 1, 2), range(first, first + step * n_slices, step))
    slices = np.stack([np.rot90(data[:, :, k]) for k in range(n_slices)])  # (n, y, x), anterior up
    slices, _ = resample_inplane(slices, np.eye(4), size)
    return np.clip(slices, 0, None), str(path)


def case(slices: np.ndarray, coils: int, seed: int) -> dict:
    """Simulated fully sampled k-space, its target, a 4x mask and the coil maps per slice."""
    kspace, target = simulate_kspace(slices, SimulationParams(coils=coils, noise=0.01, seed=seed))
    shape = kspace.shape[-2:]
    masks = [make_mask(MaskSpec(kind="random", acceleration=4, shape=shape, seed=seed + i))
             for i in range(len(slices))]
    under = np.stack([k * m.array for k, m in zip(kspace, masks, strict=True)])
    weights = [mask_weights(m.array, shape) for m in masks]
    start = time.perf_counter()
    maps = [coil_maps(y, checked_calibration_width(w, shape), "espirit") if coils > 1 else
            np.ones_like(y) for y, w in zip(under, weights, strict=True)]
    map_seconds = (time.perf_counter() - start) / len(slices)
    zero_filled = np.sqrt(np.sum(np.abs(np.fft.fftshift(np.fft.ifft2(
        np.fft.ifftshift(under, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))) ** 2, axis=1))
    return {"under": under, "target": target, "weights": weights, "maps": maps,
            "map_seconds": map_seconds, "zero_filled_psnr": metrics.psnr(target, zero_filled),
            "achieved_acceleration": float(np.mean([m.achieved_acceleration for m in masks]))}


def sweep(cls: type, data: dict) -> dict:
    """PSNR and seconds per slice for every (max_iter, lamda) on one case."""
    out: dict = {}
    for max_iter in ITERS[cls.name]:
        for lamda in LAMDAS:
            rec = cls(lamda=lamda, max_iter=max_iter)
            start = time.perf_counter()
            volume = np.stack([rec.reconstruct_slice(y, w, maps=s) for y, w, s in
                               zip(data["under"], data["weights"], data["maps"], strict=True)])
            seconds = (time.perf_counter() - start) / len(volume)
            out[(max_iter, lamda)] = (metrics.psnr(data["target"], volume), seconds)
    return out


def choose(tables: list[dict]) -> tuple[int, float]:
    """The (max_iter, lamda) with the best mean PSNR over the cases.

    Within :data:`TOLERANCE_DB` of it: the fewest iterations, then the largest lamda.
    """
    mean = {key: float(np.mean([t[key][0] for t in tables])) for key in tables[0]}
    best = max(mean.values())
    near = [key for key, value in mean.items() if value >= best - TOLERANCE_DB]
    return min(near, key=lambda key: (key[0], -key[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--size", type=int, nargs=2, default=(192, 160))
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args()
    t0 = time.perf_counter()
    slices, source = load_slices(args.slices, tuple(args.size))
    cases = {"multicoil": case(slices, 8, args.seed), "singlecoil": case(slices, 1, args.seed)}
    tables = {
        "sense": {"multicoil": sweep(SENSE, cases["multicoil"])},
        "cs": {name: sweep(CompressedSensing, data) for name, data in cases.items()},
    }
    result: dict = {
        "data": {"source": source, "slices": args.slices, "size": list(args.size),
                 "noise": 0.01, "mask": "random", "acceleration": 4, "seed": args.seed,
                 "achieved_acceleration": round(cases["multicoil"]["achieved_acceleration"], 3)},
        "lamda_grid": LAMDAS,
        "max_iter_grid": ITERS,
        "zero_filled_psnr": {k: round(v["zero_filled_psnr"], 3) for k, v in cases.items()},
        "espirit_seconds_per_slice": round(cases["multicoil"]["map_seconds"], 4),
        "methods": {},
    }
    for method, per_case in tables.items():
        max_iter, lamda = choose(list(per_case.values()))
        cls = SENSE if method == "sense" else CompressedSensing
        result["methods"][method] = {
            "chosen": {"lamda": lamda, "max_iter": max_iter},
            "current_defaults": {"lamda": cls.default_lamda, "max_iter": cls.default_max_iter},
            "psnr": {name: {str(it): [round(table[(it, lam)][0], 3) for lam in LAMDAS]
                            for it in ITERS[method]} for name, table in per_case.items()},
            "psnr_at_chosen": {name: round(table[(max_iter, lamda)][0], 3)
                               for name, table in per_case.items()},
            "solver_seconds_per_slice_at_chosen": {
                name: round(table[(max_iter, lamda)][1], 4) for name, table in per_case.items()},
        }
    result["machine"] = {"platform": platform.platform(), "processor": platform.processor(),
                         "cpus": os.cpu_count(), "python": platform.python_version()}
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
