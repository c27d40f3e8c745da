"""Out-of-distribution validation suite: simulated fastMRI files, and how methods do on them.

    python scripts/bench/generalisation.py build OUT_DIR [--sources data/sources] [--overwrite]
    python scripts/bench/generalisation.py noise-free SUITE_DIR OUT_DIR [--sources data/sources]
    python scripts/bench/generalisation.py run SUITE_DIR [--model CKPT ...] [--methods cs]
        [--accel 4,8] [--mask-repeats 4] [--files GLOB] [--samples N]
        [--reference-model LABEL] [--json-out FILE] [--markdown FILE]

``build`` writes ``{domain}_c{coils:02d}.h5`` for 1, 4, 8 and 15 coils and ``suite.json``
(files, domains, sha256 of the sources from ``scripts/fetch_training_data.sh``); the domains are
in :data:`DOMAINS`. Unlike training (random birdcage/loop coils and phase), coils are loops on
an ellipse (:func:`coil_maps`), the phase is :func:`image_phase`, and everything is drawn from
``SeedSequence([20261202, domain index, coils])``.

``noise-free`` copies a suite with every reference replaced by the image without the suite's
noise (:func:`noiseless_target`), so ``run`` and the other benchmarks score against it; the
fastMRI references, the RSS of the noisy coil images, are as noisy as ``suite.json``'s
``reference_psnr_noise_free`` says.

``run`` sweeps the files with :func:`mrirecon.evaluate.sweep` (random masks, fastMRI centre
fractions, ``--mask-repeats`` seeds; one sweep per ``--model``, labelled by its file stem) and
prints one JSON document: mean PSNR/SSIM per (domain, coil group single/multi, R, method) with
record and failure counts, and per (group, R, method) the mean and minimum over domains of the
paired PSNR gain over zero-filled; a markdown table goes to stderr (or ``--markdown``).
All k-space in the suite is simulated from magnitude images.

With ``--samples N`` the models that can sample (``cinn.v1``) draw N posterior samples per
slice (the others, e.g. a reference i-RIM, run as without it), and the JSON gains
``calibration`` (per cell the mean of each calibration field, before and after the
checkpoint's std calibration where it has one, and per (group, R, method) the mean and worst
over domains, :func:`calibration`) and ``targets`` (per cell pass/fail of :data:`TARGETS`,
:func:`targets`; the PSNR target against ``--reference-model``); the markdown gains a
calibration table.
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
#: The uncertainty targets of a sampler per cell: 2-std coverage in this range, corr(std,
#: |error|) at least this, posterior-mean PSNR at most this many dB below the reference model's.
TARGETS = {"within_2std": (0.92, 0.97), "corr_std_error": 0.5, "psnr_below_reference_db": 0.5}


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

    rng = suite_rng(domain_index, coils)
    shape = (magnitude.shape[1], magnitude.shape[2])
    maps = coil_maps(shape, coils, rng)
    phase = torch.stack([image_phase(shape, rng) for _ in range(magnitude.shape[0])])
    image = torch.polar(torch.as_tensor(magnitude, dtype=torch.float64), phase)
    kspace, target = measure(image, maps, noise * float(magnitude.max()), rng)
    return kspace.to(torch.complex64).numpy(), target.to(torch.float32).numpy()


def suite_rng(domain_index: int, coils: int) -> np.random.Generator:
    """The generator a suite file draws its coils, phase and noise from (``ORDER[domain]``)."""
    return np.random.default_rng(np.random.SeedSequence([SEED, domain_index, coils]))


def true_maps(domain: str, coils: int, shape: tuple[int, int]) -> torch.Tensor:
    """The coil maps that made a suite file (its first draws from :func:`suite_rng`)."""
    return coil_maps(shape, coils, suite_rng(ORDER[domain], coils))


def noiseless_target(path: Path, sources: Path) -> np.ndarray:
    """The noise-free reference of suite file ``path``, regenerated from ``sources``.

    :func:`simulate` draws the coils and phase before the noise, so with the noise set to 0 it
    gives the file's image without the noise the suite added (the EPI source is itself a real,
    noisy acquisition; its own noise stays): ``|x|`` for several coils (their RSS is 1), ``|S
    x|`` for one. The file's own (noisy) reference is regenerated as well and must match it, so
    a file built from other sources or by another suite version is an error, not a wrong
    reference.

    Raises
    ------
    InputFileError
        Not a file of this suite, a missing source, or a file its sources do not reproduce.
    """
    from mrirecon.errors import InputFileError
    from mrirecon.io.fastmri_h5 import read_kspace

    scan = read_kspace(path)
    provenance = scan.provenance
    if provenance.get("suite") != SUITE or provenance.get("domain") not in DOMAINS:
        raise InputFileError(path, f"not a {SUITE} suite file (no suite domain in its "
                             "provenance)")
    domain, coils = provenance["domain"], int(provenance["coils"])
    loader, source, noise = DOMAINS[domain]
    if not (sources / source).is_file():
        raise InputFileError(sources / source, f"missing source of {path.name}; run "
                             "scripts/fetch_training_data.sh first")
    data = loader(sources)[0]
    magnitude = data / data.max()
    stored = np.asarray(next(iter(scan.targets.values()))[:], dtype=np.float32)
    noisy = simulate(magnitude, ORDER[domain], coils, noise)[1]
    if noisy.shape != stored.shape or not np.allclose(noisy, stored, rtol=1e-4,
                                                      atol=1e-6 * float(stored.max())):
        raise InputFileError(path, f"{sources / source} does not reproduce its reference "
                             "(rebuild the suite from these sources)")
    return simulate(magnitude, ORDER[domain], coils, 0.0)[1]


def write_file(out: Path, domain: str, coils: int, image: Image, overwrite: bool) -> dict:
    """Simulate one suite file and write it with :func:`mrirecon.simulation.write_simulated`.

    Its record in ``suite.json`` carries ``reference_psnr_noise_free``: the PSNR of the file's
    fully sampled (noisy) reference against the image without the suite's noise, which bounds
    what a score against that reference can tell apart.
    """
    from mrirecon.data import Volume
    from mrirecon.metrics import psnr
    from mrirecon.simulation import write_simulated

    _, source, noise = DOMAINS[domain]
    index = ORDER[domain]
    data, affine, header = image
    kspace, target = simulate(data / data.max(), index, coils, noise)
    clean = simulate(data / data.max(), index, coils, 0.0)[1]
    slices, _, rows, cols = kspace.shape
    volume = Volume(data=data, affine=affine, header=header or {}, source=source)
    simulation = {"seed": [SEED, index, coils], "noise": noise, "coils": coils,
                  "coil_maps": "loop_maps ellipse" if coils > 1 else "one loop"}
    write_simulated(out, volume, {"kspace": kspace, "target": target, "affine": affine},
                    simulation, overwrite=overwrite,
                    provenance={"suite": SUITE, "domain": domain, "coils": coils,
                                "source_file": source})
    return {"file": out.name, "domain": domain, "coils": coils, "slices": slices,
            "matrix": [rows, cols], "source": source, "noise": noise,
            "reference_psnr_noise_free": round(psnr(clean, target), 2)}


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


def noise_free(args: argparse.Namespace) -> None:
    """Copy a suite with each file's reference replaced by its noise-free image.

    The k-space is the file's own; only the reference (and its ``max``/``norm``) changes, and
    the provenance and ``suite.json`` say so (``"reference": "noise-free"``), so ``run``,
    ``mrirecon evaluate`` and ``scripts/bench/adapt.py`` score against the image without the
    suite's noise unchanged.
    """
    import shutil

    import h5py

    from mrirecon.fileutil import atomic_path, check_writable

    suite, out, sources = Path(args.suite_dir), Path(args.out_dir), Path(args.sources)
    index_path = suite / "suite.json"
    if not index_path.is_file():
        raise SystemExit(f"error: {index_path}: file not found (build the suite first)")
    index = json.loads(index_path.read_text())
    names = [f["file"] for f in index["files"]]
    check_writable([*(out / n for n in names), out / "suite.json"], args.overwrite)
    cleans = {}
    for name in names:  # every reference first: a file that fails leaves nothing written
        _common.progress(f"{name}: noise-free reference")
        cleans[name] = noiseless_target(suite / name, sources)
    for name, clean in cleans.items():
        with atomic_path(out / name, args.overwrite) as tmp:
            shutil.copyfile(suite / name, tmp)
            with h5py.File(tmp, "r+") as f:
                key = next(k for k in f if k.startswith("reconstruction_"))
                f[key][...] = clean
                f.attrs["max"], f.attrs["norm"] = float(clean.max()), float(np.linalg.norm(clean))
                provenance = json.loads(f.attrs["mrirecon_provenance"])
                f.attrs["mrirecon_provenance"] = json.dumps({**provenance,
                                                             "reference": "noise-free"})
    text = json.dumps({**index, "reference": "noise-free", "from": str(suite)}, indent=2)
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


def model_labels(checkpoints: list[str], methods: list[str]) -> list[str]:
    """Each model's label: its file stem, ``-i`` appended where a method or model has it."""
    labels: list[str] = []
    for checkpoint in checkpoints:
        label = Path(checkpoint).stem
        labels.append(label if label not in (*methods, *labels) else f"{label}-{len(labels)}")
    return labels


