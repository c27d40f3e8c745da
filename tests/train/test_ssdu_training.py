"""Self-supervised training (SSDU) from undersampled files only, through ``mrirecon train``'s loop.

Data: nibabel's example4d (a real EPI head, 24 slices), k-space simulated for 1 coil at 48x48.
Slices 2-17 become three undersampled acquisitions (2.5x equispaced-fraction masks, one per
file, no reference kept); slices 18-21, which training never sees in any form, are the fully
sampled reference. (A tiny model trained in a minute on one EPI series does not transfer to
another source; that is the benchmark's question, ``scripts/bench/ssdu.py``.)
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from mrirecon.errors import MriReconError
from mrirecon.io.fastmri_h5 import read_kspace
from mrirecon.metrics import psnr
from mrirecon.models.checkpoint import load_checkpoint, read_metadata
from mrirecon.physics.simulate import SimulationParams
from mrirecon.recon.learned import estimate
from mrirecon.recon.model_inputs import prepare_batch
from mrirecon.sampling import MaskOptions, draw_mask
from mrirecon.simulation import simulate_file, write_undersampled
from mrirecon.train.config import load_config
from mrirecon.train.loop import train

RIM = ["model=rim.v1", "model_config.steps=4", "model_config.hidden=16"]


def _simulate(volume: nib.Nifti1Image, slices: slice, out: Path, name: str) -> Path:
    part = nib.Nifti1Image(np.asarray(volume.dataobj)[:, :, slices, 0], volume.affine)
    nib.save(part, out / f"{name}.nii.gz")
    simulate_file(out / f"{name}.nii.gz", out, SimulationParams(coils=1), matrix=48)
    return out / f"{name}.h5"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """(folder of undersampled training files, fully sampled held-out file)."""
    folder = tmp_path_factory.mktemp("acquired")
    volume = nib.load(Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz")
    held_out = _simulate(volume, slice(18, 22), folder, "held_out")
    train_full = _simulate(volume, slice(2, 18), folder, "train_full")
    for name in ("a", "b", "c"):
        src = folder / f"{name}.h5"
        src.write_bytes(train_full.read_bytes())
        write_undersampled(src, folder / "train" / f"{name}.h5",
                           MaskOptions(kind="equispaced-fraction", acceleration=2.5,
                                       center_fraction=0.1))
        src.unlink()
    return folder / "train", held_out


@pytest.fixture(scope="module")
def acquisitions(data) -> Path:
    return data[0]


def config(train_dir: Path, val: Path, out: Path, *extra: str):
    return load_config(None, [*RIM, f"data.train=[{train_dir}]", f"data.val=[{val}]",
                              "loss.kind=ssdu", "data.batch_size=4", "optim.lr=1e-3",
                              "optim.schedule=constant", "log_every=10", "val_every=10",
                              "device=cpu", f"out={out}", "epochs=null", *extra])


@pytest.mark.slow
def test_ssdu_lowers_the_held_back_loss_and_beats_zero_filled_on_unseen_slices(
        data, tmp_path) -> None:
    acquisitions, held_out = data
    summary = train(config(acquisitions, acquisitions, tmp_path / "run", "max_steps=100"))
    assert summary["validation"] == "held-back" and summary["best_metric"] == "kspace_loss"
    with open(tmp_path / "run" / "log.csv", newline="") as fh:
        held_back = [float(r["val_kspace_loss"]) for r in csv.DictReader(fh)
                     if r["val_kspace_loss"]]
    assert len(held_back) == 10 and held_back[-1] < 0.8 * held_back[0]
    meta = read_metadata(tmp_path / "run" / "best.safetensors")
    assert meta["extra"]["objective"]["kind"] == "ssdu"
    assert meta["extra"]["domain"]["mask_kinds"] == []

    model, _ = load_checkpoint(tmp_path / "run" / "best.safetensors")
    scan = read_kspace(held_out)  # never seen, fully sampled
    full = torch.as_tensor(scan.slices(0, scan.n_slices))
    reference = np.asarray(scan.targets["reconstruction_esc"][:])
    gains = []
    for seed in range(3):
        mask = torch.as_tensor(draw_mask(scan.shape[-2:], MaskOptions(acceleration=3, seed=seed,
                                                                      center_fraction=0.1),
                                         "held_out.h5").array)
        with torch.no_grad():
            learned = estimate(model, full * mask, mask).numpy()
            batch = prepare_batch(full * mask, mask)
            zero_filled = (batch.x0.square().sum(1).sqrt() * batch.scale[:, None, None]).numpy()
        gains.append(psnr(reference, learned) - psnr(reference, zero_filled))
    assert min(gains) > 2.0, gains


def test_ssdu_refuses_fully_sampled_training_files(simulated_scans, tmp_path) -> None:
    with pytest.raises(MriReconError, match="fully sampled .*loss.kind=supervised"):
        train(config(simulated_scans / "example4d.h5", simulated_scans / "example4d.h5",
                     tmp_path / "run", "max_steps=1"))
    assert not (tmp_path / "run").exists()


def test_supervised_training_on_undersampled_files_points_to_ssdu(acquisitions,
                                                                  tmp_path) -> None:
    cfg = config(acquisitions, acquisitions, tmp_path / "run", "max_steps=1",
                 "loss.kind=supervised")
    with pytest.raises(MriReconError, match="loss.kind=ssdu"):
        train(cfg)


def test_ssdu_with_fully_sampled_validation_scores_references(acquisitions, simulated_scans,
                                                             tmp_path) -> None:
    summary = train(config(acquisitions, simulated_scans / "example4d.h5", tmp_path / "run",
                           "max_steps=2", "val_every=1"))
    assert summary["validation"] == "reference" and set(summary["val"]) == {"psnr", "ssim",
                                                                            "nmse"}


def test_ssdu_refuses_the_generator_and_a_cinn(acquisitions, tmp_path) -> None:
    source = tmp_path / "image.npy"
    np.save(source, np.ones((16, 16), np.float32))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    with pytest.raises(MriReconError, match="fully sampled items"):
        train(load_config(None, [*RIM, "loss.kind=ssdu", "device=cpu", "max_steps=1",
                                 f"out={tmp_path / 'a'}",
                                 f"data.synthetic.sources=[{{path: {source}, sha256: {digest}}}]"]))
    with pytest.raises(MriReconError, match="learns a posterior"):
        train(load_config(None, ["model=cinn.v1", "loss.kind=ssdu", "device=cpu",
                                 "max_steps=1", f"out={tmp_path / 'b'}",
                                 f"data.train=[{acquisitions}]"]))
    assert not (tmp_path / "b").exists()


def test_a_mask_too_sparse_to_split_names_the_file(simulated_scans, tmp_path) -> None:
    src = tmp_path / "x_full.h5"
    src.write_bytes((simulated_scans / "example4d.h5").read_bytes())
    write_undersampled(src, tmp_path / "sparse" / "x.h5",
                       MaskOptions(kind="equispaced-fraction", acceleration=12,
                                   center_fraction=0.04))
    with pytest.raises(MriReconError, match=r"x\.h5.*too few"):
        train(config(tmp_path / "sparse", tmp_path / "sparse", tmp_path / "run", "max_steps=1"))
