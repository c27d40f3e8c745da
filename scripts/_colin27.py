"""The Colin27 head: where it is, and slice stacks of it (imported as ``_colin27``).

Every script that reads Colin27 (Debian's ``mricron-data`` 1.2.20211006 ``ch2.nii.gz``, 181 x
217 x 181 at 1 mm) finds it with :func:`locate` and slices it with :func:`stack` or :func:`take`
(which also slice the other templates): ``prepare_default_data.py``, ``prepare_eval_data.py``,
``tune_baselines.py``, ``make_sample_scan.sh`` and ``bench/generalisation.py``. Scripts in this
folder import it directly (Python puts a script's own folder on ``sys.path``); the others put
this folder on ``sys.path`` first. Needs numpy and nibabel only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

#: Its name where ``scripts/fetch_training_data.sh`` puts it (``SOURCES/colin27.nii.gz``).
NAME = "colin27.nii.gz"
#: Where Debian's ``mricron-data`` installs it.
SYSTEM_COPY = Path("/usr/share/mricron/templates/ch2.nii.gz")
#: sha256 of ``ch2.nii.gz`` (and of the fetched copy, which is the same file).
SHA256 = "a009051127f64dc3dd554d5f5b589870ea72106d9642c21b4e7093e478cfc309"


def locate(sources: str | Path | None = None) -> Path:
    """The Colin27 file, from ``sources`` or the system copy.

    ``sources/colin27.nii.gz`` when ``sources`` is given and holds it (the fetch script checked
    its sha256 when it wrote it), else :data:`SYSTEM_COPY`, whose sha256 is checked here.
    Raises ``FileNotFoundError`` (neither is there) or ``ValueError`` (the system copy is not
    the pinned file); both say what to do.
    """
    if sources is not None and (Path(sources) / NAME).is_file():
        return Path(sources) / NAME
    if not SYSTEM_COPY.is_file():
        where = f"{Path(sources) / NAME} nor {SYSTEM_COPY}" if sources is not None else (
            str(SYSTEM_COPY))
        raise FileNotFoundError(f"Colin27 not found: no {where}; run "
                                "scripts/fetch_training_data.sh or install Debian's mricron-data")
    digest = hashlib.sha256(SYSTEM_COPY.read_bytes()).hexdigest()
    if digest != SHA256:
        raise ValueError(f"{SYSTEM_COPY}: sha256 {digest} does not match the pinned {SHA256}")
    return SYSTEM_COPY


def stack(src: str | Path, axes: tuple[int, int, int], slices: Sequence[int]
          ) -> tuple[np.ndarray, np.ndarray]:
    """``slices`` of ``src`` along ``axes[2]`` and the affine that still places them.

    The data is float32 ``(rows, cols, len(slices))``, the volume axes in the order ``axes``
    (row, column, slice); the affine puts every voxel where the source voxel was. ``slices``
    must be evenly spaced (a ``range``, or a list with one step), so that one affine describes
    them; a 4-D file gives its first volume.
    """
    index = [int(s) for s in slices]
    steps = {b - a for a, b in zip(index, index[1:], strict=False)} or {1}
    if len(steps) != 1 or 0 in steps:
        raise ValueError(f"slices must be evenly spaced, got {index}")
    step = steps.pop()
    img = nib.load(src)
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim == 4:
        data = data[..., 0]
    data = data.transpose(axes)[:, :, index]
    # Voxel (i, j, k) of the stack is voxel (.., start + step * k, ..) of the source.
    to_source = np.zeros((4, 4))
    to_source[3, 3] = 1.0
    for new_axis, old_axis in enumerate(axes):
        to_source[old_axis, new_axis] = float(step) if new_axis == 2 else 1.0
    to_source[axes[2], 3] = float(index[0])
    return data, img.affine @ to_source


def take(src: str | Path, dst: str | Path, axes: tuple[int, int, int], slices: Sequence[int]
         ) -> Path:
    """Save :func:`stack` of ``src`` as the NIfTI file ``dst`` (slice axis last)."""
    data, affine = stack(src, axes, slices)
    nib.save(nib.Nifti1Image(data, affine), dst)
    return Path(dst)