def can_sample(checkpoint: str) -> bool:
    """Whether a checkpoint's model draws posterior samples (read from its metadata)."""
    from mrirecon.models.checkpoint import read_metadata
    from mrirecon.models.protocols import SamplingModel
    from mrirecon.models.registry import resolve

    try:
        return issubclass(resolve(read_metadata(checkpoint)["name"])[0], SamplingModel)
    except MriReconError:  # unreadable: its sweep says why
        return False


def sweep_all(paths: list[Path], args: argparse.Namespace, methods: list[str],
              device: torch.device) -> tuple[list[dict], list[str], list[str]]:
    """Records and notes of the classical methods, then of each model (label: its stem).

    With ``args.samples`` the models that can sample are swept with ``samples``.
    """
    from mrirecon.evaluate import sweep

    common = {"mask_kind": "random", "seed": args.seed, "mask_repeats": args.mask_repeats,
              "device": device, "batch_size": args.batch_size}
    out = sweep(paths, args.accel, methods, **common)
    records, notes = list(out), list(out.notes)
    labels = model_labels(args.model, methods)
    for checkpoint, label in zip(args.model, labels, strict=True):
        sampling = {"samples": args.samples} if args.samples and can_sample(checkpoint) else {}
        try:
            out = sweep(paths, args.accel, ["zero-filled"], models=[checkpoint], **common,
                        **sampling)
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


