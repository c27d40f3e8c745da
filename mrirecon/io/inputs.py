"""The input paths of a command: files, folders, or ``-`` for a list of paths on stdin.

``mrirecon reconstruct``, ``evaluate``, ``info`` and ``simulate`` call :func:`expand_inputs`
on their positional paths, so a folder means the same thing to all of them:

- a folder of ``.h5``/``.hdf5`` files (fastMRI or raw ISMRMRD) means those files (directly in
  it), sorted;
- a folder of BART ``.cfl``/``.hdr`` pairs means their ``.cfl`` files (directly in it), sorted;
- a folder of NIfTI files (searched recursively) means those files, sorted;
- a folder of DICOM files (searched recursively) is one DICOM series input, as the DICOM
  reader resolves it;
- a folder holding more than one of these kinds, or none of them, is a usage error naming what
  it holds (``data/: holds 3 .h5 files and 2 DICOM files; give one kind``).

``-`` as the only path reads the paths from stdin, one per line (blank lines ignored), so that
``find ... | mrirecon reconstruct - -o out`` works; the paths read are expanded the same way.

:func:`output_subfolders` then places each input's outputs under ``-o``: directly in it, or,
when two inputs share an output stem (``a/scan.h5 b/scan.h5``, a BIDS tree of ``T1w.nii.gz``),
in the input's folder relative to the inputs' common folder, mirrored for every input.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

from mrirecon.errors import InvalidParameterError

__all__ = ["STDIN", "expand_inputs", "folder_contents", "output_subfolders"]

#: The input name that means "read the input paths from stdin".
STDIN = "-"
_NIFTI_SUFFIXES = (".nii", ".nii.gz")


def expand_inputs(paths: Iterable[str | Path], *, stdin: TextIO | None = None) -> list[Path]:
    """Files, folders or ``-`` -> the inputs they mean (see the module docstring).

    Parameters
    ----------
    paths
        The command's positional paths. Files (existing or not: their reader reports a missing
        one) are kept as they are, in order.
    stdin
        Where ``-`` reads its paths from (default :data:`sys.stdin`).

    Returns
    -------
    list of Path
        The inputs, in the order given, each folder replaced by what it holds.

    Raises
    ------
    InvalidParameterError
        ``-`` together with other paths, nothing on stdin, or a folder of mixed or no usable
        files (one line listing what it holds).
    """
    given = [Path(p) for p in paths]
    if any(str(p) == STDIN for p in given):
        if len(given) > 1:
            raise InvalidParameterError(f"'{STDIN}' reads the input paths from stdin; give it "
                                        "as the only input")
        lines = (stdin or sys.stdin).read().splitlines()
        given = [Path(line.strip()) for line in lines if line.strip()]
        if not given:
            raise InvalidParameterError(f"'{STDIN}': no input paths on stdin")
    out: list[Path] = []
    for path in given:
        out.extend(_folder_inputs(path) if path.is_dir() else [path])
    return out


def output_subfolders(paths: Sequence[Path]) -> dict[Path, Path]:
    """Where under the output folder each input's outputs go, relative to it.

    ``Path(".")`` for every input when their output stems
    (:func:`~mrirecon.io.output_stem`, compared ignoring case) are distinct. Otherwise every
    input's folder relative to the common folder of all inputs, so that
    ``a/scan.h5 b/scan.h5 -o out`` writes ``out/a/scan.h5`` and ``out/b/scan.h5``.

    Raises
    ------
    InvalidParameterError
        An input given twice, or two inputs that would still share an output (same folder and
        stem, e.g. ``scan.h5`` and ``scan.nii.gz``).
    """
    from mrirecon.io import output_stem

    here = Path(".")
    resolved = [Path(os.path.abspath(p)) for p in paths]
    first: dict[Path, Path] = {}
    for path, full in zip(paths, resolved, strict=True):
        if full in first:
            raise InvalidParameterError(f"{path}: given more than once as an input")
        first[full] = path
    stems = [output_stem(full).lower() for full in resolved]
    if len(set(stems)) == len(stems):
        return {path: here for path in paths}
    common = Path(os.path.commonpath([full.parent for full in resolved]))
    subfolders = {path: full.parent.relative_to(common)
                  for path, full in zip(paths, resolved, strict=True)}
    owner: dict[tuple[Path, str], Path] = {}
    for path, stem in zip(paths, stems, strict=True):
        key = (subfolders[path], stem)
        if key in owner:
            raise InvalidParameterError(
                f"{owner[key]} and {path} would write the same outputs "
                f"({stem!r} in {subfolders[path]}/); rename one or give them in separate runs")
        owner[key] = path
    return subfolders


def folder_contents(folder: str | Path) -> dict[str, list[Path]]:
    """What a folder holds, by kind: ``"hdf5"``, ``"cfl"``, ``"nifti"``, ``"dicom"``, ``"other"``.

    HDF5 files are those directly in ``folder`` (:func:`~mrirecon.io.predictions.hdf5_files`),
    and so are BART pairs (listed by their ``.cfl``; the ``.hdr`` and the JSON sidecar beside it
    belong to the pair); NIfTI and DICOM files (``DICM`` at byte 128, what the DICOM reader
    accepts) are searched recursively; hidden files are left out. Each list is sorted.
    """
    from mrirecon.io.predictions import hdf5_files

    folder = Path(folder)
    pairs = sorted(p for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() == ".cfl")
    found: dict[str, list[Path]] = {"hdf5": hdf5_files(folder), "cfl": pairs, "nifti": [],
                                    "dicom": [], "other": []}
    claimed = set(found["hdf5"]) | {p.with_suffix(s) for p in pairs
                                    for s in (".cfl", ".hdr", ".json")}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or path in claimed:
            continue
        if path.name.lower().endswith(_NIFTI_SUFFIXES):
            found["nifti"].append(path)
        elif _is_dicom(path):
            found["dicom"].append(path)
        else:
            found["other"].append(path)
    return found


def _folder_inputs(folder: Path) -> list[Path]:
    """The inputs a folder means: its HDF5, .cfl or NIfTI files, or itself as a DICOM series."""
    found = folder_contents(folder)
    kinds = [kind for kind in ("hdf5", "cfl", "nifti", "dicom") if found[kind]]
    if len(kinds) == 1:
        kind = kinds[0]
        return [folder] if kind == "dicom" else found[kind]
    listing = [_count(len(found[kind]), label) for kind, label in _LABELS if found[kind]]
    if not kinds:
        others = f" ({_count(len(found['other']), 'other file')})" if found["other"] else ""
        raise InvalidParameterError(f"{folder}/: holds no .h5, .cfl, NIfTI or DICOM files"
                                    f"{others}")
    raise InvalidParameterError(f"{folder}/: holds {_join(listing)}; give one kind")


_LABELS = (("hdf5", ".h5 file"), ("cfl", ".cfl file"), ("nifti", "NIfTI file"),
           ("dicom", "DICOM file"))


def _count(n: int, label: str) -> str:
    return f"{n} {label}{'' if n == 1 else 's'}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _is_dicom(path: Path) -> bool:
    """``DICM`` at byte 128 (the DICOM preamble), or a ``.dcm``/``.ima`` name."""
    if path.name.lower().endswith((".dcm", ".ima")):
        return True
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False
