#!/usr/bin/env bash
# Reproduce the default i-RIM: fetch the pinned sources, build the data, train the five stages
# in configs/default-irim/, then score the result on the out-of-distribution suite.
#   scripts/train_default.sh [RUN_DIR]   (default runs/default-irim; on 2 CPU cores about 3.4 h
#                                         for stages 1-4 and 1 h for stage 5)
#   STAGES="5" scripts/train_default.sh  fine-tunes only stage 5, from the weights shipped before
#                                         it (runs/default-irim/stage4/best.safetensors must exist,
#                                         or set INIT=checkpoint)
# Stages 1-4: MNI152 T1 slices, 8-coil k-space simulated at 160x160, validated on Colin27 (the
# recipe of the i-RIM shipped before stage 5; see the model card). Stage 5: the domain-randomised
# generator (mrirecon/train/synthetic.py: MNI152 T1 and tissue labels, the pydeface mean head,
# natural photographs, procedural images; 1-32 coils; every mask kind; R 2-12), validated on the
# suite (scripts/bench/generalisation.py build), whose domains are never training sources.
# Training keeps every activation (memory_free: false, faster on a CPU); the checkpoint works
# either way. All k-space is simulated from magnitude images.
# Python rule (all of scripts/*.sh): Python and mrirecon run from the virtual environment
# venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}" ("$venv/bin/python", "$venv/bin/mrirecon"),
# the one scripts/setup.sh makes; never a bare python from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
run="${1:-runs/default-irim}"
stages="${STAGES:-1 2 3 4 5}"
venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}"
py="$venv/bin/python"
mrirecon="$venv/bin/mrirecon"
scripts/fetch_training_data.sh data/sources
if [[ "$stages" == *[1-4]* ]]; then
  "$py" scripts/prepare_default_data.py data/sources data/default
  "$mrirecon" simulate data/default/mni152_train.nii.gz -o data/default/train-stage1 --coils 8 \
    --matrix 160 --overwrite
  "$mrirecon" simulate data/default/mni152_{axial,coronal,sagittal}.nii.gz -o data/default/train \
    --coils 8 --matrix 160 --overwrite
  "$mrirecon" simulate data/default/colin27_val.nii.gz -o data/default/val --coils 8 --matrix 160 \
    --overwrite
fi
"$py" scripts/bench/generalisation.py build data/suite --sources data/sources --overwrite >/dev/null
previous=""
for stage in $stages; do
  init=()
  if [ "$stage" != 1 ]; then
    init=(--set "init=${INIT:-${previous:-$run/stage$((stage - 1))/best.safetensors}}")
  fi
  "$mrirecon" train "configs/default-irim/stage$stage.yaml" --output "$run/stage$stage" \
    --overwrite "${init[@]}"
  previous="$run/stage$stage/best.safetensors"
done
"$py" scripts/bench/generalisation.py run data/suite --methods zero-filled,cs --accel 4,8 \
  --mask-repeats 4 --model "$run/stage5/best.safetensors" --json-out "$run/suite.json" \
  --markdown "$run/suite.md"
echo "default i-RIM: $run/stage5/best.safetensors (ship it with model_config.memory_free=true)"
