"""The one format-to-extension table, the one choice of reference target, and the HDF5 reads of
evaluation's files mode (:mod:`mrirecon.io.predictions`)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from mrirecon import io
from mrirecon.data import Volume
from mrirecon.errors import InputFileError
from mrirecon.inference import posterior_paths, prepare_kspace, reference_image
from mrirecon.io.fastmri_h5 import preferred_targets, target_key, write_reconstruction
from mrirecon.io.predictions import (
    file_attrs,
    hdf5_files,
    read_prediction,
    read_target,
    target_dataset,
)

MR_SMALL = Path(get_testdata_file("MR_small.dcm", download=False))


def test_every_output_name_comes_from_the_one_extension_table(tmp_path, monkeypatch) -> None:
    assert set(io.EXTENSIONS) == set(io.FORMATS)
    assert io.EXTENSIONS == {"fastmri": ".h5", "nifti": ".nii.gz", "dicom": "", "cfl": ".cfl"}
    for fmt, ext in io.EXTENSIONS.items():
        assert io.output_path(MR_SMALL, tmp_path, fmt) == tmp_path / f"MR_small{ext}"
        paths = posterior_paths(MR_SMALL, tmp_path, fmt, keep_samples=True)
        assert paths["mean"] == tmp_path / f"MR_small_mean{ext}"
        assert paths["std"] == tmp_path / f"MR_small_std{ext}"
        assert paths["panel"].name == "MR_small_uncertainty.png"
    # output_path and posterior_paths read the same table: change it and both follow
    monkeypatch.setitem(io.EXTENSIONS, "nifti", ".nii")
    assert io.output_path(MR_SMALL, tmp_path, "nifti").name == "MR_small.nii"
    assert posterior_paths(MR_SMALL, tmp_path, "nifti")["std"].name == "MR_small_std.nii"


def test_the_reference_target_is_chosen_in_one_place(simulated_scans) -> None:
    assert preferred_targets(single_coil=True) == ("reconstruction_esc", "reconstruction_rss")
    assert preferred_targets(single_coil=False) == ("reconstruction_rss", "reconstruction_esc")
    assert target_key(True) == "reconstruction_esc" and target_key(False) == "reconstruction_rss"
    # an image simulated in memory carries the target of its coil layout, the reference is it
    kspace = prepare_kspace(MR_SMALL)
    assert kspace.is_multicoil and list(kspace.targets) == [target_key(False)]
    np.testing.assert_array_equal(reference_image(kspace), kspace.targets[target_key(False)][:])
    # files mode picks the same dataset from the files written by mrirecon simulate
    single, multi = simulated_scans / "example4d.h5", simulated_scans / "MR_small.h5"
    assert target_dataset(single) == target_key(True) == "reconstruction_esc"
    assert target_dataset(multi) == target_key(False)
    np.testing.assert_array_equal(read_target(single).data,
                                  reference_image(prepare_kspace(single)))


def test_single_coil_file_with_both_targets_is_scored_on_esc(tmp_path) -> None:
    path = tmp_path / "knee.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=np.ones((2, 8, 6), np.complex64))
        f.create_dataset("reconstruction_rss", data=np.ones((2, 8, 6), np.float32))
        f.create_dataset("reconstruction_esc", data=np.full((2, 8, 6), 2, np.float32))
        f.attrs["acquisition"] = b"CORPD_FBK"
        f.attrs["acceleration"] = np.float64(4)
    assert target_dataset(path) == "reconstruction_esc"
    assert read_target(path).data.max() == 2
    attrs = file_attrs(path)
    assert attrs == {"acquisition": "CORPD_FBK", "acceleration": 4.0}
    assert type(attrs["acceleration"]) is float


def test_prediction_files_and_errors(tmp_path) -> None:
    write_reconstruction(Volume(np.ones((2, 4, 4), np.float32), provenance={"method": "cs"}),
                         tmp_path / "a.h5")
    (tmp_path / ".hidden.h5").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert hdf5_files(tmp_path) == [tmp_path / "a.h5"]
    assert read_prediction(tmp_path / "a.h5").provenance["method"] == "cs"
    assert target_dataset(tmp_path / "a.h5") == "reconstruction"
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    for read in (file_attrs, target_dataset):
        with pytest.raises(InputFileError, match=r"bad\.h5: not a readable HDF5 file"):
            read(bad)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.create_dataset("other", data=np.zeros(3))
    with pytest.raises(InputFileError, match=r"no reconstruction_esc, .* \(holds: other\)"):
        target_dataset(empty)
