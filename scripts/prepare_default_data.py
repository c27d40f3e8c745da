"""Training and validation volumes for the default i-RIM, from the fetched templates.

    python scripts/prepare_default_data.py SOURCES_DIR OUT_DIR

Training: 72 axial slices (every 2 mm) of the MNI152 2009a template. Validation: 8 axial
slices (every 10 mm) of the Colin27 head, a different subject, never used for training.
Writes ``OUT_DIR/mni152_train.nii.gz`` and ``OUT_DIR/colin27_val.nii.gz`` with their affines;
``scripts/train_default.sh`` simulates k-space from them (magnitude images: simulated data).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np


def take(src: Path, dst: Path, slices: list[int]) -> None:
    img = nib.load(src)
    data = np.asarray(img.dataobj, dtype=np.float32)[:, :, slices]
    affine = img.affine @ np.diag([1.0, 1.0, float(slices[1] - slices[0]), 1.0])
    affine[:3, 3] = (img.affine @ [0, 0, slices[0], 1])[:3]
    nib.save(nib.Nifti1Image(data, affine), dst)
    print(dst)


def main() -> None:
    sources, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    take(sources / "mni152_2009a.nii.gz", out / "mni152_train.nii.gz", list(range(30, 174, 2)))
    take(sources / "colin27.nii.gz", out / "colin27_val.nii.gz", list(range(50, 130, 10)))


if __name__ == "__main__":
    main()
