#!/usr/bin/env bash
# Reproduce the default cINN, a conditional invertible network conditioned on the shipped default
# i-RIM (frozen; its weights are stored inside the cINN checkpoint, so the result is
# self-contained), and calibrate its uncertainty maps.
#   scripts/train_default_cinn.sh [RUN_DIR]   (default runs/default-cinn)
#   STAGES="2" INIT=stage1.safetensors scripts/train_default_cinn.sh
#       fine-tunes stage 2 from a stage-1 cINN, then calibrates. The stage-1 cINN that stage 2
#       was trained from is git's cinn-default.safetensors before stage 2:
#       git show c9c1367:mrirecon/models/default/cinn-default.safetensors > stage1.safetensors
# Stage 1 (~20 min on 2 CPU cores): MNI152 8-coil slices (scripts/train_default.sh's data steps).
# Stage 2 (~45 min): configs/default-cinn/stage2.yaml, the domain-randomised generator, on top of
# the stage-5 default i-RIM, chosen on the out-of-distribution suite.
# Calibration: a fresh draw of the generator (scripts/make_calibration_set.py, a seed no
# training uses), never the suite; mrirecon calibrate fits the std scale into the checkpoint.
# All k-space is simulated from magnitude images.
# Python rule (all of scripts/*.sh): Python and mrirecon run from the virtual environment
# venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}" ("$venv/bin/python", "$venv/bin/mrirecon"),
# the one scripts/setup.sh makes; never a bare python from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
run="${1:-runs/default-cinn}"
stages="${STAGES:-1 2}"
venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}"
if [[ "$stages" == *1* ]]; then
  ls data/default/train/*.h5 >/dev/null 2>&1 || { echo "error: no data/default/train/*.h5; run scripts/train_default.sh first (or its data steps)" >&2; exit 1; }
  "$venv/bin/mrirecon" train --model cinn.v1 --data data/default/train --val-data data/default/val \
    --output "$run/stage1" --overwrite --max-steps "${STEPS:-2000}" --epochs 1000 \
    --max-minutes "${MINUTES:-45}" --batch-size 4 --lr 5e-4 \
    --set model_config.conditioner=irim \
    --set model_config.irim_checkpoint=mrirecon/models/default/irim-default.safetensors \
    --set model_config.acceleration_channel=true \
    --set model_config.levels=3 --set model_config.blocks_per_level=4 \
    --set model_config.hidden=32 --set model_config.cond_channels=16 \
    --set data.crop=96 --set val_every=250 --set optim.warmup_steps=100 \
    --set "mask.accelerations=[4, 8]"
fi
if [[ "$stages" == *2* ]]; then
  scripts/fetch_training_data.sh data/sources
  "$venv/bin/python" scripts/bench/generalisation.py build data/suite --sources data/sources \
    --overwrite >/dev/null
  init="${INIT:-$run/stage1/best.safetensors}"
  "$venv/bin/mrirecon" train configs/default-cinn/stage2.yaml --output "$run/stage2" --overwrite \
    --set "init=$init"
  "$venv/bin/python" scripts/make_calibration_set.py configs/default-cinn/stage2.yaml \
    data/calibration --items 32 --overwrite >/dev/null
  "$venv/bin/mrirecon" calibrate "$run/stage2/best.safetensors" data/calibration \
    -o "$run/cinn-calibrated.safetensors" --accel 4,8 --samples 16 --overwrite
  echo "default cINN: $run/cinn-calibrated.safetensors (copy it to mrirecon/models/default/cinn-default.safetensors)"
fi
