"""Real magnitude volumes for evaluation runs, from Debian's and nibabel's packaged files.

    python scripts/prepare_eval_data.py [OUT_DIR]   (default data/eval)

Writes ``colin27_axial.nii.gz``: 8 axial slices (every 4th around the centre) of the Colin27
head (Debian package ``mricron-data`` 1.2.20211006, ``/usr/share/mricron/templates/ch2.nii.gz``,
sha256 checked by :func:`_colin27.locate`; install it with ``apt-get install mricron-data``),
with the affine moved to the slices kept (:func:`_colin27.take`). Nothing is downloaded. The
images are magnitudes: k-space made from them with ``mrirecon simulate`` is simulated, not
measured.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
from _colin27 import locate, take


def main() -> None:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "data/eval")
    try:
        colin27 = locate()
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    centre = nib.load(colin27).shape[2] // 2
    out_dir.mkdir(parents=True, exist_ok=True)
    print(take(colin27, out_dir / "colin27_axial.nii.gz", (0, 1, 2),
               range(centre - 14, centre + 18, 4)))  # 8 axial slices, 4 mm apart


if __name__ == "__main__":
    main()
