#!/usr/bin/env bash
# Reproduce the default i-RIM: fetch the templates, simulate 8-coil k-space (160x160), train.
#   scripts/train_default.sh [RUN_DIR]   (default runs/default-irim; ~60 min on 2 CPU cores)
# Training keeps every activation (memory_free=false: faster on CPU, and 96-row crops fit
# easily); inference is the same either way.
set -euo pipefail
cd "$(dirname "$0")/.."
run="${1:-runs/default-irim}"
py=.venv/bin/python
scripts/fetch_training_data.sh data/sources
"$py" scripts/prepare_default_data.py data/sources data/default
.venv/bin/mrirecon simulate data/default/mni152_train.nii.gz -o data/default/train --coils 8 --matrix 160 --overwrite
.venv/bin/mrirecon simulate data/default/colin27_val.nii.gz -o data/default/val --coils 8 --matrix 160 --overwrite
.venv/bin/mrirecon train --model irim.v1 --data data/default/train --val-data data/default/val \
  --out "$run" --overwrite --max-steps 3200 --epochs 1000 --max-minutes 60 --batch-size 4 \
  --lr 5e-4 \
  --set model_config.steps=8 --set model_config.hidden=32 --set model_config.blocks_per_level=1 \
  --set model_config.levels=4 --set model_config.memory_free=false \
  --set loss.ssim=1.0 --set loss.l1=3.0 \
  --set data.crop=96 --set val_every=250 --set optim.warmup_steps=100 \
  --set "mask.accelerations=[4, 8]"
