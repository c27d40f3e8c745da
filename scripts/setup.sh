#!/usr/bin/env bash
# Set up mrirecon in a virtual environment (default ./.venv) from this source checkout.
#
#   scripts/setup.sh [EXTRA]      e.g. scripts/setup.sh test
#
# torch is installed first and on its own, so that pip resolves it the way you intend (on a CPU
# machine with a local CPU wheel, that wheel, not the multi-GB CUDA build) before the project's
# own `torch>=...` requirement is seen; a torch already importable in the environment is kept.
#   MRIRECON_VENV  the environment to use or create (default .venv; an active one is reused)
#   TORCH_SPEC     what to install when torch is missing (default torch==2.13.0)
#   PYTHON         the interpreter that creates the environment (default python3)
# Python rule (all of scripts/*.sh): Python and mrirecon run from the virtual environment
# venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}" ("$venv/bin/python", "$venv/bin/mrirecon"),
# the one scripts/setup.sh makes; never a bare python from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}"
extra="${1:-}"
quiet_pip() {  # pip, minus the noise of absent local index folders
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup: installing ${TORCH_SPEC:-torch==2.13.0} into $venv (set TORCH_SPEC for another build)" >&2
  quiet_pip "${TORCH_SPEC:-torch==2.13.0}"
fi
quiet_pip -e ".${extra:+[$extra]}"
echo "setup: mrirecon $("$venv/bin/python" -c 'import mrirecon; print(mrirecon.__version__)') ready in $venv" >&2
