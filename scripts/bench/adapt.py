"""Scan-specific adaptation (``mrirecon reconstruct --adapt``) on the validation suite.

    python scripts/bench/adapt.py SUITE_DIR [--model default] [--files GLOB ...]
        [--accel 4,8] [--steps 20,50,100] [--lr LR] [--patience N] [--min-gain G] [--trace]
        [--sources data/sources] [--threads 2]
        [--json-out FILE] [--markdown FILE] [--overwrite]

For each suite file (``scripts/bench/generalisation.py build``) and acceleration, the file is
undersampled with the mask ``mrirecon reconstruct --accel R`` draws for it (random, fastMRI's
centre fraction, seed 0), reconstructed by the model as shipped and after adaptation with each
``--steps`` budget, and scored against the file's fully sampled reference (fastMRI volume
PSNR/SSIM). The budgets are read off one adaptation of the largest: every step's split is keyed
by the step, so the weights a check keeps at step 20 are what ``--adapt 20`` returns (the test
``test_adapt_budgets_are_prefixes_of_a_longer_run`` checks it). Seconds per slice are
adaptation plus reconstruction, as ``reconstruct`` reports them.

``--trace`` also records, for every hold-out check, the PSNR of the weights being adapted next
to their hold-out loss, and the *floor* of that loss: the loss of the fully sampled image itself
(the coil-combined reference data seen through the same ACS coil maps): what the true image
scores, so a loss near it no longer says much about the image. It asks whether the hold-out
loss, the only signal adaptation has, tracks image quality (``--patience`` larger than the
checks turns early stopping off for the whole curve). For suite files with several coils it adds
the floor with the suite's true coil maps, which leaves only the noise outside their span.

The file's reference is the fastMRI one, the RSS (or, for one coil, the magnitude) of the
*noisy* fully sampled coil images. ``--sources`` also scores every reconstruction against the
noise-free image the suite simulated it from (:func:`generalisation.noiseless_target`, checked
against the file), which a denoising reconstruction can approach while moving away from the
noisy reference.

One JSON document on stdout (also written to ``--json-out``), a markdown table on stderr (or
``--markdown``); existing report files are replaced only with ``--overwrite``. All k-space in
the suite is simulated from magnitude images.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import _common
import generalisation
import numpy as np
import torch

from mrirecon.errors import InvalidParameterError, MriReconError
from mrirecon.fileutil import check_writable
from mrirecon.io.fastmri_h5 import read_kspace
from mrirecon.metrics import volume_metrics
from mrirecon.padding import center_crop
from mrirecon.physics import sense_operator
from mrirecon.recon.base import recon_size
from mrirecon.recon.learned import estimate
from mrirecon.recon.methods import load_reconstructor
from mrirecon.sampling import MaskOptions, draw_mask
from mrirecon.train.adapt import AdaptOptions, adapt, holdout_split
from mrirecon.train.losses import kspace_loss
from mrirecon.train.objective import ssdu_inputs

NOTE = ("all k-space in the suite is simulated from magnitude images; the model never saw "
        "these files; scored against each file's fully sampled (noisy) reference and, with "
        "--sources, against the noise-free image it was simulated from")


def score(model: torch.nn.Module, kspace: torch.Tensor, mask: torch.Tensor,
          references: dict[str, np.ndarray], size: tuple[int, int]) -> dict[str, float]:
    """Volume PSNR/SSIM of the model's reconstruction (recon-size crop) against each reference.

    ``references`` maps a key suffix to an image: ``{"": file's, "_clean": noise-free}`` gives
    ``psnr``, ``ssim``, ``psnr_clean`` and ``ssim_clean``.
    """
    with torch.no_grad():
        image = center_crop(estimate(model, kspace, mask), size).numpy()
    out = {}
    for suffix, reference in references.items():
        metrics = volume_metrics(reference, image)
        out |= {f"psnr{suffix}": round(metrics["psnr"], 3),
                f"ssim{suffix}": round(metrics["ssim"], 4)}
    return out


def holdout_floor(full: torch.Tensor, mask: torch.Tensor, options: AdaptOptions,
                  maps: torch.Tensor | None = None) -> float:
    """The hold-out loss of the fully sampled data's own coil-combined image (mean over slices).

    The image is ``S^H y`` of the fully sampled ``full`` with coil maps ``S``: by default the
    ACS maps adaptation uses, or ``maps`` ``(coils, ky, kx)`` (the suite's true ones). Its
    k-space on the hold-out lines differs from the measured lines by what those maps miss and
    by the noise outside their span: the level at which the truth itself sits (an estimate
    fitted to these lines could go lower, by being less true). With the true maps only the noise
    is left.
    """
    rest, holdout = holdout_split(mask, options)
    losses = []
    for s in range(full.shape[0]):
        inputs, target = ssdu_inputs(full[s : s + 1] * mask, rest, holdout)
        if maps is not None:
            target = replace(target, maps=maps[None].to(full.dtype))
        image = sense_operator(target.maps).adjoint(full[s : s + 1] / inputs.scale)
        losses.append(float(kspace_loss(sense_operator(target.maps, holdout)(image),
                                        target.y, holdout)))
    return float(np.mean(losses))


def _gains(result: dict[str, float], shipped: dict[str, float]) -> dict[str, float]:
    """``gain_db`` (and ``gain_clean_db``): PSNR over the model as shipped."""
    return {f"gain{suffix}_db": round(result[f"psnr{suffix}"] - shipped[f"psnr{suffix}"], 3)
            for suffix in ("", "_clean") if f"psnr{suffix}" in result}


def _curve_summary(trace: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    """PSNR at the lowest hold-out loss, the best PSNR and corr(loss, PSNR) of a trace."""
    key = f"psnr{suffix}"
    losses = [c["holdout_loss"] for c in trace]
    psnrs = [c[key] for c in trace]
    corr = (round(float(np.corrcoef(losses, psnrs)[0, 1]), 3)
            if np.std(losses) > 0 and np.std(psnrs) > 0 else None)
    return {f"{key}_at_lowest_loss": min(trace, key=lambda c: c["holdout_loss"])[key],
            f"best_{key}_on_curve": max(psnrs), f"corr_loss_{key}": corr}


def run_file(path: Path, model: torch.nn.Module, accel: float, budgets: list[int],
             options: AdaptOptions, trace: bool = False,
             clean: np.ndarray | None = None) -> list[dict[str, Any]]:
    """The rows of one file at one acceleration: as shipped and per budget.

    With ``clean`` (the file's noise-free reference, :func:`generalisation.noiseless_target`)
    every score is also taken against it (``psnr_clean``, ``ssim_clean``, ``gain_clean_db``).
    """
    scan = read_kspace(path)
    mask_np = draw_mask(scan.shape[-2:], MaskOptions(acceleration=accel, seed=options.seed),
                        path.name).array
    mask = torch.as_tensor(mask_np)
    full = torch.as_tensor(scan.slices(0, scan.n_slices))
    kspace = full * mask
    references = {"": np.asarray(next(iter(scan.targets.values()))[:], dtype=np.float32)}
    if clean is not None:
        references["_clean"] = clean
    size = recon_size(scan)
    domain, coils = path.stem.rsplit("_c", 1)
    base = {"domain": domain, "coils": int(coils), "R": accel, "slices": scan.n_slices}
    start = time.perf_counter()
    shipped = score(model, kspace, mask, references, size)
    recon_seconds = (time.perf_counter() - start) / scan.n_slices
    rows = [{**base, "steps": 0, **shipped, **_gains(shipped, shipped),
             "s_per_slice": round(recon_seconds, 2)}]
    kept: dict[int, tuple[dict[str, Any], float]] = {}
    curve: dict[int, dict[str, float]] = {0: shipped}
    start = time.perf_counter()

    def on_check(step: int, state: dict[str, Any], current: torch.nn.Module) -> None:
        if step in budgets:
            kept[step] = (copy.deepcopy(state), time.perf_counter() - start)
        if trace:
            curve[step] = score(current.eval(), kspace, mask, references, size)
            current.train()

    try:
        adapted, record = adapt(model, kspace, mask, replace(options, steps=max(budgets)),
                                on_check=on_check)
    except InvalidParameterError as exc:  # what --adapt says for this mask, one line
        rows[0]["refused"] = str(exc)
        return rows
    for steps in budgets:
        if steps in kept:
            state, seconds = kept[steps]
            work = copy.deepcopy(model)
            work.load_state_dict(state)
        else:  # stopped early before this budget: --adapt steps returns the same weights
            work, seconds = adapted, record["seconds"]
        result = score(work, kspace, mask, references, size)
        early = steps not in kept or steps == max(budgets)
        rows.append({**base, "steps": steps, **result, **_gains(result, shipped),
                     "stopped": record["stopped"] if early else "steps",
                     "s_per_slice": round(seconds / scan.n_slices + recon_seconds, 2)})
    last = rows[-1]
    last.update(best_step=record["best_step"], steps_taken=record["steps_taken"],
                holdout_loss=record["holdout_loss"])
    if trace:
        scores = [k for k in shipped if k.startswith("psnr")]
        last["trace"] = [{"step": step, "holdout_loss": loss,
                          **{k: curve[step][k] for k in scores}}
                         for step, loss in record["checks"]]
        last["holdout_floor"] = round(holdout_floor(full, mask, options), 4)
        if last["coils"] > 1 and scan.provenance.get("suite") == generalisation.SUITE:
            maps = generalisation.true_maps(domain, last["coils"], tuple(full.shape[-2:]))
            last["holdout_floor_true_maps"] = round(holdout_floor(full, mask, options, maps), 4)
        for suffix in references:
            last |= _curve_summary(last["trace"], suffix)
    return rows


COLUMNS = [("domain", "domain"), ("coils", "coils"), ("R", "R"), ("steps", "adapt steps"),
           ("psnr", "PSNR"), ("ssim", "SSIM"), ("gain_db", "gain dB")]
CLEAN_COLUMNS = [("psnr_clean", "PSNR noise-free"), ("gain_clean_db", "gain noise-free dB")]
TRACE_COLUMNS = [("domain", "domain"), ("coils", "coils"), ("R", "R"),
                 ("holdout_floor", "hold-out floor"),
                 ("holdout_floor_true_maps", "floor, true maps"),
                 ("loss_range", "hold-out loss (given, lowest)"),
                 ("psnr_0", "PSNR given"), ("psnr_at_lowest_loss", "PSNR at lowest loss"),
                 ("best_psnr_on_curve", "best PSNR on curve"),
                 ("corr_loss_psnr", "corr(loss, PSNR)")]
CLEAN_TRACE_COLUMNS = [("psnr_clean_0", "noise-free PSNR given"),
                       ("psnr_clean_at_lowest_loss", "noise-free at lowest loss"),
                       ("best_psnr_clean_on_curve", "best noise-free on curve"),
                       ("corr_loss_psnr_clean", "corr(loss, noise-free PSNR)")]


def trace_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per traced (file, R), saying whether the hold-out loss points at better weights."""
    out = []
    for row in rows:
        if "trace" in row:
            losses = [c["holdout_loss"] for c in row["trace"]]
            first = row["trace"][0]
            out.append({**row, "psnr_0": first["psnr"], "psnr_clean_0": first.get("psnr_clean"),
                        "loss_range": f"{losses[0]:.3f}, {min(losses):.3f}"})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("suite", type=Path, help="folder of a built validation suite")
    parser.add_argument("--model", default="default", help="checkpoint to adapt")
    parser.add_argument("--files", action="append", default=None,
                        help="glob(s) of suite file names [default: all]")
    parser.add_argument("--accel", type=_common.csv_of(float), default=[4.0, 8.0])
    parser.add_argument("--steps", type=_common.csv_of(int), default=[20, 50, 100])
    parser.add_argument("--lr", type=float, default=AdaptOptions(steps=1).lr,
                        help="adaptation learning rate [default: --adapt's]")
    parser.add_argument("--patience", type=int, default=AdaptOptions(steps=1).patience,
                        help="checks without a gain before stopping [default: --adapt's]")
    parser.add_argument("--min-gain", type=float, default=AdaptOptions(steps=1).min_gain,
                        help="relative drop of the hold-out loss that counts as a gain "
                        "[default: --adapt's]")
    parser.add_argument("--trace", action="store_true",
                        help="record PSNR, hold-out loss and its floor at every check")
    parser.add_argument("--sources", type=Path, default=None,
                        help="the suite's sources (scripts/fetch_training_data.sh): also score "
                        "against each file's noise-free reference regenerated from them")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="the markdown here, not on stderr")
    parser.add_argument("--overwrite", action="store_true", help="replace --json-out/--markdown")
    _common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    check_writable([p for p in (args.json_out, args.markdown) if p], args.overwrite)
    device = _common.setup(args)
    files = sorted(p for p in args.suite.glob("*.h5")
                   if args.files is None or any(fnmatch.fnmatch(p.name, g) for g in args.files))
    if not files:
        raise SystemExit(f"error: {args.suite}: no suite files match")
    clean = ({} if args.sources is None else
             {p: generalisation.noiseless_target(p, args.sources) for p in files})
    learned = load_reconstructor(args.model, device=device)
    options = AdaptOptions(steps=1, seed=args.seed, lr=args.lr, patience=args.patience,
                           min_gain=args.min_gain)
    rows: list[dict[str, Any]] = []
    for path in files:
        for accel in args.accel:
            new = run_file(path, learned.model, accel, sorted(args.steps), options, args.trace,
                           clean.get(path))
            rows += new
            print(f"{path.name} R={accel:g}: " + ", ".join(
                f"{r['steps']}: {r['psnr']:.2f}" for r in new)
                + (f" (refused: {new[0]['refused']})" if "refused" in new[0] else ""),
                file=sys.stderr, flush=True)
    extra = CLEAN_COLUMNS if args.sources else []
    columns = COLUMNS + extra + [("stopped", "stopped"), ("s_per_slice", "s/slice")]
    settings = {"suite": str(args.suite), "model": args.model, "accel": args.accel,
                "steps": args.steps, "seed": args.seed, "lr": args.lr,
                "patience": args.patience, "min_gain": args.min_gain,
                "trace": args.trace,
                "sources": None if args.sources is None else str(args.sources),
                "adapt_defaults": AdaptOptions(steps=1).record()}
    report = {"benchmark": "adapt", "machine": _common.machine(device), "settings": settings,
              "results": rows, "notes": [NOTE]}
    table = _common.markdown_table(rows, columns)
    if args.trace:
        table += "\n\n" + _common.markdown_table(
            trace_rows(rows), TRACE_COLUMNS + (CLEAN_TRACE_COLUMNS if args.sources else []))
    table += f"\n\nnote: {NOTE}\n"
    _common.publish(report, table, args.json_out, args.markdown, args.overwrite)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MriReconError as exc:  # an expected failure (a file, a model): one line, no traceback
        raise SystemExit(f"error: {exc}") from None
