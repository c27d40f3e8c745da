"""Golden masks from fastMRI's own ``fastmri/data/subsample.py``, for the mask parity test.

    pip download fastmri==0.3.0 --no-deps -d /tmp/fastmri
    python scripts/make_golden_masks.py /tmp/fastmri/fastmri-0.3.0-py3-none-any.whl
        [-o tests/sampling/fastmri_masks.npz]

SOURCE is the fastMRI wheel, its sdist (``.tar.gz``) or a ``subsample.py`` itself (then
``--version`` says which release it is). Only ``fastmri/data/subsample.py`` is read; it is
imported on its own, from a temporary copy, under the name ``fastmri_subsample``, not as part
of the ``fastmri`` package, so nothing else of fastMRI (nor its dependencies) is installed or
imported. In 0.3.0 that file imports only ``contextlib``, ``typing``, ``numpy`` and ``torch``,
so nothing needs stubbing; a release whose ``subsample.py`` imports more fails here with an
``ImportError`` rather than being stubbed silently.

Every mask class of the file that exists (:data:`FUNCTIONS`) is called as fastMRI's data
transforms call it, ``mask_func(shape, seed=seed)`` with one ``(center_fraction,
acceleration)`` pair and ``shape = (640, num_cols, 2)``, for every combination of
:data:`NUM_COLS`, :data:`SETTINGS` and :data:`SEEDS`. The npz (``allow_pickle=False``) holds

* ``bits``: every mask, in case order, concatenated and ``np.packbits``-ed (one bit per column);
* ``cases``: a JSON list, per mask ``function``, ``num_cols``, ``acceleration``,
  ``center_fraction``, ``seed`` (an int, or a list for a tuple seed), ``seed_name`` (the file
  name a tuple seed is fastMRI's validation seed of, else null) and ``num_low_frequencies``
  (what fastMRI returned);
* ``fastmri_version``, ``subsample_sha256`` (of the file read), ``source`` and
  ``source_sha256`` (the file given), ``generator`` (this script).

Writes nothing but the npz; prints its path and size.
"""

from __future__ import annotations

import argparse
import email.parser
import hashlib
import importlib.util
import io
import json
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

MEMBER = "fastmri/data/subsample.py"
#: fastMRI's mask classes, in the order they are written (those the file lacks are skipped).
FUNCTIONS = ("RandomMaskFunc", "EquiSpacedMaskFunc", "EquispacedMaskFractionFunc",
             "MagicMaskFunc", "MagicMaskFractionFunc")
#: Phase-encode column counts: fastMRI knee (368, 372), brain (320) and an odd small one.
NUM_COLS = (368, 372, 320, 33)
#: (acceleration, centre fraction): fastMRI's 4x and 8x pairs and a 2x one.
SETTINGS = ((4, 0.08), (8, 0.04), (2, 0.16))
#: Integer seeds (0 and 2**32 - 1 are RandomState's extremes) and fastMRI's validation seed of
#: one file name, ``tuple(map(ord, name))``.
SEED_NAME = "file1000000.h5"
SEEDS: tuple[Any, ...] = (0, 42, 2**32 - 1, tuple(map(ord, SEED_NAME)))
ROWS = 640


def read_source(source: Path, version: str | None) -> tuple[bytes, str]:
    """``(subsample.py bytes, fastMRI version)`` from a wheel, an sdist or the file itself."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            text = wheel.read(MEMBER)
            meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            found = email.parser.BytesParser().parsebytes(wheel.read(meta))["Version"]
    elif source.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(source) as sdist:
            names = sdist.getnames()
            member = next(n for n in names if n.endswith("/" + MEMBER))
            text = sdist.extractfile(member).read()
            info = next(n for n in names if n.count("/") == 1 and n.endswith("/PKG-INFO"))
            found = email.parser.BytesParser().parsebytes(sdist.extractfile(info).read())[
                "Version"]
    elif source.suffix == ".py":
        if version is None:
            raise SystemExit("error: a bare subsample.py needs --version")
        return source.read_bytes(), version
    else:
        raise SystemExit(f"error: {source}: expected a .whl, .tar.gz or subsample.py")
    if version is not None and version != found:
        raise SystemExit(f"error: {source} is fastMRI {found}, not --version {version}")
    return text, found


def import_subsample(text: bytes) -> Any:
    """``subsample.py`` imported standalone (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fastmri_subsample.py"
        path.write_bytes(text)
        spec = importlib.util.spec_from_file_location("fastmri_subsample", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def golden(module: Any) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Every case and the concatenated masks (bool)."""
    cases, masks = [], []
    for name in FUNCTIONS:
        if not hasattr(module, name):
            print(f"{name}: not in this subsample.py; skipped", file=sys.stderr)
            continue
        for num_cols in NUM_COLS:
            for accel, cf in SETTINGS:
                func = getattr(module, name)([cf], [accel])
                for seed in SEEDS:
                    mask, num_low = func((ROWS, num_cols, 2), seed=seed)
                    flat = mask.numpy().reshape(-1)
                    assert flat.shape == (num_cols,) and set(np.unique(flat)) <= {0.0, 1.0}
                    masks.append(flat.astype(bool))
                    cases.append({"function": name, "num_cols": num_cols,
                                  "acceleration": accel, "center_fraction": cf,
                                  "seed": list(seed) if isinstance(seed, tuple) else seed,
                                  "seed_name": SEED_NAME if isinstance(seed, tuple) else None,
                                  "num_low_frequencies": int(num_low)})
    return cases, np.concatenate(masks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, metavar="SOURCE",
                        help="fastmri wheel, sdist or subsample.py")
    parser.add_argument("-o", "--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "tests" / "sampling"
                        / "fastmri_masks.npz")
    parser.add_argument("--version", help="fastMRI version of a bare subsample.py")
    args = parser.parse_args()
    text, version = read_source(args.source, args.version)
    cases, bits = golden(import_subsample(text))
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, bits=np.packbits(bits), cases=np.array(json.dumps(cases)),
        fastmri_version=np.array(version),
        subsample_sha256=np.array(hashlib.sha256(text).hexdigest()),
        source=np.array(args.source.name),
        source_sha256=np.array(hashlib.sha256(args.source.read_bytes()).hexdigest()),
        generator=np.array("scripts/make_golden_masks.py"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buffer.getvalue())
    print(f"{args.out}: {len(cases)} masks, {len(buffer.getvalue())} bytes")


if __name__ == "__main__":
    main()
