"""DICOM -> Volume -> NIfTI gives the array and affine nibabel's own DICOM reader gives."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from mrirecon.data import LPS_TO_RAS
from mrirecon.io import load, save


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_bigendian.dcm"])
def test_dicom_to_nifti_matches_nibabel(tmp_path, name: str) -> None:
    path = get_testdata_file(name, download=False)
    with warnings.catch_warnings():  # nibabel calls its DICOM readers experimental
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import dicomwrappers
    wrapper = dicomwrappers.wrapper_from_file(path)
    volume = load(path)
    [image, sidecar] = save(volume, tmp_path / "mr.nii.gz")
    img = nib.load(image)
    # nibabel's wrapper indexes (row, col) and its affine is in DICOM's LPS; our NIfTI
    # indexes (col, row, slice) in RAS+. Same pixels, same world positions:
    wrapped = np.asarray(wrapper.get_data(), dtype=np.float32)
    np.testing.assert_allclose(img.get_fdata()[..., 0], wrapped.T, rtol=1e-6)
    ras_from_wrapper = LPS_TO_RAS @ wrapper.affine
    for row, col in [(0, 0), (5, 40), (63, 63)]:
        np.testing.assert_allclose(img.affine @ [col, row, 0, 1],
                                   ras_from_wrapper @ [row, col, 0, 1], atol=1e-4)
    np.testing.assert_allclose(img.get_qform(), img.get_sform(), atol=1e-6)
    assert sidecar.name == "mr.json"


def test_dicom_to_nifti_world_positions(tmp_path) -> None:
    """Every voxel lands where DICOM says: IPP + col * dc * row_cos + row * dr * col_cos (LPS)."""
    import pydicom

    path = get_testdata_file("MR_small.dcm", download=False)
    ds = pydicom.dcmread(path)
    [image, _] = save(load(path), tmp_path / "mr.nii")
    affine = nib.load(image).affine
    ipp = np.array(ds.ImagePositionPatient, float)
    row_cos, col_cos = np.array(ds.ImageOrientationPatient[:3]), np.array(
        ds.ImageOrientationPatient[3:])
    dr, dc = (float(v) for v in ds.PixelSpacing)
    for row, col in [(0, 0), (10, 3), (63, 63)]:
        lps = ipp + col * dc * row_cos + row * dr * col_cos
        ras = affine @ [col, row, 0, 1]  # NIfTI (i, j, k) = (col, row, slice)
        np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-4)
