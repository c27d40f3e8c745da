"""``scripts/prepare_default_data.py``: resliced training stacks keep their world geometry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "prepare_default_data.py"


@pytest.fixture(scope="module")
def prepare():
    spec = importlib.util.spec_from_file_location("prepare_default_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("axes", [(0, 1, 2), (0, 2, 1), (1, 2, 0)])
def test_every_voxel_of_a_stack_is_the_source_voxel_at_the_same_world_point(prepare, tmp_path,
                                                                            axes) -> None:
    rng = np.random.default_rng(0)
    data = rng.random((9, 11, 13)).astype(np.float32)
    affine = np.array([[-1.0, 0, 0, 90], [0, 1.2, 0, -126], [0, 0, 0.9, -72], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "src.nii.gz")
    slices = range(2, 9, 3)
    prepare.take(tmp_path / "src.nii.gz", tmp_path / "out.nii.gz", axes, slices)
    out = nib.load(tmp_path / "out.nii.gz")
    stack = out.get_fdata()
    assert stack.shape[2] == len(slices)
    ijk = np.stack(np.meshgrid(*map(np.arange, stack.shape), indexing="ij"), -1).reshape(-1, 3)
    world = nib.affines.apply_affine(out.affine, ijk)
    source = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), world)).astype(int)
    np.testing.assert_array_equal(stack[tuple(ijk.T)], data[tuple(source.T)])
