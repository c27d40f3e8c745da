#!/usr/bin/env bash
# Set up mrirecon and run the main job on the bundled default: make, describe and print the
# fastMRI knee 4x mask (files land in ./demo-out/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}"
exec "$venv/bin/mrirecon" mask --preset knee-4x --show --png -o demo-out/knee-4x.npz --overwrite
