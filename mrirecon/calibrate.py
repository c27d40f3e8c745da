"""Calibrating a posterior sampler on data of one's own: files in, a calibrated checkpoint out.

:func:`calibrate_checkpoint` draws posterior samples of fully sampled files (undersampled here
with the same per-file masks as ``reconstruct`` and ``evaluate``), pools the ratios
``|mean - reference| / std`` of their pixels, fits the std scale
(:func:`mrirecon.recon.uncertainty.choose`) and writes the checkpoint again, same weights, with
the :class:`~mrirecon.recon.uncertainty.Calibration` in its metadata. Keep the calibration files
apart from the data you validate on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mrirecon.errors import InputFileError, InvalidParameterError

#: Pixels kept per calibration volume, spread over its slices (a uniform subsample: the fit
#: needs a quantile, not every pixel).
PIXELS_PER_VOLUME = 100_000


def calibration_ratios(paths: Sequence[Path], sampler: Any, accelerations: Sequence[float],
                       *, seed: int = 0, progress: Callable[[str], None] | None = None
                       ) -> tuple[dict[float, list[np.ndarray]], int]:
    """The ratio pixels of every slice, by acceleration, and the number of slices.

    Parameters
    ----------
    paths
        Fully sampled fastMRI files (DICOM/NIfTI are simulated first).
    sampler
        A :class:`~mrirecon.recon.posterior.PosteriorSampler`, used uncalibrated.
    accelerations
        The rates drawn on each file (random masks, fastMRI centre fractions).
    seed
        Base seed of the per-file masks and of the pixel subsample.
    progress
        Called with a description before each volume.
    """
    from mrirecon.inference import prepare_kspace, reference_image, undersample
    from mrirecon.recon.uncertainty import ratios
    from mrirecon.sampling import MaskOptions, draw_mask

    rng = np.random.default_rng(seed)
    parts: dict[float, list[np.ndarray]] = {float(a): [] for a in accelerations}
    slices = 0
    sampler.calibrated = False
    for path in paths:
        kspace = prepare_kspace(path)
        reference = reference_image(kspace)
        if reference is None or kspace.mask is not None:
            raise InputFileError(path, "calibration needs fully sampled k-space with a fastMRI "
                                       "target (reconstruction_rss / _esc)")
        for accel in accelerations:
            if progress is not None:
                progress(f"{path.name} R={accel:g}")
            mask = draw_mask(kspace.shape[-2:], MaskOptions(acceleration=accel, seed=seed),
                             path.name)
            posterior = sampler.sample(undersample(kspace, mask))
            if posterior.mean.shape != reference.shape:
                raise InputFileError(path, f"target {reference.shape} and reconstruction "
                                           f"{posterior.mean.shape} differ in shape")
            per_slice = max(1, PIXELS_PER_VOLUME // kspace.n_slices)
            for i in range(kspace.n_slices):
                r = ratios(posterior.mean.data[i] - reference[i], posterior.std.data[i])
                keep = rng.choice(r.size, min(r.size, per_slice), replace=False)
                parts[float(accel)].append(r[np.sort(keep)])
        slices += kspace.n_slices
    return parts, slices


def calibrate_checkpoint(model: Path, paths: Sequence[Path], out: Path, *,
                         accelerations: Sequence[float] = (4.0, 8.0), samples: int = 16,
                         seed: int = 0, device: Any = "cpu", batch_size: int | None = None,
                         overwrite: bool = False,
                         progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit the std scale of the sampler in ``model`` on ``paths`` and write ``out``.

    Parameters
    ----------
    model
        A cINN checkpoint (any sampler; a calibration it holds is replaced).
    paths
        The calibration files (>= 2 slices in all), kept apart from validation.
    out
        The calibrated checkpoint (written atomically; existing only with ``overwrite``).
    accelerations, samples, seed
        What is drawn: rates, posterior samples per volume, base seed of masks and draws.
    device, batch_size
        Where and how many slices at once.
    overwrite
        Replace ``out`` if it exists.
    progress
        Called with a description before each volume.

    Returns
    -------
    dict
        The stored calibration (:meth:`~mrirecon.recon.uncertainty.Calibration.to_dict`) and
        ``out``.

    Raises
    ------
    InvalidParameterError
        A model that cannot sample, fewer than 2 slices, or no usable scale.
    """
    from mrirecon.fileutil import check_writable
    from mrirecon.models.checkpoint import load_checkpoint, save_checkpoint
    from mrirecon.recon.methods import build_reconstructor
    from mrirecon.recon.protocols import Sampler
    from mrirecon.recon.uncertainty import Calibration, by_acceleration, choose

    check_writable([out], overwrite)
    sampler = build_reconstructor(model=model, device=device, batch_size=batch_size)
    if not isinstance(sampler, Sampler):
        raise InvalidParameterError(f"{model}: {sampler.name} cannot sample; calibration is for "
                                    "posterior samplers (cinn.v1)")
    sampler.configure(samples=samples, seed=seed)
    parts, slices = calibration_ratios(paths, sampler, accelerations, seed=seed,
                                       progress=progress)
    if slices < 2:
        raise InvalidParameterError(f"a calibration set needs at least 2 slices, got {slices}")
    method, scale, measured = choose([p for rate in sorted(parts) for p in parts[rate]])
    calibration = Calibration(
        method, scale, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        by_acceleration=by_acceleration(parts, method),
        data={"files": [Path(p).name for p in paths], "slices": slices,
              "accelerations": [float(a) for a in accelerations], "samples": samples,
              "seed": seed, "mask": "random, fastMRI centre fraction 0.32 / R, per-file seed"},
        measured=measured)
    net, meta = load_checkpoint(model)
    extra = {**meta["extra"], "calibration": calibration.to_dict()}
    save_checkpoint(out, net, name=meta["name"], config=meta["config"], extra=extra,
                    overwrite=overwrite)
    return {"out": str(out), **calibration.to_dict()}
