"""Every operator and composition: adjointness, linearity, FFT parity, SENSE parity, autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrirecon.physics import (
    FFTOp,
    SamplingOp,
    SensitivityOp,
    adjoint_mismatch,
    data_consistency,
    dc_gradient,
    fft2c,
    from_channels,
    gradient_fn,
    ifft2c,
    rss,
    sense_operator,
    single_coil_maps,
    to_channels,
)
from mrirecon.sampling import MaskSpec, make_mask

BATCH, COILS, KY, KX = (2, 3), 4, 24, 20
TOL = {torch.complex64: 1e-5, torch.complex128: 1e-12}


def crandn(*shape: int, dtype=torch.complex128, device="cpu", seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(*shape, generator=g, dtype=torch.float64)
    imag = torch.randn(*shape, generator=g, dtype=torch.float64)
    return torch.complex(real, imag).to(dtype=dtype, device=device)


def random_mask(kind: str = "random") -> object:
    shape = (KY, KX)
    return make_mask(MaskSpec(kind=kind, acceleration=2.5, shape=shape, center_fraction=0.2))


def operators(dtype, device):
    """(name, operator, input shape, output shape) for every operator and composition."""
    maps = crandn(*BATCH, COILS, KY, KX, dtype=dtype, device=device, seed=1)
    mask = random_mask()
    img, coil = (*BATCH, KY, KX), (*BATCH, COILS, KY, KX)
    sense = sense_operator(maps, mask)
    return [
        ("fft", FFTOp(), img, img),
        ("sensitivity", SensitivityOp(maps), img, coil),
        ("sampling", SamplingOp(mask, device=device), coil, coil),
        ("sampling-2d", SamplingOp(random_mask("poisson"), device=device), coil, coil),
        ("fft@sens", FFTOp() @ SensitivityOp(maps), img, coil),
        ("sense", sense, img, coil),
        ("sense.H", sense.H, coil, img),
        ("sense.normal", sense.normal, img, img),
        ("single-coil", sense_operator(single_coil_maps((KY, KX), dtype, device), mask), img,
         (*BATCH, 1, KY, KX)),
    ]


NAMES = [name for name, *_ in operators(torch.complex128, "cpu")]


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_adjointness(index: int, dtype: torch.dtype, device: str) -> None:
    _, op, in_shape, out_shape = operators(dtype, device)[index]
    x = crandn(*in_shape, dtype=dtype, device=device, seed=2)
    y = crandn(*out_shape, dtype=dtype, device=device, seed=3)
    assert adjoint_mismatch(op, x, y) < TOL[dtype]
    torch.testing.assert_close(op.H.H(x), op(x))


def swap_last_axes(t: torch.Tensor) -> torch.Tensor:
    """``t`` relabelled ``(..., b, a)`` with its elements in the same memory order: the shape of
    a transpose without moving anything (``reshape`` where ``transpose`` was meant), so every
    flattened inner product is unchanged."""
    return t.reshape(*t.shape[:-2], t.shape[-1], t.shape[-2])


class SwappedAdjoint(SensitivityOp):
    """A correct ``S^H`` whose output is ``(..., x, y)`` instead of the image's ``(..., y, x)``."""

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return swap_last_axes(super().adjoint(y))


