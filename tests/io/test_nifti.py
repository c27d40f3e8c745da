"""NIfTI <-> Volume on real files: nibabel's example4d.nii.gz and files made here."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mrirecon import __version__
from mrirecon.data import Volume, voxel_sizes
from mrirecon.errors import InputFileError, InvalidParameterError, OutputError
from mrirecon.io.nifti import read_nifti, sidecar_path, write_nifti

EXAMPLE4D = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"


@pytest.fixture
def example4d() -> Path:
    if not EXAMPLE4D.is_file():
        pytest.skip("nibabel's tests/data/example4d.nii.gz is not installed")
    return EXAMPLE4D


def oblique_affine() -> np.ndarray:
    """A rotated (about all three axes), anisotropic, translated NIfTI affine."""
    def rot(axis: int, deg: float) -> np.ndarray:
        c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
        i, j = [a for a in range(3) if a != axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        return r

    affine = np.eye(4)
    affine[:3, :3] = rot(0, 17.0) @ rot(1, -23.0) @ rot(2, 31.0) @ np.diag([0.8, 1.1, 3.0])
    affine[:3, 3] = [-91.5, 12.25, 40.0]
    return affine


def ramp(shape: tuple[int, int, int]) -> np.ndarray:
    """Voxel (i, j, k) holds 100 i + 10 j + k: every axis swap or flip changes the array."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return (100 * i + 10 * j + k).astype(np.float32)


def make_nifti(path: Path, data: np.ndarray, affine: np.ndarray, **header: object) -> Path:
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    for key, value in header.items():
        img.header[key] = value
    nib.save(img, path)
    return path


def assert_written_nifti(path: Path, nib_data: np.ndarray, nib_affine: np.ndarray) -> None:
    """``path`` holds float32 ``nib_data`` with ``nib_affine`` as both qform and sform."""
    img = nib.load(path)
    assert img.get_data_dtype() == np.float32
    np.testing.assert_array_equal(img.get_fdata(dtype=np.float32), nib_data)
    qform, qcode = img.header.get_qform(coded=True)
    sform, scode = img.header.get_sform(coded=True)
    assert qcode > 0 and scode > 0
    np.testing.assert_allclose(sform, nib_affine, atol=1e-4)
    np.testing.assert_allclose(qform, nib_affine, atol=1e-4)
    np.testing.assert_allclose(img.affine, nib_affine, atol=1e-4)


# --- reading ------------------------------------------------------------------------------


def test_read_example4d_axes_affine_and_header(example4d: Path) -> None:
    img = nib.load(example4d)
    for index in (0, 1):
        vol = read_nifti(example4d, volume_index=index)
        assert vol.shape == (24, 96, 128)  # (slices, rows, cols) = (k, j, i)
        assert vol.data.dtype == np.float32
        np.testing.assert_array_equal(
            vol.data, img.get_fdata(dtype=np.float32)[..., index].transpose(2, 1, 0)
        )
    np.testing.assert_array_equal(vol.affine, img.affine[:, [2, 1, 0, 3]])
    info = vol.header["nifti"]
    assert vol.header["format"] == "nifti"
    assert info["n_volumes"] == 2 and info["volume_index"] == 1
    assert info["dim"][:5] == [4, 128, 96, 24, 2]
    assert info["xyzt_units"] == ["mm", "sec"]
    assert info["qform_code"] == 1 and info["sform_code"] == 1
    assert info["descrip"].startswith("FSL3.3")
    assert info["intent"]["code"] == "none"
    json.dumps(vol.header)  # JSON-friendly
    assert vol.source == str(example4d)
    assert np.array_equal(read_nifti(example4d).data, read_nifti(example4d, volume_index=0).data)


def test_volume_affine_addresses_the_same_voxel_as_nibabel(tmp_path: Path) -> None:
    affine = oblique_affine()
    path = make_nifti(tmp_path / "ramp.nii", ramp((5, 6, 7)), affine)
    vol = read_nifti(path)
    assert vol.shape == (7, 6, 5)
    for i, j, k in [(0, 0, 0), (4, 1, 2), (3, 5, 6)]:
        assert vol.data[k, j, i] == 100 * i + 10 * j + k
        np.testing.assert_allclose(vol.affine @ [k, j, i, 1], affine @ [i, j, k, 1], atol=1e-4)


