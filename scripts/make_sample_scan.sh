#!/usr/bin/env bash
# The sample scan shipped in the package: 3 axial Colin27 slices (z = 75, 85, 95 of ch2.nii.gz),
# resampled to 128x128, 4 simulated coils, 1% noise (simulated k-space of a magnitude image).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch_training_data.sh data/sources >/dev/null
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
.venv/bin/python - data/sources/colin27.nii.gz "$tmp/sample_colin27.nii.gz" <<'PY'
import sys

import nibabel as nib
import numpy as np

img = nib.load(sys.argv[1])
slices = [75, 85, 95]
affine = img.affine @ np.diag([1.0, 1.0, 10.0, 1.0])
affine[:3, 3] = (img.affine @ [0, 0, slices[0], 1])[:3]
nib.save(nib.Nifti1Image(np.asarray(img.dataobj, np.float32)[:, :, slices], affine), sys.argv[2])
PY
.venv/bin/mrirecon simulate "$tmp/sample_colin27.nii.gz" -o mrirecon/models/default --coils 4 \
  --matrix 128 --seed 0 --overwrite
