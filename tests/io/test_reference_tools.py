"""Our readers and writers against the field's reference tools (Debian packages).

- ``ismrmrd-tools``: ``ismrmrd_generate_cartesian_shepp_logan`` writes raw ISMRMRD with the
  reference C++ library; ``ismrmrd_recon_cartesian_2d`` reconstructs it.
- ``bart``: ``phantom``, ``fft``, ``rss``, ``slice``, ``show``.
- ``dcm2niix``: the DICOM-to-NIfTI converter most users run.

``.ci/run`` installs them when it can; each test skips with the reason when its tool is missing.
All data here are synthetic phantoms (the Shepp-Logan and BART's numerical phantom).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from mrirecon.data import Volume
from mrirecon.io import load, save
from mrirecon.io.cfl import read_cfl_array
from mrirecon.recon.zero_filled import ZeroFilled


def _needs(tool: str, package: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which(tool) is None,
                              reason=f"{tool} not found (Debian package {package})")


needs_ismrmrd = _needs("ismrmrd_generate_cartesian_shepp_logan", "ismrmrd-tools")
needs_bart = _needs("bart", "bart")
needs_dcm2niix = _needs("dcm2niix", "dcm2niix")


def _run(*args: str | Path, cwd: Path) -> None:
    subprocess.run([str(a) for a in args], cwd=cwd, check=True, capture_output=True)


def _rss(coil_images: np.ndarray) -> np.ndarray:
    return np.sqrt((np.abs(coil_images) ** 2).sum(axis=0))


@pytest.fixture(scope="module")
def shepp_logan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64x64, 4 coils, 2x readout oversampling, noise 0.05 and a noise scan; recon added."""
    if shutil.which("ismrmrd_generate_cartesian_shepp_logan") is None:
        pytest.skip("ismrmrd-tools not found")
    folder = tmp_path_factory.mktemp("ismrmrd")
    _run("ismrmrd_generate_cartesian_shepp_logan", "-m", "64", "-c", "4", "-O", "2", "-n",
         "0.05", "-C", "-o", "sl.h5", cwd=folder)
    _run("ismrmrd_recon_cartesian_2d", "sl.h5", cwd=folder)  # adds /dataset/cpp
    return folder / "sl.h5"


@needs_ismrmrd
def test_shepp_logan_matches_the_reference_recon(shepp_logan: Path) -> None:
    ks = load(shepp_logan, prewhiten=False)
    assert ks.shape == (1, 4, 64, 64) and ks.mask is None
    assert ks.provenance["raw"]["noise_acquisitions"] == 1
    ours = ZeroFilled()(ks).data[0]
    with h5py.File(shepp_logan) as f:
        reference = np.asarray(f["dataset/cpp/data"][0, 0, 0], dtype=np.float64)
    # the C++ tool: unnormalised FFTW over the oversampled 128x64 grid, stored [y][x]
    reference = reference.T / np.sqrt(128 * 64)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5 * reference.max())


@needs_ismrmrd
def test_shepp_logan_coil_images_are_a_plain_fft_after_oversampling_removal(
        shepp_logan: Path) -> None:
    with h5py.File(shepp_logan) as f:
        table = f["dataset/data"][()]
    imaging = table[(table["head"]["flags"] & (1 << 18)) == 0]
    grid = np.zeros((4, 128, 64), np.complex64)  # coils, readout, phase
    for acq in imaging:  # full lines centred on sample 64: no placement to work out
        grid[:, :, acq["head"]["idx"]["kspace_encode_step_1"]] = \
            acq["data"].view(np.complex64).reshape(4, 128)
    axes = (-2, -1)
    images = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(grid, axes), norm="ortho"), axes)
    expected = images[:, 32:96]  # the central FOV (orthonormal FFTs: no rescaling)
    ks = load(shepp_logan, prewhiten=False)
    ours = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(ks.slice(0), axes), norm="ortho"), axes)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


@needs_ismrmrd
def test_shepp_logan_prewhitened_noise_is_white(shepp_logan: Path) -> None:
    whitened, raw = load(shepp_logan), load(shepp_logan, prewhiten=False)
    assert whitened.provenance["raw"]["prewhitened"]
    # the generator's noise is white, std 0.05 in the real and in the imaginary part: whitening
    # only rescales it to unit variance per complex sample, by 1 / (0.05 sqrt 2), to within the
    # noise scan's estimate of the covariance (one 128-sample line per coil)
    scaled = raw.slice(0) / (0.05 * np.sqrt(2))
    np.testing.assert_allclose(whitened.slice(0), scaled, rtol=0,
                               atol=0.25 * np.abs(scaled).max())
    ratio = np.linalg.norm(whitened.slice(0)) / np.linalg.norm(scaled)
    assert ratio == pytest.approx(1.0, abs=0.1)


