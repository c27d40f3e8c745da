"""``detect_format``, ``load``, ``save`` and ``output_path`` on real files of each kind.

Routing to the DICOM and HDF5 modules is checked with stand-in modules (so it is tested whether
or not those modules are present); reading through the real ones is guarded by importorskip.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from mrirecon.data import Volume
from mrirecon.errors import InputFileError, InvalidParameterError, OutputError
from mrirecon.io import detect_format, load, output_path, save
from mrirecon.io.nifti import read_nifti


def _mr_small() -> Path:
    pydicom_data = pytest.importorskip("pydicom.data")
    try:
        return Path(pydicom_data.get_testdata_file("MR_small.dcm"))
    except Exception:  # any failure to find the bundled test file means skip
        pytest.skip("pydicom's MR_small.dcm is not available")


@pytest.fixture
def mr_small() -> Path:
    return _mr_small()


@pytest.fixture
def nifti_file(tmp_path: Path) -> Path:
    data = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    path = tmp_path / "brain.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 2.0, 3.0, 1.0])), path)
    return path


@pytest.fixture
def h5_file(tmp_path: Path) -> Path:
    path = tmp_path / "knee.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=np.ones((2, 8, 6), np.complex64))
    return path


@pytest.fixture
def fake_readers(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Stand-ins for io.dicom and io.fastmri_h5 that record how they were called."""
    calls: list[tuple] = []
    vol = Volume(np.zeros((1, 2, 2), np.float32))
    dicom = types.ModuleType("mrirecon.io.dicom")
    dicom.read_dicom = lambda paths, series=None: calls.append(("read_dicom", paths, series)) or vol
    dicom.write_dicom = lambda v, out, *, description, overwrite=False: (
        calls.append(("write_dicom", out, description, overwrite)) or [Path(out) / "0001.dcm"]
    )
    h5 = types.ModuleType("mrirecon.io.fastmri_h5")
    h5.read_kspace = lambda path: calls.append(("read_kspace", path)) or "kspace"
    h5.read_reconstruction = lambda path: calls.append(("read_reconstruction", path)) or vol
    h5.write_reconstruction = lambda v, path, *, overwrite=False: (
        calls.append(("write_reconstruction", path, overwrite)) or Path(path)
    )
    monkeypatch.setitem(sys.modules, "mrirecon.io.dicom", dicom)
    monkeypatch.setitem(sys.modules, "mrirecon.io.fastmri_h5", h5)
    return calls


# --- detect_format ------------------------------------------------------------------------


def test_detect_nifti(nifti_file: Path, tmp_path: Path) -> None:
    assert detect_format(nifti_file) == "nifti"
    plain = tmp_path / "plain.nii"
    plain.write_bytes(gzip.decompress(nifti_file.read_bytes()))
    assert detect_format(plain) == "nifti"
    odd = tmp_path / "volume.bin"  # content, not the name, decides
    shutil.copy(nifti_file, odd)
    assert detect_format(odd) == "nifti"
    assert read_nifti(odd).shape == (5, 4, 3)


def test_detect_hdf5(h5_file: Path, tmp_path: Path) -> None:
    assert detect_format(h5_file) == "fastmri"
    odd = tmp_path / "knee.dat"
    shutil.copy(h5_file, odd)
    assert detect_format(odd) == "fastmri"
    with h5py.File(tmp_path / "block.h5", "w", userblock_size=512) as f:  # signature at 512
        f.create_dataset("kspace", data=np.ones((1, 2, 2), np.complex64))
    shutil.copy(tmp_path / "block.h5", tmp_path / "block.raw")
    assert detect_format(tmp_path / "block.raw") == "fastmri"


def test_detect_dicom(mr_small: Path, tmp_path: Path) -> None:
    assert detect_format(mr_small) == "dicom"
    bare = tmp_path / "IM0001"  # no suffix: the DICM preamble decides
    shutil.copy(mr_small, bare)
    assert detect_format(bare) == "dicom"
    assert detect_format(tmp_path) == "dicom"  # a folder is a series


def test_detect_falls_back_to_suffix_for_damaged_files(tmp_path: Path) -> None:
    for name, fmt in [("bad.h5", "fastmri"), ("bad.nii", "nifti"), ("bad.nii.gz", "nifti"),
                      ("bad.dcm", "dicom")]:
        (tmp_path / name).write_bytes(b"\x00" * 10)
        assert detect_format(tmp_path / name) == fmt


