"""Orchestration of reconstruction: files in, masks chosen, reconstructors run, files out.

The only layer (with :mod:`mrirecon.evaluate` and ``train/``) that touches both files and
models. The steps, each usable on its own:

1. :func:`prepare_kspace` reads an input: fastMRI k-space lazily, or a DICOM/NIfTI image volume
   that is *simulated* into multi-coil k-space first (recorded in the provenance);
2. a mask the file carries is kept; otherwise :func:`~mrirecon.sampling.draw_mask` draws a
   deterministic per-file mask from a :class:`~mrirecon.sampling.MaskOptions` (seed from the
   file name, the same on every machine);
3. :func:`undersample` zeroes the unsampled k-space lazily, slice by slice;
4. a :class:`~mrirecon.recon.Reconstructor` turns k-space into a
   :class:`~mrirecon.data.Volume`;
5. :func:`reconstruct_file` does all of it and writes the output atomically: it is
   :func:`read_input` (steps 1-3, optionally reading every slice into memory) followed by
   :func:`reconstruct_input` (4 and the write), two halves that ``mrirecon reconstruct`` runs
   in a pipeline, reading the next file while the current one is reconstructed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mrirecon.data import KSpace, Volume
from mrirecon.data.masks import mask_statistics
from mrirecon.errors import InputFileError, MriReconError
from mrirecon.jsonutil import strict_dumps
from mrirecon.sampling import Mask, MaskOptions, draw_mask, seed_from_name

if TYPE_CHECKING:  # torch-importing modules: for annotations only
    from mrirecon.data.kspace import SliceSource
    from mrirecon.physics.simulate import SimulationParams
    from mrirecon.recon.posterior import Posterior
    from mrirecon.recon.protocols import ReconstructorProtocol, Sampler


def prepare_kspace(path: str | Path, *, series: str | None = None,
                   simulation: SimulationParams | None = None,
                   prewhiten: bool = True) -> KSpace:
    """Read ``path`` as k-space; image volumes (DICOM, NIfTI) are simulated first.

    ``simulation`` is a :class:`~mrirecon.physics.simulate.SimulationParams` (default: 8 coils,
    1% noise); its seed is combined with the file name. ``series`` and ``prewhiten`` go to
    :func:`~mrirecon.io.load`.
    """
    from mrirecon.io import load

    obj = load(path, series=series, prewhiten=prewhiten)
    if isinstance(obj, KSpace):
        return obj
    return simulate_in_memory(obj, path, simulation)


def simulate_in_memory(volume: Volume, path: str | Path,
                       simulation: SimulationParams | None = None) -> KSpace:
    """Simulated k-space of an image volume, kept in memory, with its geometry and header."""
    from mrirecon.io.fastmri_h5 import target_key
    from mrirecon.physics.simulate import SimulationParams
    from mrirecon.simulation import output_name, simulate_volume

    params = simulation or SimulationParams()
    params = replace(params, seed=seed_from_name(output_name(Path(path)), base_seed=params.seed))
    if not np.all(np.isfinite(volume.data)):
        raise InputFileError(path, "image contains NaN or Inf values")
    sim = simulate_volume(volume, params)
    rows, cols = sim["kspace"].shape[-2:]
    return KSpace(
        data=sim["kspace"], recon_matrix=(rows, cols, 1), encoded_matrix=(rows, cols, 1),
        targets={target_key(single_coil=params.coils == 1): sim["target"]},
        affine=sim["affine"], image_header=volume.header, source=str(path),
        provenance={"simulated": True, "simulation": params.to_dict()},
    )


class MaskedSource:
    """A slice source with a sampling mask applied on every read (lazy undersampling)."""

    def __init__(self, source: SliceSource, mask: np.ndarray) -> None:
        self.source, self.mask = source, np.asarray(mask, dtype=bool)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the source (the mask does not change it)."""
        return tuple(self.source.shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.where(self.mask, np.asarray(self.source[index]), 0).astype(np.complex64)


def undersample(kspace: KSpace, mask: Mask) -> KSpace:
    """``kspace`` with ``mask`` applied (lazily) and recorded, provenance included."""
    provenance = {**kspace.provenance, "mask": mask_record(mask)}
    return replace(kspace, data=MaskedSource(kspace.data, mask.array), mask=mask.array,
                   provenance=provenance)


def mask_record(mask: Mask | np.ndarray) -> dict[str, Any]:
    """Provenance of a mask: its spec, seed and achieved acceleration.

    For a mask the file carried, just what was achieved.
    """
    if isinstance(mask, Mask):
        return {**mask.summary(), "source": "drawn"}
    stats = mask_statistics(mask)
    return {"source": "file", "sampled_lines": stats["sampled_lines"],
            "total_lines": stats["total_lines"],
            "achieved_acceleration": round(min(stats["achieved_acceleration"],
                                               stats["total_points"]), 4)}


def reference_image(kspace: KSpace) -> np.ndarray | None:
    """The fully sampled reference of a file: its fastMRI target, if it has one.

    fastMRI's choice: ``reconstruction_esc`` for single-coil data, ``reconstruction_rss`` for
    multi-coil data, the other one when only it is present (single-coil knee files carry both).
    """
    from mrirecon.io.fastmri_h5 import preferred_targets

    for name in preferred_targets(single_coil=not kspace.is_multicoil):
        if name in kspace.targets:
            return np.asarray(kspace.targets[name][:], dtype=np.float32)
    return None


def _undersampled(path: Path, options: MaskOptions, series: str | None,
                  outputs: Callable[[KSpace], Iterable[Path]],
                  overwrite: bool, prewhiten: bool = True) -> tuple[KSpace, KSpace]:
    """(full or as-read k-space, what the reconstructor gets).

    ``outputs(kspace)`` lists every file that will be written, checked before any work (a bad
    input fails before any folder is made, an existing output before the reconstruction).
    """
    from mrirecon.fileutil import check_writable

    kspace = prepare_kspace(path, series=series, prewhiten=prewhiten)
    check_writable(outputs(kspace), overwrite)
    if kspace.mask is None:
        return kspace, undersample(kspace, draw_mask(kspace.shape[-2:], options, path.name))
    return kspace, replace(kspace, provenance={**kspace.provenance,
                                               "mask": mask_record(kspace.mask)})


@dataclass(frozen=True)
class ReadInput:
    """One input read and undersampled, ready for a reconstructor (see :func:`read_input`).

    ``full`` is the k-space as read (for the reference image), ``kspace`` what the reconstructor
    gets; ``outputs`` maps each output's role (``image``, or ``mean``/``std``/``panel``/
    ``samples``) to its path, checked writable; ``read_seconds`` is the time spent reading.
    """

    path: Path
    fmt: str
    outputs: dict[str, Path]
    full: KSpace
    kspace: KSpace
    read_seconds: float


def input_outputs(path: str | Path, out_dir: str | Path, fmt: str | None = None, *,
                  posterior: bool = False, keep_samples: bool = False,
                  adapted: bool = False) -> dict[str, Path]:
    """The outputs ``mrirecon reconstruct`` writes for ``path`` into ``out_dir``, by role.

    ``{"image": ...}`` (:func:`~mrirecon.io.output_path`), or with ``posterior`` those of
    :func:`posterior_paths`; with ``adapted`` also ``"adapted"``, the adapted weights
    ``<stem>_adapted.safetensors``. ``fmt=None`` keeps the input's format (fastMRI HDF5 for
    raw ISMRMRD).
    """
    from mrirecon.io import EXTENSIONS, detect_format, output_format, output_path

    fmt = fmt or output_format(detect_format(path))
    if posterior:
        return posterior_paths(path, out_dir, fmt, keep_samples=keep_samples)
    image = output_path(path, out_dir, fmt)
    outputs = {"image": image}
    if adapted:
        stem = image.name[: len(image.name) - len(EXTENSIONS[fmt])]
        outputs["adapted"] = image.with_name(f"{stem}_adapted.safetensors")
    return outputs


def read_input(path: str | Path, out_dir: str | Path, options: MaskOptions, *,
               fmt: str | None = None, series: str | None = None, overwrite: bool = False,
               posterior: bool = False, keep_samples: bool = False,
               in_memory: bool = False, prewhiten: bool = True,
               adapted: bool = False) -> ReadInput:
    """Read ``path``, check its outputs in ``out_dir`` are writable, choose and apply the mask.

    ``posterior`` names the outputs of a sampled reconstruction (:func:`posterior_paths`), else
    the one image (:func:`~mrirecon.io.output_path`). ``in_memory`` reads every undersampled
    slice now, so that the reconstruction does no I/O (``mrirecon reconstruct`` reads the next
    input this way while the current one is reconstructed); otherwise slices are read lazily,
    a batch at a time. ``prewhiten=False`` keeps raw ISMRMRD coils as measured. ``adapted``
    adds the adapted weights to the outputs (:func:`input_outputs`).
    """
    from mrirecon.io import detect_format, output_format

    path = Path(path)
    start = time.perf_counter()
    fmt = fmt or output_format(detect_format(path))
    outputs = input_outputs(path, out_dir, fmt, posterior=posterior, keep_samples=keep_samples,
                            adapted=adapted)
    full, kspace = _undersampled(path, options, series, lambda _: list(outputs.values()),
                                 overwrite, prewhiten)
    if in_memory:
        kspace = replace(kspace, data=kspace.slices(0, kspace.n_slices))
    return ReadInput(path, fmt, outputs, full, kspace, time.perf_counter() - start)


def reconstruct_file(path: str | Path, out_dir: str | Path,
                     reconstructor: ReconstructorProtocol,
                     options: MaskOptions, *, fmt: str | None = None,
                     series: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Reconstruct one input file into ``out_dir`` (same stem); returns a summary record."""
    item = read_input(path, out_dir, options, fmt=fmt, series=series, overwrite=overwrite)
    return reconstruct_input(item, reconstructor, overwrite=overwrite)


def write_volume(volume: Volume, path: Path, fmt: str, method: str, *,
                 overwrite: bool = False, statistic: str | None = None) -> list[Path]:
    """Save a reconstructed ``volume`` with the description every output carries.

    The description is ``mrirecon <method> [posterior <statistic>] R=<achieved>`` (DICOM series
    description, NIfTI ``descrip``, HDF5 attribute); returns the files written.
    """
    from mrirecon.io import save

    if not np.isfinite(volume.data).all():  # a non-finite result is an error, not an output
        bad = "NaN" if np.isnan(volume.data).any() else "Inf"
        raise MriReconError(f"{volume.source or path}: {method} produced {bad} pixels (from "
                            "huge or non-finite input values, or weights); nothing written")
    accel = volume.provenance["mask"]["achieved_acceleration"]
    what = f" posterior {statistic}" if statistic else ""
    return save(volume, path, fmt=fmt, overwrite=overwrite,
                description=f"mrirecon {method}{what} R={accel:.2f}")


def reconstruct_input(item: ReadInput, reconstructor: ReconstructorProtocol, *,
                      overwrite: bool = False) -> dict[str, Any]:
    """Reconstruct a :class:`ReadInput` and write its image; returns a summary record.

    In the record, ``seconds`` is reading plus reconstructing and writing, ``outside_domain``
    how the input lies outside a learned model's declared training domain, empty when inside,
    and ``notes`` what the method had to change (e.g. ACS instead of ESPIRiT coil maps).
    """
    start = time.perf_counter()
    out = item.outputs["image"]
    volume = reconstructor(item.kspace)
    accel = volume.provenance["mask"]["achieved_acceleration"]
    written: list[Path] = []
    if "adapted" in item.outputs:  # an adapting reconstructor's weights (--save-adapted)
        written.append(reconstructor.save_adapted(  # type: ignore[attr-defined]
            item.outputs["adapted"], overwrite=overwrite))
    try:
        written += write_volume(volume, out, item.fmt, reconstructor.name, overwrite=overwrite)
    except BaseException:
        for path in written:  # no weights without their image
            path.unlink(missing_ok=True)
        raise
    record = {"input": str(item.path), "output": str(out), "files": [str(p) for p in written],
              "method": reconstructor.name,
              "slices": volume.shape[0], "acceleration": accel,
              "outside_domain": reconstructor.domain_notes(item.kspace),
              "notes": list(volume.provenance.get("notes", [])),
              "simulated": bool(item.kspace.provenance.get("simulated", False)),
              "seconds": round(item.read_seconds + time.perf_counter() - start, 3),
              "seconds_per_slice": volume.provenance["seconds_per_slice"]}
    if "adaptation" in volume.provenance:
        record["adaptation"] = volume.provenance["adaptation"]
    return record


def posterior_paths(path: str | Path, out_dir: str | Path, fmt: str, *,
                    keep_samples: bool = False) -> dict[str, Path]:
    """Outputs of a sampled reconstruction, by role.

    ``<stem>_mean`` and ``<stem>_std`` in ``fmt``, the PNG panel ``<stem>_uncertainty.png`` and,
    with ``keep_samples``, ``<stem>_samples.h5``.
    """
    from mrirecon.io import EXTENSIONS, output_path

    base = output_path(path, out_dir, fmt)
    ext = EXTENSIONS[fmt]
    stem = base.name[: len(base.name) - len(ext)]
    paths = {"mean": base.with_name(f"{stem}_mean{ext}"),
             "std": base.with_name(f"{stem}_std{ext}"),
             "panel": base.with_name(f"{stem}_uncertainty.png")}
    if keep_samples:
        paths["samples"] = base.with_name(f"{stem}_samples.h5")
    return paths


def sample_input(item: ReadInput, sampler: Sampler, *,
                 overwrite: bool = False) -> dict[str, Any]:
    """Sample the posterior of a :class:`ReadInput` and write its outputs; returns a record.

    ``item`` is read with ``posterior=True``; ``samples`` is written only when it was read with
    ``keep_samples``. ``sampler`` is what
    :func:`~mrirecon.recon.methods.build_reconstructor` returns with ``samples``.
    """
    from mrirecon.fileutil import atomic_path

    start = time.perf_counter()
    paths = item.outputs
    keep_samples = "samples" in paths
    posterior = sampler.sample(item.kspace, keep_samples=keep_samples)
    accel = posterior.mean.provenance["mask"]["achieved_acceleration"]
    written: list[Path] = []
    for what in ("mean", "std"):
        written += write_volume(getattr(posterior, what), paths[what], item.fmt, sampler.name,
                                overwrite=overwrite, statistic=what)
    if keep_samples:
        written.append(write_samples(paths["samples"], posterior, overwrite=overwrite))
    reference = _reference(item.full, item.kspace)
    with atomic_path(paths["panel"], overwrite=overwrite) as tmp:
        tmp.write_bytes(uncertainty_png(posterior, reference, sampler.calibration_note))
    written.append(paths["panel"])
    return {"input": str(item.path), "output": str(paths["mean"]),
            "files": [str(p) for p in written], "method": sampler.name,
            "slices": posterior.mean.shape[0], "acceleration": accel,
            "samples": sampler.samples, "seed": sampler.seed,
            "outside_domain": sampler.domain_notes(item.kspace),
            "notes": list(posterior.mean.provenance.get("notes", [])),
            "simulated": bool(item.kspace.provenance.get("simulated", False)),
            "seconds": round(item.read_seconds + time.perf_counter() - start, 3),
            "seconds_per_slice": posterior.mean.provenance["seconds_per_slice"],
            "sampled_slices_per_second":
                posterior.mean.provenance["sampled_slices_per_second"]}


def _reference(full: KSpace, kspace: KSpace) -> np.ndarray | None:
    """The fully sampled reference, when the input had one.

    Its fastMRI target, else (for a fully sampled input that was undersampled here) the RSS of
    the full k-space.
    """
    reference = reference_image(full)
    if reference is None and full.mask is None and kspace.mask is not None:
        from mrirecon.recon.zero_filled import ZeroFilled

        reference = ZeroFilled()(full).data
    return reference


def uncertainty_png(posterior: Posterior, reference: np.ndarray | None, note: str) -> bytes:
    """The ``<stem>_uncertainty.png`` of a posterior.

    With matplotlib (the ``plots`` extra): colour bars in image units and the calibration
    ``note`` (:func:`mrirecon.report.uncertainty_figure`); without it, the plain greyscale
    :func:`uncertainty_panel`.
    """
    from mrirecon import report

    if report.plots_available():
        return report.uncertainty_figure(posterior.mean.data, posterior.std.data, reference, note)
    from mrirecon.png import encode_png

    return encode_png(uncertainty_panel(posterior.mean.data, posterior.std.data, reference))


def uncertainty_panel(mean: np.ndarray, std: np.ndarray,
                      reference: np.ndarray | None) -> np.ndarray:
    """8-bit greyscale panel of the middle slice: target (if known) | mean | std | |error|.

    Target and mean share one grey scale (0 to the target's, else the mean's, 99.5th
    percentile), std and |error| another (0 to twice the 99.5th percentile of std), so the
    uncertainty map and the error it should track can be compared by eye.
    """
    i = mean.shape[0] // 2
    m, s = np.asarray(mean[i], np.float64), np.asarray(std[i], np.float64)
    images = [m, s]
    if reference is not None and reference.shape == mean.shape:
        r = np.asarray(reference[i], np.float64)
        images = [r, m, s, np.abs(m - r)]
    top = float(np.percentile(images[0], 99.5)) or 1.0
    top_s = 2 * float(np.percentile(s, 99.5)) or 1.0
    scales = [top, top, top_s, top_s] if len(images) == 4 else [top, top_s]
    gap = np.zeros((m.shape[0], 4))
    tiles = []
    for image, scale in zip(images, scales, strict=True):
        tiles += [np.clip(image / scale, 0, 1), gap]
    return np.round(255 * np.concatenate(tiles[:-1], axis=1)).astype(np.uint8)


def write_samples(path: Path, posterior: Posterior, *, overwrite: bool = False) -> Path:
    """Write the posterior draws to ``<stem>_samples.h5``.

    Dataset ``samples`` ``(slices, n, rows, cols)`` float32 with the affine and the provenance
    (seed, temperature, model) as attributes.
    """
    import h5py

    from mrirecon.fileutil import atomic_path

    with atomic_path(path, overwrite=overwrite) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("samples", data=posterior.samples, compression="gzip",
                         compression_opts=1)
        f.attrs["affine"] = np.asarray(posterior.mean.affine, np.float64)
        f.attrs["provenance"] = strict_dumps(posterior.mean.provenance)
    return path
