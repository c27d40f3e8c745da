"""The domain-randomised generator: seeding, knob ranges, bad configurations, exact resume."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from mrirecon.errors import InputFileError, InvalidParameterError
from mrirecon.models.checkpoint import load_checkpoint, read_metadata
from mrirecon.physics import ifft2c
from mrirecon.sampling import MaskKind
from mrirecon.train.config import load_config
from mrirecon.train.loop import train
from mrirecon.train.sources import sha256_of
from mrirecon.train.synthetic import SyntheticDataset


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, str]:
    """A real magnitude volume: nibabel's bundled example4d EPI, first time point, as .npy."""
    import nibabel

    path = Path(nibabel.__file__).parent / "tests" / "data" / "example4d.nii.gz"
    volume = np.asarray(nibabel.load(path).dataobj)[..., 0].astype(np.float32)
    out = tmp_path_factory.mktemp("sources") / "epi.npy"
    np.save(out, np.moveaxis(volume, 2, 0))  # (slices, rows, cols)
    return out, sha256_of(out)


def synthetic(source, *extra: str, crop: int | None = None):
    path, sha = source
    cfg = load_config(None, [f"data.synthetic.sources=[{{path: {path}, sha256: {sha}}}]",
                             *extra])
    return SyntheticDataset(cfg.data.synthetic, seed=3, crop=crop)


def test_same_key_gives_a_bit_identical_item_and_other_keys_differ(source) -> None:
    ds = synthetic(source)
    a, b = ds[5], synthetic(source)[5]
    for key in ("kspace", "mask", "target"):
        assert torch.equal(a[key], b[key])
    others = [ds[6]]
    ds.set_epoch(1)
    others.append(ds[5])
    other_rank = synthetic(source)
    other_rank.rank = 1
    others.append(other_rank[5])
    for other in others:
        assert a["kspace"].shape != other["kspace"].shape or not torch.equal(
            a["kspace"], other["kspace"])


def test_every_knob_range_is_respected(source) -> None:
    ds = synthetic(source, "data.synthetic.matrix=[40, 90]", "data.synthetic.max_aspect=1.5",
                   "data.synthetic.coils=[1, 6]", "data.synthetic.single_coil=0.4",
                   "data.synthetic.accelerations=[3, 6]",
                   "data.synthetic.center_fractions=[0.05, 0.1]",
                   "data.synthetic.mask_kinds=[random, poisson, equispaced]",
                   "data.synthetic.procedural_weight=0.5")
    coils, kinds = set(), set()
    for i in range(40):
        item = ds[i]
        c, ky, kx = item["kspace"].shape
        assert 40 <= ky <= 90 and 40 <= kx <= 90 and max(ky, kx) / min(ky, kx) <= 1.5 + 1e-9
        assert 1 <= c <= 6 and c == item["coils"]
        assert 3 <= item["acceleration"] <= 6
        assert item["mask_kind"] in ("random", "poisson", "equispaced")
        mask = item["mask"].expand(ky, kx)
        assert 1 <= mask.numel() / mask.sum() <= 6 * 1.5  # close to the drawn rate
        assert torch.all(item["kspace"][:, ~mask] == 0)
        # the target is the RSS of the fully sampled noisy coil images: never below zero-filled
        assert item["target"].shape == (ky, kx) and torch.all(item["target"] >= 0)
        coils.add(c)
        kinds.add(item["mask_kind"])
        assert torch.isfinite(ifft2c(item["kspace"])).all()
    assert 1 in coils and max(coils) > 1  # single-coil items are drawn, and multi-coil ones
    assert len(kinds) >= 2


def test_matrix_multiple_rounds_both_sides_inside_the_range(source) -> None:
    ds = synthetic(source, "data.synthetic.matrix=[44, 90]", "data.synthetic.matrix_multiple=8")
    sides = set()
    for i in range(20):
        _, ky, kx = ds[i]["kspace"].shape
        assert ky % 8 == 0 and kx % 8 == 0 and 44 <= min(ky, kx) and max(ky, kx) <= 90
        sides |= {ky, kx}
    assert len(sides) > 2


def test_readout_crop_is_exact_rows(source) -> None:
    ds = synthetic(source, "data.synthetic.matrix=[80, 120]", crop=32)
    for i in range(8):
        item = ds[i]
        assert item["kspace"].shape[-2] == 32 and item["target"].shape[-2] == 32


def test_declared_domain_lists_the_ranges_and_the_source(source) -> None:
    domain = synthetic(source, "data.synthetic.coils=[2, 12]").domain()
    assert domain["coils"] == [2, 12] and domain["matrix"] == [64, 384]
    assert domain["accelerations"] == [2.0, 12.0]
    assert domain["mask_kinds"] == [k.value for k in MaskKind]
    assert domain["sources"][0] == {"file": "epi.npy", "sha256": source[1], "kind": "image"}


