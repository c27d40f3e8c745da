"""Files mode, the equivalent of fastMRI's ``evaluate.py``: reconstructions against targets.

Reconstruction files already written (by ``mrirecon reconstruct`` or anyone writing fastMRI
submissions) are scored against the targets of the files of the same name. The files are read
by :mod:`mrirecon.io.predictions`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from mrirecon.errors import InputFileError, InvalidParameterError, MriReconError
from mrirecon.evaluate.records import score, shape_text

#: ``|achieved - R|`` within which a prediction without a mask spec matches ``acceleration``.
ACHIEVED_TOLERANCE = 0.05


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
        (see :func:`~mrirecon.io.predictions.target_dataset`) or reconstruction files used as
        references.
    acceleration
        Keep only predictions made at this acceleration: the requested acceleration of the mask
        recorded in their provenance; else the target's ``acceleration`` attribute (fastMRI test
        files); else the recorded achieved acceleration within :data:`ACHIEVED_TOLERANCE`.
    acquisition
        Keep only targets whose ``acquisition`` attribute equals this (e.g. ``CORPD_FBK``).

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
    from mrirecon.io.predictions import file_attrs, hdf5_files, read_prediction, read_target

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
    missing = [p.name for p in targets if not (pred_dir / p.name).is_file()]
    if missing:
        raise InputFileError(pred_dir, f"no prediction for {len(missing)} of {len(targets)} "
                             f"targets: {', '.join(missing)}")
    records = []
    for target in targets:
        pred = read_prediction(pred_dir / target.name)
        mask = pred.provenance.get("mask") or {}
        requested = mask.get("acceleration", attrs[target].get("acceleration"))
        achieved = mask.get("achieved_acceleration")
        if acceleration is not None and not _accel_matches(acceleration, requested, achieved):
            continue
        ref = read_target(target)
        if ref.shape != pred.shape:
            raise MriReconError(
                f"{pred.source} is {shape_text(pred.shape)} but its target {target} is "
                f"{shape_text(ref.shape)} (slices x rows x cols)")
        scores = score(np.abs(ref.data), pred.data, target.name, "prediction")
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


def _accel_matches(wanted: float, requested: Any, achieved: Any) -> bool:
    if requested is not None:
        return math.isclose(float(requested), wanted, abs_tol=1e-6)
    return achieved is not None and abs(float(achieved) - wanted) <= ACHIEVED_TOLERANCE


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
