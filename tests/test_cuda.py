"""On a CUDA device: inference equals the CPU's, training steps work, bf16 autocast keeps the
default i-RIM's quality, and the command line and the training loop run.

Every test is marked ``cuda`` and skips itself without a GPU (``tests/conftest.py``). The
CPU/CUDA comparisons turn TF32 off (cuDNN convolutions and matrix products then run in full
float32 on both devices), so the remaining differences are float32 rounding of different
kernels: images agree within ``rtol 1e-3`` and ``atol 1e-4 x`` the image maximum, gradients
within ``1e-3 x`` the largest gradient. The bf16 and command-line tests run with the defaults
(TF32 allowed), as users do.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_MODELS as TINY
from typer.testing import CliRunner

from mrirecon.inference import prepare_kspace, reference_image, undersample
from mrirecon.models.checkpoint import load_checkpoint, save_checkpoint
from mrirecon.models.protocols import LikelihoodModel
from mrirecon.models.registry import build
from mrirecon.recon.methods import build_reconstructor
from mrirecon.recon.model_inputs import padded_inputs, prepare_batch, run_model
from mrirecon.sampling import MaskOptions, draw_mask
from mrirecon.train.losses import reconstruction_loss

pytestmark = pytest.mark.cuda

RTOL, ATOL = 1e-3, 1e-4  # images; ATOL is relative to the CPU image's maximum
GRAD_TOL = 1e-3  # gradients, relative to the largest CPU gradient


@pytest.fixture
def no_tf32():
    """Full float32 convolutions and matrix products on CUDA for the duration of a test (the
    legacy flags: torch maps them consistently onto the new ``fp32_precision`` settings,
    whereas setting only some of the new ones makes reading the legacy flags an error)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def tiny_model(name: str) -> torch.nn.Module:
    """A seeded tiny model moved off its initialisation (the cINN starts as an identity)."""
    torch.manual_seed(0)
    model = build(name, TINY[name])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cuda_checkpoints")
    out = {}
    for name in TINY:
        model = tiny_model(name)
        out[name] = save_checkpoint(folder / f"{name}.safetensors", model, name=name,
                                    config=model.config)
    return out


def undersampled(path: Path, acceleration: float = 4):
    """``(fully sampled, undersampled)`` k-space of ``path`` with the per-file random mask
    ``mrirecon reconstruct --accel`` draws."""
    full = prepare_kspace(path)
    mask = draw_mask(full.shape[-2:], MaskOptions(acceleration=acceleration), path.name)
    return full, undersample(full, mask)


# inference ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(TINY))
@pytest.mark.parametrize("scan", ["MR_small.h5", "example4d.h5"])  # 4 coils 64^2; 1 coil 48^2
def test_inference_on_cuda_matches_cpu(name, scan, checkpoints, simulated_scans,
                                       no_tf32) -> None:
    _, kspace = undersampled(simulated_scans / scan)
    images = {}
    for device in ("cpu", "cuda"):
        recon = build_reconstructor(model=checkpoints[name], device=device)
        volume = recon(kspace)
        assert volume.provenance["device"] == device
        images[device] = volume.data
    cpu, gpu = images["cpu"], images["cuda"]
    assert cpu.shape == gpu.shape and np.isfinite(gpu).all() and cpu.max() > 0
    np.testing.assert_allclose(gpu, cpu, rtol=RTOL, atol=ATOL * float(cpu.max()))


# training -------------------------------------------------------------------------------------

def loss_of(model: torch.nn.Module, kspace: torch.Tensor, mask: torch.Tensor,
            target: torch.Tensor) -> torch.Tensor:
    """The training loss of one batch, as the training loop computes it: likelihood models
    (cINN) their own, RIM/i-RIM SSIM + L1 of every estimate, in normalised units."""
    batch = prepare_batch(kspace, mask)
    target = target / batch.scale[:, None, None].float()
    if isinstance(model, LikelihoodModel):
        x0, grad, _ = padded_inputs(model, batch)
        return model.training_loss(x0, grad, target)
    return reconstruction_loss(run_model(model, batch), target, ssim=1.0, l1=1.0)


