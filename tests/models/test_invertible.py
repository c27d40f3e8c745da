"""Invariants of the invertible blocks: exact round trips with non-identity weights, Haar
initialisation, orthogonality under training, ActNorm data init, log-determinants against autograd
Jacobians, and memory-free gradients equal to ordinary autograd at constant activation memory."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from helpers import ClosureStep, least_squares_gradient, randomize
from torch import Tensor

from mrirecon.models.invertible import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    InvertibleModule,
    InvertibleSequence,
    Orthogonal1x1,
    OrthogonalDownsample,
    OrthogonalUpsample,
    expm,
    saved_tensor_bytes,
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


BLOCKS: dict[str, Callable[[], InvertibleModule]] = {
    "additive": lambda: AdditiveCoupling(4, hidden=6),
    "additive_split1": lambda: AdditiveCoupling(3, hidden=6, split=1),
    "affine": lambda: AffineCoupling(4, hidden=6),
    "downsample": lambda: OrthogonalDownsample(2),
    "upsample": lambda: OrthogonalUpsample(1),
    "orthogonal1x1": lambda: Orthogonal1x1(
        4, init="random", generator=torch.Generator().manual_seed(3)
    ),
    "actnorm": lambda: ActNorm(4).eval(),
    "sequence": lambda: InvertibleSequence(
        [AdditiveCoupling(4, hidden=6), Orthogonal1x1(4, "reverse"), AffineCoupling(4, hidden=6),
         ActNorm(4).eval(), InvertibleSequence([AdditiveCoupling(4, hidden=5)])]
    ),
}
IN_CHANNELS = {"additive_split1": 3, "downsample": 2, "upsample": 4}


@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_round_trip(name: str, dtype: torch.dtype, tol: float) -> None:
    block = randomize(BLOCKS[name]()).to(dtype)
    x = torch.randn(2, IN_CHANNELS.get(name, 4), 6, 6, dtype=dtype)
    with torch.no_grad():
        y = block(x)
        err = (block.inverse(y) - x).abs().max().item()
    if y.shape == x.shape:
        assert (y - x).abs().max() > 1e-3, f"{name} is still the identity"
    assert err < tol, f"{name}: max round-trip error {err:.2e}"


def test_conditioned_affine_round_trip_and_errors() -> None:
    block = randomize(AffineCoupling(4, hidden=6, condition_channels=2)).double()
    x = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    c = torch.randn(2, 2, 4, 4, dtype=torch.float64)
    y = block(x, condition=c)
    assert (block.inverse(y, condition=c) - x).abs().max() < 1e-10
    assert (block(x, condition=-c) - y).abs().max() > 1e-3  # the condition matters
    with pytest.raises(ValueError, match="condition"):
        block(x)
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\)"):
        block(x, condition=torch.zeros(2, 3, 4, 4, dtype=torch.float64))


def test_couplings_start_as_identity() -> None:
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(AdditiveCoupling(4)(x), x)
    y, logdet = AffineCoupling(4).forward_and_logdet(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(2))


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="split"):
        AdditiveCoupling(1)
    with pytest.raises(ValueError, match="split"):
        AffineCoupling(4, split=4)
    with pytest.raises(ValueError, match=r"\(1, 3, 4, 4\)"):
        AdditiveCoupling(4)(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="init"):
        Orthogonal1x1(3, init="bogus")


def test_haar_initialisation() -> None:
    down = OrthogonalDownsample(2).double()
    # channel 0: [[a, b], [c, d]] = [[1, 2], [3, 4]]; channel 1 = 10 * channel 0, twice over in W.
    patch = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    x = torch.stack([patch, 10 * patch]).repeat(1, 1, 2)[None]  # (1, 2, 2, 4)
    y = down(x)
    assert y.shape == (1, 8, 1, 2)
    # (a+b+c+d)/2, (a-b+c-d)/2 horizontal, (a+b-c-d)/2 vertical, (a-b-c+d)/2 diagonal
    haar = torch.tensor([5.0, -1.0, -2.0, 0.0], dtype=torch.float64)
    expected = torch.cat([haar, 10 * haar])[:, None].expand(8, 2)
    assert torch.allclose(y[0, :, 0], expected, atol=1e-14)


def test_downsample_odd_shape_names_it() -> None:
    with pytest.raises(ValueError, match=r"even H and W.*\(1, 1, 5, 4\)"):
        OrthogonalDownsample(1)(torch.zeros(1, 1, 5, 4))


@pytest.mark.parametrize("make", [lambda: OrthogonalDownsample(2), lambda: Orthogonal1x1(5)])
def test_orthogonal_after_training(make: Callable[[], InvertibleModule]) -> None:
    block = make().double()
    start = block.weight_matrix().detach().clone()
    opt = torch.optim.Adam(block.parameters(), lr=0.1)
    x = torch.randn(2, block.channels, 4, 4, dtype=torch.float64)
    target = torch.randn_like(block(x))
    for _ in range(5):
        opt.zero_grad()
        ((block(x) - target) ** 2).mean().backward()
        opt.step()
    w = block.weight_matrix().detach()
    assert (w - start).abs().max() > 1e-2  # it did learn
    eye = torch.eye(w.shape[0], dtype=torch.float64)
    assert (w.T @ w - eye).abs().max() < 1e-12


def test_expm_is_exactly_orthogonal_where_matrix_exp_is_not() -> None:
    # torch.linalg.matrix_exp's float64 result is off by ~1e-11 for norms near 0.04
    skew = torch.tensor([[0.0, 0.0369], [-0.0369, 0.0]], dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)
    q = expm(skew)
    assert (q.T @ q - eye).abs().max() < 1e-15
    c, s = math.cos(0.0369), math.sin(0.0369)
    exact = torch.tensor([[c, s], [-s, c]], dtype=torch.float64)  # a rotation by 0.0369
    assert (q - exact).abs().max() < 1e-15
    a = torch.randn(6, 6, dtype=torch.float64)
    for scale in (1e-3, 0.5, 4.0):  # general matrices, with and without squaring
        ref = torch.linalg.matrix_exp(scale * a)
        assert ((expm(scale * a) - ref).abs().max() / ref.abs().max()) < 1e-10


def test_random_orthogonal1x1_is_seeded_and_orthogonal() -> None:
    def make(seed: int) -> Orthogonal1x1:
        return Orthogonal1x1(5, "random", generator=torch.Generator().manual_seed(seed)).double()

    w = make(1).weight_matrix().detach()
    assert torch.equal(w, make(1).weight_matrix().detach())
    assert not torch.allclose(w, make(2).weight_matrix().detach())
    assert (w.T @ w - torch.eye(5, dtype=torch.float64)).abs().max() < 1e-14
    assert (w - torch.eye(5, dtype=torch.float64)).abs().max() > 0.1


def test_actnorm_data_dependent_init() -> None:
    norm = ActNorm(3).double()
    x = 3.0 + 5.0 * torch.randn(4, 3, 6, 6, dtype=torch.float64)
    y = norm(x)
    assert y.mean(dim=(0, 2, 3)).abs().max() < 1e-12
    assert (y.std(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-6
    before = [p.detach().clone() for p in norm.parameters()]
    norm(10 * x)  # initialised once only
    assert all(torch.equal(a, b) for a, b in zip(before, norm.parameters(), strict=True))
    assert bool(norm.state_dict()["initialized"])
    assert ActNorm(3).eval()(x).equal(x)  # no init in eval mode


def _jacobian_logdet(fn: Callable[[Tensor], Tensor], x: Tensor) -> float:
    jac = torch.autograd.functional.jacobian(fn, x)
    return torch.linalg.slogdet(jac.reshape(x.numel(), x.numel()))[1].item()


@pytest.mark.parametrize(
    "name", ["affine", "actnorm", "orthogonal1x1", "downsample", "sequence", "conditioned"]
)
def test_logdet_matches_jacobian(name: str) -> None:
    c = torch.randn(1, 1, 2, 2, dtype=torch.float64)
    if name == "conditioned":
        block = randomize(AffineCoupling(3, hidden=4, condition_channels=1)).double()
        fn = lambda v: block.forward_and_logdet(v, condition=c)  # noqa: E731
    else:
        block = randomize(BLOCKS[name]() if name != "actnorm" else ActNorm(3).eval()).double()
        fn = block.forward_and_logdet
    channels = {"downsample": 2, "conditioned": 3, "actnorm": 3}.get(name, 4)
    x = torch.randn(1, channels, 2, 2, dtype=torch.float64)
    _, logdet = fn(x)
    expected = _jacobian_logdet(lambda v: fn(v)[0], x)
    assert abs(logdet.item() - expected) < 1e-10
    if name in {"affine", "actnorm", "sequence"}:
        assert abs(expected) > 1e-2  # not trivially volume preserving


def mixed_sequence(memory_free: bool) -> InvertibleSequence:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(4)
    inner = InvertibleSequence(
        [AdditiveCoupling(4, hidden=5), ClosureStep(4, 2, least_squares_gradient(2, 4))],
        memory_free=memory_free,
    )
    blocks = [
        AdditiveCoupling(4, hidden=6),
        Orthogonal1x1(4, "random", generator=gen),
        AffineCoupling(4, hidden=6),
        ActNorm(4),
        ClosureStep(4, 2, least_squares_gradient(2, 4, seed=7)),
        inner,
        OrthogonalUpsample(1),
        OrthogonalDownsample(1),
        AdditiveCoupling(4, hidden=6, split=1),
    ]
    return randomize(InvertibleSequence(blocks, memory_free=memory_free)).double().train()


def _grads(
    seq: InvertibleSequence, x: Tensor, weight: Tensor, logdet: bool
) -> tuple[Tensor | None, list[Tensor]]:
    x = x.detach().clone().requires_grad_(x.requires_grad)
    if logdet:
        y, ld = seq.forward_and_logdet(x)
        loss = (y * weight).sum() + 0.3 * ld.sum()
    else:
        y = seq(x)
        loss = (y * weight).sum()
    assert ("MemoryFree" in type(y.grad_fn).__name__) == seq.memory_free
    loss.backward()
    return x.grad, [p.grad.clone() for p in seq.parameters()]


def _rel(a: Tensor, b: Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


@pytest.mark.parametrize("input_grad", [True, False])
@pytest.mark.parametrize("logdet", [False, True])
def test_memory_free_gradients_equal_autograd(input_grad: bool, logdet: bool) -> None:
    x = torch.randn(2, 4, 4, 4, dtype=torch.float64).requires_grad_(input_grad)
    weight = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    plain, free = mixed_sequence(False), mixed_sequence(True)
    plain(x.detach()), free(x.detach())  # ActNorm data init, the same for both
    gx0, gp0 = _grads(plain, x, weight, logdet)
    gx1, gp1 = _grads(free, x, weight, logdet)
    assert len(gp0) == len(gp1) > 10
    worst = max(_rel(a, b) for a, b in zip(gp1, gp0, strict=True))
    assert worst < 1e-8, f"parameter gradient relative error {worst:.2e}"
    if input_grad:
        assert _rel(gx1, gx0) < 1e-8
    else:
        assert gx0 is None and gx1 is None


def test_memory_free_without_grad_is_plain() -> None:
    seq = mixed_sequence(True)
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        y = seq(x)
    assert y.grad_fn is None and (seq.inverse(y) - x).abs().max() < 1e-10


def _stack(n: int, memory_free: bool) -> InvertibleSequence:
    blocks = [AdditiveCoupling(4, hidden=4) for _ in range(n)]
    return randomize(InvertibleSequence(blocks, memory_free=memory_free)).double()


def test_saved_tensor_bytes_constant_when_memory_free() -> None:
    x = torch.randn(1, 4, 16, 16, dtype=torch.float64, requires_grad=True)
    free = [saved_tensor_bytes(lambda n=n: _stack(n, True)(x)) for n in (2, 8)]
    plain = [saved_tensor_bytes(lambda n=n: _stack(n, False)(x)) for n in (2, 8)]
    assert abs(free[1] - free[0]) < 0.1 * free[0], free
    assert plain[1] >= 3 * plain[0], plain
    assert free[1] < plain[0]


@pytest.mark.cuda
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_cuda_round_trip_and_cpu_agreement(name: str) -> None:
    block = randomize(BLOCKS[name]()).double()
    x = torch.randn(2, IN_CHANNELS.get(name, 4), 6, 6, dtype=torch.float64)
    with torch.no_grad():
        y_cpu = block(x)
        block_gpu = block.to("cuda")
        y_gpu = block_gpu(x.cuda())
        assert (block_gpu.inverse(y_gpu) - x.cuda()).abs().max() < 1e-10
    assert (y_gpu.cpu() - y_cpu).abs().max() < 1e-10


@pytest.mark.cuda
def test_cuda_memory_free_gradients() -> None:
    x = torch.randn(2, 4, 4, 4, dtype=torch.float64, device="cuda", requires_grad=True)
    weight = torch.randn_like(x).detach()
    plain, free = mixed_sequence(False).cuda(), mixed_sequence(True).cuda()
    plain(x.detach()), free(x.detach())
    gx0, gp0 = _grads(plain, x, weight, True)
    gx1, gp1 = _grads(free, x, weight, True)
    assert _rel(gx1, gx0) < 1e-8
    assert max(_rel(a, b) for a, b in zip(gp1, gp0, strict=True)) < 1e-8