@pytest.mark.parametrize("name", ["notes.txt", "notes", "empty.png"])
def test_detect_unknown_content(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("" if name.startswith("empty") else "just some text\n" * 40)
    with pytest.raises(InputFileError,
                       match="not a fastMRI HDF5, ISMRMRD, NIfTI, DICOM or BART .cfl/.hdr file"
                       ) as info:
        detect_format(path)
    assert str(path) in str(info.value)


def test_detect_missing(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        detect_format(tmp_path / "nope.h5")
    with pytest.raises(InputFileError, match="not found"):
        load(tmp_path / "nope.nii.gz")


# --- load ---------------------------------------------------------------------------------


def test_load_nifti(nifti_file: Path) -> None:
    vol = load(nifti_file)
    assert isinstance(vol, Volume)
    np.testing.assert_array_equal(vol.data, read_nifti(nifti_file).data)
    with pytest.raises(InvalidParameterError, match="DICOM series"):
        load(nifti_file, series="2")


def test_load_routes_dicom_and_hdf5(fake_readers: list, mr_small: Path, h5_file: Path,
                                    tmp_path: Path) -> None:
    load(mr_small)
    load(tmp_path, series="3")
    assert load(h5_file) == "kspace"
    with h5py.File(tmp_path / "recon.h5", "w") as f:
        f.create_dataset("reconstruction", data=np.zeros((1, 2, 2), np.float32))
    assert isinstance(load(tmp_path / "recon.h5"), Volume)
    assert fake_readers == [
        ("read_dicom", mr_small, None),
        ("read_dicom", tmp_path, "3"),
        ("read_kspace", h5_file),
        ("read_reconstruction", tmp_path / "recon.h5"),
    ]


def test_load_real_dicom(mr_small: Path) -> None:
    dicom = pytest.importorskip("mrirecon.io.dicom")
    vol = load(mr_small)
    assert isinstance(vol, Volume)
    np.testing.assert_array_equal(vol.data, dicom.read_dicom(mr_small).data)


def test_load_real_hdf5(h5_file: Path) -> None:
    """``load`` gives what ``read_kspace`` gives (or fails the same way) on a fastMRI file."""
    fastmri_h5 = pytest.importorskip("mrirecon.io.fastmri_h5")
    from mrirecon.data import KSpace

    with h5py.File(h5_file, "a") as f:
        f.attrs["acquisition"] = "CORPD_FBK"
    try:
        expected = fastmri_h5.read_kspace(h5_file)
    except InputFileError as exc:
        with pytest.raises(InputFileError, match=re.escape(str(exc))):
            load(h5_file)
        return
    got = load(h5_file)
    assert isinstance(got, KSpace) and got.shape == expected.shape


# --- save ---------------------------------------------------------------------------------


def test_save_nifti_returns_image_and_sidecar(nifti_file: Path, tmp_path: Path) -> None:
    vol = load(nifti_file)
    out = tmp_path / "out"
    assert save(vol, out / "a.nii.gz") == [out / "a.nii.gz", out / "a.json"]
    assert save(vol, out / "b.nii", fmt="nifti") == [out / "b.nii", out / "b.json"]
    np.testing.assert_array_equal(load(out / "a.nii.gz").data, vol.data)
    with pytest.raises(OutputError):
        save(vol, out / "a.nii.gz")
    assert save(vol, out / "a.nii.gz", overwrite=True)[0].is_file()


def test_save_routes_dicom_and_hdf5(fake_readers: list, tmp_path: Path) -> None:
    vol = Volume(np.zeros((1, 2, 2), np.float32))
    assert save(vol, tmp_path / "r.h5") == [tmp_path / "r.h5"]
    save(vol, tmp_path / "series", description="RIM x4")
    save(vol, tmp_path / "odd.name", fmt="dicom", overwrite=True)
    save(vol, tmp_path, fmt=None)  # an existing folder
    assert fake_readers == [
        ("write_reconstruction", tmp_path / "r.h5", False),
        ("write_dicom", tmp_path / "series", "RIM x4", False),
        ("write_dicom", tmp_path / "odd.name", "mrirecon", True),
        ("write_dicom", tmp_path, "mrirecon", False),
    ]


def test_save_rejects_unknown_format(tmp_path: Path) -> None:
    vol = Volume(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(InvalidParameterError, match="cannot tell the output format"):
        save(vol, tmp_path / "out.png")
    with pytest.raises(InvalidParameterError, match="unknown format 'png'"):
        save(vol, tmp_path / "out.png", fmt="png")
    assert list(tmp_path.iterdir()) == []


# --- output_path --------------------------------------------------------------------------


def test_output_path_names(nifti_file: Path, h5_file: Path, mr_small: Path,
                           tmp_path: Path) -> None:
    out = tmp_path / "results"
    assert output_path(h5_file, out, "nifti") == out / "knee.nii.gz"
    assert output_path(h5_file, out, "dicom") == out / "knee"
    assert output_path(h5_file, out) == out / "knee.h5"  # keeps the input's format
    assert output_path(nifti_file, out, "fastmri") == out / "brain.h5"
    assert output_path(nifti_file, out) == out / "brain.nii.gz"
    assert output_path(mr_small, out, "nifti") == out / "MR_small.nii.gz"
    series = tmp_path / "series1"
    series.mkdir()
    assert output_path(series, out, "nifti") == out / "series1.nii.gz"
    assert output_path(series, out) == out / "series1"


def test_output_path_never_names_the_input(h5_file: Path) -> None:
    with pytest.raises(OutputError, match="replace the input"):
        output_path(h5_file, h5_file.parent, "fastmri")
    with pytest.raises(InvalidParameterError, match="unknown format"):
        output_path(h5_file, h5_file.parent / "x", "tiff")


def test_import_is_light() -> None:
    """``import mrirecon.io`` loads no format library and nothing from the model stack."""
    code = (
        "import sys, mrirecon.io; "
        "print(sorted(m for m in ('nibabel', 'h5py', 'pydicom', 'torch', 'typer', 'rich') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
