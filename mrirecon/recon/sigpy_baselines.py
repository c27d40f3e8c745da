r"""Classical baselines on sigpy: SENSE and L1-wavelet compressed sensing, with their coil maps.

This is the one module that imports sigpy for reconstruction; the import happens inside the
functions that need it, so importing this module (and listing methods) stays cheap.

Both methods solve, one slice at a time on the CPU (sigpy works on numpy arrays),

.. math::
    \hat x = \arg\min_x \tfrac12 \| M F S x - y \|_2^2 + R(x),
    \qquad \text{output } |\hat x|,

with ``M`` the sampling mask, ``F`` the centred orthonormal FFT, ``S`` the coil maps and the
layouts of :mod:`mrirecon.data` (k-space ``(coils, ky, kx)`` per slice):

* :class:`SENSE` (Pruessmann et al. 1999): ``R(x) = lamda / 2 * ||x||_2^2`` (Tikhonov), solved by
  conjugate gradient (``sigpy.mri.app.SenseRecon``);
* :class:`CompressedSensing` (Lustig et al. 2007): ``R(x) = lamda * ||W x||_1`` with ``W`` the
  orthogonal Daubechies-4 wavelet transform (sigpy's), solved by accelerated proximal gradient
  (FISTA, :func:`fista_l1_wavelet`) with cycle spinning: each iteration's wavelet shrinkage is
  taken on the image circularly shifted by a random offset of up to 8 pixels per axis (drawn
  from a fixed seed, so results are reproducible), as BART's ``pics -l1`` does. Shrinking in
  one fixed wavelet grid leaves blocky artefacts aligned with it; the random shifts average
  them out (Figueiredo & Nowak 2003; Guerquin-Kern et al. 2011). Measured on the
  ``scripts/bench/bart_cs.py`` data at 4x: +0.7 dB on the sample scan and +2.5 dB on BART's
  numerical phantom over the same FISTA without shifts.

Coil maps ``S`` come from the fully sampled k-space centre of each slice: ESPIRiT (Uecker et al.
2014; ``sigpy.mri.app.EspiritCalib``) or, with ``maps="acs"``, the low-resolution coil images
(a short Tukey taper on the centre block) divided by their root-sum-of-squares. ESPIRiT needs
8 fully sampled centre lines; with fewer (fastMRI's 8x centre fraction on matrices narrower
than about 200, 4x on 64-wide EPI) the ACS maps the learned models use are taken instead, from
as few as 2 lines (:func:`~mrirecon.physics.coils.plan_coil_maps`): the volume's provenance
records the maps used under ``maps_used`` and the fallback under ``notes``, which the command
line prints as one warning. Single-coil data uses one all-ones map.

Scale. Before solving, each slice's k-space is divided by ``scale`` = the maximum of its
zero-filled root-sum-of-squares image (``max rss(F^H y)``); the solution is multiplied back.
So ``lamda`` is relative to an image whose zero-filled maximum is 1, and one default works on
fastMRI files (k-space ~1e-5..1e-3) as well as on k-space simulated from DICOM (~1e2..1e3).
For the Tikhonov term of SENSE the minimiser does not depend on the scale at all (both terms
are quadratic); for the L1 term of CS it does, and this normalisation is what makes ``lamda``
portable.

Device. sigpy runs on numpy here: a CUDA device asked for is ignored for these methods, the
slices are reconstructed on the CPU and :meth:`~SigpyReconstructor.parameters` records
``"device": "cpu (sigpy)"`` (with the device that was asked for).

References
----------
Pruessmann KP, Weiger M, Scheidegger MB, Boesiger P. SENSE: sensitivity encoding for fast MRI.
Magn Reson Med 1999;42:952-962.
Lustig M, Donoho D, Pauly JM. Sparse MRI: the application of compressed sensing for rapid MR
imaging. Magn Reson Med 2007;58:1182-1195.
Uecker M, Lai P, Murphy MJ, et al. ESPIRiT - an eigenvalue approach to autocalibrating parallel
MRI: where SENSE meets GRAPPA. Magn Reson Med 2014;71:990-1001.
Beck A, Teboulle M. A fast iterative shrinkage-thresholding algorithm for linear inverse
problems. SIAM J Imaging Sci 2009;2:183-202.
Figueiredo MAT, Nowak RD. An EM algorithm for wavelet-based image restoration. IEEE Trans Image
Process 2003;12:906-916.
Guerquin-Kern M, Haberlin M, Pruessmann KP, Unser M. A fast wavelet-based reconstruction method
for magnetic resonance imaging. IEEE Trans Med Imaging 2011;30:1649-1660.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mrirecon.data import KSpace, Volume
from mrirecon.errors import InvalidParameterError, MriReconError, one_line
from mrirecon.npfft import fftc, ifftc
from mrirecon.physics.coils import MAP_METHODS, MapPlan, coil_maps, plan_coil_maps
from mrirecon.recon.base import Reconstructor


def mask_weights(mask: np.ndarray | torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """The ``(ky, kx)`` float32 0/1 data weights sigpy takes (it applies their square root).

    From a ``(ky, kx)`` or ``(1, kx)`` bool mask.
    """
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    full = np.broadcast_to(np.asarray(mask, dtype=bool), tuple(shape))
    return np.ascontiguousarray(full, dtype=np.float32)


def zero_filled_scale(kspace_slice: np.ndarray) -> float:
    """The data scale ``lamda`` is relative to: ``max rss(F^H y)`` of one slice.

    The slice is ``(coils, ky, kx)``; the scale is 0 for an empty slice.
    """
    from mrirecon.physics import ifft2c, rss

    image = rss(ifft2c(torch.from_numpy(np.asarray(kspace_slice, dtype=np.complex64))), dim=0)
    return float(image.max())


# ----------------------------------------------------------------------------- reconstructors


class SigpyReconstructor(Reconstructor):
    """Shared per-slice loop of the sigpy methods: scale, coil maps, solve, check, rescale.

    Parameters
    ----------
    lamda
        Regularisation weight relative to the data scale (see the module docstring).
    max_iter
        Iterations of the solver.
    maps
        Coil-map estimator for multi-coil data: ``"espirit"`` or ``"acs"``.
    device
        Ignored for the solve (sigpy runs on numpy on the CPU); recorded in :meth:`parameters`.
    batch_size
        Slices read per batch.
    """

    default_lamda: float = 0.0
    default_max_iter: int = 30

    def __init__(self, lamda: float | None = None, max_iter: int | None = None,
                 maps: str = "espirit", device: torch.device | str = "cpu",
                 batch_size: int | None = None) -> None:
        requested = torch.device(device)
        super().__init__(device="cpu", batch_size=batch_size)
        self.requested_device = requested
        lamda = self.default_lamda if lamda is None else lamda
        max_iter = self.default_max_iter if max_iter is None else max_iter
        try:
            lamda_value = float(lamda) if not isinstance(lamda, bool | str) else math.nan
        except (TypeError, ValueError):
            lamda_value = math.nan
        if not math.isfinite(lamda_value) or lamda_value < 0:
            raise InvalidParameterError(
                f"{self.name}: lamda must be a finite number >= 0, got {lamda!r}"
            )
        if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) \
                or max_iter < 1:
            raise InvalidParameterError(
                f"{self.name}: max_iter must be an integer >= 1, got {max_iter!r}"
            )
        if maps not in MAP_METHODS:
            raise InvalidParameterError(
                f"{self.name}: unknown coil-map method {maps!r}; "
                f"expected one of {', '.join(MAP_METHODS)}"
            )
        self.lamda = lamda_value
        self.max_iter = int(max_iter)
        self.maps = maps
        self._slice = 0
        self._plan: MapPlan | None = None

    def parameters(self) -> dict[str, Any]:
        """Regularisation weight, iterations, coil-map method and devices."""
        return {
            "lamda": self.lamda,
            "lamda_relative_to": "max of the zero-filled RSS image of each slice",
            "max_iter": self.max_iter,
            "maps": self.maps,
            "device": "cpu (sigpy)",
            "requested_device": str(self.requested_device),
        }

    def __call__(self, kspace: KSpace) -> Volume:
        """Reconstruct ``kspace``, counting slices from its first one in error messages.

        The coil-map plan is made once for the volume (one mask): a mask too narrow for
        ESPIRiT falls back to ACS maps, recorded in the provenance's ``maps_used`` and
        ``notes``.
        """
        self._slice = 0  # slice numbers in error messages count from the volume's first slice
        mask = np.ones((1, kspace.shape[-1]), bool) if kspace.mask is None else kspace.mask
        self._plan = None
        if not self.needs_coils or kspace.is_multicoil:  # SENSE on one coil: refused below
            self._plan = self.plan(mask, kspace.shape[-2:], kspace.n_coils)
        try:
            return super().__call__(kspace)
        finally:
            self._plan = None

    def plan(self, mask: np.ndarray | torch.Tensor, shape: tuple[int, int],
             coils: int) -> MapPlan:
        """The coil-map plan for ``mask``: :attr:`maps`, or ACS maps below what ESPIRiT needs."""
        try:
            return plan_coil_maps(mask, shape, coils, self.maps)
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"{self.name}: {exc}") from exc

    def volume(self, kspace: KSpace, data: np.ndarray, seconds: float,
               **provenance: Any) -> Volume:
        """The base volume plus ``maps_used`` (and the fallback, if any, in ``notes``)."""
        plan = self._plan
        if plan is not None:
            provenance["maps_used"] = plan.record()
            if plan.fallback:
                provenance["notes"] = [*provenance.get("notes", []),
                                       f"{self.name}: {plan.fallback}"]
        return super().volume(kspace, data, seconds, **provenance)

    def reconstruct_batch(self, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``(n, coils, ky, kx)`` slice by slice; returns ``(n, ky, kx)`` ``|x|``."""
        ksp = kspace.detach().cpu().numpy().astype(np.complex64, copy=False)
        weights = mask_weights(mask, ksp.shape[-2:])
        out = np.zeros((ksp.shape[0], *ksp.shape[-2:]), dtype=np.float32)
        for i, y in enumerate(ksp):
            out[i] = self.reconstruct_slice(y, weights, index=self._slice)
            self._slice += 1
        return torch.from_numpy(out).to(kspace.device)

    def reconstruct_slice(self, y: np.ndarray, weights: np.ndarray,
                          maps: np.ndarray | None = None, index: int = 0) -> np.ndarray:
        """``|x|`` ``(ky, kx)`` float32 of one ``(coils, ky, kx)`` slice.

        Parameters
        ----------
        y
            Undersampled k-space (zeros where not sampled).
        weights
            ``(ky, kx)`` float 0/1 mask (:func:`mask_weights`).
        maps
            Precomputed ``(coils, ky, kx)`` coil maps (they do not depend on the data scale);
            ``None`` estimates them from the calibration region by the volume's plan (or,
            called alone, by :meth:`plan` for ``weights``).
        index
            Slice number used in error messages.
        """
        scale = zero_filled_scale(y)
        if not math.isfinite(scale):
            raise MriReconError(f"{self.name}: slice {index} has NaN or Inf k-space samples")
        if scale == 0:
            return np.zeros(y.shape[-2:], dtype=np.float32)
        y = np.asarray(y, dtype=np.complex64) / np.float32(scale)
        if maps is None:
            plan = self._plan or self.plan(weights > 0, y.shape[-2:], len(y))
        try:
            mps = coil_maps(y, plan.calib_width, plan.method) if maps is None else maps
            if not np.any(mps):
                raise MriReconError(
                    f"{self.name}: {plan.method if maps is None else 'the given maps'} found no "
                    f"coil sensitivity on slice {index} "
                    "(every map is zero); try maps='acs' or a larger centre fraction"
                )
            x = np.asarray(self.solve(y, mps, weights))
        except MriReconError:
            raise
        except Exception as exc:  # sigpy failing is a convergence failure, reported as one line
            detail = one_line(exc) if str(exc).strip() else ""
            raise MriReconError(
                f"{self.name} did not converge on slice {index} ({type(exc).__name__}: {detail})"
            ) from exc
        if not np.all(np.isfinite(x)):
            what = "NaN" if np.isnan(x).any() else "Inf"
            raise MriReconError(
                f"{self.name} did not converge on slice {index} ({what} in the solution)"
            )
        return (np.abs(x) * scale).astype(np.float32)

    def solve(self, y: np.ndarray, mps: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Solve for the complex image ``(ky, kx)`` of one normalised slice."""
        raise NotImplementedError


class SENSE(SigpyReconstructor):
    """Tikhonov-regularised least-squares SENSE (Pruessmann et al. 1999), conjugate gradient.

    Minimises ``1/2 ||M F S x - y||^2 + lamda/2 ||x||^2`` per slice with ESPIRiT (Uecker et al.
    2014) or ACS coil maps from the fully sampled centre, and returns ``|x|`` (see the module
    docstring for the scale ``lamda`` is relative to and for the device). Needs multi-coil data;
    below :data:`~mrirecon.physics.calibration.MIN_CALIBRATION_LINES` fully sampled centre
    lines the maps are ACS maps (from at least 2 lines).
    """

    name = "sense"
    needs_coils = True
    # Chosen by scripts/tune_baselines.py (4 axial Colin27 slices at 192x160, 8 birdcage coils,
    # noise 0.01, fastMRI random 4x masks, ESPIRiT maps; volume PSNR vs the RSS target): best
    # PSNR 27.05 dB at lamda 3e-3 / 30 CG iterations (zero-filled 21.87 dB; at 30 iterations
    # lamda 1e-3 gives 26.35, 1e-2 26.77; 10 iterations at best 26.99, 100 at best 26.99).
    default_lamda = 3e-3
    default_max_iter = 30

    def solve(self, y: np.ndarray, mps: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Conjugate-gradient SENSE of one slice (``sigpy.mri.app.SenseRecon``)."""
        from sigpy.mri.app import SenseRecon

        return SenseRecon(y, mps, lamda=self.lamda, weights=weights, max_iter=self.max_iter,
                          show_pbar=False).run()


class CompressedSensing(SigpyReconstructor):
    """L1-wavelet compressed sensing (Lustig et al. 2007), single- or multi-coil.

    Minimises ``1/2 ||M F S x - y||^2 + lamda ||W x||_1`` (``W``: orthogonal Daubechies-4
    wavelets) per slice by FISTA and returns ``|x|``. Single-coil data uses one all-ones map;
    multi-coil data ESPIRiT (Uecker et al. 2014) or ACS maps. ``lamda`` is relative to the
    slice's zero-filled maximum (see the module docstring).
    """

    name = "cs"
    needs_coils = False
    # Chosen by scripts/tune_baselines.py (4 axial Colin27 slices at 192x160, 1 and 8 coils,
    # noise 0.01, fastMRI random 4x masks; volume PSNR vs the ESC/RSS target): best PSNR
    # averaged over both cases at lamda 1e-3 / 100 FISTA iterations, with cycle spinning
    # (2026-12-03): 8 coils 29.98 dB (zero-filled 21.87), 1 coil 22.63 dB (zero-filled 21.48);
    # 50 iterations: 29.51 / 22.06. Without cycle spinning the same choice gave 28.86 / 21.99.
    default_lamda = 1e-3
    default_max_iter = 100

    def solve(self, y: np.ndarray, mps: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """FISTA L1-wavelet reconstruction of one slice with cycle spinning."""
        return fista_l1_wavelet(y, mps, weights, self.lamda, self.max_iter)


#: Largest random circular shift (pixels per axis) of the cycle spinning (:func:`fista_l1_wavelet`).
MAX_SHIFT = 8


def fista_l1_wavelet(y: np.ndarray, mps: np.ndarray, weights: np.ndarray, lamda: float,
                     max_iter: int, *, shifts: bool = True, seed: int = 0) -> np.ndarray:
    """``argmin_x 1/2 ||M F S x - y||^2 + lamda ||W x||_1`` by FISTA, ``(ky, kx)`` complex.

    ``y`` ``(coils, ky, kx)``, ``mps`` the coil maps of the same shape, ``weights`` the 0/1
    mask. The step is 1: the Lipschitz constant ``||M F S||^2 <= max rss(S)^2 <= 1`` for 0/1
    weights and maps of unit or zero RSS, so no power iteration is needed. With ``shifts`` the
    shrinkage ``W^H soft(W P x) `` is taken under a random circular shift ``P`` (cycle spinning,
    up to :data:`MAX_SHIFT` pixels per axis, from ``seed``): the same shifts on every call.
    """
    import sigpy as sp

    shape = y.shape[-2:]
    wavelet = sp.linop.Wavelet(shape, wave_name="db4")
    axes = (-2, -1)
    mps = np.asarray(mps, dtype=np.complex64)
    w = np.asarray(weights, dtype=np.float32)
    conj = mps.conj()

    def gradient(x: np.ndarray) -> np.ndarray:  # A^H (A x - y), A = M F S
        return np.sum(conj * ifftc(w * (w * fftc(mps * x) - y)), axis=0)

    rng = np.random.default_rng(seed)
    x = np.zeros(shape, np.complex64)
    z, t = x, 1.0
    for _ in range(max_iter):
        g = z - gradient(z)
        offset = tuple(int(v) for v in rng.integers(0, MAX_SHIFT, 2)) if shifts else (0, 0)
        coeffs = sp.soft_thresh(lamda, wavelet(np.roll(g, offset, axes)))
        x_next = np.roll(wavelet.H(coeffs), (-offset[0], -offset[1]), axes).astype(np.complex64)
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        z = x_next + ((t - 1) / t_next) * (x_next - x)
        x, t = x_next, t_next
    return x


__all__ = [
    "SENSE",
    "CompressedSensing",
    "SigpyReconstructor",
    "fista_l1_wavelet",
    "mask_weights",
    "zero_filled_scale",
]
