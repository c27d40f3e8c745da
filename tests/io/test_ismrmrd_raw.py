"""The raw ISMRMRD reader on files written to the schema here (no ismrmrd-tools needed).

The reference-tool checks (``ismrmrd_generate_cartesian_shepp_logan``,
``ismrmrd_recon_cartesian_2d``) are in ``test_reference_tools.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from raw_files import (
    HEAD,
    REVERSE_FLAG,
    fft2c,
    ifft2c,
    imaging_head,
    write_acquisitions,
    write_scan,
)
from typer.testing import CliRunner

from mrirecon.cli.app import app
from mrirecon.data import LPS_TO_RAS, KSpace
from mrirecon.errors import InputFileError
from mrirecon.io import detect_format, load
from mrirecon.io.ismrmrd import build_header
from mrirecon.io.ismrmrd_raw import raw_summary, read_ismrmrd, volume_keys, whitening_matrix

runner = CliRunner()
COILS, NX, NY = 4, 32, 24


def coil_images(rows: int = NX, seed: int = 0) -> np.ndarray:
    """A smooth object seen by ``COILS`` smooth complex coils, ``(coils, rows, NY)``."""
    rng = np.random.default_rng(seed)
    r, c = np.meshgrid(np.linspace(-1, 1, rows), np.linspace(-1, 1, NY), indexing="ij")
    obj = (r ** 2 / 0.5 + c ** 2 / 0.7 < 1).astype(float) * (1 + 0.3 * np.cos(3 * r))
    sens = np.stack([np.exp(-((r - a) ** 2 + (c - b) ** 2)) * np.exp(1j * rng.uniform(0, 6))
                     for a, b in [(-1, -1), (-1, 1), (1, -1), (1, 1)][:COILS]])
    return (sens * obj).astype(np.complex64)


@pytest.fixture
def scan(tmp_path) -> tuple[Path, np.ndarray]:
    images = coil_images()
    return write_scan(tmp_path / "scan.h5", fft2c(images)), images


def test_detected_and_read_as_kspace_of_the_right_shape(scan) -> None:
    path, images = scan
    assert detect_format(path) == "ismrmrd"
    ks = load(path)
    assert isinstance(ks, KSpace) and ks.shape == (1, COILS, NX, NY) and ks.mask is None
    np.testing.assert_allclose(ks.slice(0), fft2c(images), atol=1e-5 * np.abs(images).max())
    assert ks.provenance["raw"]["format"] == "ismrmrd"
    assert ks.encoded_matrix == (NX, NY, 1)


def test_oversampling_removed_as_the_header_says(tmp_path) -> None:
    over = coil_images(rows=2 * NX, seed=1)
    path = write_scan(tmp_path / "over.h5", fft2c(over), recon_rows=NX,
                      fov_mm=(400.0, 200.0, 5.0))
    ks = read_ismrmrd(path)
    central = over[:, NX // 2: NX // 2 + NX]
    assert ks.shape == (1, COILS, NX, NY)
    # the coil images are the central half of the oversampled ones, to float32 precision
    np.testing.assert_allclose(ifft2c(ks.slice(0)), central, atol=1e-5 * np.abs(over).max())
    assert ks.encoded_matrix == (NX, NY, 1) and ks.encoded_fov_mm[0] == pytest.approx(200.0)
    assert any("oversampling removed: 64 -> 32" in n for n in ks.provenance["raw"]["notes"])


def _correlated(n: int, seed: int, mix: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(mix, mix @ white noise)``: ``n`` samples of coil noise with covariance mix mix^H."""
    rng = np.random.default_rng(seed)
    if mix is None:
        mix = rng.normal(size=(COILS, COILS)) + 1j * rng.normal(size=(COILS, COILS))
        mix += 2 * np.eye(COILS)
    white = (rng.normal(size=(COILS, n)) + 1j * rng.normal(size=(COILS, n))) / np.sqrt(2)
    return mix, mix @ white