class SwappedForward(SensitivityOp):
    """A correct ``S`` whose coil images are ``(..., coils, x, y)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swap_last_axes(super().forward(x))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_adjoint_mismatch_rejects_wrong_shapes_and_dtypes(dtype: torch.dtype) -> None:
    """On a non-square image the helper refuses an operator whose adjoint (or forward) returns
    the right numbers under the wrong shape, in the operator alone and inside compositions; the
    flattened dot test alone cannot see it (its error stays at rounding level)."""
    maps = crandn(*BATCH, COILS, KY, KX, dtype=dtype, seed=1)
    img, coil = (*BATCH, KY, KX), (*BATCH, COILS, KY, KX)
    x = crandn(*img, dtype=dtype, seed=2)
    y = crandn(*coil, dtype=dtype, seed=3)
    flat = torch.abs(torch.vdot(SensitivityOp(maps)(x).reshape(-1), y.reshape(-1))
                     - torch.vdot(x.reshape(-1), SwappedAdjoint(maps).adjoint(y).reshape(-1)))
    assert float(flat) / float(x.norm() * y.norm()) < TOL[dtype]  # invisible when flattened
    wrong = SwappedAdjoint(maps)
    cases = [(wrong, x, y, r"A\^H y is \(2, 3, 20, 24\)"),
             (FFTOp() @ wrong, x, y, r"A\^H y is \(2, 3, 20, 24\)"),
             (wrong.H, y, x, r"A x is \(2, 3, 20, 24\)"),
             (SwappedForward(maps), x, y, r"A x is \(2, 3, 4, 20, 24\)")]
    for op, a, b, message in cases:
        with pytest.raises(ValueError, match=message):
            adjoint_mismatch(op, a, b)
    other = torch.complex128 if dtype == torch.complex64 else torch.complex64
    with pytest.raises(ValueError, match=r"(A x|A\^H y) is .* expected"):
        adjoint_mismatch(SensitivityOp(maps), x.to(other), y)  # x of another precision
    assert adjoint_mismatch(SensitivityOp(maps), x, y) < TOL[dtype]


@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_linearity(index: int) -> None:
    _, op, in_shape, _ = operators(torch.complex128, "cpu")[index]
    x1, x2 = crandn(*in_shape, seed=4), crandn(*in_shape, seed=5)
    a, b = 0.3 - 1.2j, -2.0 + 0.5j
    torch.testing.assert_close(op(a * x1 + b * x2), a * op(x1) + b * op(x2))


@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_autograd_gradcheck(index: int) -> None:
    _, op, in_shape, _ = operators(torch.complex128, "cpu")[index]
    x = crandn(*in_shape, seed=6).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: op(v).abs().sum(), (x,), eps=1e-6, atol=1e-5,
                                    fast_mode=True)


def test_fft_matches_numpy() -> None:
    x = crandn(*BATCH, KY, KX, seed=7)
    expected = np.fft.fftshift(
        np.fft.fft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1)
    )
    np.testing.assert_allclose(fft2c(x).numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ifft2c(fft2c(x)).numpy(), x.numpy(), atol=1e-12)


def test_fft_is_unitary_and_centred() -> None:
    x = crandn(KY, KX, seed=8)
    torch.testing.assert_close(torch.linalg.vector_norm(fft2c(x)), torch.linalg.vector_norm(x))
    k = fft2c(torch.ones(KY, KX, dtype=torch.complex128))
    assert torch.argmax(k.abs()).item() == (KY // 2) * KX + KX // 2  # DC at the centre


def test_sense_matches_sigpy() -> None:
    sigpy_linop = pytest.importorskip("sigpy.mri.linop")
    maps = crandn(COILS, KY, KX, seed=9)
    mask = random_mask()
    x = crandn(KY, KX, seed=10)
    ours = sense_operator(maps, mask)
    theirs = sigpy_linop.Sense(maps.numpy(), weights=mask.full.astype(np.float64))
    np.testing.assert_allclose(ours(x).numpy(), theirs(x.numpy()), rtol=1e-10, atol=1e-10)
    y = crandn(COILS, KY, KX, seed=11)
    np.testing.assert_allclose(ours.H(y).numpy(), theirs.H(y.numpy()), rtol=1e-10, atol=1e-10)


def test_dc_gradient_equals_autograd(device: str) -> None:
    maps = crandn(*BATCH, COILS, KY, KX, device=device, seed=12)
    op = sense_operator(maps, random_mask())
    y = op(crandn(*BATCH, KY, KX, device=device, seed=13))
    x = crandn(*BATCH, KY, KX, device=device, seed=14).requires_grad_(True)
    data_consistency(op, x, y).backward()
    torch.testing.assert_close(x.grad, dc_gradient(op, x.detach(), y))
    torch.testing.assert_close(gradient_fn(op, y)(x.detach()), x.grad)


def test_sampling_zeroes_exactly_the_unsampled_columns() -> None:
    mask = random_mask()
    k = crandn(COILS, KY, KX, seed=15)
    out = SamplingOp(mask)(k)
    kept = torch.as_tensor(mask.array[0])
    assert torch.equal(out[..., kept], k[..., kept])
    assert torch.count_nonzero(out[..., ~kept]) == 0


def test_mask_shape_mismatch_is_reported() -> None:
    op = SamplingOp(random_mask())
    with pytest.raises(ValueError, match="mask has shape .* k-space has 24 rows and 21 columns"):
        op(crandn(COILS, KY, KX + 1))


def test_rss_and_channels() -> None:
    coils = crandn(*BATCH, COILS, KY, KX, seed=16)
    np.testing.assert_allclose(
        rss(coils).numpy(), np.sqrt((np.abs(coils.numpy()) ** 2).sum(axis=-3)), rtol=1e-12
    )
    z = crandn(*BATCH, KY, KX, seed=17)
    chans = to_channels(z, channel_dim=None)
    assert chans.shape == (*BATCH, 2, KY, KX) and not torch.is_complex(chans)
    torch.testing.assert_close(chans[..., 0, :, :], z.real)
    torch.testing.assert_close(from_channels(chans, channel_dim=None), z)
    multi = to_channels(coils)
    assert multi.shape == (*BATCH, 2 * COILS, KY, KX)
    torch.testing.assert_close(multi[..., COILS:, :, :], coils.imag)
    torch.testing.assert_close(from_channels(multi), coils)
