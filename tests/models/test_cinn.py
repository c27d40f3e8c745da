"""The conditional INN: exact inverse given a condition, log-determinant against the autograd
Jacobian, the likelihood's terms, a frozen and self-contained i-RIM conditioner, sampling
(reproducible, tempered), and a falling NLL on phantoms measured through our operators."""

from __future__ import annotations

import math

import pytest
import torch

from mrirecon.errors import InputFileError, InvalidParameterError
from mrirecon.models import registry
from mrirecon.models.checkpoint import build_model, load_checkpoint, save_checkpoint
from mrirecon.models.cinn import CINN, CINNConfig
from mrirecon.models.irim import IRIM, IRIMConfig
from mrirecon.physics.coils import single_coil_maps
from mrirecon.physics.sense import sense_operator
from mrirecon.recon.model_inputs import gradient_channels, prepare_batch, run_model
from mrirecon.sampling import MaskSpec, make_mask

SMALL = dict(levels=2, blocks_per_level=2, hidden=8, cond_channels=4, cond_hidden=8)
IRIM_SMALL = dict(steps=2, state_channels=4, levels=2, blocks_per_level=1, hidden=4, grad_hidden=4)


def phantoms(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Smooth complex images ``(n, size, size)``: a few Gaussian blobs with a slow phase."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(*(torch.linspace(-1, 1, size, dtype=torch.float64),) * 2,
                            indexing="ij")
    images = []
    for _ in range(n):
        mag = torch.zeros(size, size, dtype=torch.float64)
        for _ in range(3):
            cy, cx = (torch.rand(2, generator=g, dtype=torch.float64) - 0.5).tolist()
            width = 0.2 + 0.3 * float(torch.rand((), generator=g, dtype=torch.float64))
            mag = mag + torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
        images.append(mag * torch.exp(1j * (0.5 * yy + 0.3 * xx)))
    return torch.stack(images)


def measured(images: torch.Tensor):
    """Undersampled single-coil k-space of ``images`` through our SENSE operator: the model's
    batch, its physics gradient and the normalised magnitude target ``(n, 1, H, W)``."""
    size = images.shape[-2:]
    kspace = sense_operator(single_coil_maps(size, dtype=images.dtype))(images)
    mask = torch.as_tensor(make_mask(MaskSpec(kind="random", acceleration=2, shape=tuple(size),
                                              center_fraction=0.25, seed=1)).array)
    batch = prepare_batch(torch.where(mask, kspace, 0), mask)
    target = images.abs()[:, None] / batch.scale[:, None, None, None]
    return batch, gradient_channels(batch.op, batch.y), target


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny convolutions: one thread is faster, and spares a machine busy with other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    """Two phantoms measured in complex128 (float64 model inputs)."""
    return measured(phantoms(2))


@pytest.fixture(scope="module")
def data32():
    """The same in complex64 (float32 model inputs and gradient)."""
    return measured(phantoms(2).to(torch.complex64))


@pytest.fixture(scope="module")
def irim_checkpoint(tmp_path_factory):
    torch.manual_seed(1)
    irim = IRIM(IRIMConfig(**IRIM_SMALL))
    with torch.no_grad():  # a non-trivial i-RIM
        for p in irim.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("irim") / "irim.safetensors"
    save_checkpoint(path, irim, name="irim.v1", config=IRIMConfig(**IRIM_SMALL))
    return path


def model(data, dtype=torch.float64, scale: float = 0.1, **overrides) -> CINN:
    """A small cINN with every trainable parameter moved off its (identity) initialisation, then
    ActNorm initialised on ``data = (batch, grad, target)``; in eval mode."""
    batch, grad, target = data
    return perturbed(batch.x0.to(dtype), target.to(dtype), grad, scale, **overrides)


def perturbed(x0, x, grad=None, scale: float = 0.1, **overrides) -> CINN:
    torch.manual_seed(0)
    m = build_model("cinn.v1", CINNConfig(**{**SMALL, **overrides})).to(x0.dtype)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in m.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    m.train()
    m.encode(x, x0, grad)  # data-initialises ActNorm on the perturbed network
    return m.eval()


def irim_model(data, path, **kw) -> CINN:
    return model(data, conditioner="irim", irim_checkpoint=str(path), **kw)