@needs_ismrmrd
def test_undersampled_shepp_logan_mask_is_the_acquired_lines(tmp_path: Path) -> None:
    _run("ismrmrd_generate_cartesian_shepp_logan", "-m", "64", "-c", "4", "-a", "2", "-w",
         "16", "-r", "2", "-o", "acc.h5", cwd=tmp_path)
    with h5py.File(tmp_path / "acc.h5") as f:
        heads = f["dataset/data"]["head"]
        acquired = sorted({int(h["idx"]["kspace_encode_step_1"]) for h in heads
                           if h["idx"]["repetition"] == 1})
    ks = load(tmp_path / "acc.h5", series="repetition=1")
    assert np.flatnonzero(ks.mask[0]).tolist() == acquired  # centre 32 = step1 centre 32
    assert len(acquired) == 40  # every 2nd line plus a 16-line calibration block


@needs_bart
def test_bart_phantom_zero_filled_equals_bart_fft_and_rss(tmp_path: Path) -> None:
    _run("bart", "phantom", "-k", "-s", "8", "pk", cwd=tmp_path)
    _run("bart", "fft", "-u", "-i", "3", "pk", "img", cwd=tmp_path)
    _run("bart", "rss", "8", "img", "rss", cwd=tmp_path)
    ks = load(tmp_path / "pk.cfl")
    assert ks.shape == (1, 8, 128, 128)
    ours = ZeroFilled()(ks).data[0]
    bart = np.abs(np.asarray(read_cfl_array(tmp_path / "rss.cfl")))
    np.testing.assert_allclose(ours, bart, rtol=0, atol=1e-5 * bart.max())


@needs_bart
def test_bart_reads_our_cfl_with_the_right_dims(tmp_path: Path) -> None:
    data = np.random.default_rng(0).random((3, 10, 7)).astype(np.float32)
    save(Volume(data), tmp_path / "ours.cfl")
    shown = subprocess.run(["bart", "show", "-m", "ours"], cwd=tmp_path, check=True,
                           capture_output=True, text=True).stdout
    dims = next(line for line in shown.splitlines() if line.startswith("AoD:")).split()[1:]
    assert dims == ["10", "7", *["1"] * 11, "3", "1", "1"]
    _run("bart", "slice", "13", "1", "ours", "one", cwd=tmp_path)  # BART's own slicing
    np.testing.assert_array_equal(np.asarray(read_cfl_array(tmp_path / "one.cfl")).real,
                                  data[1])


@needs_dcm2niix
def test_dcm2niix_affine_equals_ours(tmp_path: Path) -> None:
    # an oblique, anisotropic 4-slice volume: rotation about two axes, 0.8 x 0.6 x 3 mm
    angle_a, angle_b = np.deg2rad(20), np.deg2rad(-35)
    rot_x = np.array([[1, 0, 0], [0, np.cos(angle_a), -np.sin(angle_a)],
                      [0, np.sin(angle_a), np.cos(angle_a)]])
    rot_z = np.array([[np.cos(angle_b), -np.sin(angle_b), 0],
                      [np.sin(angle_b), np.cos(angle_b), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot_z @ rot_x @ np.diag([3.0, 0.8, 0.6])
    affine[:3, 3] = [-40.0, 25.5, 12.0]
    data = np.random.default_rng(3).random((4, 12, 10)).astype(np.float32) * 1000
    volume = Volume(data, affine)
    save(volume, tmp_path / "dicom", fmt="dicom")
    [ours] = [p for p in save(volume, tmp_path / "ours.nii.gz") if p.name.endswith(".nii.gz")]
    out = tmp_path / "dcm2niix"
    out.mkdir()
    _run("dcm2niix", "-z", "n", "-f", "converted", "-o", out, tmp_path / "dicom", cwd=tmp_path)
    theirs = nib.as_closest_canonical(nib.load(out / "converted.nii"))
    mine = nib.as_closest_canonical(nib.load(ours))
    np.testing.assert_allclose(theirs.affine, mine.affine, atol=1e-3)
    # and the same pixels land in the same voxels (DICOM stores integers: within rounding)
    np.testing.assert_allclose(np.asarray(theirs.dataobj, float), mine.get_fdata(),
                               atol=1e-3 * data.max() + 1)
