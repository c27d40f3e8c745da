"""Tests of mrirecon.models.rim (and the registry that builds it)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from mrirecon.errors import InvalidParameterError
from mrirecon.models import registry
from mrirecon.models.rim import RIM, ConvGRUCell, RIMConfig

SIZE = 16


def _seeded_rim(seed: int = 0, **overrides) -> RIM:
    """A RIM initialised from ``seed`` without touching the global random state."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return RIM(RIMConfig(**overrides))


def _to_complex(x: torch.Tensor) -> torch.Tensor:
    return torch.complex(x[:, 0], x[:, 1])


def _to_channels(z: torch.Tensor) -> torch.Tensor:
    return torch.stack([z.real, z.imag], dim=1)


def _blobs(n: int, g: torch.Generator) -> torch.Tensor:
    """Smooth complex toy images (sums of Gaussian blobs) as real channels (n, 2, SIZE, SIZE)."""
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    out = torch.zeros(n, 2, SIZE, SIZE)
    for _ in range(4):
        centre = torch.rand(n, 2, 1, 1, generator=g) * SIZE
        width = 1.5 + torch.rand(n, 1, 1, 1, generator=g) * 3
        amplitude = torch.randn(n, 2, 1, 1, generator=g)
        r2 = (yy - centre[:, :1]) ** 2 + (xx - centre[:, 1:]) ** 2
        out += amplitude * torch.exp(-r2 / (2 * width**2))
    return out


def _column_mask(g: torch.Generator) -> torch.Tensor:
    keep = torch.rand(SIZE, generator=g) < 0.4
    keep[:3] = True  # low frequencies (unshifted FFT: both ends)
    keep[-2:] = True
    return keep.float().expand(SIZE, SIZE)


def _measure(x: torch.Tensor, mask: torch.Tensor, sigma: float, g: torch.Generator):
    k = torch.fft.fft2(_to_complex(x), norm="ortho")
    noise = torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g))
    return mask * (k + sigma * noise)


