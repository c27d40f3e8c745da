"""Metrics against scikit-image, called exactly as fastMRI's ``fastmri/evaluate.py`` calls it."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import mrirecon.metrics as metrics
from mrirecon.metrics import (
    nmse,
    psnr,
    ssim,
    ssim_map,
    ssim_per_slice,
    summarize,
    volume_metrics,
)

# ---------------------------------------------------------------------------------------------
# references: fastmri/evaluate.py, verbatim in substance


def ref_nmse(gt: np.ndarray, pred: np.ndarray) -> float:
    return float(np.linalg.norm(gt - pred) ** 2 / np.linalg.norm(gt) ** 2)


def ref_psnr(gt: np.ndarray, pred: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(gt, pred, data_range=gt.max()))


def ref_ssim(gt: np.ndarray, pred: np.ndarray) -> float:
    """fastMRI: default win_size=7, gaussian_weights=False, data range = volume max."""
    maxval = gt.max()
    values = [structural_similarity(gt[i], pred[i], data_range=maxval) for i in range(gt.shape[0])]
    return float(np.mean(values))


def assert_parity(gt: np.ndarray, pred: np.ndarray) -> None:
    got = volume_metrics(gt, pred)
    assert got["ssim"] == pytest.approx(ref_ssim(gt, pred), rel=0, abs=1e-6)
    assert got["psnr"] == pytest.approx(ref_psnr(gt, pred), rel=1e-6)
    assert got["nmse"] == pytest.approx(ref_nmse(gt, pred), rel=1e-6)
    assert ssim(gt, pred) == got["ssim"]
    assert psnr(gt, pred) == got["psnr"]
    assert nmse(gt, pred) == got["nmse"]


def degrade(gt: np.ndarray, rng: np.random.Generator, noise: float, blur: float) -> np.ndarray:
    out = gaussian_filter(gt, sigma=(0, blur, blur)) if blur else gt.copy()
    return out + noise * gt.std() * rng.standard_normal(gt.shape)


# ---------------------------------------------------------------------------------------------
# parity with scikit-image


@pytest.mark.parametrize("shape", [(1, 7, 7), (3, 32, 32), (4, 33, 20), (2, 17, 41), (5, 64, 9)])
def test_parity_random_volumes(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    gt = rng.random(shape) * 3.0
    pred = gt + 0.2 * rng.standard_normal(shape)
    assert_parity(gt, pred)


@pytest.fixture(scope="module")
def dicom_volume() -> np.ndarray:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    path = get_testdata_file("MR_small.dcm", download=False)
    if path is None:
        pytest.skip("pydicom test file MR_small.dcm not installed")
    img = pydicom.dcmread(path).pixel_array.astype(np.float64)
    # three slices with different maxima and structure
    return np.stack([img, img[::-1].copy() * 0.8, np.rot90(img).copy() * 1.1])


@pytest.mark.parametrize(("noise", "blur"), [(0.05, 0.0), (0.0, 1.0), (0.1, 1.5)])
def test_parity_dicom_volume(dicom_volume: np.ndarray, noise: float, blur: float) -> None:
    rng = np.random.default_rng(7)
    assert_parity(dicom_volume, degrade(dicom_volume, rng, noise, blur))


def test_parity_nifti_volume() -> None:
    nib = pytest.importorskip("nibabel")
    path = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
    if not path.exists():
        pytest.skip("nibabel's example4d.nii.gz not installed")
    data = np.asarray(nib.load(path).dataobj[..., 0], dtype=np.float64)
    gt = np.moveaxis(data, -1, 0)  # (slices, rows, cols)
    pred = degrade(gt, np.random.default_rng(3), 0.05, 0.7)
    assert_parity(gt, pred)


def test_float32_and_tensor_inputs_agree() -> None:
    rng = np.random.default_rng(1)
    gt = rng.random((2, 16, 16)).astype(np.float32)
    pred = (gt + 0.1 * rng.standard_normal(gt.shape)).astype(np.float32)
    from_numpy = volume_metrics(gt, pred)
    from_torch = volume_metrics(torch.from_numpy(gt), torch.from_numpy(pred))
    assert from_numpy == from_torch
    # float64 computation: matches scikit-image on the float64-converted inputs
    assert_parity(gt.astype(np.float64), pred.astype(np.float64))
    assert from_numpy["ssim"] == pytest.approx(ref_ssim(gt, pred), abs=1e-6)  # skimage in float32


def test_ssim_map_is_skimage_map_cropped() -> None:
    rng = np.random.default_rng(2)
    gt, pred = rng.random((19, 23)), rng.random((19, 23))
    _, full = structural_similarity(gt, pred, data_range=1.0, full=True)
    ours = ssim_map(gt, pred, 1.0, dtype=torch.float64)
    assert ours.shape == (1, 13, 17)
    np.testing.assert_allclose(ours[0].numpy(), full[3:-3, 3:-3], rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# the volume data range


def test_volume_max_not_per_slice_max() -> None:
    rng = np.random.default_rng(4)
    gt = rng.random((3, 24, 24)) * np.array([1.0, 4.0, 10.0])[:, None, None]
    pred = gt + 0.3 * rng.standard_normal(gt.shape)
    vmax = gt.max()

    expected_psnr = peak_signal_noise_ratio(gt, pred, data_range=vmax)
    per_slice_psnr = np.mean(
        [peak_signal_noise_ratio(g, p, data_range=g.max()) for g, p in zip(gt, pred, strict=True)]
    )
    assert psnr(gt, pred) == pytest.approx(expected_psnr, rel=1e-9)
    assert psnr(gt, pred, data_range=vmax) == pytest.approx(expected_psnr, rel=1e-9)
    assert abs(psnr(gt, pred) - per_slice_psnr) > 0.5

    per_slice_ssim = np.mean(
        [structural_similarity(g, p, data_range=g.max()) for g, p in zip(gt, pred, strict=True)]
    )
    assert ssim(gt, pred) == pytest.approx(ref_ssim(gt, pred), abs=1e-9)
    assert abs(ssim(gt, pred) - per_slice_ssim) > 1e-3


def test_two_d_image_is_one_slice() -> None:
    rng = np.random.default_rng(5)
    gt = rng.random((20, 15)) * 2
    pred = gt + 0.1 * rng.standard_normal(gt.shape)
    expected = structural_similarity(gt, pred, data_range=gt.max())
    assert ssim(gt, pred) == pytest.approx(expected, abs=1e-9)
    assert ssim(gt, pred) == ssim(gt[None], pred[None])
    assert volume_metrics(gt, pred) == volume_metrics(gt[None], pred[None])


# ---------------------------------------------------------------------------------------------
# edge cases and errors


def test_identical_inputs() -> None:
    gt = np.random.default_rng(6).random((2, 12, 12))
    got = volume_metrics(gt, gt.copy())
    assert got["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert got["nmse"] == 0.0
    assert got["psnr"] == math.inf
    assert set(got) == {"nmse", "psnr", "ssim"}
    assert all(isinstance(v, float) for v in got.values())


def test_mismatched_shapes_raise() -> None:
    with pytest.raises(ValueError, match=r"pred has shape \(2, 8, 9\) but target has shape"):
        ssim(np.zeros((2, 8, 8)), np.zeros((2, 8, 9)))
    for fn in (nmse, psnr, volume_metrics):
        with pytest.raises(ValueError, match="pred has shape"):
            fn(np.ones((2, 8, 8)), np.ones((8, 8)))


def test_complex_raises() -> None:
    gt = np.ones((1, 8, 8))
    for fn in (nmse, psnr, ssim, volume_metrics):
        with pytest.raises(ValueError, match="complex"):
            fn(gt, gt.astype(np.complex64))
    with pytest.raises(ValueError, match="complex"):
        ssim_per_slice(torch.ones(1, 8, 8, dtype=torch.complex64), torch.ones(1, 8, 8), 1.0)


def test_nan_raises() -> None:
    gt = np.ones((1, 8, 8))
    bad = gt.copy()
    bad[0, 3, 3] = np.nan
    for fn in (nmse, psnr, ssim, volume_metrics):
        with pytest.raises(ValueError, match="pred contains NaN"):
            fn(gt, bad)
        with pytest.raises(ValueError, match="target contains NaN"):
            fn(bad, gt)


def test_bad_ndim_and_small_images_raise() -> None:
    with pytest.raises(ValueError, match=r"\(2, 2, 8, 8\)"):
        ssim(np.ones((2, 2, 8, 8)), np.ones((2, 2, 8, 8)))
    with pytest.raises(ValueError, match=r"\(8,\)"):
        ssim(np.ones(8), np.ones(8))
    with pytest.raises(ValueError, match="smaller than the 7x7"):
        ssim(np.ones((2, 6, 30)), np.ones((2, 6, 30)))
    with pytest.raises(ValueError, match="one channel"):
        ssim_per_slice(torch.ones(2, 2, 8, 8), torch.ones(2, 2, 8, 8), 1.0)
    with pytest.raises(ValueError, match="data_range has 3 values"):
        ssim_per_slice(torch.ones(2, 8, 8), torch.ones(2, 8, 8), torch.ones(3))


# ---------------------------------------------------------------------------------------------
# the differentiable path


@pytest.mark.parametrize("channel_dim", [False, True])
def test_ssim_per_slice_batch_with_per_sample_range(channel_dim: bool) -> None:
    rng = np.random.default_rng(8)
    gt = rng.random((3, 16, 18)) * np.array([1.0, 2.0, 5.0])[:, None, None]
    pred = gt + 0.2 * rng.standard_normal(gt.shape)
    ranges = np.array([1.5, 2.5, 6.0])
    expected = [
        structural_similarity(gt[i], pred[i], data_range=ranges[i], win_size=7) for i in range(3)
    ]
    g, p = torch.from_numpy(gt), torch.from_numpy(pred)
    if channel_dim:
        g, p = g[:, None], p[:, None]
    got = ssim_per_slice(g, p, torch.from_numpy(ranges))
    assert got.shape == (3,)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-9)


def test_ssim_per_slice_keeps_float32() -> None:
    g = torch.rand(2, 1, 10, 10)
    assert ssim_per_slice(g, g + 0.1, 1.0).dtype == torch.float32


def test_gradcheck() -> None:
    gen = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 8, 9, dtype=torch.float64, generator=gen, requires_grad=True)
    pred = torch.rand(2, 8, 9, dtype=torch.float64, generator=gen, requires_grad=True)
    data_range = torch.tensor([1.0, 1.2], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a, b: ssim_per_slice(a, b, data_range), (gt, pred), fast_mode=True
    )


def test_ssim_loss_decreases(device: str) -> None:
    gen = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 1, 16, 16, generator=gen).to(device)
    pred = (gt + 0.3 * torch.rand(2, 1, 16, 16, generator=gen).to(device)).requires_grad_()
    data_range = gt.amax(dim=(1, 2, 3))
    opt = torch.optim.SGD([pred], lr=1.0)
    losses = []
    for _ in range(5):
        loss = 1 - ssim_per_slice(gt, pred, data_range).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert pred.grad is not None and pred.grad.device.type == device
    assert losses[-1] < losses[0]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu() -> None:
    rng = np.random.default_rng(9)
    gt = rng.random((3, 32, 30))
    pred = gt + 0.1 * rng.standard_normal(gt.shape)
    cpu = volume_metrics(gt, pred)
    gpu = volume_metrics(torch.from_numpy(gt).cuda(), torch.from_numpy(pred).cuda())
    for key in cpu:
        assert gpu[key] == pytest.approx(cpu[key], rel=1e-9)
    assert cpu["ssim"] == pytest.approx(ref_ssim(gt, pred), abs=1e-6)


# ---------------------------------------------------------------------------------------------
# aggregation


def test_summarize_against_hand_computation() -> None:
    values = [0.70, 0.80, 0.90]
    # mean 0.8, sample std 0.1, t_{0.975, 2} = 4.302652729911275
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    got = summarize(values)
    assert got["n"] == 3
    assert got["mean"] == pytest.approx(0.8, rel=1e-12)
    assert got["std"] == pytest.approx(0.1, rel=1e-12)
    assert got["ci95_low"] == pytest.approx(0.8 - half, rel=1e-9)
    assert got["ci95_high"] == pytest.approx(0.8 + half, rel=1e-9)


def test_summarize_single_value_and_errors() -> None:
    assert summarize([31.5]) == {
        "mean": 31.5,
        "std": 0.0,
        "ci95_low": 31.5,
        "ci95_high": 31.5,
        "n": 1,
    }
    with pytest.raises(ValueError, match="at least one"):
        summarize([])
    with pytest.raises(ValueError, match="NaN"):
        summarize([1.0, float("nan")])


def test_summarize_without_scipy_uses_normal_quantile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # makes the import fail
    got = summarize(np.arange(10.0))
    half = 1.959963984540054 * np.std(np.arange(10.0), ddof=1) / math.sqrt(10)
    assert got["ci95_high"] == pytest.approx(4.5 + half, rel=1e-12)


def test_module_imports_no_cli_or_scipy_at_top_level() -> None:
    tree = ast.parse(Path(metrics.__file__).read_text())
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top.add(node.module.split(".")[0])
    assert top.isdisjoint({"typer", "rich", "scipy", "skimage"})


# ---------------------------------------------------------------------------------------------
# calibration of a predicted standard deviation


def test_calibration_correlation_is_numpys_pearson() -> None:
    rng = np.random.default_rng(0)
    reference = rng.random((3, 20, 24))
    std = rng.uniform(0.01, 0.2, reference.shape)
    mean = reference + std * rng.standard_normal(reference.shape) + 0.01 * rng.random(std.shape)
    got = metrics.calibration(reference, mean, std)
    expected = np.corrcoef(std.ravel(), np.abs(mean - reference).ravel())[0, 1]
    assert got["corr_std_error"] == pytest.approx(expected, rel=1e-12)
    assert got["mean_std"] == pytest.approx(std.mean(), rel=1e-12)
    assert set(got) == set(metrics.CALIBRATION_KEYS)
    # float32 arrays and tensors give the same numbers
    as32 = metrics.calibration(*(torch.as_tensor(a, dtype=torch.float32)
                                 for a in (reference, mean, std)))
    assert as32["corr_std_error"] == pytest.approx(expected, rel=1e-5)


def test_gaussian_corr_ceiling_is_the_oracle_maps_correlation() -> None:
    rng = np.random.default_rng(3)
    sigma = rng.lognormal(0.0, 0.7, 400_000)  # an uneven true std: a map could find it
    error = sigma * rng.standard_normal(sigma.size)
    ceiling = metrics.gaussian_corr_ceiling(error)
    oracle = np.corrcoef(sigma, np.abs(error))[0, 1]
    assert 0.3 < ceiling < 1 and ceiling == pytest.approx(oracle, abs=0.01)
    # other maps of the same errors do worse: a distorted sigma, a noisy one
    for other in (sigma**2, sigma * rng.lognormal(0.0, 0.5, sigma.size)):
        assert np.corrcoef(other, np.abs(error))[0, 1] < ceiling - 0.02
    # errors as even as one Gaussian: nothing to predict (the moment estimate's noise aside)
    even = metrics.gaussian_corr_ceiling(0.3 * rng.standard_normal(400_000))
    assert 0 <= even < 0.1
    assert np.isnan(metrics.gaussian_corr_ceiling(np.zeros(10)))
    # calibration() reports it, whatever the std
    got = metrics.calibration(np.zeros((1, 100, 100)), error[:10_000].reshape(1, 100, 100),
                              np.ones((1, 100, 100)))
    assert got["corr_ceiling"] == pytest.approx(
        metrics.gaussian_corr_ceiling(error[:10_000]), rel=1e-9)


def test_calibration_coverage_of_exactly_gaussian_errors() -> None:
    rng = np.random.default_rng(1)
    std = rng.uniform(0.05, 2.0, (4, 256, 256))
    reference = rng.random(std.shape)
    mean = reference + std * rng.standard_normal(std.shape)  # error ~ N(0, std^2) exactly
    got = metrics.calibration(reference, mean, std)
    assert got["within_1std"] == pytest.approx(0.6827, abs=0.01)
    assert got["within_2std"] == pytest.approx(0.9545, abs=0.01)
    assert got["corr_std_error"] > 0.5  # larger std, larger error


def test_calibration_with_zero_std_counts_only_exact_zeros() -> None:
    rng = np.random.default_rng(2)
    reference = rng.random((2, 16, 16))
    mean = reference.copy()
    wrong = rng.random(reference.shape) < 0.3
    mean[wrong] += 0.5
    got = metrics.calibration(reference, mean, np.zeros_like(reference))
    exact = float(np.mean(~wrong))
    assert got["within_1std"] == got["within_2std"] == pytest.approx(exact, rel=1e-12)
    assert math.isnan(got["corr_std_error"]) and got["mean_std"] == 0.0
    # a constant error has no variance either (integers + 0.5: exact in floating point)
    whole = rng.integers(0, 8, reference.shape).astype(np.float64)
    assert math.isnan(metrics.calibration(whole, whole + 0.5,
                                          rng.random(whole.shape))["corr_std_error"])


@pytest.mark.parametrize("std, message", [
    (np.ones((2, 8, 9)), r"std has shape \(2, 8, 9\) but target has shape \(2, 8, 8\)"),
    (-np.ones((2, 8, 8)), "std has negative values"),
    (np.full((2, 8, 8), np.nan), "std contains NaN"),
])
def test_calibration_rejects_bad_std(std: np.ndarray, message: str) -> None:
    reference = np.ones((2, 8, 8))
    with pytest.raises(ValueError, match=message):
        metrics.calibration(reference, reference, std)
    with pytest.raises(ValueError, match="complex"):
        metrics.calibration(reference, reference + 0j, np.ones((2, 8, 8)))


def test_reliability_curve_of_calibrated_pixels_follows_the_diagonal() -> None:
    rng = np.random.default_rng(3)
    std = np.concatenate([np.zeros(5_000), rng.uniform(0.1, 3.0, 95_000)])  # ties at zero
    error = np.abs(std * rng.standard_normal(std.size))
    x, y = metrics.reliability_curve(std, error, bins=10)
    assert x.shape == y.shape == (10,) and np.all(np.diff(x) >= 0)
    np.testing.assert_allclose(y[1:], x[1:], rtol=0.05)
    assert x[0] < 0.1  # the zero background sits in the first bin
    small_x, _ = metrics.reliability_curve([0.2, 0.1], [0.0, 0.3], bins=10)
    np.testing.assert_array_equal(small_x, [0.1, 0.2])  # one bin per pixel
    with pytest.raises(ValueError, match="std has 2 pixels but error has 1"):
        metrics.reliability_curve([0.1, 0.2], [0.1])
