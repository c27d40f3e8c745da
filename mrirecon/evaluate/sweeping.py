"""Sweeps: fully sampled files x accelerations x mask seeds x methods -> records (and volumes).

Each file is read once (image volumes are simulated, as ``mrirecon reconstruct`` does),
undersampled at every requested acceleration with the per-file mask that
``mrirecon reconstruct --accel R --seed S`` draws (same spec, same seed from the file name),
reconstructed by every method and scored against its reference. The methods are names, built
here, or reconstructors already built (``mrirecon demo`` builds its own and has the sweep write
the volumes it scores, so each method runs once). Posterior samplers (``cinn.v1`` checkpoints)
swept with ``samples`` are also scored on how well their pixelwise standard deviation predicts
their error (:func:`mrirecon.metrics.calibration`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mrirecon.errors import InputFileError, InvalidParameterError, MriReconError
from mrirecon.evaluate.calibration import calibrate
from mrirecon.evaluate.records import Progress, SweepRecords, score

if TYPE_CHECKING:  # torch-importing modules: for annotations only
    from mrirecon.data import KSpace, Volume
    from mrirecon.recon.posterior import Posterior
    from mrirecon.recon.protocols import ReconstructorProtocol, Sampler


@dataclass(frozen=True)
class SweepOptions:
    """How :func:`sweep` masks, runs and samples; the defaults are ``mrirecon evaluate``'s.

    Attributes
    ----------
    mask_kind, center_fraction, seed
        The mask: per file and acceleration, what :func:`~mrirecon.sampling.draw_mask` draws
        for the file's name with these :class:`~mrirecon.sampling.MaskOptions`, so the numbers
        agree with files written by ``mrirecon reconstruct --accel R --seed seed``.
    mask_repeats
        Masks per file and acceleration: base seeds ``seed, seed + 1, ..., seed + mask_repeats -
        1``. At high accelerations one mask's draw of outer lines moves PSNR by dB; repeats
        average that out (each (file, mask) is one record, so the summary's ``n`` counts both).
    device, batch_size
        Where and in how many slices at a time the reconstructors built by the sweep run (those
        of method names and ``models``, and the zero-filled one of the panels).
    models
        Checkpoints of learned models to sweep too, after the methods; each is a method named
        by its registry name (``rim.v1``, ``irim.v1``, ``cinn.v1``), a shipped one given by
        name as ``default (irim.v1)`` (:func:`~mrirecon.models.default.model_label`). A
        posterior sampler (``cinn.v1``) is scored on its posterior mean: of its default number
        of draws when ``samples`` is ``None``.
    samples, temperature, sample_seed
        With ``samples`` (>= 2), every sampler swept draws that many images per slice at this
        temperature with this seed (:meth:`~mrirecon.recon.posterior.PosteriorSampler.sample`);
        its records also carry the calibration of its std
        (:data:`~mrirecon.evaluate.CALIBRATION`) and the report's pixel subsample is kept
        (:attr:`SweepRecords.calibration_pixels`). Used only with ``samples``.
    """

    mask_kind: str = "random"
    center_fraction: float | None = None
    seed: int = 0
    mask_repeats: int = 1
    device: Any = "cpu"
    batch_size: int | None = None
    models: Sequence[str | Path] = ()
    samples: int | None = None
    temperature: float = 1.0
    sample_seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))


@dataclass(frozen=True)
class VolumeOutputs:
    """Where :func:`sweep` writes the volumes it scores (a sampler's: its posterior mean).

    Attributes
    ----------
    root
        ``root/<method>/<input stem><extension>`` (:func:`~mrirecon.io.output_path`: what
        ``mrirecon reconstruct -o root/<method>`` writes); a sweep of more than one acceleration
        puts each in ``R<accel>/`` under the method's folder, one of more than one mask per
        acceleration each mask in ``seed<S>/`` under that.
    fmt
        ``fastmri``, ``nifti`` or ``dicom`` (:data:`~mrirecon.io.FORMATS`).
    overwrite
        Replace existing files; otherwise an existing one is an
        :class:`~mrirecon.errors.OutputError`, raised before any reconstruction.
    """

    root: Path
    fmt: str = "fastmri"
    overwrite: bool = False

    def path(self, source: str | Path, method: str, acceleration: float | None = None,
             mask_seed: int | None = None) -> Path:
        """The output of ``method`` for input ``source``.

        Parameters
        ----------
        source
            The input file.
        method
            The method's name.
        acceleration, mask_seed
            The ``R<accel>/`` and ``seed<S>/`` folders (see the class), ``None`` for none.
        """
        from mrirecon.io import output_path

        folder = Path(self.root) / method
        if acceleration is not None:
            folder /= f"R{acceleration:g}"
        if mask_seed is not None:
            folder /= f"seed{mask_seed}"
        return output_path(source, folder, self.fmt)


def check_sweep_options(accelerations: Sequence[float],
                        methods: Sequence[str | ReconstructorProtocol], *,
                        mask_kind: str = "random", center_fraction: float | None = None
                        ) -> tuple[list[float], list[str | ReconstructorProtocol]]:
    """Validate accelerations, mask settings and method names before any file is read.

    Parameters
    ----------
    accelerations
        Requested accelerations ``R > 1``.
    methods
        Method names (or :class:`~mrirecon.recon.methods.Method` members), and reconstructors
        already built (:class:`~mrirecon.recon.protocols.ReconstructorProtocol`), kept as they
        are.
    mask_kind, center_fraction
        The mask settings (:func:`~mrirecon.sampling.spec.check_mask_parameters`).

    Returns
    -------
    tuple
        The accelerations (floats, duplicates removed, order kept) and the methods (names as
        strings, duplicates removed, order kept).

    Raises
    ------
    InvalidParameterError
        No acceleration or method, an acceleration <= 1, a bad centre fraction or mask kind, an
        unknown method.
    """
    from mrirecon.recon.methods import Method
    from mrirecon.recon.protocols import ReconstructorProtocol
    from mrirecon.sampling.spec import check_mask_parameters

    accels = list(dict.fromkeys(float(a) for a in accelerations))
    chosen: dict[str | int, str | ReconstructorProtocol] = {}  # by name, or by id if built
    for m in methods:
        if isinstance(m, ReconstructorProtocol):
            chosen.setdefault(id(m), m)
        else:
            chosen.setdefault(str(getattr(m, "value", m)), str(getattr(m, "value", m)))
    if not accels:
        raise InvalidParameterError("no acceleration given; expected e.g. 4 or 2,4,8")
    if not chosen:
        raise InvalidParameterError("no method given; expected e.g. zero-filled,sense,cs")
    for accel in accels:  # raises on accel <= 1, bad centre fraction or kind
        check_mask_parameters(mask_kind, accel, center_fraction)
    valid = [m.value for m in Method]
    unknown = [m for m in chosen.values() if isinstance(m, str) and m not in valid]
    if unknown:
        raise InvalidParameterError(f"unknown method {', '.join(map(repr, unknown))}; expected "
                                    f"one of {', '.join(valid)}")
    return accels, list(chosen.values())


def sweep(paths: Sequence[str | Path], accelerations: Sequence[float],
          methods: Sequence[str | ReconstructorProtocol], *, options: SweepOptions | None = None,
          outputs: VolumeOutputs | None = None, progress: Progress | None = None,
          on_error: Callable[[Path, MriReconError], None] | None = None,
          **settings: Any) -> SweepRecords:
    """Undersample fully sampled files at each acceleration, reconstruct with each method, score.

    Parameters
    ----------
    paths
        fastMRI k-space files without a mask, or DICOM/NIfTI images (simulated in memory as
        ``mrirecon reconstruct`` simulates them).
    accelerations
        Requested accelerations ``R > 1``.
    methods
        In this order: names of :class:`~mrirecon.recon.methods.Method`, built here, and
        reconstructors already built (:func:`~mrirecon.recon.methods.build_reconstructor`).
    options
        Masks, device, checkpoints and sampling (:class:`SweepOptions`; default its defaults).
    outputs
        Also write every volume scored (:class:`VolumeOutputs`); default write nothing.
    progress
        Called as ``progress(done, total, description)`` after each (file, rate, mask).
    on_error
        Called as ``on_error(path, error)`` for a file that cannot be scored (a
        :class:`~mrirecon.errors.MriReconError` while reading or scoring it); the sweep leaves
        that file out (none of its records, panels or calibration pixels) and goes on. Default:
        the error stops the sweep.
    **settings
        :class:`SweepOptions` fields as keywords (``seed=1``), replacing those of ``options``.

    Returns
    -------
    SweepRecords
        One record per (file, acceleration, mask seed, method): ``file`` (name), ``method``,
        ``acceleration`` (requested), ``mask_seed`` (the base seed), ``achieved_acceleration``,
        ``slices``, ``nmse``, ``psnr``, ``ssim``, ``seconds_per_slice``, ``simulated``, and for
        samplers swept with ``samples`` their calibration (:data:`~mrirecon.evaluate.CALIBRATION`)
        and ``sampling_*`` settings; plus panels, notes and calibration pixels.

    Notes
    -----
    The reference is the file's fastMRI target (:func:`~mrirecon.inference.reference_image`),
    else the zero-filled image of the full data. A method that needs coils is skipped on
    single-coil files, one that fails with a :class:`~mrirecon.errors.MriReconError` (e.g. too
    few centre lines for coil maps) for that file and rate; both leave a note.

    Raises
    ------
    InvalidParameterError
        Bad accelerations, masks or methods (:func:`check_sweep_options`), ``mask_repeats < 1``,
        bad sampling settings, ``samples`` without a sampler.
    InputFileError
        A file that carries its own mask (already undersampled) or cannot be read.
    OutputError
        An output of ``outputs`` exists (without its ``overwrite``).
    MriReconError
        A reconstruction whose shape differs from the reference's; nothing computed at all.
    """
    opts = replace(options or SweepOptions(), **settings)
    run = _Sweep(accelerations, methods, opts, outputs, paths)
    run.step(0, Path(paths[0]).name if paths else "", progress)
    per_file, failed = len(run.accels) * opts.mask_repeats, 0
    for index, path in enumerate(map(Path, paths)):
        if on_error is None:
            run.file(path, progress)
            continue
        kept = run.keep()
        try:
            run.file(path, progress)
        except MriReconError as exc:  # this file is left out; the others are scored
            run.restore(kept)
            on_error(path, exc)
            failed += 1
            run.step((index + 1) * per_file, path.name, progress)
    if not run.out:
        why = "; ".join(run.out.notes) or (f"no file could be scored ({failed} failed)" if failed
                                           else "no input files")
        raise MriReconError(f"nothing to evaluate: {why}")
    return run.out


class _Sweep:
    """One sweep's reconstructors, masks and records (its settings checked on creation)."""

    def __init__(self, accelerations: Sequence[float],
                 methods: Sequence[str | ReconstructorProtocol],
                 opts: SweepOptions, outputs: VolumeOutputs | None,
                 paths: Sequence[str | Path]) -> None:
        from mrirecon.models.default import model_label
        from mrirecon.recon.methods import build_reconstructor

        self.accels, chosen = check_sweep_options(accelerations, methods,
                                                  mask_kind=opts.mask_kind,
                                                  center_fraction=opts.center_fraction)
        if opts.samples is not None:
            from mrirecon.recon.posterior import check_sampling

            check_sampling(opts.samples, opts.temperature, None)
        build = {"device": opts.device, "batch_size": opts.batch_size}
        self.recons: dict[str, ReconstructorProtocol] = {}
        for m in chosen:  # names are built, reconstructors kept
            self.recons[m if isinstance(m, str) else m.name] = (
                build_reconstructor(m, **build) if isinstance(m, str) else m)
        for checkpoint in opts.models:  # a shipped one by name: "default (irim.v1)"
            learned = build_reconstructor(model=checkpoint, **build)
            self.recons[model_label(checkpoint, learned.name)] = learned
        self.samplers = _samplers(self.recons, opts)
        self.rng = np.random.default_rng(0)  # the reliability plot's pixel subsample
        self.zero_filled = self.recons.get("zero-filled") or build_reconstructor(
            "zero-filled", **build)
        if opts.mask_repeats < 1:
            raise InvalidParameterError(f"mask repeats must be >= 1, got {opts.mask_repeats}")
        self.opts, self.outputs, self.out = opts, outputs, SweepRecords()
        self.seeds = range(opts.seed, opts.seed + opts.mask_repeats)
        self.total, self.done = len(paths) * len(self.accels) * opts.mask_repeats, 0
        if outputs is not None:
            from mrirecon.fileutil import check_writable

            check_writable([self.output(outputs, p, m, a, s) for p in paths for m in self.recons
                            for a in self.accels for s in self.seeds], outputs.overwrite)

    def keep(self) -> tuple[int, dict[float, dict[str, np.ndarray]], str | None, dict[Any, Any]]:
        """What :meth:`restore` needs to undo a file's records, panels and calibration pixels."""
        out = self.out
        return len(out), dict(out.panels), out.panel_file, dict(out.calibration_pixels)

    def restore(self, kept: tuple[int, dict[float, dict[str, np.ndarray]], str | None,
                                  dict[Any, Any]]) -> None:
        """Undo what a file that failed midway added (its notes stay)."""
        count, panels, panel_file, pixels = kept
        del self.out[count:]
        self.out.panels, self.out.panel_file = panels, panel_file
        self.out.calibration_pixels = pixels

    def step(self, done: int, description: str, progress: Progress | None) -> None:
        self.done = done
        if progress is not None:
            progress(done, self.total, description)

    def file(self, path: Path, progress: Progress | None) -> None:
        """Score every (acceleration, mask seed, method) of one file; keep its panels if first."""
        from mrirecon.inference import prepare_kspace, reference_image, undersample
        from mrirecon.sampling import MaskKind, MaskOptions, draw_mask

        kspace = prepare_kspace(path)
        if kspace.mask is not None:
            raise InputFileError(path, "already undersampled (it carries a mask); evaluate it "
                                 "with --predictions/--targets")
        reference = reference_image(kspace)
        if reference is None:
            reference = self.zero_filled(kspace).data
        usable = []
        for name, recon in self.recons.items():
            if recon.needs_coils and not kspace.is_multicoil:
                self.out.notes.append(f"{path.name}: {name} needs multi-coil data; skipped on "
                                      "this single-coil file")
            else:
                usable.append(name)
        keep_panels = self.out.panel_file is None and bool(usable)
        kind, base = MaskKind(self.opts.mask_kind), self.opts.seed
        masks = {(accel, s): draw_mask(kspace.shape[-2:], MaskOptions(  # all drawn first
            kind=kind, acceleration=accel, center_fraction=self.opts.center_fraction, seed=s),
            path.name) for accel in self.accels for s in self.seeds}
        for (accel, mask_seed), mask in masks.items():
            under = undersample(kspace, mask)
            images: dict[str, np.ndarray] = {}
            for name in usable:
                volume = self.method(name, path, under, reference, accel, mask_seed)
                if volume is not None and keep_panels and mask_seed == base:
                    images[name] = _middle(volume.data)
            if keep_panels and mask_seed == base:
                if "zero-filled" not in images:
                    images["zero-filled"] = _middle(self.zero_filled(under).data)
                self.out.panels[accel] = {"target": _middle(reference), **images}
            self.step(self.done + 1, f"{path.name} R={accel:g}{_seed_label(mask_seed, base)}",
                      progress)
        if keep_panels:
            self.out.panel_file = path.name

    def method(self, name: str, path: Path, under: KSpace, reference: np.ndarray, accel: float,
               mask_seed: int) -> Volume | None:
        """Reconstruct, score, record and (with outputs) write one volume; ``None`` if it failed.

        A failure (a :class:`~mrirecon.errors.MriReconError`) is noted instead.
        """
        recon, out, base = self.recons[name], self.out, self.opts.seed
        outside = recon.domain_notes(under)
        if outside and mask_seed == base:  # once per file, model and rate
            out.notes.append(f"{path.name} R={accel:g}: outside the training domain of "
                             f"{name}: {'; '.join(outside)}")
        try:
            sampler = self.samplers.get(name)
            posterior = sampler.sample(under) if sampler is not None else None
            volume = recon(under) if posterior is None else posterior.mean
        except MriReconError as exc:  # e.g. too few centre lines for coil maps at 8x
            out.notes.append(f"{path.name} R={accel:g}{_seed_label(mask_seed, base)}: "
                             f"{name} failed ({exc}); skipped")
            return None
        if mask_seed == base:  # e.g. ACS instead of ESPIRiT maps: once per file, method and rate
            out.notes += [f"{path.name} R={accel:g}: {note}"
                          for note in volume.provenance.get("notes", [])]
        scores = score(reference, volume.data, path.name, name)
        calib = {} if posterior is None else self.calibration(name, accel, reference, posterior,
                                                              path.name)
        achieved = under.provenance["mask"]["achieved_acceleration"]
        out.append({
            "file": path.name, "method": name, "acceleration": accel, "mask_seed": mask_seed,
            "achieved_acceleration": achieved, "slices": int(volume.shape[0]), **scores,
            "seconds_per_slice": volume.provenance.get("seconds_per_slice"),
            "simulated": bool(under.provenance.get("simulated", False)), **calib,
        })
        if self.outputs is not None:
            from mrirecon.inference import write_volume

            write_volume(volume, self.output(self.outputs, path, name, accel, mask_seed),
                         self.outputs.fmt, recon.name, overwrite=self.outputs.overwrite)
        return volume

    def calibration(self, name: str, accel: float, reference: np.ndarray, posterior: Posterior,
                    file: str) -> dict[str, Any]:
        """The calibration fields of a sampled volume; its pixels join the plot's pool."""
        key, pixels = (name, accel), self.out.calibration_pixels
        calib, pixels[key] = calibrate(reference, posterior.mean.data, posterior.std.data,
                                       file, name, pixels.get(key), self.rng)
        settings = posterior.mean.provenance["posterior"]  # samples, temperature, seed
        stored = posterior.std.provenance.get("calibration") or {}
        if stored.get("calibrated"):  # the same draws before calibration: std / scale
            from mrirecon import metrics

            raw = posterior.std.data / np.float32(stored["scale"])
            before = metrics.calibration(reference, posterior.mean.data, raw)
            calib = {**calib, "std_scale": stored["scale"],
                     **{f"{k}_uncalibrated": v for k, v in before.items()
                        if k not in metrics.ERROR_ONLY_KEYS}}
            pixels[key] = {**pixels[key], "std_scale": float(stored["scale"])}
        return {**calib, **{f"sampling_{k}": v for k, v in settings.items()}}

    def output(self, outputs: VolumeOutputs, path: str | Path, name: str, accel: float,
               mask_seed: int) -> Path:
        """Where ``outputs`` puts this volume (folders per rate and seed only if several)."""
        return outputs.path(path, name, accel if len(self.accels) > 1 else None,
                            mask_seed if len(self.seeds) > 1 else None)


def _seed_label(mask_seed: int, base: int) -> str:
    """`` seed S`` for every mask but the base seed's (which is what a single run draws)."""
    return "" if mask_seed == base else f" seed {mask_seed}"


def _samplers(recons: Mapping[str, ReconstructorProtocol],
              opts: SweepOptions) -> dict[str, Sampler]:
    """Configure the posterior samplers among the reconstructors for ``samples`` draws.

    Returns them by name: empty when ``samples`` is ``None``; an error when it is given but none
    can sample.
    """
    from mrirecon.recon.methods import Method
    from mrirecon.recon.protocols import Sampler

    if opts.samples is None:
        return {}
    found = {name: r for name, r in recons.items() if isinstance(r, Sampler)}
    if not found:
        models = [name for name in recons if name not in {m.value for m in Method}]
        raise InvalidParameterError(
            f"--samples {opts.samples} needs a model that can sample (a cinn.v1 checkpoint given "
            f"with --model); got {', '.join(models) if models else 'no --model'}")
    for sampler in found.values():
        sampler.configure(samples=opts.samples, temperature=opts.temperature,
                          seed=opts.sample_seed)
    return found


def _middle(volume: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(volume[volume.shape[0] // 2])).astype(np.float32)