def test_scaling_is_applied(tmp_path: Path) -> None:
    raw = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(0.5, -3.0)
    nib.save(img, tmp_path / "scaled.nii")
    vol = read_nifti(tmp_path / "scaled.nii")
    assert vol.data.dtype == np.float32
    np.testing.assert_allclose(vol.data, (raw * 0.5 - 3.0).transpose(2, 1, 0))


def test_affine_in_metres_is_converted_to_mm(tmp_path: Path) -> None:
    affine = np.diag([0.001, 0.002, 0.003, 1.0])
    affine[:3, 3] = [0.1, 0.2, 0.3]
    img = nib.Nifti1Image(ramp((2, 3, 4)), affine)
    img.header.set_xyzt_units("meter")
    nib.save(img, tmp_path / "metres.nii")
    vol = read_nifti(tmp_path / "metres.nii")
    np.testing.assert_allclose(voxel_sizes(vol.affine), [3.0, 2.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(vol.affine[:3, 3], [100.0, 200.0, 300.0], atol=1e-3)


# --- round trips --------------------------------------------------------------------------


def test_example4d_round_trip(example4d: Path, tmp_path: Path) -> None:
    src = nib.load(example4d)
    vol = read_nifti(example4d, volume_index=1)
    vol = vol.with_data(vol.data, method="zero_filled", seed=7)
    out = write_nifti(vol, tmp_path / "recon.nii.gz")
    assert out == tmp_path / "recon.nii.gz"
    assert_written_nifti(out, src.get_fdata(dtype=np.float32)[..., 1], src.affine)
    back = read_nifti(out)
    np.testing.assert_array_equal(back.data, vol.data)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-4)
    header = nib.load(out).header
    assert (int(header["qform_code"]), int(header["sform_code"])) == (1, 1)
    assert bytes(header["descrip"]).rstrip(b"\0") == f"mrirecon {__version__} zero_filled".encode()
    side = json.loads((tmp_path / "recon.json").read_text())
    assert side["provenance"] == {"method": "zero_filled", "seed": 7}
    assert side["mrirecon_version"] == __version__
    assert side["source"] == str(example4d)
    assert side["source_header"]["nifti"]["n_volumes"] == 2
    np.testing.assert_allclose(side["affine"], vol.affine)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_oblique_round_trip_is_exact(tmp_path: Path, suffix: str) -> None:
    affine = oblique_affine()
    data = ramp((5, 6, 7))
    src = make_nifti(tmp_path / f"in{suffix}", data, affine)
    out = write_nifti(read_nifti(src), tmp_path / f"out{suffix}")
    assert_written_nifti(out, data, nib.load(src).affine)
    assert nib.load(out).shape == (5, 6, 7)  # same nibabel orientation, not (7, 6, 5)
    if suffix == ".nii.gz":
        assert out.read_bytes()[:2] == b"\x1f\x8b"
    else:
        assert out.read_bytes()[344:347] == b"n+1"
    assert sidecar_path(out) == tmp_path / "out.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"in{suffix}", f"out{suffix}",
                                                                  "out.json"])  # no temp files


def test_source_codes_are_kept(tmp_path: Path) -> None:
    affine = oblique_affine()
    img = nib.Nifti1Image(ramp((3, 4, 5)), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=4)  # MNI
    nib.save(img, tmp_path / "mni.nii.gz")
    out = write_nifti(read_nifti(tmp_path / "mni.nii.gz"), tmp_path / "out.nii.gz")
    header = nib.load(out).header
    assert (int(header["qform_code"]), int(header["sform_code"])) == (1, 4)


