#!/usr/bin/env bash
# Set up mrirecon with its test extras, check it (ruff with the docstring rules, mypy; the
# settings are in pyproject.toml) and run the whole test suite (arguments go to pytest).
# CUDA tests (-m cuda) skip themselves when no GPU is present.
# Python rule (all of scripts/*.sh): Python and mrirecon run from the virtual environment
# venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}" ("$venv/bin/python", "$venv/bin/mrirecon"),
# the one scripts/setup.sh makes; never a bare python from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}"
"$venv/bin/ruff" check mrirecon tests scripts
"$venv/bin/mypy"
exec "$venv/bin/python" -m pytest "$@"