def test_prewhitening_gives_unit_uncorrelated_noise(tmp_path) -> None:
    # imaging dwell half the noise scan's: twice the bandwidth, twice the noise variance
    mix, noise = _correlated(40000, seed=2)
    _, data_noise = _correlated(NX * NY, seed=3, mix=mix)
    kspace = (np.sqrt(2.0) * data_noise).reshape(COILS, NX, NY)
    path = write_scan(tmp_path / "noise.h5", kspace, noise=noise, dwell_us=(10.0, 5.0))
    ks = read_ismrmrd(path)
    assert ks.provenance["raw"]["prewhitened"] and ks.provenance["raw"]["noise_acquisitions"] == 1
    samples = ks.slice(0).reshape(COILS, -1)
    cov = samples @ samples.conj().T / samples.shape[1]
    np.testing.assert_allclose(cov, np.eye(COILS), atol=0.15)  # 768 samples: 4 std errors
    raw = read_ismrmrd(path, prewhiten=False)
    assert not raw.provenance["raw"]["prewhitened"]
    raw_cov = raw.slice(0).reshape(COILS, -1)
    raw_cov = raw_cov @ raw_cov.conj().T / raw_cov.shape[1]
    assert np.abs(raw_cov - np.eye(COILS)).max() > 1.0  # correlated before
    expected = 2 * mix @ mix.conj().T
    np.testing.assert_allclose(raw_cov, expected, atol=0.15 * np.abs(expected).max())


def test_whitening_matrix_inverts_the_covariance() -> None:
    mix, noise = _correlated(20000, seed=4)
    w = whitening_matrix(noise, 5.0, 5.0)
    psi = noise @ noise.conj().T / (noise.shape[1] - 1)
    np.testing.assert_allclose(w @ psi @ w.conj().T, np.eye(COILS), atol=1e-4)
    assert np.allclose(np.triu(w, 1), 0)  # L^-1 is lower triangular: coil 0 is only scaled
    w_rnb = whitening_matrix(noise, 5.0, 5.0, receiver_noise_bandwidth=0.79)
    np.testing.assert_allclose(w_rnb, np.sqrt(0.79) * w, rtol=1e-5)