@pytest.mark.parametrize("conditioner", ["zero-filled", "irim"])
def test_decode_inverts_encode(data, data32, irim_checkpoint, conditioner: str) -> None:
    for d, tol in ((data32, 1e-4), (data, 1e-10)):
        batch, grad, target = d
        x0, x = batch.x0, target
        m = (irim_model(d, irim_checkpoint, dtype=x0.dtype) if conditioner == "irim"
             else model(d, dtype=x0.dtype))
        zs, logdet = m.encode(x, x0, grad)
        assert sum(z[0].numel() for z in zs) == x[0].numel()
        assert logdet.abs().min() > 1.0  # far from a volume-preserving (orthogonal) map
        assert (m.decode(zs, x0, grad) - x).abs().max() < tol


def test_logdet_equals_jacobian_slogdet() -> None:
    torch.manual_seed(3)
    x0, x = torch.randn(1, 2, 8, 8, dtype=torch.float64), torch.randn(1, 1, 8, 8,
                                                                        dtype=torch.float64)
    m = perturbed(x0, x, scale=0.2)

    def flat_z(v: torch.Tensor) -> torch.Tensor:
        zs, _ = m.encode(v.reshape(1, 1, 8, 8), x0)
        return torch.cat([z.flatten() for z in zs])

    jac = torch.autograd.functional.jacobian(flat_z, x.flatten())
    assert jac.shape == (64, 64)
    _, logabs = torch.linalg.slogdet(jac)
    _, logdet = m.encode(x, x0)
    assert abs(logdet.item() - logabs.item()) < 1e-6
    assert abs(logdet.item()) > 1e-2  # the map is not volume preserving


def test_latent_dimension_and_likelihood_terms(data) -> None:
    batch, grad, target = data
    three = CINN(CINNConfig(levels=3, blocks_per_level=1, hidden=4, cond_channels=2,
                            cond_hidden=4))
    shapes = three.latent_shapes(16, 16)
    assert shapes == [(2, 8, 8), (4, 4, 4), (16, 2, 2)]
    assert sum(c * h * w for c, h, w in shapes) == 16 * 16
    assert three.required_multiple == 8

    m = model(data)
    zs, logdet = m.encode(target, batch.x0, grad)
    assert [tuple(z.shape[1:]) for z in zs] == m.latent_shapes(16, 16)
    assert sum(z[0].numel() for z in zs) == 16 * 16
    z = torch.cat([z.flatten(1) for z in zs], dim=1)
    gauss = -0.5 * (z**2).sum(dim=1) - 0.5 * z.shape[1] * math.log(2 * math.pi)
    ll = m.log_likelihood(target, batch.x0, grad)
    torch.testing.assert_close(ll, gauss + logdet, rtol=0, atol=1e-10)
    bpd = m.nll_bits_per_dim(target, batch.x0, grad)
    torch.testing.assert_close(bpd, -ll.mean() / (256 * math.log(2)), rtol=0, atol=1e-12)
    torch.testing.assert_close(m.training_loss(batch.x0, grad, target[:, 0]), bpd)


def test_residual_models_the_difference_from_the_zero_filled_magnitude(data) -> None:
    batch, grad, target = data
    c, mag = model(data).condition(batch.x0, grad)
    assert c.shape == (2, 3, 16, 16)
    torch.testing.assert_close(mag[:, 0], torch.linalg.vector_norm(batch.x0, dim=1))
    plain = model(data, residual=False)
    plain.load_state_dict(model(data).state_dict())
    zs_res, _ = model(data).encode(target, batch.x0, grad)
    zs_plain, _ = plain.encode(target - mag, batch.x0, grad)
    for a, b in zip(zs_res, zs_plain, strict=True):
        torch.testing.assert_close(a, b)


def test_actnorm_initialised_by_encode_not_by_decode(data) -> None:
    batch, grad, target = data
    m = CINN(CINNConfig(**SMALL)).to(torch.float64).train()
    norms = [mod for mod in m.modules() if type(mod).__name__ == "ActNorm"]
    zs = [torch.randn(2, *s, dtype=torch.float64) for s in m.latent_shapes(16, 16)]
    m.decode(zs, batch.x0, grad)
    m(batch.x0, grad)
    m.sample(batch.x0, grad, 2)
    assert not any(bool(n.initialized) for n in norms)
    m.encode(target, batch.x0, grad)
    assert all(bool(n.initialized) for n in norms)
    # the first ActNorm saw the downsampled residual x - |x0| and normalised it
    h = m.levels[0].down(target - torch.linalg.vector_norm(batch.x0, dim=1, keepdim=True))
    torch.testing.assert_close(m.levels[0].norms[0].bias, -h.mean(dim=(0, 2, 3)))


