"""BART ``.cfl``/``.hdr``: the array layout, k-space in, images out, bad pairs (no BART needed).

The checks against the ``bart`` binary itself are in ``test_reference_tools.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from raw_files import fft2c
from typer.testing import CliRunner

from mrirecon.cli.app import app
from mrirecon.data import Volume
from mrirecon.errors import InputFileError
from mrirecon.io import detect_format, load, output_stem, save
from mrirecon.io.cfl import read_cfl, read_cfl_array, write_cfl_array
from mrirecon.io.inputs import expand_inputs

runner = CliRunner()


def _kspace(coils: int = 3, rows: int = 20, cols: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.normal(size=(coils, rows, cols)) + 1j * rng.normal(size=(coils, rows, cols))
            ).astype(np.complex64)


def test_array_round_trip_is_column_major(tmp_path) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) + 1j
    written = write_cfl_array(tmp_path / "a", arr)
    assert [p.name for p in written] == ["a.cfl", "a.hdr"]
    assert (tmp_path / "a.hdr").read_text().splitlines()[:2] == ["# Dimensions", "2 3 4 1 1 "]
    raw = np.fromfile(tmp_path / "a.cfl", dtype=np.complex64)
    assert raw[1] == arr[1, 0, 0] and raw[2] == arr[0, 1, 0]  # first dimension fastest
    np.testing.assert_array_equal(read_cfl_array(tmp_path / "a.cfl"), arr)
    np.testing.assert_array_equal(read_cfl_array(tmp_path / "a.hdr"), arr)
    with pytest.raises(Exception, match="exists"):
        write_cfl_array(tmp_path / "a", arr)


def test_kspace_dims_map_to_slices_coils_rows_cols(tmp_path) -> None:
    k = _kspace()
    write_cfl_array(tmp_path / "k", k.transpose(1, 2, 0)[:, :, None, :])  # READ PHS1 1 COIL
    assert detect_format(tmp_path / "k.cfl") == "cfl" and detect_format(tmp_path / "k.hdr") == "cfl"
    ks = load(tmp_path / "k.cfl")
    assert ks.shape == (1, 3, 20, 16) and ks.mask is None
    np.testing.assert_array_equal(ks.slice(0), k)
    assert output_stem(tmp_path / "k.cfl") == "k"


def test_zero_columns_are_the_mask_and_slices_are_dim_13(tmp_path) -> None:
    k = _kspace()
    k[..., ::2] = 0
    k[..., 8] = _kspace()[..., 8]  # the centre column measured too
    two = np.stack([k, 2 * k])  # (slices, coils, rows, cols)
    dims = two.transpose(2, 3, 1, 0).reshape(20, 16, 1, 3, *[1] * 9, 2, order="F")
    write_cfl_array(tmp_path / "s", dims)
    ks = read_cfl(tmp_path / "s.cfl")
    assert ks.shape == (2, 3, 20, 16)
    np.testing.assert_array_equal(ks.slices(0, 2), two)
    assert np.flatnonzero(ks.mask[0]).tolist() == sorted([*range(1, 16, 2), 8])


def test_3d_kspace_becomes_slices(tmp_path) -> None:
    vol = _kspace(coils=2, rows=8, cols=8)[:, None].repeat(4, axis=1)  # (coils, z, rows, cols)
    vol = vol * np.arange(1, 5)[None, :, None, None]
    kz = np.fft.fftshift(np.fft.fft(np.fft.ifftshift(vol, 1), axis=1, norm="ortho"), 1)
    write_cfl_array(tmp_path / "v", kz.transpose(2, 3, 1, 0))  # READ PHS1 PHS2 COIL
    ks = read_cfl(tmp_path / "v.cfl")
    assert ks.shape == (4, 2, 8, 8)
    np.testing.assert_allclose(ks.slices(0, 4), vol.transpose(1, 0, 2, 3), atol=1e-5)


def test_images_out_with_sidecar(tmp_path) -> None:
    affine = np.diag([3.0, 0.5, 0.5, 1.0])
    volume = Volume(np.random.default_rng(1).random((2, 6, 5)).astype(np.float32), affine,
                    provenance={"method": "test"})
    written = save(volume, tmp_path / "img.cfl")
    assert [p.name for p in written] == ["img.cfl", "img.hdr", "img.json"]
    arr = read_cfl_array(tmp_path / "img.cfl")
    assert arr.shape == (6, 5, *[1] * 11, 2)
    np.testing.assert_array_equal(arr[:, :, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, :].real,
                                  volume.data.transpose(1, 2, 0))
    sidecar = json.loads((tmp_path / "img.json").read_text())
    assert sidecar["provenance"]["method"] == "test" and sidecar["affine"] == affine.tolist()


def test_reconstruct_a_cfl_and_write_cfl(tmp_path, simulated_scans) -> None:
    image = np.outer(np.hanning(24), np.hanning(20))[None] * np.ones((2, 1, 1))
    write_cfl_array(tmp_path / "scan", fft2c(image).transpose(1, 2, 0)[:, :, None, :])
    out = tmp_path / "out"
    result = runner.invoke(app, ["reconstruct", str(tmp_path / "scan.cfl"), "-o", str(out),
                                 "--method", "zero-filled", "--accel", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["scan.cfl", "scan.hdr", "scan.json"]
    assert read_cfl_array(out / "scan.cfl").shape == (24, 20)
    result = runner.invoke(app, ["reconstruct", str(simulated_scans / "MR_small.h5"), "-o",
                                 str(out), "--method", "zero-filled", "--format", "cfl"])
    assert result.exit_code == 0, result.output
    h5 = runner.invoke(app, ["reconstruct", str(simulated_scans / "MR_small.h5"), "-o",
                             str(tmp_path / "h5"), "--method", "zero-filled"])
    assert h5.exit_code == 0, h5.output
    np.testing.assert_allclose(np.squeeze(read_cfl_array(out / "MR_small.cfl").real),
                               load(tmp_path / "h5" / "MR_small.h5").data[0], rtol=1e-6)


def test_a_folder_of_pairs_means_their_cfl_files(tmp_path) -> None:
    for name in ("b", "a"):
        write_cfl_array(tmp_path / name, _kspace().transpose(1, 2, 0)[:, :, None, :])
    (tmp_path / "a.json").write_text("{}")
    assert expand_inputs([tmp_path]) == [tmp_path / "a.cfl", tmp_path / "b.cfl"]


# --- bad pairs: one line, nothing written -------------------------------------------------


def _cli_fails(path: Path, match: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["reconstruct", str(path), "-o", str(out), "--method",
                                 "zero-filled"])
    assert result.exit_code != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and match in lines[0], result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_a_cfl_without_its_hdr(tmp_path) -> None:
    write_cfl_array(tmp_path / "k", _kspace().transpose(1, 2, 0)[:, :, None, :])
    (tmp_path / "k.hdr").unlink()
    _cli_fails(tmp_path / "k.cfl", "k.hdr not found beside it", tmp_path)
    with pytest.raises(InputFileError, match="a .cfl needs its .hdr"):
        read_cfl(tmp_path / "k.cfl")


def test_a_cfl_whose_size_disagrees_with_the_dims(tmp_path) -> None:
    write_cfl_array(tmp_path / "k", _kspace().transpose(1, 2, 0)[:, :, None, :])
    with open(tmp_path / "k.cfl", "ab") as f:
        f.write(b"\0" * 8)
    _cli_fails(tmp_path / "k.cfl", "declares dims 20 16 1 3 1", tmp_path)


def test_unsupported_dims_and_bad_headers(tmp_path) -> None:
    write_cfl_array(tmp_path / "te", np.ones((4, 4, 1, 1, 1, 3), np.complex64))
    with pytest.raises(InputFileError, match=r"TE \(5\) = 3"):
        read_cfl(tmp_path / "te.cfl")
    (tmp_path / "junk.hdr").write_text("# Dimensions\nfour by four\n")
    (tmp_path / "junk.cfl").write_bytes(b"\0" * 128)
    with pytest.raises(InputFileError, match="not a BART header"):
        read_cfl(tmp_path / "junk.cfl")
    write_cfl_array(tmp_path / "nan", np.full((4, 4), np.nan, np.complex64))
    _cli_fails(tmp_path / "nan.cfl", "NaN", tmp_path)


def test_our_image_outputs_read_back_as_images(tmp_path) -> None:
    affine = np.diag([2.0, 0.7, 0.9, 1.0])
    affine[:3, 3] = [5, -3, 1]
    volume = Volume(np.random.default_rng(2).random((3, 6, 5)).astype(np.float32), affine,
                    provenance={"method": "cs"})
    save(volume, tmp_path / "img.cfl")
    back = load(tmp_path / "img.cfl")
    assert isinstance(back, Volume)
    np.testing.assert_array_equal(back.data, volume.data)
    np.testing.assert_allclose(back.affine, affine)
    assert back.provenance["method"] == "cs"
    info = runner.invoke(app, ["info", str(tmp_path / "img.cfl")])
    assert info.exit_code == 0 and "cfl image volume, 3x6x5" in info.stdout
    out = tmp_path / "out"
    result = runner.invoke(app, ["convert", str(tmp_path / "img.cfl"), "-o", str(out)])
    assert result.exit_code != 0 and "holds images" in result.stderr
    assert not out.exists() or not any(out.iterdir())
    (tmp_path / "img.json").write_text("{not json")  # someone else's sidecar: k-space again
    assert load(tmp_path / "img.cfl").shape == (3, 1, 6, 5)  # (slices, coils, rows, cols)
