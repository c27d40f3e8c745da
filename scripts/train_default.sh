#!/usr/bin/env bash
# Reproduce the default i-RIM: fetch the templates, simulate 8-coil k-space (160x160), train.
#   scripts/train_default.sh [RUN_DIR]   (default runs/default-irim; ~20 min on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
run="${1:-runs/default-irim}"
py=.venv/bin/python
scripts/fetch_training_data.sh data/sources
"$py" scripts/prepare_default_data.py data/sources data/default
.venv/bin/mrirecon simulate data/default/mni152_train.nii.gz -o data/default/train --coils 8 --matrix 160 --overwrite
.venv/bin/mrirecon simulate data/default/colin27_val.nii.gz -o data/default/val --coils 8 --matrix 160 --overwrite
.venv/bin/mrirecon train --model irim.v1 --data data/default/train --val-data data/default/val \
  --out "$run" --overwrite --max-steps 1400 --epochs 1000 --max-minutes 22 --batch-size 4 \
  --lr 1e-3 \
  --set model_config.steps=6 --set model_config.hidden=24 --set model_config.blocks_per_level=1 \
  --set data.crop=96 --set val_every=250 --set optim.warmup_steps=100 \
  --set "mask.accelerations=[4, 8]"
