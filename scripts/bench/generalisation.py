"""Out-of-distribution validation suite: simulated fastMRI files, and how methods do on them.

    python scripts/bench/generalisation.py build OUT_DIR [--sources data/sources] [--overwrite]
    python scripts/bench/generalisation.py run SUITE_DIR [--model CKPT ...] [--methods cs]
        [--accel 4,8] [--mask-repeats 4] [--files GLOB] [--json-out FILE] [--markdown FILE]

``build`` writes ``{domain}_c{coils:02d}.h5`` for 1, 4, 8 and 15 coils and ``suite.json``
(files, domains, sha256 of the sources from ``scripts/fetch_training_data.sh``); the domains are
in :data:`DOMAINS`. Unlike training (random birdcage/loop coils and phase), coils are loops on
an ellipse (:func:`coil_maps`), the phase is :func:`image_phase`, and everything is drawn from
``SeedSequence([20261202, domain index, coils])``.

``run`` sweeps the files with :func:`mrirecon.evaluate.sweep` (random masks, fastMRI centre
fractions, ``--mask-repeats`` seeds; one sweep per ``--model``, labelled by its file stem) and
prints one JSON document: mean PSNR/SSIM per (domain, coil group single/multi, R, method) with
record and failure counts, and per (group, R, method) the mean and minimum over domains of the
paired PSNR gain over zero-filled; a markdown table goes to stderr (or ``--markdown``).
All k-space in the suite is simulated from magnitude images.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import itertools
import json
import math
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common
import numpy as np
import torch

from mrirecon.errors import MriReconError

SUITE = "generalisation.v1"
SEED = 20261202
COILS = (1, 4, 8, 15)
NOTE = ("all k-space in this suite is simulated from magnitude images (synthetic coil maps, "
        "phase and noise); no file holds measured raw data")
COLIN_SLICES = (70, 90)
SCRIPTS = Path(__file__).resolve().parents[1]  # scripts/, home of _colin27
#: Colin27 T1 / its 99th percentile -> 0 background, 1 dark (CSF, skull), 2 GM, 3 WM, 4 bright.
TISSUE_EDGES = (0.05, 0.38, 0.62, 0.74)
#: Synthetic contrasts: intensity of (CSF, GM, WM, fat/other).
CONTRASTS = {"t2": (1.0, 0.55, 0.4, 0.5), "flair": (0.08, 0.75, 0.5, 0.45)}
Image = tuple[np.ndarray, np.ndarray, dict[str, Any] | None]  # data, affine, image header


def _pick(volume: Any, index: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Slices ``index`` (evenly spaced) of a volume and the affine that still places them."""
    affine = np.array(volume.affine, dtype=float)
    affine[:3, 3] += affine[:3, 0] * index[0]
    if len(index) > 1:
        affine[:3, 0] *= index[1] - index[0]
    return np.asarray(volume.data[list(index)], dtype=np.float64), affine


def colin27(sources: Path, contrast: str | None = None) -> Image:
    """Colin27 T1 slices, or a T2/FLAIR-like image synthesised from their segmentation."""
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))
    import _colin27  # the scripts' one Colin27 locator and slicer
    from scipy.ndimage import gaussian_filter

    from mrirecon.io.nifti import read_nifti
    from mrirecon.physics.simulate import resample_inplane

    path = _colin27.locate(sources)
    volume = read_nifti(path)  # its header, and the whole volume's 99th percentile below
    data, affine = _colin27.stack(path, (0, 1, 2), COLIN_SLICES)  # NIfTI (i, j, slice)
    # to read_nifti's layout (slice, row, col) = (k, j, i); Colin27's units are unset (mm)
    data, affine = data.transpose(2, 1, 0).astype(np.float64), affine[:, [2, 1, 0, 3]]
    if contrast is not None:
        labels = np.digitize(data / np.percentile(volume.data, 99), TISSUE_EDGES)
        data = gaussian_filter(np.array([0.0, *CONTRASTS[contrast]])[labels], (0, 0.7, 0.7))
    data, affine = resample_inplane(data.astype(np.float32), affine, 160)
    return data, affine, volume.header


