"""Training and validation volumes for the default i-RIM, from the fetched templates.

    python scripts/prepare_default_data.py SOURCES_DIR OUT_DIR

Training, all from the MNI152 2009a template:
- stage 1 (``mni152_train.nii.gz``): 72 axial slices, every 2 mm;
- stage 2 (``mni152_{axial,coronal,sagittal}.nii.gz``): 144 axial slices (every 1 mm), 60
  coronal and 46 sagittal slices (every 3 mm); the three orientations show the model head
  shapes and contrasts the axial stack alone does not.
Validation (``colin27_val.nii.gz``): 8 axial slices (every 10 mm) of the Colin27 head, a
different subject, never used for training; it picks the best checkpoint. Test
(``colin27_test.nii.gz``): the 8 Colin27 slices 5 mm from those, used for nothing but the final
figures. Every volume is saved with its slice axis last
and its affine; ``scripts/train_default.sh`` simulates k-space from them (magnitude images:
simulated data).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np

# Orientation -> (volume axes in the order (row, column, slice), slice indices).
MNI_STACKS = {
    "axial": ((0, 1, 2), range(30, 174, 1)),
    "coronal": ((0, 2, 1), range(30, 210, 3)),
    "sagittal": ((1, 2, 0), range(30, 168, 3)),
}


def take(src: Path, dst: Path, axes: tuple[int, int, int], slices: range) -> None:
    """Save ``slices`` of ``src`` along ``axes[2]`` as a volume whose last axis is the slice."""
    img = nib.load(src)
    data = np.asarray(img.dataobj, dtype=np.float32).transpose(axes)[:, :, list(slices)]
    # Voxel (i, j, k) of the new volume is voxel (.., start + step * k, ..) of the source.
    index = np.zeros((4, 4))
    index[3, 3] = 1.0
    for new_axis, old_axis in enumerate(axes):
        index[old_axis, new_axis] = float(slices.step) if new_axis == 2 else 1.0
    index[axes[2], 3] = float(slices.start)
    nib.save(nib.Nifti1Image(data, img.affine @ index), dst)
    print(dst)


def main() -> None:
    sources, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    take(sources / "mni152_2009a.nii.gz", out / "mni152_train.nii.gz", (0, 1, 2), range(30, 174, 2))
    for name, (axes, slices) in MNI_STACKS.items():
        take(sources / "mni152_2009a.nii.gz", out / f"mni152_{name}.nii.gz", axes, slices)
    take(sources / "colin27.nii.gz", out / "colin27_val.nii.gz", (0, 1, 2), range(50, 130, 10))
    take(sources / "colin27.nii.gz", out / "colin27_test.nii.gz", (0, 1, 2), range(55, 135, 10))


if __name__ == "__main__":
    main()
