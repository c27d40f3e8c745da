#!/usr/bin/env bash
# The sample scan shipped in the package: 3 axial Colin27 slices (z = 75, 85, 95 of ch2.nii.gz),
# resampled to 128x128, 4 simulated coils, 1% noise (simulated k-space of a magnitude image).
# Python rule (all of scripts/*.sh): Python and mrirecon run from the virtual environment
# venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}" ("$venv/bin/python", "$venv/bin/mrirecon"),
# the one scripts/setup.sh makes; never a bare python from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}"
scripts/fetch_training_data.sh data/sources >/dev/null
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$venv/bin/python" - data/sources "$tmp/sample_colin27.nii.gz" <<'PY'
import sys

sys.path.insert(0, "scripts")
from _colin27 import locate, take

take(locate(sys.argv[1]), sys.argv[2], (0, 1, 2), range(75, 96, 10))
PY
"$venv/bin/mrirecon" simulate "$tmp/sample_colin27.nii.gz" -o mrirecon/models/default --coils 4 \
  --matrix 128 --seed 0 --overwrite
