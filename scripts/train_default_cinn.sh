#!/usr/bin/env bash
# Reproduce the default cINN: on the default i-RIM's simulated training set (run
# scripts/train_default.sh first, or at least its data steps), train a conditional invertible
# network conditioned on the shipped default i-RIM (frozen; its weights are stored inside the
# cINN checkpoint, so the result is self-contained).
#   scripts/train_default_cinn.sh [RUN_DIR]   (default runs/default-cinn; ~20 min on 2 CPU cores)
# Python rule (all of scripts/*.sh): Python and mrirecon run from the virtual environment
# venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}" ("$venv/bin/python", "$venv/bin/mrirecon"),
# the one scripts/setup.sh makes; never a bare python from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
run="${1:-runs/default-cinn}"
venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}"
ls data/default/train/*.h5 >/dev/null 2>&1 || { echo "error: no data/default/train/*.h5; run scripts/train_default.sh first (or its data steps)" >&2; exit 1; }
"$venv/bin/mrirecon" train --model cinn.v1 --data data/default/train --val-data data/default/val \
  --out "$run" --overwrite --max-steps "${STEPS:-2000}" --epochs 1000 --max-minutes "${MINUTES:-45}" \
  --batch-size 4 --lr 5e-4 \
  --set model_config.conditioner=irim \
  --set model_config.irim_checkpoint=mrirecon/models/default/irim-default.safetensors \
  --set model_config.acceleration_channel=true \
  --set model_config.levels=3 --set model_config.blocks_per_level=4 \
  --set model_config.hidden=32 --set model_config.cond_channels=16 \
  --set data.crop=96 --set val_every=250 --set optim.warmup_steps=100 \
  --set "mask.accelerations=[4, 8]"
