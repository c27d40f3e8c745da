"""DICOM <-> affine helpers and the data types' invariants."""

from __future__ import annotations

import numpy as np
import pytest

from mrirecon.data import (
    KSpace,
    Volume,
    affine_from_dicom,
    dicom_from_affine,
    orientation_codes,
    voxel_sizes,
)


def oblique_orientation() -> list[float]:
    a = np.deg2rad(20)
    row = np.array([np.cos(a), np.sin(a), 0.0])
    col = np.array([0.0, np.cos(0.3), -np.sin(0.3)])
    col -= row * row.dot(col)
    col /= np.linalg.norm(col)
    return [*row, *col]


def test_axial_dicom_affine_matches_hand_computation() -> None:
    # axial: rows go posterior (+y in LPS), columns go left (+x in LPS)
    aff = affine_from_dicom([-100.0, -120.0, 30.0], [1, 0, 0, 0, 1, 0], [0.5, 0.8],
                            slice_step=[0, 0, 3.0])
    index = np.array([2, 10, 20, 1])  # slice 2, row 10, col 20
    lps = np.array([-100 + 20 * 0.8, -120 + 10 * 0.5, 30 + 2 * 3.0])
    np.testing.assert_allclose(aff @ index, [-lps[0], -lps[1], lps[2], 1])
    assert voxel_sizes(aff) == pytest.approx((3.0, 0.5, 0.8))
    assert orientation_codes(aff) == "SPL"


def test_dicom_round_trip_oblique() -> None:
    iop = oblique_orientation()
    normal = np.cross(iop[:3], iop[3:])
    ipp = [12.5, -40.25, 80.0]
    aff = affine_from_dicom(ipp, iop, [0.7, 0.9], slice_step=normal * 2.5)
    positions, orientation, spacing, slice_spacing = dicom_from_affine(aff, 4)
    np.testing.assert_allclose(positions[0], ipp, atol=1e-9)
    np.testing.assert_allclose(positions[3], np.asarray(ipp) + 3 * 2.5 * normal, atol=1e-9)
    np.testing.assert_allclose(orientation, iop, atol=1e-12)
    assert spacing == pytest.approx([0.7, 0.9]) and slice_spacing == pytest.approx(2.5)


def test_volume_with_data_keeps_geometry_and_adds_provenance() -> None:
    aff = affine_from_dicom([0, 0, 0], [1, 0, 0, 0, 1, 0], [1, 1])
    vol = Volume(np.zeros((2, 4, 5), np.float32), aff, {"format": "dicom"}, {"a": 1}, "x.dcm")
    new = vol.with_data(np.ones((2, 4, 5), np.float32), method="zero-filled")
    np.testing.assert_array_equal(new.affine, aff)
    assert new.header == {"format": "dicom"} and new.source == "x.dcm"
    assert new.provenance == {"a": 1, "method": "zero-filled"}
    with pytest.raises(ValueError, match="new data has 3 slices, volume has 2"):
        vol.with_data(np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match=r"must be \(slices, rows, cols\)"):
        Volume(np.zeros((4, 5)))


def test_kspace_checks_layout_and_mask() -> None:
    data = np.zeros((3, 2, 8, 10), np.complex64)
    ks = KSpace(data, mask=np.ones(10, bool))
    assert ks.mask.shape == (1, 10) and ks.n_coils == 2 and ks.is_multicoil
    assert ks.slice(1).shape == (2, 8, 10) and ks.slices(0, 2).shape == (2, 2, 8, 10)
    with pytest.raises(ValueError, match="mask has shape .* but k-space has 8 rows and 10 columns"):
        KSpace(data, mask=np.ones(12, bool))
    with pytest.raises(ValueError, match=r"\(slices, coils, ky, kx\)"):
        KSpace(np.zeros((8, 10), np.complex64))
