"""Real magnitude volumes for evaluation runs, from Debian's and nibabel's packaged files.

    python scripts/prepare_eval_data.py [OUT_DIR]   (default data/eval)

Writes ``colin27_axial.nii.gz``: 8 axial slices (every 4th around the centre) of the Colin27
head (Debian package ``mricron-data`` 1.2.20211006, ``/usr/share/mricron/templates/ch2.nii.gz``,
sha256 checked; install it with ``apt-get install mricron-data``), with the affine moved to the
slices kept. Nothing is downloaded. The images are magnitudes: k-space made from them with
``mrirecon simulate`` is simulated, not measured.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

COLIN27 = Path("/usr/share/mricron/templates/ch2.nii.gz")
COLIN27_SHA256 = "a009051127f64dc3dd554d5f5b589870ea72106d9642c21b4e7093e478cfc309"


def main() -> None:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "data/eval")
    if not COLIN27.is_file():
        sys.exit(f"error: {COLIN27} not found; install Debian's mricron-data")
    digest = hashlib.sha256(COLIN27.read_bytes()).hexdigest()
    if digest != COLIN27_SHA256:
        sys.exit(f"error: {COLIN27}: sha256 {digest} does not match the pinned {COLIN27_SHA256}")
    img = nib.load(COLIN27)
    slices = np.arange(-14, 18, 4) + img.shape[2] // 2  # 8 axial slices, 4 mm apart
    data = np.asarray(img.dataobj, dtype=np.float32)[:, :, slices]
    affine = img.affine @ np.diag([1.0, 1.0, 4.0, 1.0])
    affine[:3, 3] = (img.affine @ [0, 0, slices[0], 1])[:3]
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "colin27_axial.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), out)
    print(out)


if __name__ == "__main__":
    main()
