"""Evaluation: files x accelerations x methods -> tidy records -> summaries and thresholds.

Two ways in, one record format out (one dict per reconstructed volume):

* :func:`sweep` reconstructs fully sampled inputs itself. Each file is read once (image volumes
  are simulated, as ``mrirecon reconstruct`` does), undersampled at every requested acceleration
  with the per-file mask that ``mrirecon reconstruct --accel R --seed S`` draws (same spec, same
  seed from the file name), reconstructed by every method and scored against its reference.
* :func:`compare_files` is the equivalent of fastMRI's ``evaluate.py``: it scores reconstruction
  files already written (by ``mrirecon reconstruct`` or anyone writing fastMRI submissions) against
  the targets of the files of the same name.

Metrics follow the fastMRI protocol (:mod:`mrirecon.metrics`): NMSE, PSNR and SSIM per volume with
the data range of the reference volume, then the mean over volumes with a 95% t-interval
(:func:`summarize_records`). :func:`check_thresholds` turns a summary into pass/fail lines.
Posterior samplers (``cinn.v1`` checkpoints) swept with ``samples`` are also scored on how well
their pixelwise standard deviation predicts their error (:func:`mrirecon.metrics.calibration`).

No typer or rich here: the command line (:mod:`mrirecon.cli.evaluate`) is a thin layer on top and
:mod:`mrirecon.report` writes the report folder.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mrirecon.errors import InputFileError, InvalidParameterError, MriReconError

#: Record fields, in table/CSV order (compare mode adds ``acquisition``).
RECORD_FIELDS = ("file", "method", "acceleration", "mask_seed", "achieved_acceleration", "slices",
                 "nmse", "psnr", "ssim", "seconds_per_slice", "simulated")
METRICS = ("psnr", "ssim", "nmse")
#: Record fields of a sampler swept with ``samples`` (:func:`mrirecon.metrics.calibration`).
CALIBRATION = ("corr_std_error", "within_1std", "within_2std", "mean_std")
#: Pixels kept per (sampler, acceleration) for the report's reliability plot.
CALIBRATION_PIXELS = 200_000
#: Metrics where higher is better; the others (NMSE) are upper bounds in thresholds.
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "nmse": False}
#: ``|achieved - R|`` within which a prediction without a mask spec matches ``acceleration``.
ACHIEVED_TOLERANCE = 0.05

Progress = Callable[[int, int, str], None]


class SweepRecords(list):
    """The records of a :func:`sweep` (a plain ``list[dict]``) with what else it produced.

    Attributes
    ----------
    panels
        ``{acceleration: {"target": image, "zero-filled": image, method: image, ...}}``: the
        middle slice (2-D float32) of the first file that could be reconstructed, for the report's
        comparison panels. Zero-filled is included even when it is not one of the methods.
    panel_file
        The name of the file the panels show (``None`` if there are none).
    notes
        One-line notes on what was skipped (e.g. SENSE on single-coil data).
    calibration_pixels
        ``{(method, acceleration): {"std": array, "error": array, "pixels": int}}`` for samplers
        swept with ``samples``: the predicted std and ``|mean - reference|`` (float32, 1-D) of a
        uniform random subsample of at most :data:`CALIBRATION_PIXELS` of the ``pixels`` pixels
        of every volume scored, for the report's reliability plot.
    """

    def __init__(self, records: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__(records)
        self.panels: dict[float, dict[str, np.ndarray]] = {}
        self.panel_file: str | None = None
        self.notes: list[str] = []
        self.calibration_pixels: dict[tuple[str, float], dict[str, Any]] = {}


# --- sweep -----------------------------------------------------------------------------------


def check_sweep_options(accelerations: Sequence[float], methods: Sequence[str], *,
                        mask_kind: str = "random", center_fraction: float | None = None
                        ) -> tuple[list[float], list[str]]:
    """Validate accelerations, mask settings and method names before any file is read.

    Returns the accelerations (floats, duplicates removed, order kept) and the method names.

    Raises
    ------
    InvalidParameterError
        No acceleration or method, an acceleration <= 1, a bad centre fraction or mask kind, an
        unknown method.
    """
    from mrirecon.recon.methods import Method
    from mrirecon.sampling import MaskSpec

    accels = list(dict.fromkeys(float(a) for a in accelerations))
    names = list(dict.fromkeys(str(getattr(m, "value", m)) for m in methods))
    if not accels:
        raise InvalidParameterError("no acceleration given; expected e.g. 4 or 2,4,8")
    if not names:
        raise InvalidParameterError("no method given; expected e.g. zero-filled,sense,cs")
    for accel in accels:  # raises on accel <= 1, bad centre fraction or kind
        MaskSpec(kind=mask_kind, acceleration=accel, shape=(1, 1024),
                 center_fraction=center_fraction)
    valid = [m.value for m in Method]
    unknown = [m for m in names if m not in valid]
    if unknown:
        raise InvalidParameterError(f"unknown method {', '.join(map(repr, unknown))}; expected "
                                    f"one of {', '.join(valid)}")
    return accels, names


def sweep(paths: Sequence[str | Path], accelerations: Sequence[float], methods: Sequence[str],
          *, mask_kind: str = "random", center_fraction: float | None = None, seed: int = 0,
          mask_repeats: int = 1, device: Any = "cpu", batch_size: int = 8,
          models: Sequence[str | Path] = (),
          samples: int | None = None, temperature: float = 1.0, sample_seed: int = 0,
          progress: Progress | None = None) -> SweepRecords:
    """Undersample fully sampled files at each acceleration, reconstruct with each method, score.

    Parameters
    ----------
    paths
        fastMRI k-space files without a mask, or DICOM/NIfTI images (simulated in memory with the
        default :class:`~mrirecon.physics.simulate.SimulationParams`, exactly as
        ``mrirecon reconstruct`` simulates them).
    accelerations
        Requested accelerations ``R > 1``.
    methods
        Method names of :class:`~mrirecon.recon.methods.Method` (``zero-filled``, ``sense``,
        ``cs``).
    mask_kind, center_fraction, seed
        The mask: per file and acceleration, the :class:`~mrirecon.sampling.MaskSpec` that
        :func:`~mrirecon.sampling.draw_mask` draws with seed
        ``seed_from_name(path.name, seed)``, so the numbers agree with files written by
        ``mrirecon reconstruct --accel R --seed seed``.
    mask_repeats
        Masks per file and acceleration: base seeds ``seed, seed + 1, ..., seed + mask_repeats -
        1``. At high accelerations one mask's draw of outer lines moves PSNR by dB; repeats
        average that out (each (file, mask) is one record, so the summary's ``n`` counts both).
    device, batch_size
        Where and in how many slices at a time the reconstructors run.
    models
        Checkpoints of learned models to sweep too; each is a method named by its registry name
        (``rim.v1``, ``irim.v1``, ``cinn.v1``). A posterior sampler (``cinn.v1``) is scored on
        its posterior mean: of its default number of draws when ``samples`` is ``None``.
    samples, temperature, sample_seed
        With ``samples`` (>= 2), every sampler among ``models`` draws that many images per slice
        at this temperature with this seed
        (:meth:`~mrirecon.recon.posterior.PosteriorSampler.sample`); its records also carry the
        calibration of its std (:data:`CALIBRATION`) and the report's pixel subsample is kept
        (:attr:`SweepRecords.calibration_pixels`). ``temperature`` and ``sample_seed`` are used
        only with ``samples``.
    progress
        Called as ``progress(done, total, description)`` after each (file, acceleration).

    Returns
    -------
    SweepRecords
        One record per (file, acceleration, mask seed, method): ``file`` (name), ``method``,
        ``acceleration`` (requested), ``mask_seed`` (the base seed), ``achieved_acceleration``,
        ``slices``, ``nmse``, ``psnr``, ``ssim``, ``seconds_per_slice``, ``simulated``, and for
        samplers swept with ``samples`` ``corr_std_error``, ``within_1std``, ``within_2std``,
        ``mean_std``
        (:func:`mrirecon.metrics.calibration` of the volume); plus panels, notes and calibration
        pixels (see the class).

    Notes
    -----
    The reference is the file's fastMRI target
    (:func:`~mrirecon.inference.reference_image`); without one, the zero-filled reconstruction
    of the fully sampled data (RSS over coils, equal to the target when there is one). A method
    that needs coil data (SENSE) is skipped on single-coil files, and a reconstruction that
    fails with a :class:`~mrirecon.errors.MriReconError` (e.g. too few centre lines for coil
    maps, no convergence) is skipped for that file and acceleration; both leave a note (printed
    and kept in ``summary.json``). The sweep fails only if nothing at all could be computed.

    Raises
    ------
    InvalidParameterError
        Bad accelerations, mask settings or methods (:func:`check_sweep_options`); ``samples``
        below 2 or ``temperature <= 0``; ``samples`` without a sampler among ``models``.
    InputFileError
        A file that carries its own mask (already undersampled) or cannot be read.
    MriReconError
        A reconstruction whose shape differs from the reference's; nothing computed.
    """
    from mrirecon.inference import prepare_kspace, reference_image, undersample
    from mrirecon.recon.methods import build_reconstructor
    from mrirecon.sampling import MaskKind, MaskOptions, draw_mask

    accels, names = check_sweep_options(accelerations, methods, mask_kind=mask_kind,
                                        center_fraction=center_fraction)
    if samples is not None:
        from mrirecon.recon.posterior import check_sampling

        check_sampling(samples, temperature, None)
    recons = {m: build_reconstructor(m, device=device, batch_size=batch_size) for m in names}
    for checkpoint in models:
        learned = build_reconstructor(model=checkpoint, device=device,
                                      batch_size=batch_size)
        recons[learned.name] = learned
    samplers = _samplers(recons, names, samples, temperature, sample_seed)
    names = list(recons)
    rng = np.random.default_rng(0)  # the reliability plot's pixel subsample
    zero_filled = recons.get("zero-filled") or build_reconstructor(
        "zero-filled", device=device, batch_size=batch_size)
    if mask_repeats < 1:
        raise InvalidParameterError(f"mask repeats must be >= 1, got {mask_repeats}")
    seeds = range(seed, seed + mask_repeats)
    out = SweepRecords()
    total, done = len(paths) * len(accels) * mask_repeats, 0
    if progress is not None:
        progress(0, total, Path(paths[0]).name if paths else "")
    for path in map(Path, paths):
        kspace = prepare_kspace(path)
        if kspace.mask is not None:
            raise InputFileError(path, "already undersampled (it carries a mask); evaluate it "
                                 "with --predictions/--targets")
        reference = reference_image(kspace)
        if reference is None:
            reference = zero_filled(kspace).data
        simulated = bool(kspace.provenance.get("simulated", False))
        usable = []
        for name in names:
            if recons[name].needs_coils and not kspace.is_multicoil:
                out.notes.append(f"{path.name}: {name} needs multi-coil data; skipped on this "
                                 "single-coil file")
            else:
                usable.append(name)
        keep_panels = out.panel_file is None and bool(usable)
        masks = {(accel, s): draw_mask(kspace.shape[-2:], MaskOptions(  # all drawn first
            kind=MaskKind(mask_kind), acceleration=accel, center_fraction=center_fraction,
            seed=s), path.name) for accel in accels for s in seeds}
        for (accel, mask_seed), mask in masks.items():
            keep_panel = keep_panels and mask_seed == seed
            under = undersample(kspace, mask)
            images: dict[str, np.ndarray] = {}
            for name in usable:
                outside = recons[name].domain_notes(under)
                if outside and mask_seed == seed:  # once per file, model and rate
                    out.notes.append(f"{path.name} R={accel:g}: outside the training domain of "
                                     f"{name}: {'; '.join(outside)}")
                try:
                    if name in samplers:
                        posterior = recons[name].sample(under)
                        volume = posterior.mean
                    else:
                        volume = recons[name](under)
                except MriReconError as exc:  # e.g. too few centre lines for coil maps at 8x
                    out.notes.append(f"{path.name} R={accel:g}{_seed_label(mask_seed, seed)}: "
                                     f"{name} failed ({exc}); skipped")
                    continue
                scores = _score(reference, volume.data, path.name, name)
                if name in samplers:
                    key = (name, accel)
                    calib, out.calibration_pixels[key] = _calibrate(
                        reference, volume.data, posterior.std.data, path.name, name,
                        out.calibration_pixels.get(key), rng)
                    settings = volume.provenance["posterior"]  # samples, temperature, seed
                    calib.update({f"sampling_{k}": v for k, v in settings.items()})
                else:
                    calib = {}
                out.append({
                    "file": path.name, "method": name, "acceleration": accel,
                    "mask_seed": mask_seed,
                    "achieved_acceleration": round(mask.achieved_acceleration, 4),
                    "slices": int(volume.shape[0]), **scores,
                    "seconds_per_slice": volume.provenance.get("seconds_per_slice"),
                    "simulated": simulated, **calib,
                })
                if keep_panel:
                    images[name] = _middle(volume.data)
            if keep_panel:
                if "zero-filled" not in images:
                    images["zero-filled"] = _middle(zero_filled(under).data)
                out.panels[accel] = {"target": _middle(reference), **images}
            done += 1
            if progress is not None:
                progress(done, total, f"{path.name} R={accel:g}{_seed_label(mask_seed, seed)}")
        if keep_panels:
            out.panel_file = path.name
    if not out:
        raise MriReconError("nothing to evaluate: " + ("; ".join(out.notes) or "no input files"))
    return out


def _seed_label(mask_seed: int, base: int) -> str:
    """`` seed S`` for every mask but the base seed's (which is what a single run draws)."""
    return "" if mask_seed == base else f" seed {mask_seed}"


def _samplers(recons: dict[str, Any], classical: Sequence[str], samples: int | None,
              temperature: float, seed: int) -> set[str]:
    """Configure the posterior samplers among the models for ``samples`` draws; their names.

    Empty when ``samples`` is ``None``; an error when it is given but no model can sample.
    """
    if samples is None:
        return set()
    found = {name for name, r in recons.items() if hasattr(r, "sample")}
    if not found:
        models = [name for name in recons if name not in classical]
        raise InvalidParameterError(
            f"--samples {samples} needs a model that can sample (a cinn.v1 checkpoint given "
            f"with --model); got {', '.join(models) if models else 'no --model'}")
    for name in found:
        recons[name].configure(samples=samples, temperature=temperature, seed=seed)
    return found


def _calibrate(reference: np.ndarray, mean: np.ndarray, std: np.ndarray, file: str, what: str,
               pool: dict[str, Any] | None, rng: np.random.Generator
               ) -> tuple[dict[str, float], dict[str, Any]]:
    """Calibration scores of one sampled volume, and ``pool`` with its pixels added."""
    from mrirecon import metrics

    try:
        scores = metrics.calibration(reference, mean, std)
    except ValueError as exc:
        raise MriReconError(f"{file}: {what} std: {exc}") from None
    error = np.abs(np.asarray(mean, np.float64) - np.asarray(reference, np.float64))
    return scores, _pool_pixels(pool, np.asarray(std, np.float32).reshape(-1),
                                error.astype(np.float32).reshape(-1), rng)


def _pool_pixels(pool: dict[str, Any] | None, std: np.ndarray, error: np.ndarray,
                 rng: np.random.Generator, cap: int = CALIBRATION_PIXELS) -> dict[str, Any]:
    """Merge a volume's (std, error) pixels into a uniform subsample of at most ``cap`` pixels.

    ``pool["pixels"]`` counts the pixels the pool stands for; each side contributes in
    proportion to the pixels it stands for, drawn without replacement.
    """
    old = pool["pixels"] if pool else 0
    total = old + std.size
    keep = min(cap, total)
    take_new = min(std.size, round(keep * std.size / total))
    new = rng.choice(std.size, take_new, replace=False) if take_new < std.size else slice(None)
    if not pool:
        return {"std": std[new], "error": error[new], "pixels": total}
    take_old = min(pool["std"].size, keep - take_new)
    kept = rng.choice(pool["std"].size, take_old, replace=False)
    return {"std": np.concatenate([pool["std"][kept], std[new]]),
            "error": np.concatenate([pool["error"][kept], error[new]]), "pixels": total}


def _middle(volume: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(volume[volume.shape[0] // 2])).astype(np.float32)


def _score(reference: np.ndarray, pred: np.ndarray, file: str, what: str) -> dict[str, float]:
    """fastMRI metrics of one volume; shape and value problems become one-line errors."""
    from mrirecon import metrics

    pred = np.abs(pred) if np.iscomplexobj(pred) else pred
    if tuple(reference.shape) != tuple(pred.shape):
        raise MriReconError(f"{file}: {what} is {_shape(pred.shape)} but the reference is "
                            f"{_shape(reference.shape)} (slices x rows x cols)")
    try:
        return metrics.volume_metrics(reference, pred)
    except ValueError as exc:
        raise MriReconError(f"{file}: {what}: {exc}") from None


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(int(n)) for n in shape)


# --- files mode (fastMRI evaluate.py) ---------------------------------------------------------


def compare_files(predictions_dir: str | Path, targets_dir: str | Path, *,
                  acceleration: float | None = None,
                  acquisition: str | None = None) -> list[dict[str, Any]]:
    """Score reconstruction files against targets of the same file name (fastMRI's evaluate).

    Parameters
    ----------
    predictions_dir
        Folder of ``<name>.h5`` files with a ``reconstruction`` dataset (``mrirecon reconstruct``
        outputs or fastMRI submissions).
    targets_dir
        Folder of ``<name>.h5`` fastMRI files with ``reconstruction_esc`` / ``reconstruction_rss``
        (see :func:`target_dataset`) or reconstruction files used as references.
    acceleration
        Keep only predictions made at this acceleration: the requested acceleration of the mask
        recorded in their provenance; else the target's ``acceleration`` attribute (fastMRI test
        files); else the recorded achieved acceleration within :data:`ACHIEVED_TOLERANCE`.
    acquisition
        Keep only targets whose ``acquisition`` attribute equals this (e.g. ``CORPD_FBK``).

    Returns
    -------
    list of dict
        Records as :func:`sweep` makes them (``method``, acceleration and timing from the
        prediction's provenance, ``None`` where it does not say) plus ``acquisition``.

    Raises
    ------
    InputFileError
        A missing folder, no target files, targets without a prediction of the same name (all
        listed), unreadable files.
    MriReconError
        A prediction whose shape differs from its target's (both files and shapes named).
    InvalidParameterError
        A filter that matches no file.
    """
    from mrirecon.io.fastmri_h5 import read_reconstruction

    pred_dir, tgt_dir = Path(predictions_dir), Path(targets_dir)
    for folder, what in ((pred_dir, "predictions"), (tgt_dir, "targets")):
        if not folder.is_dir():
            raise InputFileError(folder, f"{what} folder not found")
    targets = sorted(p for p in tgt_dir.iterdir()
                     if p.suffix in (".h5", ".hdf5") and p.is_file() and not p.name.startswith("."))
    if not targets:
        raise InputFileError(tgt_dir, "no .h5 target files")
    attrs = {p: _attrs(p) for p in targets}
    if acquisition is not None:
        targets = [p for p in targets if str(attrs[p].get("acquisition")) == acquisition]
        if not targets:
            found = sorted({str(a.get("acquisition")) for a in attrs.values()})
            raise InvalidParameterError(f"no target in {tgt_dir} has acquisition "
                                        f"{acquisition!r} (found: {', '.join(found)})")
    missing = [p.name for p in targets if not (pred_dir / p.name).is_file()]
    if missing:
        raise InputFileError(pred_dir, f"no prediction for {len(missing)} of {len(targets)} "
                             f"targets: {', '.join(missing)}")
    records = []
    for target in targets:
        pred = read_reconstruction(pred_dir / target.name)
        mask = pred.provenance.get("mask") or {}
        requested = mask.get("acceleration", attrs[target].get("acceleration"))
        achieved = mask.get("achieved_acceleration")
        if acceleration is not None and not _accel_matches(acceleration, requested, achieved):
            continue
        ref = read_reconstruction(target, dataset=target_dataset(target))
        if ref.shape != pred.shape:
            raise MriReconError(
                f"{pred.source} is {_shape(pred.shape)} but its target {target} is "
                f"{_shape(ref.shape)} (slices x rows x cols)")
        scores = _score(np.abs(ref.data), pred.data, target.name, "prediction")
        records.append({
            "file": target.name, "method": pred.provenance.get("method", "unknown"),
            "acceleration": _float(requested if requested is not None else achieved),
            "achieved_acceleration": _float(achieved), "slices": int(pred.shape[0]), **scores,
            "seconds_per_slice": pred.provenance.get("seconds_per_slice"),
            "simulated": bool(pred.provenance.get("simulated", attrs[target].get("simulated"))),
            "acquisition": attrs[target].get("acquisition"),
        })
    if not records:
        raise InvalidParameterError(f"no prediction in {pred_dir} was made at acceleration "
                                    f"{acceleration:g}")
    return records


def target_dataset(path: str | Path) -> str:
    """The reference dataset of a target file, chosen as fastMRI's evaluation does.

    ``reconstruction_esc`` for single-coil k-space files (3-D ``kspace``), ``reconstruction_rss``
    for multi-coil ones, whichever exists otherwise; ``reconstruction`` for reconstruction files.
    """
    import h5py

    from mrirecon.io.fastmri_h5 import preferred_targets

    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
            single = "kspace" in f and f["kspace"].ndim == 3
    except OSError as exc:
        raise InputFileError(path, f"not a readable HDF5 file ({exc})") from None
    for name in [*preferred_targets(single), "reconstruction"]:
        if name in keys:
            return name
    raise InputFileError(path, "no reconstruction_esc, reconstruction_rss or reconstruction "
                         f"dataset (holds: {', '.join(sorted(keys)) or 'nothing'})")


def _attrs(path: Path) -> dict[str, Any]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {k: _plain(v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise InputFileError(path, f"not a readable HDF5 file ({exc})") from None


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value.item() if isinstance(value, np.generic) else value


def _accel_matches(wanted: float, requested: Any, achieved: Any) -> bool:
    if requested is not None:
        return math.isclose(float(requested), wanted, abs_tol=1e-6)
    return achieved is not None and abs(float(achieved) - wanted) <= ACHIEVED_TOLERANCE


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


# --- summaries and thresholds -----------------------------------------------------------------


def summarize_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group records by (method, acceleration): mean and 95% CI of each metric over volumes.

    Returns
    -------
    list of dict
        One flat dict per group, in order of first appearance sorted by acceleration: ``method``,
        ``acceleration``, ``n`` (records: volumes, times masks per volume in a sweep with
        ``mask_repeats``), ``achieved_acceleration`` (mean), for each of
        ``psnr``, ``ssim``, ``nmse`` the keys ``<metric>_mean``, ``_std``, ``_ci95_low``,
        ``_ci95_high`` (:func:`mrirecon.metrics.summarize`), and ``seconds_per_slice`` (mean over
        records that recorded it, else ``None``). Groups whose records carry the calibration
        keys (:data:`CALIBRATION`) get the same four statistics of each, over the volumes where
        it is defined (a NaN correlation, from a constant std or error, is left out; all NaN
        gives NaN).
    """
    from mrirecon.metrics import summarize

    groups: dict[tuple[str, float | None], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["method"], r.get("acceleration")), []).append(r)
    order = {m: i for i, m in enumerate(dict.fromkeys(r["method"] for r in records))}
    rows = []
    for (method, accel), group in sorted(
            groups.items(), key=lambda kv: (_sort_accel(kv[0][1]), order[kv[0][0]])):
        row: dict[str, Any] = {"method": method, "acceleration": accel, "n": len(group)}
        achieved = [r["achieved_acceleration"] for r in group
                    if r.get("achieved_acceleration") is not None]
        row["achieved_acceleration"] = float(np.mean(achieved)) if achieved else None
        for metric in METRICS:
            stats = summarize(r[metric] for r in group)
            for key in ("mean", "std", "ci95_low", "ci95_high"):
                row[f"{metric}_{key}"] = stats[key]
        times = [r["seconds_per_slice"] for r in group if r.get("seconds_per_slice") is not None]
        row["seconds_per_slice"] = float(np.mean(times)) if times else None
        for key in CALIBRATION:
            values = [r[key] for r in group if key in r]
            if values:
                row.update(_stats(key, values))
        rows.append(row)
    return rows


def _stats(key: str, values: Sequence[float]) -> dict[str, float]:
    """``<key>_mean``, ``_std``, ``_ci95_low``, ``_ci95_high`` of the values that are not NaN."""
    from mrirecon.metrics import summarize

    defined = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    stats = summarize(defined) if defined else dict.fromkeys(
        ("mean", "std", "ci95_low", "ci95_high"), math.nan)
    return {f"{key}_{s}": stats[s] for s in ("mean", "std", "ci95_low", "ci95_high")}


def _sort_accel(accel: float | None) -> float:
    return math.inf if accel is None else float(accel)


def parse_thresholds(spec: str) -> dict[str, float]:
    """``"psnr=30,ssim=0.8"`` -> ``{"psnr": 30.0, "ssim": 0.8}``.

    PSNR and SSIM thresholds are lower bounds, an NMSE threshold an upper bound.

    Raises
    ------
    InvalidParameterError
        Empty spec, an item without ``=``, an unknown metric, a repeated metric, a value that is
        not a finite number.
    """
    out: dict[str, float] = {}
    items = [s.strip() for s in str(spec).split(",") if s.strip()]
    if not items:
        raise InvalidParameterError(
            f"empty threshold spec {spec!r}; expected e.g. psnr=30,ssim=0.8")
    for item in items:
        key, sep, value = (s.strip() for s in item.partition("="))
        key = key.lower()
        if not sep or key not in HIGHER_IS_BETTER:
            raise InvalidParameterError(f"bad threshold {item!r}; expected METRIC=VALUE with "
                                        f"METRIC one of {', '.join(METRICS)} (e.g. psnr=30)")
        if key in out:
            raise InvalidParameterError(f"threshold for {key} given twice in {spec!r}")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise InvalidParameterError(f"threshold {item!r}: {value!r} is not a finite number")
        out[key] = number
    return out


def check_thresholds(summary: Sequence[dict[str, Any]], spec: str) -> list[str]:
    """The thresholds of ``spec`` (:func:`parse_thresholds`) that the summary fails, one line each.

    Every group's mean is compared: the worst group (lowest PSNR/SSIM mean, highest NMSE mean)
    decides. An empty list means every threshold is met.
    """
    thresholds = parse_thresholds(spec)
    if not summary:
        raise InvalidParameterError("no results to compare with the thresholds")
    failures = []
    for metric, limit in thresholds.items():
        higher = HIGHER_IS_BETTER[metric]
        pick = min if higher else max
        worst = pick(summary, key=lambda row: row[f"{metric}_mean"])
        value = worst[f"{metric}_mean"]
        if (value < limit) if higher else (value > limit):
            where = f"{worst['method']}, R={_fmt_accel(worst['acceleration'])}"
            relation = "below" if higher else "above"
            failures.append(f"{metric} {value:.4g} ({where}) is {relation} the threshold "
                            f"{metric}={limit:g}")
    return failures


def _fmt_accel(accel: float | None) -> str:
    return "?" if accel is None else f"{accel:g}"
