"""Invariants of the invertible U-Net: exact inversion with non-identity weights, shape contract,
padding helpers, memory-free gradients equal to autograd (also behind a closure-driven step)."""

from __future__ import annotations

import pytest
import torch
from helpers import ClosureStep, least_squares_gradient, randomize
from torch import Tensor

from mrirecon.models.invertible import InvertibleSequence, saved_tensor_bytes
from mrirecon.models.iunet import IUNet, required_multiple


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("levels", [1, 2, 3])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_round_trip(levels: int, dtype: torch.dtype, tol: float) -> None:
    net = randomize(IUNet(2, levels=levels, blocks_per_level=2, hidden=6), scale=0.1).to(dtype)
    x = torch.randn(2, 2, 8, 8, dtype=dtype)
    with torch.no_grad():
        y = net(x)
        err = (net.inverse(y) - x).abs().max().item()
        _, logdet = net.forward_and_logdet(x)
    assert y.shape == x.shape
    assert (y - x).abs().max() > 1e-2
    assert err < tol, f"max round-trip error {err:.2e}"
    assert torch.equal(logdet, torch.zeros(2, dtype=dtype))


def test_volume_preserving_jacobian() -> None:
    net = randomize(IUNet(2, levels=2, blocks_per_level=[1, 2], hidden=3)).double()
    x = torch.randn(1, 2, 2, 2, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(net, x).reshape(8, 8)
    assert abs(torch.linalg.slogdet(jac)[1].item()) < 1e-10


def test_shape_errors_name_shape_and_multiple() -> None:
    net = IUNet(4, levels=3, hidden=4)
    assert required_multiple(3) == 4 and required_multiple(1) == 1
    with pytest.raises(ValueError, match=r"divisible by 4.*\(1, 4, 6, 8\)"):
        net(torch.zeros(1, 4, 6, 8))
    with pytest.raises(ValueError, match=r"\(1, 2, 8, 8\)"):
        net(torch.zeros(1, 2, 8, 8))
    for bad in (1, 3):
        with pytest.raises(ValueError, match="even number of channels"):
            IUNet(bad)
    with pytest.raises(ValueError, match="blocks_per_level"):
        IUNet(2, levels=3, blocks_per_level=[1, 2])
    with pytest.raises(ValueError, match="levels"):
        IUNet(2, levels=0)


def test_parameter_count_grows_with_hidden_and_blocks() -> None:
    def count(**kw: object) -> int:
        return sum(p.numel() for p in IUNet(2, levels=2, **kw).parameters())

    assert count(hidden=8) > count(hidden=4)
    assert count(blocks_per_level=3) > count(blocks_per_level=2) > count(blocks_per_level=1)


def _grads(net: torch.nn.Module, x: Tensor, weight: Tensor) -> tuple[Tensor, list[Tensor]]:
    x = x.detach().clone().requires_grad_(True)
    (net(x) * weight).sum().backward()
    return x.grad, [p.grad.clone() for p in net.parameters()]


def _rel(a: Tensor, b: Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _build(memory_free: bool, closure: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    net = IUNet(4, levels=3, blocks_per_level=[2, 1, 1], hidden=4, memory_free=memory_free)
    if closure:  # an i-RIM-like step: a data-consistency closure, then the iUNet
        net = InvertibleSequence(
            [ClosureStep(4, 2, least_squares_gradient(2, 8)), net], memory_free=memory_free
        )
    return randomize(net, scale=0.1).double()


@pytest.mark.parametrize("closure", [False, True])
def test_memory_free_gradients_equal_autograd(closure: bool) -> None:
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    weight = torch.randn_like(x)
    gx0, gp0 = _grads(_build(False, closure), x, weight)
    free = _build(True, closure)
    assert "MemoryFree" in type(free(x.requires_grad_()).grad_fn).__name__
    gx1, gp1 = _grads(free, x, weight)
    worst = max(_rel(a, b) for a, b in zip(gp1, gp0, strict=True))
    assert worst < 1e-8, f"parameter gradient relative error {worst:.2e}"
    assert _rel(gx1, gx0) < 1e-8


def test_memory_free_saves_less() -> None:
    x = torch.randn(1, 4, 16, 16, dtype=torch.float64, requires_grad=True)
    free = saved_tensor_bytes(lambda: _build(True, False)(x))
    plain = saved_tensor_bytes(lambda: _build(False, False)(x))
    assert free == x.numel() * x.element_size()  # only the output
    assert plain > 5 * free


@pytest.mark.cuda
def test_cuda_round_trip_and_cpu_agreement() -> None:
    net = randomize(IUNet(2, levels=3, hidden=4)).double()
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        y_cpu = net(x)
        net = net.cuda()
        y_gpu = net(x.cuda())
        assert (net.inverse(y_gpu) - x.cuda()).abs().max() < 1e-10
    assert (y_gpu.cpu() - y_cpu).abs().max() < 1e-10
