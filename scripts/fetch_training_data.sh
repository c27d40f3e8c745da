#!/usr/bin/env bash
# Real magnitude head volumes for training, fetched through package registries, pinned by
# version and sha256. Nothing else is downloaded, and nothing at run time.
#
#   scripts/fetch_training_data.sh [OUT_DIR]        (default data/sources)
#
# - Colin27 (ch2.nii.gz, 181x217x181, 1 mm) from Debian's mricron-data 1.2.20211006
#   (installed with apt-get when this runs as root and it is missing);
# - MNI152 2009a symmetric T1 (197x233x189, 1 mm) from the nilearn 0.14.1 wheel on PyPI.
# These are magnitude images: k-space made from them (mrirecon simulate) is simulated.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-data/sources}"
python="${PYTHON:-.venv/bin/python}"
colin=/usr/share/mricron/templates/ch2.nii.gz
colin_sha=a009051127f64dc3dd554d5f5b589870ea72106d9642c21b4e7093e478cfc309
wheel_sha=725206484e9fb3f6691f9c2d20204a068759d5072f12055324702ee0cb2bbe8a
mni_member=nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz
mni_sha=421a10e872fd6cadae7f61d358dffbcc1795a497d61ee76c5dda2503e1a1e9e6

check() {  # FILE SHA256
  echo "$2  $1" | sha256sum --check --quiet - \
    || { echo "error: $1: sha256 does not match the pinned $2" >&2; exit 1; }
}

mkdir -p "$out"
if [ ! -f "$colin" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q mricron-data >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q mricron-data >/dev/null; }
  else
    echo "error: $colin missing; install Debian's mricron-data (as root)" >&2; exit 1
  fi
fi
check "$colin" "$colin_sha"
cp "$colin" "$out/colin27.nii.gz"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download -q --no-deps nilearn==0.14.1 -d "$tmp" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
check "$tmp/nilearn-0.14.1-py3-none-any.whl" "$wheel_sha"
"$python" - "$tmp/nilearn-0.14.1-py3-none-any.whl" "$mni_member" "$out/mni152_2009a.nii.gz" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, \
        open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
check "$out/mni152_2009a.nii.gz" "$mni_sha"
echo "$out/colin27.nii.gz"
echo "$out/mni152_2009a.nii.gz"