def test_write_volume_made_in_code(tmp_path: Path) -> None:
    """A non-NIfTI volume gets scanner codes; complex data is written as its magnitude."""
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((4, 5, 6)) + 1j * rng.standard_normal((4, 5, 6)))
    affine = oblique_affine()[:, [2, 1, 0, 3]]
    vol = Volume(data.astype(np.complex64), affine, provenance={"method": "x" * 200})
    out = write_nifti(vol, tmp_path / "made.nii")
    assert_written_nifti(out, np.abs(data.astype(np.complex64)).transpose(2, 1, 0),
                         affine[:, [2, 1, 0, 3]])
    header = nib.load(out).header
    assert (int(header["qform_code"]), int(header["sform_code"])) == (1, 1)
    assert len(bytes(header["descrip"]).rstrip(b"\0")) == 80
    side = json.loads(sidecar_path(out).read_text())
    assert side["provenance"]["method"] == "x" * 200  # full text in the sidecar


# --- bad inputs ---------------------------------------------------------------------------


def _truncated_gz(tmp_path: Path) -> Path:
    raw = gzip.compress(nib.Nifti1Image(ramp((20, 20, 20)), np.eye(4)).to_bytes())
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _truncated_nii(tmp_path: Path) -> Path:
    raw = nib.Nifti1Image(ramp((20, 20, 20)), np.eye(4)).to_bytes()
    path = tmp_path / "cut.nii"
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _random_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "noise.nii"
    path.write_bytes(np.random.default_rng(1).bytes(2000))
    return path


def _two_d(tmp_path: Path) -> Path:
    return make_nifti(tmp_path / "flat.nii.gz", np.zeros((8, 9), np.float32), np.eye(4))


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "dir.nii").mkdir()
    return tmp_path / "dir.nii"


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda tmp: tmp / "missing.nii.gz", "not found"),
        (_truncated_gz, "corrupt"),
        (_truncated_nii, "corrupt"),
        (_random_bytes, "not a NIfTI file"),
        (_two_d, "2-D"),
        (_folder, "directory"),
    ],
    ids=["missing", "truncated-gz", "truncated-nii", "random-bytes", "2-D", "folder"],
)
def test_bad_input_names_the_file(tmp_path: Path, make, problem: str) -> None:
    path = make(tmp_path)
    with pytest.raises(InputFileError) as info:
        read_nifti(path)
    assert str(path) in str(info.value)
    assert problem in info.value.problem
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("index", [2, -1])
def test_volume_index_out_of_range(example4d: Path, index: int) -> None:
    with pytest.raises(InputFileError, match="out of range; the file has 2 volumes"):
        read_nifti(example4d, volume_index=index)


def test_volume_index_on_3d_file(tmp_path: Path) -> None:
    path = make_nifti(tmp_path / "three.nii", ramp((2, 3, 4)), np.eye(4))
    assert read_nifti(path, volume_index=0).shape == (4, 3, 2)
    with pytest.raises(InputFileError, match="has 1 volumes"):
        read_nifti(path, volume_index=1)


# --- outputs ------------------------------------------------------------------------------


def test_existing_output_is_not_touched(tmp_path: Path) -> None:
    vol = Volume(ramp((3, 4, 5)), oblique_affine(), provenance={"method": "m"})
    out = tmp_path / "out.nii.gz"
    out.write_bytes(b"old contents")
    with pytest.raises(OutputError, match="exists"):
        write_nifti(vol, out)
    assert out.read_bytes() == b"old contents"
    assert not (tmp_path / "out.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.nii.gz"]
    write_nifti(vol, out, overwrite=True)
    assert_written_nifti(out, vol.data.transpose(2, 1, 0), vol.affine[:, [2, 1, 0, 3]])


def test_existing_sidecar_blocks_the_image_too(tmp_path: Path) -> None:
    vol = Volume(ramp((3, 4, 5)))
    (tmp_path / "out.json").write_text("{}")
    with pytest.raises(OutputError, match="out.json"):
        write_nifti(vol, tmp_path / "out.nii")
    assert not (tmp_path / "out.nii").exists()
    assert (tmp_path / "out.json").read_text() == "{}"


def test_output_name_must_be_nifti(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match=r"\.nii or \.nii\.gz"):
        write_nifti(Volume(ramp((3, 4, 5))), tmp_path / "out.img")
