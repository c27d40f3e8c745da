"""Voxel-to-world geometry: DICOM patient coordinates (LPS) <-> 4x4 affines in RAS+ mm.

Our affine maps the volume index ``(slice, row, col, 1)`` (see the layout table in
:mod:`mrirecon.data`) to RAS+ millimetres. DICOM describes each slice with
``ImagePositionPatient`` (centre of the first transmitted pixel, LPS mm),
``ImageOrientationPatient`` (the row direction cosine, along which the *column* index grows, then
the column direction cosine, along which the *row* index grows) and ``PixelSpacing``
(``[spacing between rows, spacing between columns]``). RAS = diag(-1, -1, 1) LPS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def affine_from_dicom(
    position: Sequence[float],
    orientation: Sequence[float],
    pixel_spacing: Sequence[float],
    slice_step: Sequence[float] | None = None,
    slice_thickness: float = 1.0,
) -> np.ndarray:
    """Build the RAS+ affine of a slice stack from DICOM attributes.

    Parameters
    ----------
    position
        ImagePositionPatient of the *first* slice (LPS mm).
    orientation
        ImageOrientationPatient: six direction cosines, row direction then column direction.
    pixel_spacing
        PixelSpacing ``[between rows, between columns]`` in mm.
    slice_step
        LPS vector from slice 0 to slice 1 (``IPP[1] - IPP[0]``). ``None`` (one slice) uses the
        slice normal ``row x col`` scaled by ``slice_thickness``.
    slice_thickness
        SliceThickness in mm: the slice step's length when ``slice_step`` is ``None``.
    """
    pos = np.asarray(position, dtype=float)
    iop = np.asarray(orientation, dtype=float)
    row_cos, col_cos = iop[:3], iop[3:]
    d_row, d_col = (float(v) for v in pixel_spacing)
    if slice_step is None:
        step = np.cross(row_cos, col_cos) * float(slice_thickness)
    else:
        step = np.asarray(slice_step, dtype=float)
    lps = np.eye(4)
    lps[:3, 0] = step  # slice index
    lps[:3, 1] = col_cos * d_row  # row index moves along the column direction
    lps[:3, 2] = row_cos * d_col  # column index moves along the row direction
    lps[:3, 3] = pos
    return LPS_TO_RAS @ lps


def dicom_from_affine(
    affine: np.ndarray, n_slices: int
) -> tuple[list[list[float]], list[float], list[float], float]:
    """Inverse of :func:`affine_from_dicom`.

    Returns
    -------
    positions
        ImagePositionPatient (LPS mm) of each of the ``n_slices`` slices.
    orientation
        ImageOrientationPatient (six unit direction cosines).
    pixel_spacing
        ``[between rows, between columns]`` in mm.
    slice_spacing
        Distance between neighbouring slice centres in mm.
    """
    lps = LPS_TO_RAS @ np.asarray(affine, dtype=float)
    step, col_vec, row_vec = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    d_row, d_col = np.linalg.norm(col_vec), np.linalg.norm(row_vec)
    orientation = [*(row_vec / d_col), *(col_vec / d_row)]
    positions = [list(lps[:3, 3] + k * step) for k in range(n_slices)]
    return positions, [float(v) for v in orientation], [float(d_row), float(d_col)], float(
        np.linalg.norm(step)
    )


def voxel_sizes(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along (slice, row, col)."""
    a = np.asarray(affine, dtype=float)
    return tuple(float(v) for v in np.linalg.norm(a[:3, :3], axis=0))  # type: ignore[return-value]


def orientation_codes(affine: np.ndarray) -> str:
    """Anatomical direction each index axis (slice, row, col) points to, e.g. ``"SPL"``.

    Each letter names the RAS+ direction the axis is closest to (R/L, A/P, S/I), as
    ``nibabel.aff2axcodes`` does for orthogonal affines.
    """
    letters = (("R", "L"), ("A", "P"), ("S", "I"))
    out = []
    for axis in np.asarray(affine, dtype=float)[:3, :3].T:
        k = int(np.argmax(np.abs(axis)))
        out.append(letters[k][0] if axis[k] >= 0 else letters[k][1])
    return "".join(out)