@pytest.mark.parametrize(("override", "message"), [
    ("data.synthetic.sources=[]", "sources must be a non-empty list"),
    ("data.synthetic.matrix=[200, 100]", "min <= max"),
    ("data.synthetic.coils=[0, 8]", "coils must be [min, max] with both >= 1"),
    ("data.synthetic.noise=[0.1, 0.01]", "min <= max"),
    ("data.synthetic.single_coil=1.5", "probability"),
])
def test_bad_generator_configuration_is_one_clear_error(source, override, message) -> None:
    path, sha = source
    with pytest.raises(InvalidParameterError, match=message.replace("[", r"\[")):
        load_config(None, [f"data.synthetic.sources=[{{path: {path}, sha256: {sha}}}]",
                           override])


def test_missing_or_altered_source_fails_before_training(source, tmp_path) -> None:
    path, sha = source
    with pytest.raises(InputFileError, match="not found"):
        synthetic((tmp_path / "absent.npy", sha))
    altered = tmp_path / "epi.npy"
    altered.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(InputFileError, match="sha256 is .* expected the pinned"):
        synthetic((altered, sha))
    cfg = load_config(None, [f"data.synthetic.sources=[{{path: {altered}, sha256: {sha}}}]",
                             f"out={tmp_path / 'run'}", "max_steps=1"])
    with pytest.raises(InputFileError):
        train(cfg)
    assert not (tmp_path / "run").exists()


IRIM = ["model=irim.v1", "model_config.steps=2", "model_config.state_channels=6",
        "model_config.levels=2", "model_config.blocks_per_level=1", "model_config.hidden=8",
        "model_config.grad_hidden=8"]


def run_config(source, out: Path, *extra: str):
    path, sha = source
    return load_config(None, [*IRIM, f"data.synthetic.sources=[{{path: {path}, sha256: {sha}}}]",
                              "data.synthetic.matrix=[32, 64]", "data.synthetic.coils=[1, 4]",
                              "data.synthetic.items_per_epoch=12", "data.batch_size=3",
                              "optim.lr=1e-3", "log_every=1", "val_every=100", "device=cpu",
                              f"out={out}", *extra])


@pytest.mark.slow
def test_resume_with_the_generator_is_exact_and_memory_free_matches(source, tmp_path) -> None:
    """12 steps straight; 6 steps, stop, resume to 12: the same weights. Ragged batches (items
    of different coils and matrices) train, with the memory-free backward too."""
    straight = train(run_config(source, tmp_path / "a", "max_steps=12"))
    stop = threading.Event()

    def progress(event: dict) -> None:
        if event["step"] == 6:
            stop.set()

    half = train(run_config(source, tmp_path / "b", "max_steps=12"), progress=progress,
                 stop=stop)
    assert half["interrupted"] and half["steps"] == 6
    resumed = train(run_config(source, tmp_path / "b", "max_steps=12",
                               f"resume={tmp_path / 'b'}"))
    assert resumed["steps"] == straight["steps"] == 12
    a = load_checkpoint(tmp_path / "a" / "last.safetensors")[0].state_dict()
    b = load_checkpoint(tmp_path / "b" / "last.safetensors")[0].state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)
    meta = read_metadata(tmp_path / "a" / "last.safetensors")
    assert meta["extra"]["domain"]["coils"] == [1, 4]
    assert meta["extra"]["train_data"] == {"synthetic_items_per_epoch": 12}
    # memory-free training (activations rebuilt by inversion) takes the same steps
    free = train(run_config(source, tmp_path / "c", "max_steps=2",
                            "model_config.memory_free=true"))
    kept = train(run_config(source, tmp_path / "d", "max_steps=2",
                            "model_config.memory_free=false"))
    assert free["steps"] == kept["steps"] == 2
    c = load_checkpoint(tmp_path / "c" / "last.safetensors")[0].state_dict()
    d = load_checkpoint(tmp_path / "d" / "last.safetensors")[0].state_dict()
    for key in c:
        torch.testing.assert_close(c[key], d[key], atol=1e-4, rtol=1e-3)


def test_hdf5_files_and_the_generator_mix_in_one_run(source, train_val_folders, tmp_path) -> None:
    """``data.train`` and ``data.synthetic`` together: batches hold items of both (ragged), and
    the checkpoint's domain is the union of the two."""
    cfg = run_config(source, tmp_path / "mix", "max_steps=4", "data.batch_size=4",
                     f"data.train=[{train_val_folders / 'train'}]")
    summary = train(cfg)
    assert summary["steps"] == 4 and not summary["interrupted"]
    meta = read_metadata(tmp_path / "mix" / "last.safetensors")["extra"]
    assert meta["train_data"]["files"] == ["example4d.h5"]
    assert meta["train_data"]["synthetic_items_per_epoch"] == 12
    assert meta["domain"]["coils"] == [1, 4]
    assert {s["file"] for s in meta["domain"]["sources"]} >= {"example4d.h5", "epi.npy"}
