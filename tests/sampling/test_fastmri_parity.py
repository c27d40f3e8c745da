"""Our fastMRI kinds equal fastMRI's published algorithm draw for draw.

The reference below re-states fastMRI's ``subsample.py`` procedure (v0.3): a
``np.random.RandomState`` seeded per call, ``choose_acceleration`` (one ``randint``), then the
pattern's own draws; centre block of ``round(N * cf)`` columns from ``(N - num_low + 1) // 2``.
"""

from __future__ import annotations

import numpy as np
import pytest

from mrirecon.sampling import MaskSpec, fastmri_seed, make_mask


def fastmri_reference(kind: str, num_cols: int, accel: int, cf: float, seed) -> np.ndarray:
    rng = np.random.RandomState()
    rng.seed(seed)
    choice = rng.randint(len([cf]))  # choose_acceleration with one (cf, R) pair
    assert choice == 0
    num_low = round(num_cols * cf)
    center = np.zeros(num_cols, dtype=np.float32)
    pad = (num_cols - num_low + 1) // 2
    center[pad : pad + num_low] = 1
    if kind == "random":
        prob = (num_cols / accel - num_low) / (num_cols - num_low)
        accel_mask = rng.uniform(size=num_cols) < prob
    elif kind == "equispaced":
        offset = rng.randint(0, high=round(accel))
        accel_mask = np.zeros(num_cols, dtype=np.float32)
        accel_mask[offset::accel] = 1
    elif kind == "equispaced-fraction":
        adjusted = (accel * (num_low - num_cols)) / (num_low * accel - num_cols)
        offset = rng.randint(0, high=round(adjusted))
        accel_mask = np.zeros(num_cols)
        samples = np.around(np.arange(offset, num_cols - 1, adjusted)).astype(np.uint)
        accel_mask[samples] = 1.0
    elif kind == "magic":
        offset = rng.randint(0, high=accel)
        if offset % 2 == 0:
            offset_pos, offset_neg = offset + 1, offset + 2
        else:
            offset_pos, offset_neg = offset - 1 + 3, offset - 1 + 0
        poslen = (num_cols + 1) // 2
        neglen = num_cols - (num_cols + 1) // 2
        pos = np.zeros(poslen, dtype=np.float32)
        neg = np.zeros(neglen, dtype=np.float32)
        pos[offset_pos::accel] = 1
        neg[offset_neg::accel] = 1
        accel_mask = np.fft.fftshift(np.concatenate((pos, np.flip(neg))))
    else:
        raise AssertionError(kind)
    return np.maximum(center, accel_mask.astype(np.float32)).astype(bool)


KINDS = ["random", "equispaced", "equispaced-fraction", "magic"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_cols", [368, 372, 320, 396, 33])
@pytest.mark.parametrize("accel,cf", [(4, 0.08), (8, 0.04), (2, 0.16)])
def test_identical_to_fastmri(kind: str, num_cols: int, accel: int, cf: float) -> None:
    for seed in [0, 1, 42, 123456, 2**32 - 1]:
        ours = make_mask(MaskSpec(kind=kind, acceleration=accel, center_fraction=cf,
                                  shape=(640, num_cols), seed=seed))
        expected = fastmri_reference(kind, num_cols, accel, cf, seed)
        np.testing.assert_array_equal(ours.array[0], expected, err_msg=f"seed {seed}")
        assert ours.num_low_frequencies == round(num_cols * cf)


@pytest.mark.parametrize("kind", KINDS)
def test_fastmri_validation_seed_from_file_name(kind: str) -> None:
    name = "file1000000.h5"
    seed = fastmri_seed(f"/data/knee/val/{name}")
    assert seed == tuple(map(ord, name))
    ours = make_mask(MaskSpec(kind=kind, acceleration=4, center_fraction=0.08,
                              shape=(640, 368), seed=seed))
    np.testing.assert_array_equal(ours.array[0], fastmri_reference(kind, 368, 4, 0.08, seed))


def test_known_fastmri_statistics() -> None:
    """Equispaced at nominal 4x samples more than a quarter (about 3.2x), as fastMRI notes."""
    m = make_mask(MaskSpec(kind="equispaced", acceleration=4, center_fraction=0.08,
                           shape=(640, 368), seed=0))
    assert 3.0 < m.achieved_acceleration < 3.4
    f = make_mask(MaskSpec(kind="equispaced-fraction", acceleration=4, center_fraction=0.08,
                           shape=(640, 368), seed=0))
    assert abs(f.achieved_acceleration - 4) / 4 < 0.03
