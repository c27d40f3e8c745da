"""``scripts/_colin27.py``, the one Colin27 locator and slicer of the scripts: stacks keep their
world geometry; the file is found in the sources folder or as the pinned system copy."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "_colin27.py"


@pytest.fixture(scope="module")
def colin27():
    spec = importlib.util.spec_from_file_location("_colin27", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("axes", [(0, 1, 2), (0, 2, 1), (1, 2, 0)])
def test_every_voxel_of_a_stack_is_the_source_voxel_at_the_same_world_point(colin27, tmp_path,
                                                                            axes) -> None:
    rng = np.random.default_rng(0)
    data = rng.random((9, 11, 13)).astype(np.float32)
    affine = np.array([[-1.0, 0, 0, 90], [0, 1.2, 0, -126], [0, 0, 0.9, -72], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "src.nii.gz")
    slices = range(2, 9, 3)
    assert colin27.take(tmp_path / "src.nii.gz", tmp_path / "out.nii.gz", axes,
                        slices) == tmp_path / "out.nii.gz"
    out = nib.load(tmp_path / "out.nii.gz")
    stack = out.get_fdata()
    assert stack.shape[2] == len(slices)
    ijk = np.stack(np.meshgrid(*map(np.arange, stack.shape), indexing="ij"), -1).reshape(-1, 3)
    world = nib.affines.apply_affine(out.affine, ijk)
    source = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), world)).astype(int)
    np.testing.assert_array_equal(stack[tuple(ijk.T)], data[tuple(source.T)])


def test_stack_takes_the_first_volume_and_needs_even_spacing(colin27, tmp_path) -> None:
    data = np.arange(4 * 5 * 6 * 2, dtype=np.float32).reshape(4, 5, 6, 2)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "4d.nii.gz")
    got, affine = colin27.stack(tmp_path / "4d.nii.gz", (0, 1, 2), [1, 3, 5])
    np.testing.assert_array_equal(got, data[:, :, [1, 3, 5], 0])
    np.testing.assert_array_equal(affine @ [0, 0, 2, 1], [0, 0, 5, 1])
    with pytest.raises(ValueError, match=r"evenly spaced, got \[1, 2, 4\]"):
        colin27.stack(tmp_path / "4d.nii.gz", (0, 1, 2), [1, 2, 4])


def test_locate_prefers_the_sources_folder_then_the_checked_system_copy(colin27, tmp_path,
                                                                         monkeypatch) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    system = tmp_path / "ch2.nii.gz"
    monkeypatch.setattr(colin27, "SYSTEM_COPY", system)
    with pytest.raises(FileNotFoundError, match="fetch_training_data.sh or install"):
        colin27.locate(sources)
    system.write_bytes(b"pinned")
    monkeypatch.setattr(colin27, "SHA256", hashlib.sha256(b"pinned").hexdigest())
    assert colin27.locate(sources) == system == colin27.locate()
    (sources / "colin27.nii.gz").write_bytes(b"fetched")
    assert colin27.locate(sources) == sources / "colin27.nii.gz"
    system.write_bytes(b"altered")
    with pytest.raises(ValueError, match="does not match the pinned"):
        colin27.locate()
