"""Files mode, the equivalent of fastMRI's ``evaluate.py``: reconstructions against targets.

Reconstruction files already written (by ``mrirecon reconstruct`` or anyone writing fastMRI
submissions) are scored against the targets of the files of the same name. The files are read
by :mod:`mrirecon.io.predictions`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mrirecon.errors import InputFileError, InvalidParameterError, MriReconError
from mrirecon.evaluate.records import score, shape_text

#: ``|achieved - R|`` within which a prediction without a mask spec matches ``acceleration``.
ACHIEVED_TOLERANCE = 0.05


def compare_files(predictions_dir: str | Path, targets_dir: str | Path, *,
                  acceleration: float | None = None,
                  acquisition: str | None = None,
                  on_missing: Callable[[Path], None] | None = None,
                  on_error: Callable[[Path, MriReconError], None] | None = None
                  ) -> list[dict[str, Any]]:
    """Score reconstruction files against targets of the same file name (fastMRI's evaluate).

    Parameters
    ----------
    predictions_dir
        Folder of ``<name>.h5`` files with a ``reconstruction`` dataset (``mrirecon reconstruct``
        outputs or fastMRI submissions).
    targets_dir
        Folder of ``<name>.h5`` fastMRI files with ``reconstruction_esc`` / ``reconstruction_rss``
        (see :func:`~mrirecon.io.predictions.target_dataset`) or reconstruction files used as
        references.
    acceleration
        Keep only predictions made at this acceleration: the requested acceleration of the mask
        recorded in their provenance; else the target's ``acceleration`` attribute (fastMRI test
        files); else the recorded achieved acceleration within :data:`ACHIEVED_TOLERANCE`.
    acquisition
        Keep only targets whose ``acquisition`` attribute equals this (e.g. ``CORPD_FBK``).
    on_missing
        Called with each target that has no prediction, and the others are scored; ``None``
        raises instead (all listed).
    on_error
        Called with the prediction and the error of each pair that cannot be scored (an
        unreadable file, a shape that differs from its target's), and the others are scored;
        ``None`` raises the first.

    Returns
    -------
    list of dict
        Records as :func:`~mrirecon.evaluate.sweep` makes them (``method``, acceleration and
        timing from the prediction's provenance, ``None`` where it does not say) plus
        ``acquisition``.

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
    from mrirecon.io.predictions import file_attrs, hdf5_files

    pred_dir, tgt_dir = Path(predictions_dir), Path(targets_dir)
    for folder, what in ((pred_dir, "predictions"), (tgt_dir, "targets")):
        if not folder.is_dir():
            raise InputFileError(folder, f"{what} folder not found")
    targets = hdf5_files(tgt_dir)
    if not targets:
        raise InputFileError(tgt_dir, "no .h5 target files")
    attrs = {p: file_attrs(p) for p in targets}
    if acquisition is not None:
        targets = [p for p in targets if str(attrs[p].get("acquisition")) == acquisition]
        if not targets:
            found = sorted({str(a.get("acquisition")) for a in attrs.values()})
            raise InvalidParameterError(f"no target in {tgt_dir} has acquisition "
                                        f"{acquisition!r} (found: {', '.join(found)})")
    missing = [p for p in targets if not (pred_dir / p.name).is_file()]
    if missing:
        if on_missing is None:
            raise InputFileError(pred_dir, f"no prediction for {len(missing)} of {len(targets)} "
                                 f"targets: {', '.join(p.name for p in missing)}")
        for target in missing:
            on_missing(target)
    records, failed = [], 0
    for target in (t for t in targets if t not in missing):
        try:
            record = _score_pair(pred_dir / target.name, target, attrs[target], acceleration)
        except MriReconError as exc:
            if on_error is None:
                raise
            on_error(pred_dir / target.name, exc)
            failed += 1
            continue
        if record is not None:
            records.append(record)
    if not records:
        if failed or missing:
            raise MriReconError(f"nothing to evaluate: none of the {len(targets)} targets in "
                                f"{tgt_dir} has a prediction in {pred_dir} that could be scored")
        raise InvalidParameterError(f"no prediction in {pred_dir} was made at acceleration "
                                    f"{acceleration:g}")
    return records


def _score_pair(prediction: Path, target: Path, attrs: dict[str, Any],
                acceleration: float | None) -> dict[str, Any] | None:
    """The record of one prediction against its target; ``None`` when filtered out."""
    from mrirecon.io.predictions import read_prediction, read_target

    pred = read_prediction(prediction)
    mask = pred.provenance.get("mask") or {}
    requested = mask.get("acceleration", attrs.get("acceleration"))
    achieved = mask.get("achieved_acceleration")
    if acceleration is not None and not _accel_matches(acceleration, requested, achieved):
        return None
    ref = read_target(target)
    if ref.shape != pred.shape:
        raise MriReconError(
            f"{pred.source} is {shape_text(pred.shape)} but its target {target} is "
            f"{shape_text(ref.shape)} (slices x rows x cols)")
    scores = score(np.abs(ref.data), pred.data, target.name, "prediction")
    return {
        "file": target.name, "method": pred.provenance.get("method", "unknown"),
        "acceleration": _float(requested if requested is not None else achieved),
        "achieved_acceleration": _float(achieved), "slices": int(pred.shape[0]), **scores,
        "seconds_per_slice": pred.provenance.get("seconds_per_slice"),
        "simulated": bool(pred.provenance.get("simulated", attrs.get("simulated"))),
        "acquisition": attrs.get("acquisition"),
    }


def _accel_matches(wanted: float, requested: Any, achieved: Any) -> bool:
    if requested is not None:
        return math.isclose(float(requested), wanted, abs_tol=1e-6)
    return achieved is not None and abs(float(achieved) - wanted) <= ACHIEVED_TOLERANCE


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
