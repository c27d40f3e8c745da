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
figures. Every volume is saved with its slice axis last and the affine that still places it
(:func:`_colin27.take`; Colin27 found by :func:`_colin27.locate`);
``scripts/train_default.sh`` simulates k-space from them (magnitude images: simulated data).
"""

from __future__ import annotations

import sys
from pathlib import Path

from _colin27 import locate, take

# Orientation -> (volume axes in the order (row, column, slice), slice indices).
MNI_STACKS = {
    "axial": ((0, 1, 2), range(30, 174, 1)),
    "coronal": ((0, 2, 1), range(30, 210, 3)),
    "sagittal": ((1, 2, 0), range(30, 168, 3)),
}


def main() -> None:
    sources, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    mni, colin27 = sources / "mni152_2009a.nii.gz", locate(sources)
    print(take(mni, out / "mni152_train.nii.gz", (0, 1, 2), range(30, 174, 2)))
    for name, (axes, slices) in MNI_STACKS.items():
        print(take(mni, out / f"mni152_{name}.nii.gz", axes, slices))
    print(take(colin27, out / "colin27_val.nii.gz", (0, 1, 2), range(50, 130, 10)))
    print(take(colin27, out / "colin27_test.nii.gz", (0, 1, 2), range(55, 135, 10)))


if __name__ == "__main__":
    main()
