"""Our fastMRI kinds equal fastMRI's published algorithm draw for draw.

The reference is ``fastmri_masks.npz`` beside this file: masks drawn by fastMRI 0.3.0's own
``fastmri/data/subsample.py`` (its sha256 is stored in the file), written by
``scripts/make_golden_masks.py``; see that script for the cases and how to regenerate them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mrirecon.sampling import MaskSpec, fastmri_seed, make_mask

GOLDEN = Path(__file__).with_name("fastmri_masks.npz")
SUBSAMPLE_SHA256 = "fcf316fbda7a2c32a4bfaaf6a9ffe88b9a8bf9fa0ab6ba8428477a0bc1826812"
#: fastMRI's mask class -> the MaskKind that reproduces it (MaskKind's docs: the first four).
KINDS = {"RandomMaskFunc": "random", "EquiSpacedMaskFunc": "equispaced",
         "EquispacedMaskFractionFunc": "equispaced-fraction", "MagicMaskFunc": "magic"}
#: In the golden file but reproduced by no MaskKind (kept so a new kind can be checked).
UNMAPPED = {"MagicMaskFractionFunc"}


def load_golden() -> tuple[dict[str, str], list[dict], list[np.ndarray]]:
    with np.load(GOLDEN, allow_pickle=False) as f:
        meta = {k: str(f[k]) for k in ("fastmri_version", "subsample_sha256", "generator")}
        cases = json.loads(str(f["cases"]))
        bits = np.unpackbits(f["bits"]).astype(bool)
    ends = np.cumsum([c["num_cols"] for c in cases])
    assert ends[-1] <= bits.size < ends[-1] + 8  # packbits pads to whole bytes
    masks = np.split(bits[: ends[-1]], ends[:-1])
    return meta, cases, masks


META, CASES, MASKS = load_golden()
MAPPED = [i for i, c in enumerate(CASES) if c["function"] in KINDS]


def case_id(i: int) -> str:
    c = CASES[i]
    seed = c["seed_name"] or c["seed"]
    return f"{KINDS[c['function']]}-{c['num_cols']}-R{c['acceleration']}-seed{seed}"


def test_golden_file_is_fastmri_0_3_0_and_covers_every_kind() -> None:
    assert META["fastmri_version"] == "0.3.0"
    assert META["subsample_sha256"] == SUBSAMPLE_SHA256
    functions = {c["function"] for c in CASES}
    assert functions == set(KINDS) | UNMAPPED
    for function in KINDS:
        cases = [c for c in CASES if c["function"] == function]
        assert len({c["num_cols"] for c in cases}) >= 4 and len({c["acceleration"]
                                                                 for c in cases}) >= 3
        assert any(c["seed_name"] for c in cases)  # a fastMRI validation (tuple) seed


@pytest.mark.parametrize("index", MAPPED, ids=case_id)
def test_identical_to_fastmri(index: int) -> None:
    c = CASES[index]
    seed = tuple(c["seed"]) if isinstance(c["seed"], list) else c["seed"]
    ours = make_mask(MaskSpec(kind=KINDS[c["function"]], acceleration=c["acceleration"],
                              center_fraction=c["center_fraction"], shape=(640, c["num_cols"]),
                              seed=seed))
    assert ours.array.shape == (1, c["num_cols"])
    np.testing.assert_array_equal(ours.array[0], MASKS[index])
    assert ours.num_low_frequencies == c["num_low_frequencies"]


def test_fastmri_validation_seed_from_file_name() -> None:
    """fastMRI seeds a validation file's mask with ``tuple(map(ord, fname))``; so do we, from the
    base name of any path, and those seeds give fastMRI's masks."""
    named = [i for i in MAPPED if CASES[i]["seed_name"]]
    assert named
    for i in named:
        name = CASES[i]["seed_name"]
        seed = fastmri_seed(f"/data/knee/val/{name}")
        assert list(seed) == CASES[i]["seed"]
        c = CASES[i]
        ours = make_mask(MaskSpec(kind=KINDS[c["function"]], acceleration=c["acceleration"],
                                  center_fraction=c["center_fraction"],
                                  shape=(640, c["num_cols"]), seed=seed))
        np.testing.assert_array_equal(ours.array[0], MASKS[i])


def test_known_fastmri_statistics() -> None:
    """Equispaced at nominal 4x samples more than a quarter (about 3.2x), as fastMRI notes."""
    m = make_mask(MaskSpec(kind="equispaced", acceleration=4, center_fraction=0.08,
                           shape=(640, 368), seed=0))
    assert 3.0 < m.achieved_acceleration < 3.4
    f = make_mask(MaskSpec(kind="equispaced-fraction", acceleration=4, center_fraction=0.08,
                           shape=(640, 368), seed=0))
    assert abs(f.achieved_acceleration - 4) / 4 < 0.03
