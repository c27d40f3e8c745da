"""SliceDataset: lazy indexing, on-the-fly seeded masks, exact readout crops, worker safety."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mrirecon.errors import InputFileError, InvalidParameterError
from mrirecon.io.fastmri_h5 import read_kspace
from mrirecon.physics import ifft2c
from mrirecon.sampling import MaskOptions, draw_mask
from mrirecon.train.dataset import SliceDataset, collate, find_files


@pytest.fixture(scope="module")
def single(simulated_scans: Path) -> Path:
    return simulated_scans / "example4d.h5"  # 1 coil, 24 slices, 48x48


@pytest.fixture(scope="module")
def multi(simulated_scans: Path) -> Path:
    return simulated_scans / "MR_small.h5"  # 4 coils, 1 slice, 64x64


def _full_slice(path: Path, s: int) -> torch.Tensor:
    return torch.from_numpy(read_kspace(path).slice(s))


def _set_worker(monkeypatch: pytest.MonkeyPatch, worker: int | None) -> None:
    info = None if worker is None else SimpleNamespace(id=worker, num_workers=4)
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: info)


def test_find_files(simulated_scans: Path, single: Path, tmp_path: Path) -> None:
    assert find_files(simulated_scans) == sorted([single, simulated_scans / "MR_small.h5"])
    assert find_files([single, single]) == [single]
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    shutil.copy(single, nested / "x.h5")
    assert find_files(tmp_path) == [nested / "x.h5"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputFileError, match="no .h5 files"):
        find_files(empty)
    with pytest.raises(InputFileError, match="not found"):
        find_files(tmp_path / "missing")


def test_index_counts_slices_from_metadata(single: Path, tmp_path: Path) -> None:
    assert len(SliceDataset([single], train=False)) == 24
    copy = tmp_path / "two_single"
    copy.mkdir()
    for name in ("a.h5", "b.h5"):
        shutil.copy(single, copy / name)
    ds = SliceDataset(find_files(copy), train=True)
    assert len(ds) == 48
    assert ds.index[24] == (1, 0)


def test_mixed_coil_counts_batch_ragged_and_validate_at_each_rate(simulated_scans: Path) -> None:
    """Single- and multi-coil files in one set: training batches keep a list per item
    (``ragged``), a stacked batch of them names the files; validation scores every rate of
    ``val_accelerations`` x ``val_repeats`` masks."""
    ds = SliceDataset(find_files(simulated_scans), train=True, accelerations=[4])
    items = [ds[0], ds[len(ds) - 1]]
    assert {it["kspace"].shape[0] for it in items} == {1, 4}
    batch = collate(items, ragged=True)
    assert [k.shape[0] for k in batch["kspace"]] == [it["kspace"].shape[0] for it in items]
    with pytest.raises(InvalidParameterError, match="different shapes"):
        collate(items)
    val = SliceDataset(find_files(simulated_scans), train=False, val_repeats=2,
                       val_accelerations=[4, 8])
    assert len(val) == 25 * 4
    seen = {(val.volume_of(i), val[i]["acceleration"], val[i]["mask_seed"])
            for i in range(0, len(val), 25)}
    assert {(a, s) for _, a, s in seen} == {(4.0, 0), (4.0, 1), (8.0, 0), (8.0, 1)}
    assert domain_of(val) == {"coils": [1, 4], "matrix": [48, 64]}


def domain_of(ds: SliceDataset) -> dict:
    d = ds.domain()
    return {"coils": d["coils"], "matrix": d["matrix"]}


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize(("name", "coils", "size"), [("single", 1, 48), ("multi", 4, 64)])
def test_item_shapes_and_undersampling(request: pytest.FixtureRequest, name: str, coils: int,
                                       size: int, train: bool) -> None:
    path = request.getfixturevalue(name)
    item = SliceDataset([path], accelerations=(4, 8), train=train, seed=3)[0]
    k, mask, target = item["kspace"], item["mask"], item["target"]
    assert k.dtype == torch.complex64 and k.shape == (coils, size, size)
    assert mask.dtype == torch.bool and mask.shape == (1, size)
    assert target.dtype == torch.float32 and target.shape == (size, size)
    assert item["file"] == str(path) and item["slice"] == 0
    assert item["acceleration"] in (4.0, 8.0)
    full = _full_slice(path, 0)
    sampled = mask.expand(size, size)
    assert torch.equal(k[:, sampled], full[:, sampled])
    assert not k[:, ~sampled].any()
    assert 1 < sampled.numel() / sampled.sum() < 2 * item["acceleration"]
    expected = read_kspace(path).targets[
        "reconstruction_rss" if coils > 1 else "reconstruction_esc"][0]
    assert np.array_equal(target.numpy(), expected)


def test_validation_masks_match_reconstruct(single: Path) -> None:
    a = SliceDataset([single], accelerations=(8, 4), train=False, seed=5)
    b = SliceDataset([single], accelerations=(8, 4), train=False, seed=5)
    drawn = draw_mask(read_kspace(single).shape[-2:], MaskOptions(acceleration=8, seed=5),
                      single.name)
    for i in (0, 7, 23):
        assert np.array_equal(a[i]["mask"].numpy(), drawn.array)
        assert torch.equal(a[i]["kspace"], b[i]["kspace"])
        assert a[i]["acceleration"] == 8.0
    other = SliceDataset([single], accelerations=(8,), train=False, seed=6)
    assert not torch.equal(other[0]["mask"], a[0]["mask"])


def test_validation_repeats_use_consecutive_mask_seeds(single: Path) -> None:
    ds = SliceDataset([single], accelerations=(8,), train=False, seed=5, val_repeats=3)
    assert len(ds) == 3 * 24 and ds.repeats == 3
    kspace = read_kspace(single)
    for r in range(3):
        drawn = draw_mask(kspace.shape[-2:], MaskOptions(acceleration=8, seed=5 + r), single.name)
        for s in (0, 23):
            item = ds[r * 24 + s]
            assert item["slice"] == s and item["mask_seed"] == 5 + r
            assert np.array_equal(item["mask"].numpy(), drawn.array)
    assert not torch.equal(ds[0]["mask"], ds[24]["mask"])
    assert ds.volume_of(2 * 24 + 7) == (0, 2) and ds.volume_of(-1) == (0, 2)
    plain = SliceDataset([single], accelerations=(8,), train=False, seed=5)
    assert torch.equal(plain[7]["kspace"], ds[7]["kspace"])  # repeat 0 is the plain mask
    assert len(SliceDataset([single], train=True, val_repeats=3)) == 24  # training: ignored
    with pytest.raises(InvalidParameterError, match="val_repeats must be >= 1"):
        SliceDataset([single], train=False, val_repeats=0)


def test_training_masks_seeded_by_epoch_rank_index_not_worker(
        single: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = SliceDataset([single], accelerations=(4,), train=True, seed=1)

    def mask(i: int, epoch: int = 0, worker: int | None = None) -> np.ndarray:
        _set_worker(monkeypatch, worker)
        ds.set_epoch(epoch)
        return ds[i]["mask"].numpy().copy()

    base = mask(0)
    assert not np.array_equal(base, mask(1))
    assert not np.array_equal(base, mask(0, epoch=1))
    assert np.array_equal(mask(0, worker=1), mask(0, worker=2))  # same item, any worker
    assert not np.array_equal(mask(0, worker=1), mask(1, worker=2))
    assert np.array_equal(mask(3, epoch=2, worker=1), mask(3, epoch=2, worker=1))
    again = SliceDataset([single], accelerations=(4,), train=True, seed=1)
    _set_worker(monkeypatch, None)
    assert np.array_equal(base, again[0]["mask"].numpy())
    rank1 = SliceDataset([single], accelerations=(4,), train=True, seed=1, rank=1)
    assert not np.array_equal(base, rank1[0]["mask"].numpy())


def test_training_draws_every_acceleration(single: Path) -> None:
    ds = SliceDataset([single], accelerations=(4, 8), center_fractions=(0.08, 0.04),
                      train=True)
    assert {ds[i]["acceleration"] for i in range(len(ds))} == {4.0, 8.0}


def test_readout_crop_is_exact(single: Path) -> None:
    ds = SliceDataset([single], train=True, crop=32, seed=2)
    tops = set()
    for i in (0, 5, 11):
        item = ds[i]
        top = item["crop_top"]
        tops.add(top)
        assert item["kspace"].shape == (1, 32, 48) and item["target"].shape == (32, 48)
        masked = torch.where(item["mask"], _full_slice(single, i), 0)
        expected = ifft2c(masked)[..., top : top + 32, :]
        scale = float(expected.abs().max())  # float32 FFT round-off, relative to the image
        torch.testing.assert_close(ifft2c(item["kspace"]), expected, atol=1e-5 * scale, rtol=0)
        target = read_kspace(single).targets["reconstruction_esc"][i]
        assert np.array_equal(item["target"].numpy(), target[top : top + 32])
    assert len(tops) > 1
    val = SliceDataset([single], train=False, crop=32)[0]
    assert val["kspace"].shape == (1, 48, 48) and val["crop_top"] == 0


def test_collate_stacks_and_reports_shape_mismatch(single: Path, multi: Path) -> None:
    ds = SliceDataset([single], train=False)
    batch = collate([ds[0], ds[1]])
    assert batch["kspace"].shape == (2, 1, 48, 48) and batch["mask"].shape == (2, 1, 48)
    assert batch["slice"] == [0, 1]
    single_item = SliceDataset([single], train=False)[0]
    single_item["kspace"] = torch.zeros(1, 64, 64, dtype=torch.complex64)
    with pytest.raises(InvalidParameterError, match=r"example4d\.h5\[0\].*MR_small\.h5\[0\]"):
        collate([single_item, SliceDataset([multi], train=False)[0]])


def test_dataloader_workers_match_single_process(single: Path) -> None:
    ds = SliceDataset([single], accelerations=(4,), train=False, seed=4)
    kwargs = {"batch_size": 6, "collate_fn": collate, "shuffle": False}
    serial = list(DataLoader(ds, num_workers=0, **kwargs))
    parallel = list(DataLoader(ds, num_workers=2, **kwargs))
    assert len(serial) == len(parallel) == 4
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a["kspace"], b["kspace"]) and torch.equal(a["target"], b["target"])
        assert a["slice"] == b["slice"]
