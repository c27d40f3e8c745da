#!/usr/bin/env bash
# Set up mrirecon and run the main job on the bundled default: the sample scan (simulated 4-coil
# k-space of 3 real head slices) reconstructed at 4x by zero-filled, CS and the shipped default
# i-RIM, with the fastMRI metrics table, NIfTI outputs and a PNG panel in ./demo-out/.
# Python rule (all of scripts/*.sh): Python and mrirecon run from the virtual environment
# venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}" ("$venv/bin/python", "$venv/bin/mrirecon"),
# the one scripts/setup.sh makes; never a bare python from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plots  # matplotlib: the PNG panel is the first thing a user looks at
venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}"
exec "$venv/bin/mrirecon" demo -o demo-out --overwrite
