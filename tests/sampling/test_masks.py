"""Mask kinds beyond fastMRI's, seeding, validation, files and presets."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mrirecon.errors import InputFileError, InvalidParameterError, OutputError
from mrirecon.sampling import (
    MaskKind,
    MaskSpec,
    list_presets,
    load_mask,
    load_preset,
    make_mask,
    save_mask,
    seed_from_name,
)


@pytest.mark.parametrize("kind,tol", [("gaussian", 0.01), ("random-2d", 0.01),
                                      ("poisson", 0.02)])
@pytest.mark.parametrize("accel", [4, 8])
def test_achieved_acceleration(kind: str, tol: float, accel: int) -> None:
    shape = (640, 368) if kind == "gaussian" else (160, 184)
    for seed in (0, 7):
        m = make_mask(MaskSpec(kind=kind, acceleration=accel, shape=shape, seed=seed))
        assert abs(m.achieved_acceleration - accel) / accel <= tol


def test_variable_density_is_denser_in_the_centre() -> None:
    for kind, shape in (("gaussian", (1, 368)), ("poisson", (128, 128))):
        full = make_mask(MaskSpec(kind=kind, acceleration=6, shape=shape, seed=3)).full
        cols = full.mean(axis=0)
        n = shape[1]
        inner = cols[n // 2 - n // 8 : n // 2 + n // 8].mean()
        outer = np.r_[cols[: n // 8], cols[-n // 8 :]].mean()
        assert inner > 2 * outer


def test_centre_is_fully_sampled() -> None:
    for kind in MaskKind:
        m = make_mask(MaskSpec(kind=kind, acceleration=4, shape=(96, 100), seed=1))
        cx, half = 50, m.num_low_frequencies // 2
        assert m.full[48, cx - half : cx + half].all(), kind


@pytest.mark.parametrize("kind", [k.value for k in MaskKind])
def test_deterministic_and_seed_dependent(kind: str) -> None:
    def draw(seed):
        return make_mask(MaskSpec(kind=kind, acceleration=4, shape=(64, 96), seed=seed)).array

    np.testing.assert_array_equal(draw(5), draw(5))
    if kind not in ("equispaced", "magic"):  # only 4 offsets: two seeds may share one
        assert not np.array_equal(draw(5), draw(6))


def test_global_random_state_untouched() -> None:
    np.random.seed(1234)  # noqa: NPY002 - the global state is what this test watches
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    for kind in MaskKind:
        make_mask(MaskSpec(kind=kind, acceleration=4, shape=(64, 96), seed=9))
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_file_name_seed_is_stable_across_processes() -> None:
    code = ("from mrirecon.sampling import *; import sys; "
            "m = make_mask(MaskSpec(kind='random', acceleration=4, shape=(1, 368), "
            "seed=seed_from_name('/data/file1001.h5'))); "
            "sys.stdout.write(''.join('1' if v else '0' for v in m.array[0]))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": str(h)}).stdout for h in (1, 2)]
    assert runs[0] == runs[1] and len(runs[0]) == 368
    assert seed_from_name("a/file1001.h5") == seed_from_name("b/file1001.h5")
    assert seed_from_name("file1001.h5") != seed_from_name("file1002.h5")
    assert seed_from_name("file1001.h5", 1) != seed_from_name("file1001.h5", 0)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"acceleration": 1}, "acceleration must be a number > 1, got 1"),
        ({"acceleration": "fast"}, "acceleration must be a number, got 'fast'"),
        ({"acceleration": float("nan")}, "acceleration must be a finite number"),
        ({"center_fraction": 1.5}, r"centre fraction must be in \(0, 1\), got 1.5"),
        ({"center_fraction": 0.001}, "centre fraction 0.001 gives 0 of 368 columns"),
        ({"shape": (0, 368)}, "shape must be two positive integers"),
        ({"shape": (640,)}, "shape must be two positive integers"),
        ({"acceleration": 500, "center_fraction": 0.01},
         "acceleration 500 cannot be reached on 368 columns"),
        ({"acceleration": 8, "center_fraction": 0.3}, "the 110 centre columns alone give"),
        ({"kind": "equispaced", "acceleration": 4.5}, "integer acceleration, got 4.5"),
        ({"kind": "spiral"}, "unknown mask kind 'spiral'; expected one of random, "),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"kind": "poisson", "center_fraction": 0.6}, "centre box alone gives"),
    ],
)
def test_bad_specs(changes: dict, message: str) -> None:
    spec = {"kind": "random", "acceleration": 4, "shape": (640, 368), **changes}
    with pytest.raises(InvalidParameterError, match=message):
        make_mask(MaskSpec(**spec))


def test_save_and_load_round_trip(tmp_path) -> None:
    m = make_mask(MaskSpec(kind="poisson", acceleration=4, shape=(64, 80), seed=2))
    paths = save_mask(m, tmp_path / "sub" / "p4", png=True)
    assert [p.name for p in paths] == ["p4.npz", "p4.json", "p4.png"]
    back = load_mask(paths[0])
    np.testing.assert_array_equal(back.array, m.array)
    assert back.spec == m.spec
    sidecar = json.loads(paths[1].read_text())
    assert sidecar["achieved_acceleration"] == pytest.approx(m.achieved_acceleration, rel=1e-4)
    assert sidecar["sampled_points"] == int(m.array.sum())
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_refuses_to_overwrite_and_leaves_files_untouched(tmp_path) -> None:
    m = make_mask(MaskSpec(kind="random", acceleration=4, shape=(1, 64)))
    (tmp_path / "m.json").write_text("keep me")
    with pytest.raises(OutputError, match="m.json: output exists; pass --overwrite"):
        save_mask(m, tmp_path / "m.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]
    assert (tmp_path / "m.json").read_text() == "keep me"
    save_mask(m, tmp_path / "m.npz", overwrite=True)
    assert json.loads((tmp_path / "m.json").read_text())["kind"] == "random"


def test_load_mask_rejects_other_files(tmp_path) -> None:
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputFileError, match="x.npz: not a mrirecon mask file"):
        load_mask(bad)
    with pytest.raises(InputFileError, match="missing.npz: mask file not found"):
        load_mask(tmp_path / "missing.npz")


def test_presets() -> None:
    presets = list_presets()
    for name in ("knee-4x", "knee-8x", "brain-4x", "brain-8x"):
        assert name in presets
    spec, description = load_preset("knee-4x")
    assert (spec.kind, spec.acceleration, spec.center_fraction) == (MaskKind.RANDOM, 4, 0.08)
    assert "knee" in description
    brain, _ = load_preset("brain-8x", shape=(640, 396))
    assert brain.kind is MaskKind.EQUISPACED and brain.shape == (640, 396)
    with pytest.raises(InvalidParameterError, match="unknown mask preset 'liver'"):
        load_preset("liver")


def test_centre_alone_reaching_the_acceleration_is_allowed() -> None:
    m = make_mask(MaskSpec(kind="random", acceleration=2, shape=(1, 16), center_fraction=0.5))
    assert m.achieved_acceleration == 2 and m.sampled_lines == 8
    with pytest.raises(InvalidParameterError, match="the 8 centre columns alone give 2x"):
        make_mask(MaskSpec(kind="equispaced-fraction", acceleration=2, shape=(1, 16),
                           center_fraction=0.5))