def test_the_mask_is_the_measured_lines_and_is_not_drawn_again(tmp_path) -> None:
    lines = [0, 3, 6, 9, 10, 11, 12, 13, 14, 17, 20, 23]
    full = fft2c(coil_images())
    path = write_scan(tmp_path / "under.h5", full, lines=lines)
    ks = read_ismrmrd(path)
    assert ks.mask is not None and np.flatnonzero(ks.mask[0]).tolist() == lines
    unmeasured = np.setdiff1d(np.arange(NY), lines)
    assert np.abs(ks.slice(0)[..., unmeasured]).max() == 0
    out = tmp_path / "out"
    result = runner.invoke(app, ["reconstruct", str(path), "-o", str(out), "--method",
                                 "zero-filled", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)[0]
    assert record["acceleration"] == pytest.approx(NY / len(lines))
    vol = load(out / "under.h5")
    assert vol.provenance["mask"]["source"] == "file"


def test_partial_fourier_is_zero_filled_and_noted(tmp_path) -> None:
    lines = list(range(0, NY * 5 // 8 + 1))  # the top 3/8 never measured
    ks = read_ismrmrd(write_scan(tmp_path / "pf.h5", fft2c(coil_images()), lines=lines))
    assert any(n.startswith("partial Fourier") for n in ks.provenance["raw"]["notes"])
    assert np.flatnonzero(ks.mask[0]).tolist() == lines


def test_volumes_are_chosen_or_split(tmp_path) -> None:
    path = write_scan(tmp_path / "reps.h5", fft2c(coil_images()), repetitions=2)
    assert [v["repetition"] for v in volume_keys(path)] == [0, 1]
    with pytest.raises(InputFileError, match=r"holds 2 volumes.*--series repetition=N"):
        read_ismrmrd(path)
    ks = load(path, series="repetition=1")
    assert ks.provenance["raw"]["volume"]["repetition"] == 1
    with pytest.raises(InputFileError, match="no volume matches"):
        read_ismrmrd(path, volume="repetition=5")
    summary = raw_summary(path)
    assert summary["acquisitions"] == 2 * NY and len(summary["volumes"]) == 2


def test_geometry_from_position_and_direction_cosines(tmp_path) -> None:
    # a sagittal-like slice: readout along -z (head-feet), phase along y, normal along x (LPS)
    directions = ((0, 0, -1), (0, 1, 0), (1, 0, 0))
    position = (12.5, -30.0, 40.0)
    path = write_scan(tmp_path / "geo.h5", fft2c(coil_images()), position=position,
                      directions=directions, fov_mm=(320.0, 240.0, 4.0))
    affine = read_ismrmrd(path).affine
    # the slice centre (row NX//2, column NY//2) is at the header's position
    centre = affine @ [0, NX // 2, NY // 2, 1]
    np.testing.assert_allclose(centre[:3], (LPS_TO_RAS @ [*position, 1])[:3], atol=1e-4)
    # one row is one readout voxel along read_dir, one column one phase voxel along phase_dir
    np.testing.assert_allclose(affine[:3, 1], (LPS_TO_RAS[:3, :3] @ [0, 0, -1]) * 10.0)
    np.testing.assert_allclose(affine[:3, 2], (LPS_TO_RAS[:3, :3] @ [0, 1, 0]) * 10.0)
    np.testing.assert_allclose(np.linalg.norm(affine[:3, 0]), 4.0)


# --- bad input: one line, nothing written -------------------------------------------------


def _cli_fails(args: list[str], match: str, out: Path) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and match in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_no_acquisitions(tmp_path) -> None:
    path = write_scan(tmp_path / "empty.h5", fft2c(coil_images()), lines=[])
    out = tmp_path / "out"
    _cli_fails(["reconstruct", str(path), "-o", str(out), "--method", "zero-filled"],
               "holds no acquisitions", out)
    only_noise = write_scan(tmp_path / "noise_only.h5", fft2c(coil_images()), lines=[],
                            noise=_correlated(100, 0)[1])
    _cli_fails(["convert", str(only_noise), "-o", str(out)], "no imaging acquisitions", out)


def test_non_cartesian_trajectory(tmp_path) -> None:
    path = write_scan(tmp_path / "radial.h5", fft2c(coil_images()), trajectory="radial")
    out = tmp_path / "out"
    _cli_fails(["reconstruct", str(path), "-o", str(out), "--method", "zero-filled"],
               "trajectory is 'radial'; only Cartesian", out)
    _cli_fails(["convert", str(path), "-o", str(out)], "only Cartesian", out)


def test_header_disagrees_with_data(tmp_path) -> None:
    path = write_scan(tmp_path / "shifted.h5", fft2c(coil_images()), step1_offset=5)
    out = tmp_path / "out"
    _cli_fails(["reconstruct", str(path), "-o", str(out), "--method", "zero-filled"],
               "header disagrees with data", out)
    with h5py.File(path, "a") as f:  # a line whose sample count disagrees with its header
        table = f["dataset/data"][()]
        table[0]["head"]["number_of_samples"] = NX + 3
        table[0]["head"]["idx"]["kspace_encode_step_1"] = 0
        f["dataset/data"][0] = table[0]
    with pytest.raises(InputFileError, match="complex values but its header says"):
        read_ismrmrd(path)


def test_convert_gives_fastmri_files_that_evaluate_reads(tmp_path) -> None:
    images = coil_images()
    path = write_scan(tmp_path / "reps.h5", fft2c(images), repetitions=2,
                      position=(0, 0, 20), fov_mm=(320.0, 240.0, 4.0))
    out = tmp_path / "fastmri"
    result = runner.invoke(app, ["convert", str(path), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    names = sorted(Path(r["output"]).name for r in json.loads(result.stdout))
    assert names == ["reps_repetition0.h5", "reps_repetition1.h5"]
    ks = load(out / "reps_repetition1.h5")
    raw = read_ismrmrd(path, volume="repetition=1")
    np.testing.assert_array_equal(ks.slice(0), raw.slice(0))
    np.testing.assert_allclose(ks.affine, raw.affine)
    assert ks.recon_fov_mm == pytest.approx((320.0, 240.0, 4.0))
    target = np.asarray(ks.targets["reconstruction_rss"][:])
    np.testing.assert_allclose(target[0], np.sqrt((np.abs(images) ** 2).sum(0)), atol=1e-5)
    again = runner.invoke(app, ["convert", str(path), "-o", str(out)])
    assert again.exit_code != 0 and "--overwrite" in again.stderr
    from mrirecon.train.dataset import SliceDataset

    item = SliceDataset([out / "reps_repetition0.h5"], train=False)[0]  # what train reads
    assert item["kspace"].shape == (COILS, NX, NY) and item["coils"] == COILS
    np.testing.assert_allclose(item["target"], target[0], rtol=1e-6)
    report = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", str(out / "reps_repetition0.h5"), "--methods",
                                 "zero-filled", "-o", str(report), "--json"])
    assert result.exit_code == 0, result.output


def test_info_describes_a_raw_file(tmp_path) -> None:
    _, noise = _correlated(64, seed=5)
    path = write_scan(tmp_path / "reps.h5", fft2c(coil_images()), repetitions=2, noise=noise,
                      lines=list(range(0, NY, 2)) + [11, 13])
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert "ismrmrd multi-coil k-space" in line and f"1x{COILS}x{NX}x{NY}" in line
    assert f"{2 * (NY // 2 + 2) + 1} acquisitions (1 noise)" in line
    assert "coils pre-whitened" in line and "2 volumes (described: " in line
    assert f"mask {NY // 2 + 2}/{NY} lines" in line
    record = json.loads(runner.invoke(app, ["info", str(path), "--series", "repetition=1",
                                            "--json"]).stdout)[0]
    assert record["raw"]["described_volume"]["repetition"] == 1
    assert record["raw"]["trajectory"] == "cartesian"


def test_reconstruct_prewhitens_unless_told_not_to(tmp_path) -> None:
    _, noise = _correlated(256, seed=6)
    path = write_scan(tmp_path / "scan.h5", fft2c(coil_images()), noise=noise)
    for flag, expected in (([], True), (["--no-prewhiten"], False)):
        out = tmp_path / f"out{len(flag)}"
        result = runner.invoke(app, ["reconstruct", str(path), "-o", str(out), "--method",
                                     "zero-filled", *flag])
        assert result.exit_code == 0, result.output
        raw = load(out / "scan.h5").provenance["raw"]
        assert raw["prewhitened"] is expected and raw["format"] == "ismrmrd"


# --- line placement: reversed lines, discarded samples, asymmetric echoes, slices, averages, 3-D


def _write(path: Path, kspace_shape: tuple[int, int, int], heads: list, samples: list,
           enc_z: int = 1) -> Path:
    coils, nx, ny = kspace_shape
    xml = build_header(encoded_matrix=(nx, ny, enc_z), encoded_fov_mm=(200.0, 200.0, 8.0),
                       coils=coils)
    if enc_z > 1:  # the limits build_header writes for 2-D say step 2 is 0..0
        xml = xml.replace("<kspace_encoding_step_2>\n        <minimum>0</minimum>\n"
                          "        <maximum>0</maximum>\n        <center>0</center>",
                          "<kspace_encoding_step_2>\n        <minimum>0</minimum>\n"
                          f"        <maximum>{enc_z - 1}</maximum>\n"
                          f"        <center>{enc_z // 2}</center>")
    return write_acquisitions(path, xml, np.array(heads, dtype=HEAD), samples)


def test_reversed_lines_and_discarded_samples_are_placed_as_measured(tmp_path) -> None:
    k = fft2c(coil_images())
    heads, samples = [], []
    for y in range(NY):
        line = k[:, :, y]
        if y % 2:  # every other line read backwards (EPI-like), flagged reverse
            heads.append(imaging_head(COILS, NX, y, flags=REVERSE_FLAG))
            samples.append(line[:, ::-1])
        else:  # two junk samples before the echo and three after, to be discarded
            junk = np.full((COILS, 2), 99.0), np.full((COILS, 3), -99.0)
            heads.append(imaging_head(COILS, NX + 5, y, discard_pre=2, discard_post=3,
                                      center_sample=NX // 2 + 2))
            samples.append(np.concatenate([junk[0], line, junk[1]], axis=1))
    ks = read_ismrmrd(_write(tmp_path / "epi.h5", (COILS, NX, NY), heads, samples))
    np.testing.assert_allclose(ks.slice(0), k, atol=1e-6)


def test_an_asymmetric_echo_is_zero_filled_and_noted(tmp_path) -> None:
    k = fft2c(coil_images())
    start = NX // 4  # the first quarter of every readout never measured
    heads = [imaging_head(COILS, NX - start, y, center_sample=NX // 2 - start)
             for y in range(NY)]
    ks = read_ismrmrd(_write(tmp_path / "echo.h5", (COILS, NX, NY), heads,
                             [k[:, start:, y] for y in range(NY)]))
    np.testing.assert_allclose(ks.slice(0)[:, start:], k[:, start:], atol=1e-6)
    assert np.abs(ks.slice(0)[:, :start]).max() == 0
    assert any(n.startswith("asymmetric echo") for n in ks.provenance["raw"]["notes"])


def test_slices_go_by_their_counter_and_averages_are_averaged(tmp_path) -> None:
    k0, k1 = fft2c(coil_images(seed=0)), fft2c(coil_images(seed=1))
    heads, samples = [], []
    for y in range(NY):
        for slice_, k in ((1, k1), (0, k0)):  # slices interleaved, the second first
            for average, offset in ((0, 0.5), (1, -0.5)):  # two averages, noise +-0.5
                heads.append(imaging_head(COILS, NX, y, idx_slice=slice_, idx_average=average,
                                          position=(0, 0, 5.0 * slice_)))
                samples.append(k[:, :, y] + offset)
    ks = read_ismrmrd(_write(tmp_path / "slices.h5", (COILS, NX, NY), heads, samples))
    assert ks.shape == (2, COILS, NX, NY)
    np.testing.assert_allclose(ks.slices(0, 2), np.stack([k0, k1]), atol=1e-5)
    assert any("averaged" in n for n in ks.provenance["raw"]["notes"])
    np.testing.assert_allclose(ks.affine[:3, 0], [0, 0, 5.0], atol=1e-6)  # slice step, RAS


def test_a_fully_sampled_3d_acquisition_becomes_slices(tmp_path) -> None:
    nz = 4
    volume = np.stack([coil_images(seed=z) for z in range(nz)], axis=1)  # (coils, z, x, y)
    kz = np.fft.fftshift(np.fft.fft(np.fft.ifftshift(fft2c(volume), 1), axis=1, norm="ortho"), 1)
    heads = [imaging_head(COILS, NX, y, idx_kspace_encode_step_2=z)
             for z in range(nz) for y in range(NY)]
    samples = [kz[:, z, :, y] for z in range(nz) for y in range(NY)]
    ks = read_ismrmrd(_write(tmp_path / "3d.h5", (COILS, NX, NY), heads, samples, enc_z=nz))
    assert ks.shape == (nz, COILS, NX, NY)
    np.testing.assert_allclose(ks.slices(0, nz), fft2c(volume).transpose(1, 0, 2, 3),
                               atol=1e-5)
    under = [(h, s) for h, s in zip(heads, samples, strict=True)
             if h["idx"]["kspace_encode_step_2"] != 1]  # one partition never measured
    with pytest.raises(InputFileError, match="undersampled along kspace_encode_step_2"):
        read_ismrmrd(_write(tmp_path / "3d_under.h5", (COILS, NX, NY), [h for h, _ in under],
                            [s for _, s in under], enc_z=nz))


def test_convert_leaves_nothing_when_a_later_volume_is_bad(tmp_path) -> None:
    path = write_scan(tmp_path / "reps.h5", fft2c(coil_images()), repetitions=2)
    with h5py.File(path, "a") as f:  # the last line of repetition 1 outside the matrix
        last = f["dataset/data"][-1]
        last["head"]["idx"]["kspace_encode_step_1"] = NY + 4
        f["dataset/data"][-1] = last
    out = tmp_path / "out"
    _cli_fails(["convert", str(path), "-o", str(out)], "header disagrees with data", out)
