"""``mrirecon.io.inputs.expand_inputs``: files, folders and ``-`` -> the inputs they mean."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from mrirecon.errors import InvalidParameterError
from mrirecon.io.inputs import expand_inputs

MR_SMALL = Path(get_testdata_file("MR_small.dcm", download=False))


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def test_a_folder_of_hdf5_files_means_those_files_sorted(tmp_path) -> None:
    _touch(tmp_path / "data", "b.h5", "a.hdf5", ".hidden.h5", "notes.txt")
    _touch(tmp_path / "data" / "sub", "deeper.h5")  # not searched: non-recursive
    assert expand_inputs([tmp_path / "data"]) == [tmp_path / "data" / "a.hdf5",
                                                  tmp_path / "data" / "b.h5"]


def test_files_are_kept_in_order_and_folders_expanded_in_place(tmp_path) -> None:
    _touch(tmp_path / "data", "x.h5")
    given = [tmp_path / "z.h5", tmp_path / "data", tmp_path / "missing.h5"]
    assert expand_inputs(given) == [tmp_path / "z.h5", tmp_path / "data" / "x.h5",
                                    tmp_path / "missing.h5"]


def test_a_dicom_folder_is_one_series_input(tmp_path) -> None:
    series = tmp_path / "series"
    series.mkdir()
    shutil.copy(MR_SMALL, series / "IM0001")  # no suffix: found by its DICM preamble
    assert expand_inputs([series]) == [series]


def test_a_folder_of_nifti_files_means_those_files(tmp_path) -> None:
    _touch(tmp_path / "bids" / "sub-01" / "anat", "T1w.nii.gz", "T1w.json")
    _touch(tmp_path / "bids" / "sub-02" / "anat", "T1w.nii")
    assert expand_inputs([tmp_path / "bids"]) == [
        tmp_path / "bids" / "sub-01" / "anat" / "T1w.nii.gz",
        tmp_path / "bids" / "sub-02" / "anat" / "T1w.nii"]


def test_a_mixed_folder_is_one_error_listing_what_it_holds(tmp_path) -> None:
    data = tmp_path / "data"
    _touch(data, "a.h5", "b.h5", "c.h5")
    shutil.copy(MR_SMALL, data / "one.dcm")
    shutil.copy(MR_SMALL, data / "two.dcm")
    with pytest.raises(InvalidParameterError) as caught:
        expand_inputs([data])
    assert str(caught.value) == f"{data}/: holds 3 .h5 files and 2 DICOM files; give one kind"
    assert caught.value.exit_code == 2


def test_a_folder_with_nothing_usable_is_one_error(tmp_path) -> None:
    _touch(tmp_path / "empty")
    with pytest.raises(InvalidParameterError,
                       match=r"empty/: holds no \.h5, \.cfl, NIfTI or DICOM"):
        expand_inputs([tmp_path / "empty"])
    _touch(tmp_path / "junk", "readme.txt")
    with pytest.raises(InvalidParameterError, match=r"\(1 other file\)"):
        expand_inputs([tmp_path / "junk"])


def test_dash_reads_paths_from_stdin(tmp_path) -> None:
    _touch(tmp_path / "data", "b.h5", "a.h5")
    stdin = io.StringIO(f"{tmp_path / 'one.h5'}\n\n  \n{tmp_path / 'data'}\n")
    assert expand_inputs(["-"], stdin=stdin) == [
        tmp_path / "one.h5", tmp_path / "data" / "a.h5", tmp_path / "data" / "b.h5"]
    with pytest.raises(InvalidParameterError, match="no input paths on stdin"):
        expand_inputs(["-"], stdin=io.StringIO("\n\n"))
    with pytest.raises(InvalidParameterError, match="as the only input"):
        expand_inputs(["-", tmp_path / "one.h5"], stdin=io.StringIO(""))
