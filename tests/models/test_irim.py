"""The invertible RIM: exact whole-model inverse with distinct per-step weights, memory-free
gradients equal to autograd, flat saved-tensor memory, and physics gradients from our operators."""

from __future__ import annotations

import pytest
import torch

from mrirecon.models.invertible import saved_tensor_bytes
from mrirecon.models.irim import IRIM, IRIMConfig
from mrirecon.recon.model_inputs import gradient_channels, prepare_batch
from mrirecon.sampling import MaskSpec, make_mask

SMALL = dict(state_channels=6, levels=2, blocks_per_level=1, hidden=8, grad_hidden=8)


def model(steps: int = 3, dtype=torch.float64, **overrides) -> IRIM:
    torch.manual_seed(0)
    m = IRIM(IRIMConfig(steps=steps, **{**SMALL, **overrides})).to(dtype)
    with torch.no_grad():  # away from the identity initialisation, distinct per step
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


def physics_gradient(coils: int, dtype=torch.complex128):
    """A data-consistency gradient from our SENSE operator on a random scene, real channels."""
    g = torch.Generator().manual_seed(coils)
    image = torch.randn(2, 16, 16, dtype=dtype, generator=g)
    kspace_full = torch.fft.fft2(image[:, None].repeat(1, coils, 1, 1) * (1 + 0.1 * torch.arange(
        coils, dtype=torch.float64)[:, None, None]), norm="ortho")
    mask = torch.as_tensor(make_mask(MaskSpec(kind="random", acceleration=2, shape=(16, 16),
                                              center_fraction=0.375, seed=1)).array)
    batch = prepare_batch(torch.where(mask, kspace_full, 0), mask)
    return gradient_channels(batch.op, batch.y), batch


@pytest.mark.parametrize("coils", [1, 4])
@pytest.mark.parametrize("shared", [False, True])
def test_whole_model_inverse_with_physics(coils: int, shared: bool) -> None:
    grad, batch = physics_gradient(coils)
    m = model(shared_weights=shared)
    h0 = m.lift(batch.x0.to(torch.float64))
    h0[:, 2:] = torch.randn_like(h0[:, 2:])
    h = m.forward_state(h0, grad)
    assert (h - h0).abs().max() > 1e-3  # the model does something
    assert (m.inverse(h, grad) - h0).abs().max() < 1e-10


def test_inverse_runs_the_steps_in_reverse_order() -> None:
    """With distinct weights, undoing the steps in forward order (the reference code's bug)
    does not give the input back; our inverse does."""
    grad = lambda x: torch.sin(x)  # noqa: E731 - a toy gradient
    m = model(steps=3)
    h0 = torch.randn(1, 6, 16, 16, dtype=torch.float64)
    h = m.forward_state(h0, grad)
    wrong = h
    for block in m.sequence.blocks:  # forward order
        wrong = block.inverse(wrong)
    assert (wrong - h0).abs().max() > 1e-3
    assert (m.inverse(h, grad) - h0).abs().max() < 1e-10


def test_float32_inverse() -> None:
    grad = lambda x: 0.5 * x  # noqa: E731
    m = model(dtype=torch.float32)
    h0 = torch.randn(2, 6, 16, 16)
    assert (m.inverse(m.forward_state(h0, grad), grad) - h0).abs().max() < 1e-4


@pytest.mark.parametrize("shared", [False, True])
def test_memory_free_gradients_equal_autograd(shared: bool) -> None:
    grad, batch = physics_gradient(4)
    free = model(memory_free=True, shared_weights=shared)
    plain = model(memory_free=False, shared_weights=shared)
    plain.load_state_dict(free.state_dict())
    grads = []
    for m in (free, plain):
        x0 = batch.x0.to(torch.float64).clone().requires_grad_(True)
        m.zero_grad()
        (m(x0, grad)[0] ** 2).sum().backward()
        grads.append([x0.grad, *[p.grad for p in m.parameters()]])
    for a, b in zip(*grads, strict=True):
        assert torch.linalg.vector_norm(a - b) <= 1e-8 * torch.linalg.vector_norm(b)


def test_memory_free_backward_uses_each_passs_own_gradient() -> None:
    """Two forward passes with different physics (1 and 4 coils), then one backward of the summed
    loss, as the training loop does for a batch of items with their own masks: the memory-free
    gradients equal autograd's. (The gradient function is bound to the model at each forward; a
    backward that used the last-bound one mixed the items' physics up.)"""
    free = model(memory_free=True)
    plain = model(memory_free=False)
    plain.load_state_dict(free.state_dict())
    passes = [physics_gradient(1), physics_gradient(4)]
    grads = []
    for m in (free, plain):
        m.zero_grad()
        loss = sum((m(b.x0.to(torch.float64), g)[0] ** 2).sum() for g, b in passes)
        loss.backward()
        grads.append([p.grad for p in m.parameters()])
    for a, b in zip(*grads, strict=True):
        assert torch.linalg.vector_norm(a - b) <= 1e-8 * torch.linalg.vector_norm(b)

def test_saved_memory_is_flat_in_the_number_of_steps() -> None:
    x0 = torch.randn(1, 2, 32, 32, requires_grad=True)
    grad = lambda x: x - 1  # noqa: E731

    def cost(steps: int, memory_free: bool) -> int:
        m = model(steps=steps, dtype=torch.float32, memory_free=memory_free)
        return saved_tensor_bytes(lambda: m(x0, grad)[0].sum())

    assert cost(8, True) <= 1.1 * cost(2, True)
    assert cost(8, False) >= 3 * cost(2, False)


@pytest.mark.cuda
def test_cuda_matches_cpu() -> None:
    grad = lambda x: x - 0.5  # noqa: E731
    m = model(dtype=torch.float32)
    x0 = torch.randn(1, 2, 16, 16)
    cpu = m(x0, grad)[0]
    gpu = m.cuda()(x0.cuda(), grad)[0].cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)
