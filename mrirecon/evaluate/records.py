"""The record format shared by sweeps and files mode, and the scoring of one volume.

A record is one dict per reconstructed volume (fields :data:`RECORD_FIELDS`, plus
:data:`CALIBRATION` for posterior samplers swept with ``samples``, plus ``acquisition`` in files
mode). Metrics follow the fastMRI protocol (:mod:`mrirecon.metrics`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from mrirecon.errors import MriReconError
from mrirecon.metrics import CALIBRATION_KEYS

#: Record fields, in table/CSV order (compare mode adds ``acquisition``).
RECORD_FIELDS = ("file", "method", "acceleration", "mask_seed", "achieved_acceleration", "slices",
                 "nmse", "psnr", "ssim", "seconds_per_slice", "simulated")
METRICS = ("psnr", "ssim", "nmse")
#: Record fields of a sampler swept with ``samples`` (:func:`mrirecon.metrics.calibration`'s keys).
CALIBRATION = CALIBRATION_KEYS

#: ``progress(done, total, description)``.
Progress = Callable[[int, int, str], None]


class SweepRecords(list):
    """The records of a :func:`~mrirecon.evaluate.sweep` (a ``list[dict]``) and what else it made.

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
        uniform random subsample of at most
        :data:`~mrirecon.evaluate.calibration.CALIBRATION_PIXELS` of the ``pixels`` pixels of
        every volume scored, for the report's reliability plot.
    """

    def __init__(self, records: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__(records)
        self.panels: dict[float, dict[str, np.ndarray]] = {}
        self.panel_file: str | None = None
        self.notes: list[str] = []
        self.calibration_pixels: dict[tuple[str, float], dict[str, Any]] = {}


def score(reference: np.ndarray, pred: np.ndarray, file: str, what: str) -> dict[str, float]:
    """The fastMRI metrics of one volume; shape and value problems become one-line errors.

    Parameters
    ----------
    reference
        The reference volume ``(slices, rows, cols)``.
    pred
        The volume scored, the same shape (complex values are scored by their magnitude).
    file, what
        The file's name and what ``pred`` is (a method name, ``prediction``), for the errors.

    Returns
    -------
    dict
        ``nmse``, ``psnr``, ``ssim`` (:func:`mrirecon.metrics.volume_metrics`).

    Raises
    ------
    MriReconError
        Shapes that differ, values the metrics cannot score.
    """
    from mrirecon import metrics

    pred = np.abs(pred) if np.iscomplexobj(pred) else pred
    if tuple(reference.shape) != tuple(pred.shape):
        raise MriReconError(f"{file}: {what} is {shape_text(pred.shape)} but the reference is "
                            f"{shape_text(reference.shape)} (slices x rows x cols)")
    try:
        return metrics.volume_metrics(reference, pred)
    except ValueError as exc:
        raise MriReconError(f"{file}: {what}: {exc}") from None


def shape_text(shape: Sequence[int]) -> str:
    """``(24, 48, 48)`` -> ``24x48x48``."""
    return "x".join(str(int(n)) for n in shape)
