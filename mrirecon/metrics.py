"""Image-quality metrics with the fastMRI evaluation protocol.

The protocol is that of the fastMRI benchmark (Zbontar et al. 2018, "fastMRI: An Open Dataset and
Benchmarks for Accelerated MRI", arXiv:1811.08839), as implemented in ``fastmri/evaluate.py`` of
facebookresearch/fastMRI. Every metric is computed **per volume** of layout ``(slices, rows, cols)``
(see the layout table in :mod:`mrirecon.data`) on real magnitude images, then averaged over volumes
(:func:`summarize`):

- NMSE = ``||gt - pred||^2 / ||gt||^2`` over the whole volume.
- PSNR = ``10 log10(R^2 / MSE)`` over the whole volume, with ``R = gt.max()`` of the volume.
- SSIM = mean over slices of the 2-D SSIM of scikit-image's
  ``structural_similarity(gt[i], pred[i], data_range=gt.max())`` with its defaults: a 7x7 uniform
  window, ``K1 = 0.01``, ``K2 = 0.03``, sample covariance (normalised by ``NP / (NP - 1)``, with
  ``NP = 49``), and the local SSIM map averaged over the "valid" region only (a
  ``(win_size - 1) // 2 = 3`` pixel border is cropped). The data range is the maximum of the whole
  ground-truth volume, the same for every slice.

Conventions that differ elsewhere, and which we do *not* follow: DIRECT normalises per slice (each
slice's own maximum as data range for PSNR and SSIM), which gives different numbers whenever slice
maxima differ; Wang et al. (2004) and ``gaussian_weights=True`` use an 11-tap Gaussian window
(sigma 1.5) with population covariance; some codebases pad the SSIM map instead of cropping it.

For posterior samplers, :func:`calibration` scores a predicted pixelwise standard deviation
against the actual error of the mean (correlation and 1/2-sigma coverage, per volume), and
:func:`reliability_curve` bins pixels by predicted std for a reliability plot.

There is one implementation, in torch: it runs on any device, computes in float64 by default for
exact parity with scikit-image (tested to 1e-6), and :func:`ssim_per_slice` is differentiable so a
training loss can use it (``loss = 1 - ssim_per_slice(gt, pred, data_range).mean()``). Inputs may be
torch tensors or numpy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "CALIBRATION_KEYS",
    "ERROR_ONLY_KEYS",
    "calibration",
    "gaussian_corr_ceiling",
    "nmse",
    "psnr",
    "ssim",
    "ssim_map",
    "reliability_curve",
    "ssim_per_slice",
    "summarize",
    "volume_metrics",
]

ArrayLike = torch.Tensor | np.ndarray

WIN_SIZE = 7
K1 = 0.01
K2 = 0.03
#: The keys :func:`calibration` returns, in table order.
CALIBRATION_KEYS = ("corr_std_error", "corr_ceiling", "within_1std", "within_2std",
                    "within_3std", "calibration_error", "mean_std")
#: The keys of :func:`calibration` that depend on the errors alone, not on the std.
ERROR_ONLY_KEYS = frozenset({"corr_ceiling"})


# --------------------------------------------------------------------------------------------------
# input handling


def _to_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    """Convert to a tensor (no copy where possible); reject complex inputs."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        a = np.asarray(x)
        if a.dtype.byteorder not in "=|":  # e.g. big-endian pixel data; torch needs native order
            a = a.astype(a.dtype.newbyteorder("="))
        t = torch.as_tensor(np.ascontiguousarray(a))
    if t.is_complex():
        raise ValueError(
            f"{name} is complex ({t.dtype}); metrics take real magnitude images, "
            "pass abs(image) instead"
        )
    return t