def _dc_gradient(y: torch.Tensor, mask: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Toy masked-FFT data-consistency gradient A^H(Ax - y) on real channels."""

    def grad(x: torch.Tensor) -> torch.Tensor:
        residual = mask * torch.fft.fft2(_to_complex(x), norm="ortho") - y
        return _to_channels(torch.fft.ifft2(mask * residual, norm="ortho"))

    return grad


def _zero_filled(y: torch.Tensor) -> torch.Tensor:
    return _to_channels(torch.fft.ifft2(y, norm="ortho"))


@pytest.mark.parametrize("shared", [True, False])
def test_returns_one_estimate_per_step(shared: bool) -> None:
    model = _seeded_rim(steps=3, hidden=4, shared_weights=shared)
    x0 = torch.randn(2, 2, 12, 10)
    calls = []

    def grad(x: torch.Tensor) -> torch.Tensor:
        calls.append(x)
        return x - 1

    estimates = model(x0, grad)
    assert len(estimates) == 3 and len(calls) == 3
    assert all(e.shape == x0.shape for e in estimates)
    assert calls[0] is x0 and calls[1] is estimates[0]  # the gradient is taken at x_t


def test_per_step_weights_have_steps_times_the_parameters() -> None:
    def count(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    shared = _seeded_rim(steps=4, hidden=6, shared_weights=True)
    distinct = _seeded_rim(steps=4, hidden=6, shared_weights=False)
    assert count(distinct) == 4 * count(shared)
    assert len(distinct.cells) == 4 and len(shared.cells) == 1


def test_reference_cell_parameter_count() -> None:
    """conv5x5 4->64, two ConvGRU(64, 64) with 3x3 kernels, dilated 3x3 64->64, 3x3 64->2."""
    gru = (128 * 128 * 9 + 128) + (128 * 64 * 9 + 64)
    expected = (4 * 64 * 25 + 64) + gru + (64 * 64 * 9 + 64) + gru + (64 * 2 * 9 + 2)
    assert sum(p.numel() for p in RIM(RIMConfig()).parameters()) == expected


@pytest.mark.parametrize("shared", [True, False])
def test_gradients_reach_every_parameter(shared: bool) -> None:
    model = _seeded_rim(steps=3, hidden=4, shared_weights=shared)
    g = torch.Generator().manual_seed(1)
    target = torch.randn(2, 2, 8, 8, generator=g)
    estimates = model(torch.zeros_like(target), lambda x: x - target)
    sum(((e - target) ** 2).mean() for e in estimates).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_convgru_keeps_state_shape_and_interpolates() -> None:
    cell = ConvGRUCell(3, 5)
    x = torch.randn(2, 3, 6, 7)
    h = cell(x)
    assert h.shape == (2, 5, 6, 7)
    assert h.abs().max() < 1  # a convex mix of zero and tanh values
    assert cell(x, h).shape == h.shape


def test_rejects_wrong_shapes() -> None:
    model = _seeded_rim(steps=2, hidden=4)
    with pytest.raises(InvalidParameterError, match=r"\(B, 2, H, W\)"):
        model(torch.zeros(1, 1, 8, 8), lambda x: x)
    with pytest.raises(InvalidParameterError, match="grad_fn returned shape"):
        model(torch.zeros(1, 2, 8, 8), lambda x: x[:, :1])


@pytest.mark.parametrize("bad", [{"steps": 0}, {"hidden": 2.5}, {"shared_weights": "no"}])
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(InvalidParameterError):
        RIMConfig(**bad)


def test_training_beats_zero_filled_on_toy_undersampled_noisy_data() -> None:
    """A tiny RIM trained for 150 Adam steps with a masked-FFT gradient must beat its input."""
    g = torch.Generator().manual_seed(0)
    mask = _column_mask(g)
    model = _seeded_rim(steps=3, hidden=12)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        x = _blobs(8, g)
        y = _measure(x, mask, 0.1, g)
        estimates = model(_zero_filled(y), _dc_gradient(y, mask))
        loss = sum(((e - x) ** 2).mean() for e in estimates) / len(estimates)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    test_g = torch.Generator().manual_seed(123)
    x = _blobs(32, test_g)
    y = _measure(x, mask, 0.1, test_g)
    with torch.no_grad():
        x0 = _zero_filled(y)
        estimates = model(x0, _dc_gradient(y, mask))
    input_error = ((x0 - x) ** 2).mean()
    final_error = ((estimates[-1] - x) ** 2).mean()
    assert final_error < 0.8 * input_error  # seeds 0-4 give 0.25-0.71
    assert final_error < ((estimates[0] - x) ** 2).mean()  # later steps refine earlier ones


# --- registry ---------------------------------------------------------------------------------


def test_list_models_describes_rim_and_survives_missing_modules() -> None:
    entries = {e["name"]: e for e in registry.list_models()}
    assert {"rim.v1", "irim.v1"} <= set(entries)
    rim = entries["rim.v1"]
    assert rim["available"] and rim["defaults"] == {
        "steps": 8,
        "hidden": 64,
        "shared_weights": True,
        "channels": 2,
    }
    assert rim["parameters"] == sum(p.numel() for p in RIM(RIMConfig()).parameters())
    assert all("description" in e for e in entries.values())


def test_missing_module_is_listed_and_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = registry.ModelEntry("mrirecon.models.does_not_exist", "X", "XConfig", "ghost")
    monkeypatch.setitem(registry.REGISTRY, "ghost.v1", entry)
    listed = {e["name"]: e for e in registry.list_models()}["ghost.v1"]
    assert listed["available"] is False and "does_not_exist" in listed["error"]
    with pytest.raises(registry.ModelUnavailableError, match="ghost.v1.*does_not_exist"):
        registry.build("ghost.v1")


def test_build_rim_with_overrides() -> None:
    model = registry.build("rim.v1", {"steps": 2, "hidden": 4, "shared_weights": False})
    assert isinstance(model, RIM)
    assert model.config == RIMConfig(steps=2, hidden=4, shared_weights=False)
    assert len(model.cells) == 2
    assert registry.config_for("rim.v1", None) == RIMConfig()
    assert registry.build("rim.v1", RIMConfig(steps=1, hidden=2)).config.steps == 1


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(InvalidParameterError, match=r"unknown model 'rim\.v9'.*rim\.v1"):
        registry.build("rim.v9")


def test_unknown_keys_list_valid_keys() -> None:
    with pytest.raises(InvalidParameterError,
                       match=r"model_config\.layers.*valid keys in model_config for rim\.v1: "
                             "steps, hidden"):
        registry.config_for("rim.v1", {"layers": 3})


def test_values_are_coerced_like_yaml_and_wrong_kinds_refused() -> None:
    assert registry.config_for("rim.v1", {"steps": "8"}).steps == 8  # one engine with train/
    for value in ("eight", 2.5, True):
        with pytest.raises(InvalidParameterError, match="model_config.steps must be an integer"):
            registry.config_for("rim.v1", {"steps": value})
    with pytest.raises(InvalidParameterError,
                       match=r"model_config.steps must be an integer from 1 to 64"):
        registry.config_for("rim.v1", {"steps": 0})