@pytest.mark.parametrize("name", list(TINY))
def test_training_step_on_cuda(name, simulated_scans, no_tf32) -> None:
    full, kspace = undersampled(simulated_scans / "MR_small.h5")
    k = torch.as_tensor(np.asarray(kspace.slices(0, 1)))
    mask = torch.as_tensor(np.asarray(kspace.mask, dtype=bool))
    target = torch.as_tensor(reference_image(full)[:1])
    cpu = tiny_model(name).train()
    gpu = copy.deepcopy(cpu).cuda()
    losses = {}
    for device, model in (("cpu", cpu), ("cuda", gpu)):
        loss = loss_of(model, k.to(device), mask.to(device), target.to(device))
        loss.backward()
        losses[device] = float(loss.detach())
    assert math.isfinite(losses["cuda"])
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=1e-4, abs=1e-6)
    grads = [(p.grad, q.grad) for p, q in zip(cpu.parameters(), gpu.parameters(), strict=True)
             if p.grad is not None]
    assert grads and all(q is not None for _, q in grads)
    scale = max(float(p.abs().max()) for p, _ in grads)
    assert scale > 0
    for p, q in grads:
        assert torch.isfinite(q).all()
        torch.testing.assert_close(q.cpu(), p, rtol=0, atol=GRAD_TOL * scale)

    before = [p.detach().clone() for p in gpu.parameters()]
    torch.optim.AdamW(gpu.parameters(), lr=1e-3).step()
    changed = [not torch.equal(b, p.detach()) for b, p in zip(before, gpu.parameters(),
                                                               strict=True)]
    with_grad = [p.grad is not None and bool(p.grad.abs().max() > 0) for p in gpu.parameters()]
    assert any(changed) and all(c for c, g in zip(changed, with_grad, strict=True) if g)
    assert all(torch.isfinite(p).all() for p in gpu.parameters())


# bf16 autocast --------------------------------------------------------------------------------

def test_default_irim_bf16_autocast_psnr_within_0p05_db_of_float32() -> None:
    """The shipped i-RIM on the shipped sample scan at 4x, scored as ``evaluate`` scores
    (reference = the file's target, volume PSNR with the reference's data range)."""
    from mrirecon.metrics import volume_metrics
    from mrirecon.models.default import default_checkpoint, sample_scan

    full, kspace = undersampled(sample_scan())
    reference = reference_image(full)
    images, scores = {}, {}
    for amp in (False, True):
        recon = build_reconstructor(model=default_checkpoint(), device="cuda",
                                    amp=amp)
        assert recon.parameters()["precision"] == ("bf16-autocast" if amp else "float32")
        images[amp] = recon(kspace).data
        scores[amp] = volume_metrics(reference, images[amp])
    assert not np.array_equal(images[True], images[False])  # autocast did run in bf16
    assert abs(scores[True]["psnr"] - scores[False]["psnr"]) <= 0.05, scores


# command line and training loop ---------------------------------------------------------------

@pytest.mark.parametrize("amp", ["--no-amp", "--amp"])
def test_cli_reconstruct_on_cuda_writes_an_output(amp, tmp_path) -> None:
    from mrirecon.cli.app import app
    from mrirecon.io.fastmri_h5 import read_reconstruction
    from mrirecon.models.default import sample_scan

    result = CliRunner().invoke(app, ["reconstruct", str(sample_scan()), "-o", str(tmp_path),
                                      "--device", "cuda", amp, "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)[0]
    assert record["method"] == "irim.v1"
    volume = read_reconstruction(Path(record["output"]))
    assert volume.data.shape == (3, 128, 128) and np.isfinite(volume.data).all()
    assert volume.data.max() > 0
    assert volume.provenance["device"] == "cuda"
    precision = "bf16-autocast" if amp == "--amp" else "float32"
    assert volume.provenance["parameters"]["precision"] == precision


@pytest.mark.parametrize("name", list(TINY))
def test_train_loop_on_cuda_with_amp(name, train_val_folders, tmp_path) -> None:
    from mrirecon.train.config import load_config
    from mrirecon.train.loop import train

    out = tmp_path / "run"
    overrides = [f"model_config.{k}={v}" for k, v in TINY[name].items()]
    cfg = load_config(None, [f"model={name}", *overrides,
                             f"data.train=[{train_val_folders / 'train'}]",
                             f"data.val=[{train_val_folders / 'val'}]", "data.batch_size=2",
                             "mask.accelerations=[4]", "log_every=1", "val_every=2",
                             "max_steps=3", "device=cuda", "amp=true", f"out={out}"])
    summary = train(cfg)
    assert summary["steps"] == 3 and not summary["interrupted"]
    assert summary["device"].startswith("cuda") and summary["amp"] is True
    assert math.isfinite(summary["loss"])
    assert all(math.isfinite(summary["val"][k]) for k in ("psnr", "ssim", "nmse"))
    model, meta = load_checkpoint(out / "last.safetensors")
    assert meta["name"] == name
    assert all(torch.isfinite(p).all() for p in model.parameters())
