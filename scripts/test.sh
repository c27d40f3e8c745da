#!/usr/bin/env bash
# Set up mrirecon with its test extras and run the whole test suite (arguments go to pytest).
# CUDA tests (-m cuda) skip themselves when no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}"
exec "$venv/bin/python" -m pytest "$@"
