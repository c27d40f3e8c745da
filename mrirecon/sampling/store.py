"""Mask files: ``NAME.npz`` (array + spec) with a ``NAME.json`` sidecar and optional PNG.

The ``.npz`` holds ``mask`` (bool ``(ky, kx)``, ``(1, kx)`` for line masks) and ``summary`` (the
JSON of :meth:`Mask.summary`), so it is self-describing on its own; the sidecar repeats the
summary for people and shell tools (``jq``).
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np

from mrirecon import __version__
from mrirecon.errors import InputFileError, MriReconError, one_line
from mrirecon.fileutil import atomic_path, check_writable
from mrirecon.png import write_png
from mrirecon.sampling.spec import Mask, MaskSpec


def mask_outputs(path: str | Path, png: bool = False) -> list[Path]:
    """The files :func:`save_mask` writes for ``path``: npz, json sidecar, optional png."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    outs = [path, path.with_suffix(".json")]
    return [*outs, path.with_suffix(".png")] if png else outs


def save_mask(mask: Mask, path: str | Path, *, overwrite: bool = False,
              png: bool = False) -> list[Path]:
    """Write ``mask`` (and its sidecar, and a PNG if asked); all or nothing.

    Every output is checked before any is written; each is written to a temporary file and
    renamed. If a later write fails, the earlier ones of this call are removed again.
    """
    outs = mask_outputs(path, png)
    check_writable(outs, overwrite)
    summary = {**mask.summary(), "mrirecon_version": __version__}
    text = json.dumps(summary, indent=2) + "\n"
    done: list[Path] = []
    try:
        with atomic_path(outs[0], overwrite) as tmp:
            np.savez_compressed(tmp, mask=mask.array, summary=np.array(json.dumps(summary)))
        done.append(outs[0])
        with atomic_path(outs[1], overwrite) as tmp:
            tmp.write_text(text)
        done.append(outs[1])
        if png:
            with atomic_path(outs[2], overwrite) as tmp:
                write_png(tmp, np.where(mask.full, 255, 0).astype(np.uint8))
            done.append(outs[2])
    except BaseException:
        for p in done:
            p.unlink(missing_ok=True)
        raise
    return outs


#: The most entries a mask file may declare (a 2-D mask of 16384 x 16384 k-space samples).
MAX_MASK_ENTRIES = 2**28


def _check_declared_size(path: Path) -> None:
    """Refuse a mask file whose ``mask`` array declares an absurd size, before reading it."""
    try:
        with zipfile.ZipFile(path) as z, z.open("mask.npy") as f:
            fmt = np.lib.format
            read = (fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0)
                    else fmt.read_array_header_2_0)
            shape, _, dtype = read(f)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return  # np.load says what is wrong
    entries = math.prod(shape)
    if entries > MAX_MASK_ENTRIES:
        raise InputFileError(path, f"declares a mask of shape {shape}: it would need "
                             f"{entries * dtype.itemsize / 1e9:.3g} GB; a mask has one entry "
                             "per k-space sample")


def load_mask(path: str | Path) -> Mask:
    """Read a mask written by :func:`save_mask` (checks the array against its spec)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "mask file not found")
    _check_declared_size(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            array = np.asarray(f["mask"], dtype=bool)
            summary = json.loads(str(f["summary"]))
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise InputFileError(path, f"not a mrirecon mask file ({one_line(exc)})") from None
    keys = ("kind", "acceleration", "center_fraction", "shape", "seed")
    try:
        spec = MaskSpec.from_dict({k: summary[k] for k in keys})
        return Mask(array, spec, int(summary["num_low_frequencies"]))
    except (KeyError, MriReconError) as exc:
        raise InputFileError(path, f"inconsistent mask file ({exc})") from None