CELL = ("domain", "coil_group", "acceleration", "method")


def _cells(records: list[dict], files: dict[Path, tuple[str, int]]
           ) -> tuple[dict[str, tuple[str, int]], dict[str, str], dict[tuple, list[dict]]]:
    """By file name its (domain, coils) and coil group; the records of each :data:`CELL`."""
    meta = {p.name: v for p, v in files.items()}
    group = {name: "single" if coils == 1 else "multi" for name, (_, coils) in meta.items()}
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        cells[(meta[r["file"]][0], group[r["file"]], r["acceleration"], r["method"])].append(r)
    return meta, group, cells


def aggregate(records: list[dict], files: dict[Path, tuple[str, int]], methods: list[str],
              accels: list[float], repeats: int, notes: list[str]
              ) -> tuple[list[dict], list[dict]]:
    """Per (domain, coil group, R, method) means and counts; per (group, R, method) gains."""
    meta, group, cells = _cells(records, files)
    skipped = {(n.split(": ")[0], n.split(": ")[1].split()[0]) for n in notes
               if "needs multi-coil data" in n}
    expected: dict[tuple, int] = defaultdict(int)
    for (name, (domain, _)), accel, method in itertools.product(meta.items(), accels, methods):
        if (name, method) not in skipped:
            expected[(domain, group[name], accel, method)] += repeats
    rows = []
    for key in sorted(expected, key=lambda k: (ORDER.get(k[0], 99), k[0], k[1], k[2],
                                               methods.index(k[3]))):
        recs = cells.get(key, [])
        rows.append({**dict(zip(CELL, key, strict=True)),
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


def samplers(records: list[dict], methods: list[str]) -> list[str]:
    """The methods, in order, whose records carry calibration (samplers swept with samples)."""
    found = {r["method"] for r in records if "within_2std" in r}
    return [m for m in methods if m in found]


def _worst(key: str) -> Callable[[float], float]:
    """How bad a cell's value of ``key`` is (higher is worse), to pick the worst domain."""
    from mrirecon.metrics import GAUSSIAN_COVERAGE

    if key == "within_2std":  # too narrow or too wide alike
        return lambda v: abs(v - GAUSSIAN_COVERAGE[2])
    return (lambda v: -v) if key == "corr_std_error" else (lambda v: v)


def calibration(records: list[dict], files: dict[Path, tuple[str, int]], rows: list[dict],
                methods: list[str]) -> tuple[list[dict], list[dict]]:
    """Per cell of the samplers the mean calibration; per (group, R, method) over domains.

    A cell (a row of :func:`aggregate` for a sampler method) gets ``records`` and the mean over
    its volumes of each :data:`~mrirecon.evaluate.CALIBRATION` field, of ``std_scale`` and the
    ``_uncalibrated`` fields where its records have them (a checkpoint with a std calibration).
    The summary has per (coil group, R, method) the number of ``domains`` and, for
    ``within_2std``, ``calibration_error`` and ``corr_std_error``, ``{key}_mean``,
    ``{key}_worst`` and ``{key}_worst_domain`` over domains (worst: the coverage furthest from
    the Gaussian 0.954, the largest error, the smallest correlation).
    """
    from mrirecon.evaluate import CALIBRATION

    _, _, cells = _cells(records, files)
    sampled = samplers(records, methods)
    out = []
    for row in rows:
        if row["method"] not in sampled:
            continue
        recs = cells.get(tuple(row[k] for k in CELL), [])
        keys = [*CALIBRATION, *(f"{k}_uncalibrated" for k in CALIBRATION
                                if any(f"{k}_uncalibrated" in r for r in recs)),
                *(["std_scale"] if any("std_scale" in r for r in recs) else [])]
        out.append({**{k: row[k] for k in CELL}, "records": len(recs),
                    **{k: _mean([r.get(k) for r in recs]) for k in keys}})
    by_cell: dict[tuple, list[dict]] = defaultdict(list)
    for c in out:
        by_cell[(c["coil_group"], c["acceleration"], c["method"])].append(c)
    summary = []
    for (grp, accel, method), domains in sorted(
            by_cell.items(), key=lambda kv: (kv[0][:2], methods.index(kv[0][2]))):
        entry: dict[str, Any] = {"coil_group": grp, "acceleration": accel, "method": method,
                                 "domains": len(domains)}
        for key in ("within_2std", "calibration_error", "corr_std_error"):
            values = {c["domain"]: c[key] for c in domains if c[key] is not None}
            worst = max(values, key=lambda d, bad=_worst(key): bad(values[d])) if values else None
            entry |= {f"{key}_mean": _mean(list(values.values())),
                      f"{key}_worst": values.get(worst), f"{key}_worst_domain": worst}
        summary.append(entry)
    return out, summary


def targets(cells: list[dict], rows: list[dict], reference: str | None) -> dict[str, Any]:
    """Pass/fail of :data:`TARGETS` per sampler cell of :func:`calibration`, and their counts.

    Each cell has its ``within_2std``, ``corr_std_error``, ``psnr_mean`` (of the posterior mean)
    and ``reference_psnr_mean`` (``reference``'s in the same cell, from :func:`aggregate`'s
    rows) and ``passed``: ``coverage_2std``, ``corr_std_error``, ``psnr_vs_reference`` (``None``
    where a value is missing; the PSNR one always without a reference) and ``all`` (every target
    that applies passed). ``counts`` has per method the ``cells`` and per target how many
    ``passed`` of those ``evaluated`` (``None`` for the PSNR target without a reference).
    """
    psnr = {tuple(r[k] for k in CELL): r["psnr_mean"] for r in rows}
    (low, high), corr_min = TARGETS["within_2std"], TARGETS["corr_std_error"]
    margin = TARGETS["psnr_below_reference_db"]
    out, counts = [], {}
    for c in cells:
        key = tuple(c[k] for k in CELL)
        mine = psnr.get(key)
        ref = psnr.get((*key[:3], reference)) if reference is not None else None
        cov, corr = c["within_2std"], c["corr_std_error"]
        passed = {"coverage_2std": None if cov is None else low <= cov <= high,
                  "corr_std_error": None if corr is None else corr >= corr_min,
                  "psnr_vs_reference": None if mine is None or ref is None
                  else mine >= ref - margin}
        applies = [v for k, v in passed.items() if reference is not None
                   or k != "psnr_vs_reference"]
        passed["all"] = all(v is True for v in applies)
        out.append({**{k: c[k] for k in CELL}, "within_2std": cov, "corr_std_error": corr,
                    "psnr_mean": mine, "reference_psnr_mean": ref, "passed": passed})
        count = counts.setdefault(c["method"], {"cells": 0})
        count["cells"] += 1
        for name, value in passed.items():
            if name == "psnr_vs_reference" and reference is None:
                count[name] = None
                continue
            tally = count.setdefault(name, {"passed": 0, "evaluated": 0})
            tally["evaluated"] += value is not None
            tally["passed"] += value is True
    return {"reference_model": reference, "thresholds": TARGETS, "cells": out, "counts": counts}


def _before_after(cell: dict, key: str, fmt: str) -> str | None:
    """``before → after`` of a calibration field, or the one value when uncalibrated."""
    after, before = cell.get(key), cell.get(f"{key}_uncalibrated")
    if after is None:
        return None
    return (format(after, fmt) if before is None
            else f"{format(before, fmt)} → {format(after, fmt)}")


def calibration_markdown(cells: list[dict], checks: dict[str, Any]) -> str:
    """The calibration table of :func:`calibration`'s cells and the target counts."""
    table = [{**c, "within_2std": _before_after(c, "within_2std", ".3f"),
              "calibration_error": _before_after(c, "calibration_error", ".3f")} for c in cells]
    three = "{:.3f}".format
    lines = [_common.markdown_table(table, [
        ("domain", "domain"), ("coil_group", "coils"), ("acceleration", "R", "{:g}".format),
        ("method", "method"), ("within_2std", "2-std coverage (before → after)"),
        ("within_1std", "1-std coverage", three), ("within_3std", "3-std coverage", three),
        ("calibration_error", "calibration error (before → after)"),
        ("corr_std_error", "corr(std, |error|)", "{:.2f}".format),
        ("corr_ceiling", "Gaussian ceiling of corr", "{:.2f}".format)]), "",
        "Coverage: fraction of pixels with |error| <= k std (Gaussian 0.683 / 0.954 / 0.997), "
        "before → after the checkpoint's std calibration; mean over files x volumes x masks. "
        "Ceiling: the best corr(std, |error|) any map could reach on these errors if they are "
        "Gaussian given the map (mrirecon.metrics.gaussian_corr_ceiling)."]
    for method, count in checks["counts"].items():
        parts = [f"{name} {c['passed']}/{c['evaluated']}" for name, c in count.items()
                 if isinstance(c, dict)]
        lines.append(f"Targets, {method} ({count['cells']} cells): {', '.join(parts)}.")
    return "\n".join(["", *lines, ""])


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
    from mrirecon.fileutil import check_writable
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
    labels = model_labels(args.model, methods)
    if args.reference_model is not None and args.reference_model not in labels:
        raise SystemExit(f"error: --reference-model {args.reference_model!r}: not the label of "
                         f"a --model (labels: {', '.join(labels) or 'none'})")
    if args.samples is not None:
        from mrirecon.recon.posterior import check_sampling

        try:
            check_sampling(args.samples, 1.0, None)
        except MriReconError as exc:
            raise SystemExit(f"error: {exc}") from None
        if not any(can_sample(c) for c in args.model):
            raise SystemExit(f"error: --samples {args.samples} needs a --model that can sample "
                             "(a cinn.v1 checkpoint)")
    check_writable([p for p in (args.json_out, args.markdown) if p], args.overwrite)
    files = suite_files(Path(args.suite_dir), args.files)
    device = _common.setup(args)
    args.batch_size = args.batch_size or _common.default_batch_size(device)
    records, notes, labels = sweep_all(list(files), args, methods, device)
    columns = [*methods, *labels]
    rows, summary = aggregate(records, files, columns, args.accel, args.mask_repeats, notes)
    calib, calib_summary = calibration(records, files, rows, columns)
    checks = targets(calib, rows, args.reference_model)
    settings = {"suite_dir": args.suite_dir, "files": sorted(p.name for p in files),
                "methods": methods, "models": dict(zip(labels, args.model, strict=True)),
                "accelerations": args.accel, "mask_kind": "random",
                "center_fraction": "0.32 / R (fastMRI's 0.08 at 4x, 0.04 at 8x)",
                "mask_repeats": args.mask_repeats, "seed": args.seed,
                "batch_size": args.batch_size, "samples": args.samples,
                "reference_model": args.reference_model}
    report = json_safe({"benchmark": "generalisation", "suite": SUITE, "note": NOTE,
                        "machine": _common.machine(device), "settings": settings, "results": rows,
                        "gain_vs_zero_filled": summary,
                        "calibration": {"cells": calib, "summary": calib_summary},
                        "targets": checks, "notes": notes, "records": records})
    table = markdown(rows, summary, columns)
    if calib:
        table += calibration_markdown(calib, checks)
    _common.publish(report, table, args.json_out, args.markdown, args.overwrite)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="write the suite's simulated fastMRI files")
    b.add_argument("out_dir", metavar="OUT_DIR")
    b.add_argument("--sources", default="data/sources",
                   help="what scripts/fetch_training_data.sh wrote [default: data/sources]")
    b.add_argument("--overwrite", action="store_true", help="replace existing suite files")
    n = commands.add_parser("noise-free", help="copy a suite with noise-free references")
    n.add_argument("suite_dir", metavar="SUITE_DIR")
    n.add_argument("out_dir", metavar="OUT_DIR")
    n.add_argument("--sources", default="data/sources",
                   help="the sources the suite was built from [default: data/sources]")
    n.add_argument("--overwrite", action="store_true", help="replace existing files")
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
    r.add_argument("--samples", type=int, metavar="N",
                   help="posterior draws per slice of the models that can sample (cinn.v1), "
                        "with their calibration [default: their posterior mean only]")
    r.add_argument("--reference-model", metavar="LABEL",
                   help="the --model (its file stem) whose PSNR the samplers' PSNR target is "
                        "measured against [default: no PSNR target]")
    r.add_argument("--json-out", metavar="FILE", help="also write the JSON here")
    r.add_argument("--markdown", metavar="FILE", help="the markdown here, not on stderr")
    r.add_argument("--overwrite", action="store_true", help="replace --json-out/--markdown")
    _common.add_common_arguments(r)
    args = parser.parse_args()
    try:
        {"build": build, "noise-free": noise_free, "run": run}[args.command](args)
    except MriReconError as exc:  # an expected failure: one line, no traceback
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