def test_irim_conditioner_is_frozen_and_self_contained(data32, irim_checkpoint, tmp_path
                                                       ) -> None:
    batch, grad, target = data32
    irim_ckpt = tmp_path / "irim.safetensors"
    irim_ckpt.write_bytes(irim_checkpoint.read_bytes())
    stored, meta = load_checkpoint(irim_ckpt)

    m = irim_model(data32, irim_ckpt, dtype=torch.float32)
    assert m.config.irim_config == meta["config"]
    assert all(not p.requires_grad for p in m.irim.parameters())
    for k, v in stored.state_dict().items():
        assert torch.equal(m.state_dict()[f"irim.{k}"], v)  # its weights are in the cINN's
    x0 = batch.x0
    c, mag = m.condition(x0, grad)
    e = stored(x0, grad)[-1]
    assert c.shape == (2, 6, 16, 16)
    torch.testing.assert_close(mag[:, 0], torch.sqrt((e**2).sum(dim=1) + 1e-12))

    # a training step changes the flow but never the i-RIM, which stays in eval mode
    m.train()
    assert m.training and not m.irim.training
    before = {k: v.clone() for k, v in m.irim.state_dict().items()}
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    m.training_loss(x0, grad, target[:, 0]).backward()
    assert all(p.grad is None for p in m.irim.parameters())
    assert m.levels[0].couplings[0].net[0].weight.grad.abs().sum() > 0
    assert m.cond_stem[0].weight.grad.abs().sum() > 0
    opt.step()
    assert all(torch.equal(v, before[k]) for k, v in m.irim.state_dict().items())
    m.eval()

    # the cINN checkpoint carries the i-RIM: it loads and samples alike without the i-RIM file
    path = save_checkpoint(tmp_path / "cinn.safetensors", m, name="cinn.v1", config=m.config)
    irim_ckpt.unlink()
    loaded, cmeta = load_checkpoint(path)
    assert cmeta["name"] == "cinn.v1" and cmeta["config"]["irim_config"] == meta["config"]
    assert not loaded.irim.training and not any(p.requires_grad for p in loaded.irim.parameters())
    with torch.no_grad():
        a = m.sample(x0, grad, 3, generator=torch.Generator().manual_seed(5))
        b = loaded.sample(x0, grad, 3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_irim_conditioner_rejects_other_checkpoints(data, tmp_path) -> None:
    m = CINN(CINNConfig(**SMALL))
    path = save_checkpoint(tmp_path / "cinn.safetensors", m, name="cinn.v1", config=m.config)
    with pytest.raises(InputFileError, match="irim_checkpoint needs an irim.v1 checkpoint"):
        build_model("cinn.v1", CINNConfig(**SMALL, conditioner="irim", irim_checkpoint=str(path)))
    with pytest.raises(InvalidParameterError, match="must be loaded by the build step"):
        CINN(CINNConfig(**SMALL, conditioner="irim", irim_checkpoint=str(path)))  # never reads


@pytest.mark.parametrize("bad", [
    dict(levels=0), dict(blocks_per_level=0), dict(clamp=0.0), dict(conditioner="unet"),
    dict(conditioner="irim"),
])
def test_config_validation(bad: dict) -> None:
    with pytest.raises(ValueError):
        CINNConfig(**bad)


def test_sampling(data) -> None:
    batch, grad, _ = data
    m = model(data)
    with torch.no_grad():
        s = m.sample(batch.x0, grad, 6, generator=torch.Generator().manual_seed(0))
        assert s.shape == (6, 2, 16, 16)
        assert (s[0] - s[1]).abs().max() > 1e-3
        again = m.sample(batch.x0, grad, 6, generator=torch.Generator().manual_seed(0),
                         max_batch=5)
        torch.testing.assert_close(s, again, rtol=0, atol=1e-12)  # chunking changes nothing
        # sample s of input b decodes latent row s * B + b under condition b
        g = torch.Generator().manual_seed(0)
        zs = [torch.randn(12, *sh, generator=g, dtype=torch.float64)
              for sh in m.latent_shapes(16, 16)]
        direct = m.decode([z[2:4] for z in zs], batch.x0, grad)[:, 0]
        torch.testing.assert_close(s[1], direct)

        def spread(t: float) -> float:
            out = m.sample(batch.x0, grad, 16, temperature=t,
                           generator=torch.Generator().manual_seed(1))
            return float(out.std(dim=0).mean())

        assert spread(0.5) < 0.75 * spread(1.0)
        for kw in (dict(num_samples=0), dict(num_samples=2, temperature=0.0),
                   dict(num_samples=2, temperature=-1.0)):
            with pytest.raises(ValueError):
                m.sample(batch.x0, grad, **kw)


def test_forward_decodes_the_base_mode_and_runs_as_a_reconstructor(data) -> None:
    batch, grad, _ = data
    m = model(data)
    with torch.no_grad():
        (est,) = m(batch.x0, grad)
        zs = [torch.zeros(2, *s, dtype=torch.float64) for s in m.latent_shapes(16, 16)]
        assert est.shape == (2, 2, 16, 16) and torch.equal(est[:, 1], torch.zeros_like(est[:, 1]))
        torch.testing.assert_close(est[:, :1], m.decode(zs, batch.x0, grad))
        small, _, _ = measured(phantoms(1, size=14, seed=4))  # padded to 16 by run_model
        (image,) = run_model(m, small)
    assert image.shape == (1, 14, 14) and image.is_complex()


def test_training_decreases_nll() -> None:
    batch, grad, x = measured(phantoms(6, seed=7).to(torch.complex64))
    x0 = batch.x0
    torch.manual_seed(0)
    m = CINN(CINNConfig(**SMALL)).train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = m.training_loss(x0, grad, x)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert math.isfinite(losses[-1])
    assert losses[-1] < losses[0] - 0.5


def test_registry_builds_and_lists_the_cinn(tmp_path) -> None:
    m = registry.build("cinn.v1", {"levels": 2, "blocks_per_level": 1, "hidden": 4})
    assert isinstance(m, CINN) and m.config.levels == 2 and m.required_multiple == 4
    entry = {e["name"]: e for e in registry.list_models()}["cinn.v1"]
    assert entry["available"] and entry["defaults"]["conditioner"] == "zero-filled"
    path = save_checkpoint(tmp_path / "c.safetensors", m, name="cinn.v1", config=m.config)
    loaded, meta = load_checkpoint(path)
    assert isinstance(loaded, CINN) and meta["config"]["levels"] == 2


@pytest.mark.cuda
def test_cuda_sampling_with_a_cpu_generator_matches_cpu(data32) -> None:
    batch, grad, target = data32
    m = model(data32, dtype=torch.float32)
    with torch.no_grad():
        cpu = m.sample(batch.x0, grad, 3, generator=torch.Generator().manual_seed(0))
        gpu = m.cuda().sample(batch.x0.cuda(), None, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)



@pytest.mark.parametrize("coils,accel", [(1, 4), (4, 4), (4, 8)])
def test_sampled_fraction_is_read_off_the_gradient(coils: int, accel: int) -> None:
    """The measured fraction is the mask's, within 15% (ACS maps of white-noise scenes)."""
    from mrirecon.models.cinn import sampled_fraction
    from mrirecon.physics.simulate import birdcage_maps

    size = (32, 48)
    g = torch.Generator().manual_seed(1)
    images = torch.randn(2, *size, dtype=torch.complex64, generator=g)
    maps = (single_coil_maps(size, dtype=torch.complex64) if coils == 1
            else torch.as_tensor(birdcage_maps(size, coils)).to(torch.complex64))
    kspace = sense_operator(maps)(images)
    mask = torch.as_tensor(make_mask(MaskSpec(kind="random", acceleration=accel, shape=size,
                                              seed=3)).array)
    batch = prepare_batch(torch.where(mask, kspace, 0), mask)
    fraction = sampled_fraction(batch.x0, gradient_channels(batch.op, batch.y))
    expected = mask.float().mean().expand(2)
    torch.testing.assert_close(fraction, expected, rtol=0.15, atol=0)


def test_acceleration_channel_adds_log_r_to_the_condition(data) -> None:
    batch, grad, _ = data
    small = dict(levels=2, blocks_per_level=1, hidden=8, cond_channels=4, cond_hidden=8)
    plain = CINN(CINNConfig(**small)).double()
    wide = CINN(CINNConfig(**small, acceleration_channel=True)).double()
    c0, _ = plain.condition(batch.x0, grad)
    c1, _ = wide.condition(batch.x0, grad)
    assert c1.shape[1] == c0.shape[1] + 1
    torch.testing.assert_close(c1[:, :-1], c0)
    log_r = c1[:, -1]
    assert torch.all(log_r == log_r[:, :1, :1]) and 0 < float(log_r[0, 0, 0]) < math.log(4)
    with pytest.raises(ValueError, match="needs grad_fn"):
        wide.condition(batch.x0, None)