def inia19(sources: Path) -> Image:
    from mrirecon.io.nifti import read_nifti

    volume = read_nifti(sources / "inia19_t1_brain.nii.gz")
    inside = np.flatnonzero(volume.data.reshape(volume.shape[0], -1).max(axis=1) > 0)
    centre = (int(inside[0]) + int(inside[-1])) // 2
    data, affine = _pick(volume, (centre - 5, centre + 5))
    rows, cols = data.shape[1] // 2 * 2, data.shape[2] // 2 * 2  # even, dropping the last
    return data[:, :rows, :cols], affine, volume.header


def epi(sources: Path) -> Image:
    from mrirecon.io.nifti import read_nifti

    volume = read_nifti(sources / "nibabel_example4d.nii.gz", volume_index=0)
    middle = volume.shape[0] // 2
    return (*_pick(volume, (middle - 1, middle)), volume.header)


def mr_small(sources: Path) -> Image:
    from mrirecon.io import load  # the DICOM reader applies RescaleSlope/Intercept

    volume = load(sources / "pydicom_MR_small.dcm")
    return np.asarray(volume.data, dtype=np.float64), volume.affine, volume.header


def natural(sources: Path) -> Image:
    images = torch.as_tensor(np.load(sources / "natural_val.npy")[:2], dtype=torch.float32)
    out = torch.nn.functional.interpolate(images[:, None], size=(192, 192), mode="bilinear",
                                          align_corners=False, antialias=True)[:, 0]
    return out.double().numpy(), np.eye(4), None


#: name -> (loader, source file, noise std / max magnitude); the position is the seed's domain
#: index. colin27-t1: axial slices 70 and 90 (two of prepare_default_data.py's validation
#: slices) at 160x160; -t2/-flair: the same slices re-synthesised from a threshold segmentation
#: (:data:`TISSUE_EDGES`, :data:`CONTRASTS`, 0.7 px blur); inia19-macaque: axial, 5 voxels either
#: side of the brain's centre; epi: volume 0, middle two slices; mr-small: 64x64; natural:
#: camera and moon at 192x192. Native in-plane sizes otherwise; magnitudes scaled to max 1.
DOMAINS: dict[str, tuple[Callable[[Path], Image], str, float]] = {
    "colin27-t1": (colin27, "colin27.nii.gz", 0.02),
    "colin27-t2": (lambda s: colin27(s, "t2"), "colin27.nii.gz", 0.02),
    "colin27-flair": (lambda s: colin27(s, "flair"), "colin27.nii.gz", 0.02),
    "inia19-macaque": (inia19, "inia19_t1_brain.nii.gz", 0.02),
    "epi": (epi, "nibabel_example4d.nii.gz", 0.005),
    "mr-small": (mr_small, "pydicom_MR_small.dcm", 0.01),
    "natural": (natural, "natural_val.npy", 0.01),
}
ORDER = {d: i for i, d in enumerate(DOMAINS)}


def coil_maps(shape: tuple[int, int], coils: int, rng: np.random.Generator) -> torch.Tensor:
    """The suite's coils (RSS 1), or its one coil.

    Loops of size 0.6 evenly spaced on an ellipse of semi-axes 1.25 (y) and 1.05 (x) with
    phase offsets ``0.7 * 2 pi k / coils``; for one coil a loop of size 1.5 at (1.6, 0), max
    magnitude 1, times a random constant phase.
    """
    from mrirecon.physics.coils import loop_maps

    if coils == 1:
        maps = loop_maps(shape, np.array([[1.6, 0.0]]), 1.5, dtype=torch.complex128,
                         normalise=False)
        return maps / maps.abs().max() * complex(np.exp(1j * rng.uniform(-math.pi, math.pi)))
    angle = 2 * math.pi * np.arange(coils) / coils
    centres = np.stack([1.25 * np.sin(angle), 1.05 * np.cos(angle)], axis=1)
    return loop_maps(shape, centres, 0.6, phases=0.7 * angle, dtype=torch.complex128)


def image_phase(shape: tuple[int, int], rng: np.random.Generator) -> torch.Tensor:
    """``0.6 * polynomial(order 3, 0.8 pi) + ramp(0.5 cycles) + one patch(width 0.08-0.12, pi)``."""
    from mrirecon.physics.fields import patch_phase, polynomial_phase, ramp_phase

    return (0.6 * polynomial_phase(shape, rng, order=3, max_phase=math.pi * 0.8)
            + ramp_phase(shape, rng, max_cycles=0.5)
            + patch_phase(shape, rng, count=1, width=(0.08, 0.12), max_phase=math.pi))