def _pair(
    gt: ArrayLike, pred: ArrayLike, dtype: torch.dtype | None, check_finite: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a (ground truth, prediction) pair and cast it to a common dtype and device.

    ``dtype=None`` keeps a floating dtype (half precision is promoted to float32, integers become
    float32). The device is that of ``gt`` if it is a tensor, else that of ``pred``.
    """
    g = _to_tensor(gt, "target")
    p = _to_tensor(pred, "pred")
    if g.shape != p.shape:
        raise ValueError(f"pred has shape {tuple(p.shape)} but target has shape {tuple(g.shape)}")
    if dtype is None:
        dtype = torch.promote_types(g.dtype, p.dtype)
        if not dtype.is_floating_point or dtype in (torch.float16, torch.bfloat16):
            dtype = torch.float32
    device = g.device if isinstance(gt, torch.Tensor) else p.device
    g = g.to(device=device, dtype=dtype)
    p = p.to(device=device, dtype=dtype)
    if check_finite:
        for name, t in (("target", g), ("pred", p)):
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} contains NaN or Inf values")
    return g, p


def _volume(t: torch.Tensor) -> torch.Tensor:
    """View a 2-D image as a one-slice volume; require ``(slices, rows, cols)`` otherwise."""
    if t.ndim == 2:
        return t.unsqueeze(0)
    if t.ndim != 3:
        raise ValueError(
            f"expected a volume (slices, rows, cols) or an image (rows, cols), got shape "
            f"{tuple(t.shape)}"
        )
    return t


def _default_range(gt: torch.Tensor, data_range: float | None) -> torch.Tensor:
    if data_range is None:
        return gt.max()
    return torch.as_tensor(data_range, dtype=gt.dtype, device=gt.device)


# --------------------------------------------------------------------------------------------------
# differentiable core


def ssim_map(
    gt: ArrayLike,
    pred: ArrayLike,
    data_range: float | ArrayLike,
    *,
    win_size: int = WIN_SIZE,
    k1: float = K1,
    k2: float = K2,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Local SSIM map over the valid region, per slice; differentiable.

    Parameters
    ----------
    gt, pred
        Real images of shape ``(rows, cols)``, ``(batch, rows, cols)`` or
        ``(batch, 1, rows, cols)``.
    data_range
        ``R`` in ``C1 = (k1 R)^2``, ``C2 = (k2 R)^2``: a scalar, or one value per sample (any shape
        with ``batch`` elements). The fastMRI protocol uses the maximum of the ground-truth volume.
    win_size
        Odd side of the uniform window (7 in fastMRI / scikit-image).
    k1, k2
        SSIM stabilising constants.
    dtype
        Computation dtype; ``None`` keeps the input's floating dtype (half precision -> float32).

    Returns
    -------
    torch.Tensor
        ``(batch, rows - win_size + 1, cols - win_size + 1)``: the SSIM map of scikit-image's
        ``structural_similarity(..., full=True)`` with its ``(win_size - 1) // 2`` border cropped.
        For a 2-D input, ``batch == 1``.

    Notes
    -----
    With local means ``ux, uy`` and sample (co)variances ``vx, vy, vxy`` (normalised by
    ``NP / (NP - 1)``, ``NP = win_size^2``) over each window,
    ``SSIM = (2 ux uy + C1)(2 vxy + C2) / ((ux^2 + uy^2 + C1)(vx + vy + C2))``.
    Only windows lying fully inside the image are evaluated, so no padding convention enters.
    No NaN check is made here (it would synchronise the device every training step).
    """
    g, p = _pair(gt, pred, dtype, check_finite=False)
    if g.ndim == 4:
        if g.shape[1] != 1:
            raise ValueError(
                f"expected (batch, 1, rows, cols) with one channel, got shape {tuple(g.shape)}"
            )
        g, p = g[:, 0], p[:, 0]
    elif g.ndim == 2:
        g, p = g[None], p[None]
    elif g.ndim != 3:
        raise ValueError(
            "expected (rows, cols), (batch, rows, cols) or (batch, 1, rows, cols), got shape "
            f"{tuple(g.shape)}"
        )
    if win_size < 2 or win_size % 2 == 0:
        raise ValueError(f"win_size must be odd and at least 3, got {win_size}")
    if min(g.shape[-2:]) < win_size:
        raise ValueError(
            f"images of shape {tuple(g.shape[-2:])} are smaller than the {win_size}x{win_size} "
            "SSIM window"
        )
    batch = g.shape[0]
    r = torch.as_tensor(data_range, dtype=g.dtype, device=g.device)
    if r.numel() == 1:
        r = r.reshape(1, 1, 1)
    elif r.numel() == batch:
        r = r.reshape(batch, 1, 1)
    else:
        raise ValueError(
            f"data_range has {r.numel()} values but the batch has {batch} images; "
            "give a scalar or one value per image"
        )
    c1 = (k1 * r) ** 2
    c2 = (k2 * r) ** 2

    # One pooling pass over the five moment images: (5 * batch, 1, rows, cols).
    stack = torch.stack((g, p, g * g, p * p, g * p), dim=0).reshape(5 * batch, 1, *g.shape[-2:])
    means = F.avg_pool2d(stack, win_size, stride=1)  # valid windows only: no padding convention
    ux, uy, uxx, uyy, uxy = means.reshape(5, batch, *means.shape[-2:]).unbind(0)
    npix = win_size * win_size
    cov_norm = npix / (npix - 1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    a1 = 2 * ux * uy + c1
    a2 = 2 * vxy + c2
    b1 = ux * ux + uy * uy + c1
    b2 = vx + vy + c2
    return (a1 * a2) / (b1 * b2)


def ssim_per_slice(
    gt: ArrayLike,
    pred: ArrayLike,
    data_range: float | ArrayLike,
    *,
    win_size: int = WIN_SIZE,
    k1: float = K1,
    k2: float = K2,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Mean SSIM of each slice (or batch sample); differentiable, for evaluation and training.

    Parameters are those of :func:`ssim_map`. Returns a tensor of shape ``(batch,)`` (``(1,)`` for a
    2-D input). Each value equals scikit-image's
    ``structural_similarity(gt[i], pred[i], data_range=R_i, win_size=win_size)``. A training loss
    is ``1 - ssim_per_slice(gt, pred, data_range).mean()``, with ``data_range`` the per-sample
    volume maximum as fastMRI's ``SSIMLoss`` takes it.
    """
    return ssim_map(gt, pred, data_range, win_size=win_size, k1=k1, k2=k2, dtype=dtype).mean(
        dim=(-2, -1)
    )


# --------------------------------------------------------------------------------------------------
# per-volume metrics (fastMRI protocol)


def _nmse(g: torch.Tensor, p: torch.Tensor) -> float:
    return float(torch.sum((g - p) ** 2) / torch.sum(g * g))


def _psnr(g: torch.Tensor, p: torch.Tensor, data_range: float | None) -> float:
    r = _default_range(g, data_range)
    mse = torch.mean((g - p) ** 2)
    return float(10 * torch.log10(r * r / mse))


def _ssim(g: torch.Tensor, p: torch.Tensor, data_range: float | None) -> float:
    g, p = _volume(g), _volume(p)
    r = _default_range(g, data_range)
    return float(ssim_per_slice(g, p, r).mean())


def nmse(gt: ArrayLike, pred: ArrayLike, *, dtype: torch.dtype = torch.float64) -> float:
    """Normalised mean squared error ``||gt - pred||^2 / ||gt||^2`` over the whole volume.

    Parameters
    ----------
    gt, pred
        Real arrays or tensors of the same shape, normally a volume ``(slices, rows, cols)``; the
        sum runs over every element, so any shape is accepted.
    dtype
        Computation dtype (float64 by default).

    Returns
    -------
    float
        The NMSE; ``nan`` if ``gt`` and ``pred`` are both all zero, ``inf`` if only ``gt`` is.

    Raises
    ------
    ValueError
        On mismatched shapes, complex inputs, or NaN/Inf values.
    """
    return _nmse(*_pair(gt, pred, dtype, check_finite=True))


def psnr(
    gt: ArrayLike,
    pred: ArrayLike,
    data_range: float | None = None,
    *,
    dtype: torch.dtype = torch.float64,
) -> float:
    """Peak signal-to-noise ratio ``10 log10(R^2 / MSE)`` in dB over the whole volume.

    Parameters
    ----------
    gt, pred
        Real arrays or tensors of the same shape (normally ``(slices, rows, cols)``).
    data_range
        ``R``; by default ``gt.max()`` of the whole volume (fastMRI), not a per-slice maximum.
    dtype
        Computation dtype (float64 by default).

    Returns
    -------
    float
        PSNR in dB; ``inf`` when ``pred == gt``.

    Raises
    ------
    ValueError
        On mismatched shapes, complex inputs, or NaN/Inf values.
    """
    g, p = _pair(gt, pred, dtype, check_finite=True)
    return _psnr(g, p, data_range)


def ssim(
    gt: ArrayLike,
    pred: ArrayLike,
    data_range: float | None = None,
    *,
    dtype: torch.dtype = torch.float64,
) -> float:
    """Structural similarity of a volume: the mean over slices of 2-D SSIM (fastMRI protocol).

    Parameters
    ----------
    gt, pred
        Real volumes ``(slices, rows, cols)``. A 2-D image ``(rows, cols)`` is treated as a volume
        of one slice (so its SSIM is the 2-D SSIM of that image, with ``R = gt.max()`` of the
        image).
    data_range
        ``R``; by default ``gt.max()`` of the whole volume, the same value for every slice.
    dtype
        Computation dtype (float64 by default).

    Returns
    -------
    float
        ``mean_i structural_similarity(gt[i], pred[i], data_range=R)`` with a 7x7 uniform window,
        ``K1 = 0.01``, ``K2 = 0.03``, sample covariance and the valid-region mean (see the module
        docstring); 1 for identical inputs.

    Raises
    ------
    ValueError
        On mismatched shapes, complex inputs, NaN/Inf values, inputs that are neither 2-D nor 3-D,
        or images smaller than the window.
    """
    g, p = _pair(gt, pred, dtype, check_finite=True)
    return _ssim(g, p, data_range)


def volume_metrics(
    gt: ArrayLike, pred: ArrayLike, *, dtype: torch.dtype = torch.float64
) -> dict[str, float]:
    """NMSE, PSNR and SSIM of one volume with the fastMRI protocol (validated once).

    Parameters
    ----------
    gt, pred
        Real volumes ``(slices, rows, cols)`` (or one 2-D image, see :func:`ssim`).
    dtype
        Computation dtype (float64 by default).

    Returns
    -------
    dict
        ``{"nmse": float, "psnr": float, "ssim": float}``.
    """
    g, p = _pair(gt, pred, dtype, check_finite=True)
    _volume(g)  # reject bad shapes before any work
    return {"nmse": _nmse(g, p), "psnr": _psnr(g, p, None), "ssim": _ssim(g, p, None)}


# --------------------------------------------------------------------------------------------------
# calibration of a predicted uncertainty


#: ``P(|Z| <= k)`` for a standard normal ``Z``: the coverage of ``k`` standard deviations.
GAUSSIAN_COVERAGE = {k: math.erf(k / math.sqrt(2)) for k in (1, 2, 3)}


def calibration(
    reference: ArrayLike,
    mean: ArrayLike,
    std: ArrayLike,
    *,
    dtype: torch.dtype = torch.float64,
) -> dict[str, float]:
    """How well a pixelwise standard deviation predicts the error of a posterior mean.

    Parameters
    ----------
    reference
        Real ground-truth volume ``(slices, rows, cols)`` (any shape is accepted: every element is
        a pixel).
    mean
        The estimate (e.g. the posterior mean), same shape.
    std
        Its predicted standard deviation (e.g. the posterior's pixelwise std), same shape, >= 0.
    dtype
        Computation dtype (float64 by default).

    Returns
    -------
    dict
        With ``e = |mean - reference|`` and ``s = std`` over all pixels of the volume:

        - ``corr_std_error``: Pearson correlation of ``s`` and ``e``,
          ``sum((s - s_bar)(e - e_bar)) / sqrt(sum((s - s_bar)^2) sum((e - e_bar)^2))``, the
          value of ``numpy.corrcoef``; ``nan`` when ``s`` or ``e`` is constant (zero variance).
        - ``corr_ceiling``: :func:`gaussian_corr_ceiling` of the error, the largest
          ``corr_std_error`` any std map could reach on it if the error is Gaussian given the
          map (it does not depend on ``s``).
        - ``within_1std``, ``within_2std``, ``within_3std``: the fraction of pixels with
          ``e <= k s``, ``k = 1, 2, 3`` (:data:`GAUSSIAN_COVERAGE`, about 0.683, 0.954 and 0.997,
          when the error is Gaussian with standard deviation ``s``; a pixel with ``s = 0``
          counts only if its error is exactly 0).
        - ``calibration_error``: the mean over ``k = 1, 2, 3`` of
          ``|within_kstd - GAUSSIAN_COVERAGE[k]|``.
        - ``mean_std``: the mean of ``s``, in image units.

    Notes
    -----
    The coverage fractions compare the error with the *predicted* spread: below the Gaussian
    values the uncertainty is too small (over-confident), above them too large. The correlation
    says whether large predicted uncertainty goes with large error, whatever the scale. For a
    posterior mean of ``N`` draws the expected squared error is ``s^2 (1 + 1/N)`` when the
    posterior is exact, so small ``N`` lowers the coverage slightly.

    Raises
    ------
    ValueError
        On mismatched shapes, complex inputs, NaN/Inf values, negative ``std`` or no pixels.
    """
    g, m = _pair(reference, mean, dtype, check_finite=True)
    s = _to_tensor(std, "std")
    if tuple(s.shape) != tuple(g.shape):
        raise ValueError(f"std has shape {tuple(s.shape)} but target has shape {tuple(g.shape)}")
    s = s.to(device=g.device, dtype=g.dtype)
    if not bool(torch.isfinite(s).all()):
        raise ValueError("std contains NaN or Inf values")
    if g.numel() == 0:
        raise ValueError("calibration needs at least one pixel, got an empty volume")
    if bool((s < 0).any()):
        raise ValueError(f"std has negative values (min {float(s.min()):.4g}); expected a "
                         "standard deviation >= 0")
    error = (m - g).abs()
    within = {k: float((error <= k * s).to(g.dtype).mean()) for k in (1, 2, 3)}
    return {
        "corr_std_error": _pearson(s, error),
        "corr_ceiling": gaussian_corr_ceiling(error),
        "within_1std": within[1],
        "within_2std": within[2],
        "within_3std": within[3],
        "calibration_error": sum(abs(within[k] - GAUSSIAN_COVERAGE[k]) for k in within) / 3,
        "mean_std": float(s.mean()),
    }


def gaussian_corr_ceiling(error: ArrayLike) -> float:
    """The largest ``corr(std, |error|)`` any std map can reach on these errors, if Gaussian.

    Suppose each pixel's error is ``e = sigma z``, with ``z`` standard normal and independent
    of everything a std map can know. Then ``E[|e| | sigma] = c sigma`` with
    ``c = sqrt(2 / pi)``, so by Cauchy-Schwarz no map ``s`` correlates with ``|e|`` better than
    the oracle ``s = sigma``, whose correlation is
    ``c sd(sigma) / sqrt((1 - c^2) E[sigma^2] + c^2 Var(sigma))``. The moments of ``sigma``
    follow from the errors alone: ``E[sigma^2] = mean(e^2)``, ``E[sigma] = mean(|e|) / c``.
    Errors whose magnitude is as even as Gaussian noise of one std (``Var(sigma) <= 0``) give
    0: no map can then say where the error is large. Errors that are not Gaussian given the
    map (structured artefacts) can be predicted better than this bound says. The moments are
    estimates: for even errors of ``N`` pixels the bound reads about ``N^(-1/4)``, not 0.

    Parameters
    ----------
    error
        The errors (or absolute errors) of one volume, any shape.

    Returns
    -------
    float
        In ``[0, 1]``; ``nan`` for errors that are all zero.
    """
    e = _to_tensor(error, "error").to(torch.float64).abs().reshape(-1)
    c2 = 2.0 / math.pi
    second = float(e.square().mean())
    if not second > 0:
        return math.nan
    variance = max(0.0, second - float(e.mean()) ** 2 / c2)
    return float(math.sqrt(c2 * variance / ((1.0 - c2) * second + c2 * variance)))


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of all elements; ``nan`` if either is constant."""
    a, b = a.reshape(-1), b.reshape(-1)
    if bool(a.max() == a.min()) or bool(b.max() == b.min()):
        return math.nan
    a = a - a.mean()
    b = b - b.mean()
    r = torch.sum(a * b) / torch.sqrt(torch.sum(a * a) * torch.sum(b * b))
    return float(r.clamp(-1.0, 1.0))


def reliability_curve(
    std: ArrayLike, error: ArrayLike, bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted std and RMS error in quantile bins of the predicted std.

    Parameters
    ----------
    std, error
        Predicted standard deviations and absolute errors of the same pixels (any shape, flattened).
    bins
        Number of bins; each holds the same number of pixels (+/- 1) sorted by ``std``, so ties
        (e.g. a zero background) do not empty a bin. Fewer pixels than ``bins`` give one bin per
        pixel.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``mean(std)`` and ``sqrt(mean(error^2))`` of each bin, in increasing std order. A
        calibrated uncertainty lies on the line ``y = x``.

    Raises
    ------
    ValueError
        On mismatched sizes, no pixels or ``bins < 1``.
    """
    s = np.asarray(std, dtype=np.float64).reshape(-1)
    e = np.asarray(error, dtype=np.float64).reshape(-1)
    if s.size != e.size:
        raise ValueError(f"std has {s.size} pixels but error has {e.size}")
    if s.size == 0:
        raise ValueError("reliability_curve needs at least one pixel, got none")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    order = np.argsort(s, kind="stable")
    groups = np.array_split(order, min(bins, s.size))
    x = np.array([s[g].mean() for g in groups])
    y = np.array([math.sqrt(float(np.mean(e[g] ** 2))) for g in groups])
    return x, y


# --------------------------------------------------------------------------------------------------
# aggregation over volumes


def _t_quantile(q: float, df: int) -> float:
    """Student-t quantile via scipy when installed, else the normal approximation 1.96."""
    try:
        from scipy.stats import t
    except ImportError:  # pragma: no cover - scipy is optional
        return 1.959963984540054
    return float(t.ppf(q, df))


def summarize(values: Iterable[float]) -> dict[str, float | int]:
    """Mean over volumes with a two-sided 95% confidence interval from the t distribution.

    Parameters
    ----------
    values
        One metric value per volume.

    Returns
    -------
    dict
        ``mean``, ``std`` (sample standard deviation, ``ddof=1``), ``ci95_low``, ``ci95_high``
        (``mean -/+ t_{0.975, n-1} std / sqrt(n)``) and ``n``. With a single value the spread is
        unknown: ``std`` is 0 and the interval collapses to the mean. Without scipy the t quantile
        falls back to the normal 1.96 (too narrow for small ``n``). Infinite values (PSNR of a
        perfect reconstruction) propagate into the mean.

    Raises
    ------
    ValueError
        If ``values`` is empty or contains NaN.
    """
    x = np.asarray(list(values), dtype=np.float64).reshape(-1)
    n = int(x.size)
    if n == 0:
        raise ValueError("summarize needs at least one value, got none")
    if np.isnan(x).any():
        raise ValueError(f"summarize got NaN among its {n} values")
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "std": 0.0, "ci95_low": mean, "ci95_high": mean, "n": 1}
    std = float(x.std(ddof=1))
    half = _t_quantile(0.975, n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half, "n": n}
