"""Data types that carry pixels together with their geometry and provenance.

Tensor layout (the one table; every docstring refers here)
===========================================================

==================  ==============================  ==========================================
name                axes                            dtype / notes
==================  ==============================  ==========================================
k-space             ``(slices, coils, ky, kx)``     complex64; single-coil is ``coils == 1``.
                                                    ``kx`` (last axis) is the phase-encode
                                                    direction that 1-D masks undersample
                                                    (fastMRI's "columns"); ``ky`` is the fully
                                                    sampled readout.
complex image       ``(slices, y, x)``              complex64 (physics works on native complex
                                                    tensors, never on real/imag pairs).
coil maps           ``(slices, coils, y, x)``       complex64; single-coil = one all-ones map.
mask                ``(ky, kx)``                    bool; broadcast over slices and coils.
                                                    1-D (line) masks have all rows equal and may
                                                    be stored with ``ky == 1``.
network channels    ``(batch, 2 * c, y, x)``        float32; real parts of the ``c`` complex
                                                    channels first, then the imaginary parts
                                                    (``physics.complex.to_channels``).
volume              ``(slices, rows, cols)``        float32 magnitude (or complex64) image;
                                                    ``Volume.affine`` maps the index
                                                    ``(slice, row, col, 1)`` to RAS+ millimetres.
==================  ==============================  ==========================================

Batch dimensions broadcast in front of every physics layout above. Centred FFT convention: the
DC sample of k-space sits at index ``(ky // 2, kx // 2)``.
"""

from mrirecon.data.geometry import (
    LPS_TO_RAS,
    affine_from_dicom,
    dicom_from_affine,
    orientation_codes,
    voxel_sizes,
)
from mrirecon.data.kspace import KSpace
from mrirecon.data.volume import Volume

KSPACE_AXES = ("slices", "coils", "ky", "kx")
IMAGE_AXES = ("slices", "y", "x")
VOLUME_AXES = ("slices", "rows", "cols")

__all__ = [
    "IMAGE_AXES",
    "KSPACE_AXES",
    "LPS_TO_RAS",
    "VOLUME_AXES",
    "KSpace",
    "Volume",
    "affine_from_dicom",
    "dicom_from_affine",
    "orientation_codes",
    "voxel_sizes",
]