def simulate(magnitude: np.ndarray, domain_index: int, coils: int, noise: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """``(kspace (slices, coils, ky, kx) complex64, target (slices, ky, kx) float32)``."""
    from mrirecon.physics.simulate import measure

    rng = np.random.default_rng(np.random.SeedSequence([SEED, domain_index, coils]))
    shape = (magnitude.shape[1], magnitude.shape[2])
    maps = coil_maps(shape, coils, rng)
    phase = torch.stack([image_phase(shape, rng) for _ in range(magnitude.shape[0])])
    image = torch.polar(torch.as_tensor(magnitude, dtype=torch.float64), phase)
    kspace, target = measure(image, maps, noise * float(magnitude.max()), rng)
    return kspace.to(torch.complex64).numpy(), target.to(torch.float32).numpy()


def write_file(out: Path, domain: str, coils: int, image: Image, overwrite: bool) -> dict:
    """Simulate one suite file and write it with :func:`mrirecon.simulation.write_simulated`."""
    from mrirecon.data import Volume
    from mrirecon.simulation import write_simulated

    _, source, noise = DOMAINS[domain]
    index = ORDER[domain]
    data, affine, header = image
    kspace, target = simulate(data / data.max(), index, coils, noise)
    slices, _, rows, cols = kspace.shape
    volume = Volume(data=data, affine=affine, header=header or {}, source=source)
    simulation = {"seed": [SEED, index, coils], "noise": noise, "coils": coils,
                  "coil_maps": "loop_maps ellipse" if coils > 1 else "one loop"}
    write_simulated(out, volume, {"kspace": kspace, "target": target, "affine": affine},
                    simulation, overwrite=overwrite,
                    provenance={"suite": SUITE, "domain": domain, "coils": coils,
                                "source_file": source})
    return {"file": out.name, "domain": domain, "coils": coils, "slices": slices,
            "matrix": [rows, cols], "source": source, "noise": noise}


def build(args: argparse.Namespace) -> None:
    from mrirecon.fileutil import atomic_path, check_writable

    out, sources = Path(args.out_dir), Path(args.sources)
    missing = sorted({s for _, s, _ in DOMAINS.values() if not (sources / s).is_file()})
    if missing:
        raise SystemExit(f"error: {sources}: missing {', '.join(missing)}; run "
                         "scripts/fetch_training_data.sh first")
    check_writable([*(out / f"{d}_c{c:02d}.h5" for d in DOMAINS for c in COILS),
                    out / "suite.json"], args.overwrite)
    files = []
    for domain, (loader, _, _) in DOMAINS.items():
        image = loader(sources)
        for coils in COILS:
            _common.progress(f"{domain}: {coils} coils")
            files.append(write_file(out / f"{domain}_c{coils:02d}.h5", domain, coils, image,
                                    args.overwrite))
    used = sorted({s for _, s, _ in DOMAINS.values()})
    suite = {"suite": SUITE, "note": NOTE, "seed": SEED, "coils": list(COILS), "files": files,
             "domains": {d: {"source": s, "noise": n} for d, (_, s, n) in DOMAINS.items()},
             "sources": {s: hashlib.sha256((sources / s).read_bytes()).hexdigest() for s in used}}
    text = json.dumps(suite, indent=2)
    with atomic_path(out / "suite.json", args.overwrite) as tmp:
        tmp.write_text(text + "\n")
    print(text)


def suite_files(suite: Path, pattern: str | None) -> dict[Path, tuple[str, int]]:
    """The files of ``suite.json`` whose names match ``pattern`` -> (domain, coils)."""
    index = suite / "suite.json"
    if not index.is_file():
        raise SystemExit(f"error: {index}: not found; expected a 'generalisation.py build' folder")
    chosen = {suite / f["file"]: (f["domain"], int(f["coils"]))
              for f in json.loads(index.read_text())["files"]
              if fnmatch.fnmatch(f["file"], pattern or "*")}
    if not chosen:
        raise SystemExit(f"error: {suite}: no suite file matches {pattern!r}")
    return chosen


def sweep_all(paths: list[Path], args: argparse.Namespace, methods: list[str],
              device: torch.device) -> tuple[list[dict], list[str], list[str]]:
    """Records and notes of the classical methods, then of each model (label: its stem)."""
    from mrirecon.evaluate import sweep

    common = {"mask_kind": "random", "seed": args.seed, "mask_repeats": args.mask_repeats,
              "device": device, "batch_size": args.batch_size}
    out = sweep(paths, args.accel, methods, **common)
    records, notes, labels = list(out), list(out.notes), []
    for checkpoint in args.model:
        label = Path(checkpoint).stem
        label = label if label not in (*methods, *labels) else f"{label}-{len(labels)}"
        labels.append(label)
        try:
            out = sweep(paths, args.accel, ["zero-filled"], models=[checkpoint], **common)
        except MriReconError as exc:
            notes.append(f"{label}: nothing computed ({exc})")
            continue
        names = {r["method"] for r in out} - {"zero-filled"}  # its registry name
        records += [{**r, "method": label} for r in out if r["method"] in names]
        for note in out.notes:
            if "zero-filled" not in note:
                for name in names:
                    note = note.replace(f": {name} ", f": {label} ", 1)
                notes.append(note)
    return records, notes, labels


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def aggregate(records: list[dict], files: dict[Path, tuple[str, int]], methods: list[str],
              accels: list[float], repeats: int, notes: list[str]
              ) -> tuple[list[dict], list[dict]]:
    """Per (domain, coil group, R, method) means and counts; per (group, R, method) gains."""
    meta = {p.name: v for p, v in files.items()}
    skipped = {(n.split(": ")[0], n.split(": ")[1].split()[0]) for n in notes
               if "needs multi-coil data" in n}
    group = {name: "single" if coils == 1 else "multi" for name, (_, coils) in meta.items()}
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        cells[(meta[r["file"]][0], group[r["file"]], r["acceleration"], r["method"])].append(r)
    expected: dict[tuple, int] = defaultdict(int)
    for (name, (domain, _)), accel, method in itertools.product(meta.items(), accels, methods):
        if (name, method) not in skipped:
            expected[(domain, group[name], accel, method)] += repeats
    rows = []
    for key in sorted(expected, key=lambda k: (ORDER.get(k[0], 99), k[0], k[1], k[2],
                                               methods.index(k[3]))):
        recs = cells.get(key, [])
        rows.append({**dict(zip(("domain", "coil_group", "acceleration", "method"), key,
                                strict=True)),
                     "psnr_mean": _mean([r["psnr"] for r in recs]),
                     "ssim_mean": _mean([r["ssim"] for r in recs]), "records": len(recs),
                     "failed": expected[key] - len(recs),
                     "coils": sorted({c for n, (d, c) in meta.items()
                                      if (d, group[n]) == key[:2]})})
    zero = {(r["file"], r["acceleration"], r["mask_seed"]): r["psnr"] for r in records
            if r["method"] == "zero-filled"}
    gains: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        base = zero.get((r["file"], r["acceleration"], r["mask_seed"]))
        if r["method"] != "zero-filled" and base is not None:
            gains[(group[r["file"]], r["acceleration"], r["method"])][meta[r["file"]][0]].append(
                r["psnr"] - base)
    summary = []
    for (grp, accel, method), by_domain in sorted(
            gains.items(), key=lambda kv: (kv[0][:2], methods.index(kv[0][2]))):
        means = {d: m for d, v in by_domain.items() if (m := _mean(v)) is not None}
        worst = min(means, key=means.get) if means else None
        summary.append({"coil_group": grp, "acceleration": accel, "method": method,
                        "domains": len(means), "psnr_gain_mean": _mean(list(means.values())),
                        "psnr_gain_min": means.get(worst), "worst_domain": worst})
    return rows, summary


def markdown(rows: list[dict], summary: list[dict], methods: list[str]) -> str:
    """The domain table (PSNR / SSIM per method) and the gain table, as markdown."""
    table: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        cell = "-" if r["psnr_mean"] is None else f"{r['psnr_mean']:.2f} / {r['ssim_mean']:.4f}"
        if r["failed"]:
            cell += f" ({r['failed']}/{r['failed'] + r['records']} failed)"
        key = (r["domain"], r["coil_group"], r["acceleration"])
        table.setdefault(key, dict(zip(("domain", "coils", "R"), key, strict=True)))
        table[key][r["method"]] = cell
    signed = "{:+.2f}".format
    return "\n".join([
        _common.markdown_table(list(table.values()), [
            ("domain", "domain"), ("coils", "coils"), ("R", "R", "{:g}".format),
            *((m, m) for m in methods)]),
        "", "PSNR / SSIM: mean over files x volumes x masks.", "",
        _common.markdown_table(summary, [
            ("coil_group", "coils"), ("acceleration", "R", "{:g}".format), ("method", "method"),
            ("psnr_gain_mean", "mean PSNR gain over zero-filled (dB)", signed),
            ("psnr_gain_min", "min over domains (dB)", signed), ("worst_domain", "worst domain")]),
        ""])


def run(args: argparse.Namespace) -> None:
    from mrirecon.evaluate import check_sweep_options
    from mrirecon.fileutil import atomic_path, check_writable
    from mrirecon.report import json_safe

    try:
        accels = [float(a) for a in args.accel.split(",") if a.strip()]
        args.accel, methods = check_sweep_options(
            accels, ["zero-filled", *(m.strip() for m in args.methods.split(",") if m.strip())])
    except (ValueError, MriReconError) as exc:  # InvalidParameterError is a ValueError too
        raise SystemExit(f"error: --accel {args.accel!r}, --methods {args.methods!r}: "
                         f"{exc}") from None
    for checkpoint in args.model:
        if not Path(checkpoint).is_file():
            raise SystemExit(f"error: --model {checkpoint}: file not found")
    check_writable([p for p in (args.json_out, args.markdown) if p], args.overwrite)
    files = suite_files(Path(args.suite_dir), args.files)
    device = _common.setup(args)
    args.batch_size = args.batch_size or _common.default_batch_size(device)
    records, notes, labels = sweep_all(list(files), args, methods, device)
    columns = [*methods, *labels]
    rows, summary = aggregate(records, files, columns, args.accel, args.mask_repeats, notes)
    settings = {"suite_dir": args.suite_dir, "files": sorted(p.name for p in files),
                "methods": methods, "models": dict(zip(labels, args.model, strict=True)),
                "accelerations": args.accel, "mask_kind": "random",
                "center_fraction": "0.32 / R (fastMRI's 0.08 at 4x, 0.04 at 8x)",
                "mask_repeats": args.mask_repeats, "seed": args.seed,
                "batch_size": args.batch_size}
    report = json_safe({"benchmark": "generalisation", "suite": SUITE, "note": NOTE,
                        "machine": _common.machine(device), "settings": settings, "results": rows,
                        "gain_vs_zero_filled": summary, "notes": notes, "records": records})
    text, table = json.dumps(report, indent=2), markdown(rows, summary, columns)
    print(text)
    for path, content in ((args.json_out, text + "\n"), (args.markdown, table)):
        if path:
            with atomic_path(path, args.overwrite) as tmp:
                tmp.write_text(content)
    if not args.markdown:
        print(table, file=sys.stderr, end="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="write the suite's simulated fastMRI files")
    b.add_argument("out_dir", metavar="OUT_DIR")
    b.add_argument("--sources", default="data/sources",
                   help="what scripts/fetch_training_data.sh wrote [default: data/sources]")
    b.add_argument("--overwrite", action="store_true", help="replace existing suite files")
    r = commands.add_parser("run", help="score methods and models on the suite (JSON)")
    r.add_argument("suite_dir", metavar="SUITE_DIR")
    r.add_argument("--model", action="append", default=[], metavar="CKPT",
                   help="a learned checkpoint to score too (repeatable)")
    r.add_argument("--methods", default="zero-filled,cs",
                   help="classical methods; zero-filled always runs [default: zero-filled,cs]")
    r.add_argument("--accel", default="4,8", help="accelerations [default: 4,8]")
    r.add_argument("--mask-repeats", type=int, default=4, help="masks per file and R")
    r.add_argument("--files", metavar="GLOB", help="only the suite files matching GLOB")
    r.add_argument("--batch-size", type=int, help="slices per call")
    r.add_argument("--json-out", metavar="FILE", help="also write the JSON here")
    r.add_argument("--markdown", metavar="FILE", help="the markdown here, not on stderr")
    r.add_argument("--overwrite", action="store_true", help="replace --json-out/--markdown")
    _common.add_common_arguments(r)
    args = parser.parse_args()
    try:
        (build if args.command == "build" else run)(args)
    except MriReconError as exc:  # an expected failure: one line, no traceback
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
