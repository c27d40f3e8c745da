"""Tests of mrirecon.models.checkpoint: round trips and every way a checkpoint can be bad."""

from __future__ import annotations

import json
import struct
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from mrirecon import __version__
from mrirecon.errors import InputFileError, InvalidParameterError, OutputError
from mrirecon.models import registry
from mrirecon.models.checkpoint import (
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    tensor_digest,
)
from mrirecon.models.irim import IRIM, IRIMConfig
from mrirecon.models.rim import RIM, RIMConfig

CONFIG = {"steps": 2, "hidden": 4, "shared_weights": False}
EXTRA = {
    "normalisation": {"scale": 1.5e-4},
    "training_data": {"files": 3, "slices": 42},
    "mask": {"kind": "random", "acceleration": 4, "center_fraction": 0.08, "seed": 7},
    "validation": {"ssim": 0.71, "psnr": 31.2},
}


def _model() -> RIM:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return RIM(RIMConfig(**CONFIG))


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, RIM]:
    model = _model()
    path = save_checkpoint(
        tmp_path / "rim.safetensors", model, name="rim.v1", config=CONFIG, extra=EXTRA
    )
    return path, model


def _split(path: Path) -> tuple[dict, bytes]:
    """The safetensors header (JSON) and the data bytes of ``path``."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _rewrite_meta(path: Path, edit: Callable[[dict], None]) -> None:
    """Rewrite the mrirecon metadata of ``path`` in place through ``edit``."""
    header, data = _split(path)
    meta = json.loads(header["__metadata__"]["mrirecon"])
    edit(meta)
    header["__metadata__"]["mrirecon"] = json.dumps(meta)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def _resave(path: Path, edit: Callable[[dict[str, torch.Tensor]], None], digest: bool) -> None:
    """Rewrite the tensors of ``path`` through ``edit``, keeping (maybe re-signing) meta."""
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(f.metadata()["mrirecon"])
    edit(tensors)
    if digest:
        meta["sha256"] = tensor_digest(tensors)
    path.unlink()
    save_file(tensors, str(path), metadata={"mrirecon": json.dumps(meta)})


def _load_error(path: Path) -> str:
    with pytest.raises(InputFileError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return info.value.problem


# --- round trip -------------------------------------------------------------------------------


def test_round_trip_gives_identical_outputs(saved: tuple[Path, RIM]) -> None:
    path, model = saved
    loaded, meta = load_checkpoint(path)
    assert isinstance(loaded, RIM) and loaded.config == model.config and not loaded.training
    g = torch.Generator().manual_seed(3)
    x0, target = torch.randn(2, 2, 8, 8, generator=g), torch.randn(2, 2, 8, 8, generator=g)
    with torch.no_grad():
        expected = model(x0, lambda x: x - target)
        got = loaded(x0, lambda x: x - target)
    assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
    for (k, a), (k2, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b)


def test_checkpoint_gets_the_usual_file_mode(tmp_path: Path) -> None:
    """safetensors writes its file as 0600; a checkpoint, like every output, gets 0666 & ~umask
    (so a shared model folder stays readable)."""
    import os

    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "m.safetensors", RIM(RIMConfig(steps=1, hidden=4)),
                               name="rim.v1", config=RIMConfig(steps=1, hidden=4))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_metadata_round_trip(saved: tuple[Path, RIM]) -> None:
    path, model = saved
    meta = read_metadata(path)
    assert meta["name"] == "rim.v1"
    assert meta["config"] == {**CONFIG, "channels": 2}  # stored in full, defaults included
    assert meta["extra"] == EXTRA
    assert meta["mrirecon_version"] == __version__
    assert meta["sha256"] == tensor_digest(model.state_dict())
    assert meta["format"] == "mrirecon.checkpoint" and meta["format_version"] == 1
    assert meta["created"].endswith("+00:00")
    assert load_checkpoint(path)[1] == meta


def test_no_pickle_and_string_metadata_only(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    header, _ = _split(path)
    assert set(header["__metadata__"]) == {"mrirecon"}
    assert all(isinstance(v, str) for v in header["__metadata__"].values())


def test_digest_ignores_order_but_not_content() -> None:
    a = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3, dtype=torch.bfloat16)}
    b = {"b": a["b"].clone(), "w": a["w"].clone()}
    assert tensor_digest(a) == tensor_digest(b)
    assert tensor_digest(a) != tensor_digest({**a, "w": a["w"].reshape(3, 2)})
    assert tensor_digest(a) != tensor_digest({**a, "w": a["w"] + 1e-6})
    assert tensor_digest(a) != tensor_digest({**a, "b": a["b"].float()})


def test_load_onto_device(saved: tuple[Path, RIM], device: str) -> None:
    model, _ = load_checkpoint(saved[0], device=device)
    assert all(p.device.type == device for p in model.parameters())


# --- writing ----------------------------------------------------------------------------------


def test_refuses_to_overwrite_and_leaves_no_temp_files(saved: tuple[Path, RIM]) -> None:
    path, model = saved
    before = path.read_bytes()
    with pytest.raises(OutputError, match="exists"):
        save_checkpoint(path, model, name="rim.v1", config=CONFIG)
    assert path.read_bytes() == before
    with torch.no_grad():
        model.cells[0].conv_out.bias.add_(1)
    save_checkpoint(path, model, name="rim.v1", config=CONFIG, overwrite=True)
    assert read_metadata(path)["sha256"] == tensor_digest(model.state_dict())
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_save_refusals_write_nothing(tmp_path: Path) -> None:
    model, path = _model(), tmp_path / "x.safetensors"
    with pytest.raises(InvalidParameterError, match="not JSON"):
        save_checkpoint(path, model, name="rim.v1", config=CONFIG, extra={"f": object()})
    with pytest.raises(InvalidParameterError, match="unknown model"):
        save_checkpoint(path, model, name="nope.v1", config=CONFIG)
    with pytest.raises(InvalidParameterError, match="unknown key .model_config"):
        save_checkpoint(path, model, name="rim.v1", config={"depth": 3})
    with pytest.raises(InvalidParameterError, match="is a Linear"):
        save_checkpoint(path, nn.Linear(2, 2), name="rim.v1", config=CONFIG)
    assert list(tmp_path.iterdir()) == []


def test_shared_tensors_are_saved_and_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @dataclass
    class TiedConfig:
        width: int = 3

    class Tied(nn.Module):
        def __init__(self, config: TiedConfig) -> None:
            super().__init__()
            self.a = nn.Linear(config.width, config.width, bias=False)
            self.b = nn.Linear(config.width, config.width, bias=False)
            self.b.weight = self.a.weight  # tied

    module = types.ModuleType("_mrirecon_test_tied")
    module.Tied, module.TiedConfig = Tied, TiedConfig
    monkeypatch.setitem(sys.modules, module.__name__, module)
    entry = registry.ModelEntry(module.__name__, "Tied", "TiedConfig", "tied weights")
    monkeypatch.setitem(registry.REGISTRY, "tied.v1", entry)

    model = Tied(TiedConfig())
    path = save_checkpoint(tmp_path / "t.safetensors", model, name="tied.v1", config=None)
    loaded, _ = load_checkpoint(path)
    assert torch.equal(loaded.a.weight, model.a.weight)
    assert loaded.a.weight is loaded.b.weight  # still tied after loading


# --- bad files --------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert "no such checkpoint file" in _load_error(tmp_path / "absent.safetensors")


def test_not_a_safetensors_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"this is not a checkpoint at all")
    assert "not a safetensors checkpoint" in _load_error(path)
    with pytest.raises(InputFileError, match="not a safetensors checkpoint"):
        read_metadata(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    assert "not a safetensors checkpoint" in _load_error(path)


def test_truncated_file(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    path.write_bytes(path.read_bytes()[:-100])
    assert "not a safetensors checkpoint, or truncated" in _load_error(path)


def test_corrupt_header(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[8:20] = b"#" * 12  # the JSON header no longer parses
    path.write_bytes(bytes(raw))
    assert "not a safetensors checkpoint" in _load_error(path)


def test_no_mrirecon_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file(_model().state_dict(), str(path))
    assert "without mrirecon metadata" in _load_error(path)


def test_metadata_not_json(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    header, data = _split(path)
    header["__metadata__"]["mrirecon"] = "{not json"
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    assert "not valid JSON" in _load_error(path)


def test_metadata_without_name(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    _rewrite_meta(path, lambda m: m.pop("name"))
    assert "lacks 'name'" in _load_error(path)


def test_unknown_registry_name(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    _rewrite_meta(path, lambda m: m.update(name="rim.v99"))
    problem = _load_error(path)
    assert "unknown model 'rim.v99'" in problem and "rim.v1" in problem


def test_config_not_matching_model(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    _rewrite_meta(path, lambda m: m["config"].update(depth=5))
    problem = _load_error(path)
    assert "config does not match model 'rim.v1'" in problem and "depth" in problem


def test_missing_tensors_are_named(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    gone = ["cells.0.conv_in.bias", "cells.0.conv_in.weight", "cells.1.conv_out.bias"]
    _resave(path, lambda t: [t.pop(k) for k in gone], digest=True)
    problem = _load_error(path)
    assert problem == f"missing tensors: {', '.join(sorted(gone))}"


def test_many_missing_tensors_are_capped(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    _resave(path, lambda t: [t.pop(k) for k in list(t) if k.startswith("cells.1.")], digest=True)
    problem = _load_error(path)
    assert problem.startswith("missing tensors: cells.1.") and "more" in problem
    assert problem.count("cells.1.") == 3


def test_unexpected_tensors_are_named(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    _resave(path, lambda t: t.update({"cells.2.extra": torch.zeros(1)}), digest=True)
    assert _load_error(path) == "unexpected tensors: cells.2.extra"


def test_wrong_shape_tensors_are_named(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    _resave(path, lambda t: t.update({"cells.0.conv_out.bias": torch.zeros(3)}), digest=True)
    problem = _load_error(path)
    assert "wrong shape" in problem and "cells.0.conv_out.bias (3,) (expected (2,))" in problem


def test_checksum_mismatch(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # flip bits in the last tensor's bytes
    path.write_bytes(bytes(raw))
    assert _load_error(path) == "weights do not match their checksum; the file is corrupt"


def test_newer_format_is_refused(saved: tuple[Path, RIM]) -> None:
    path, _ = saved
    _rewrite_meta(path, lambda m: m.update(format_version=2))
    assert "newer than this mrirecon reads" in _load_error(path)


# --- review defects: config out of range, each i-RIM weight stored once ---------------------


@pytest.mark.parametrize("edit,key", [
    (lambda c: c.update(steps=0), "model_config.steps must be an integer from 1 to 64, got 0"),
    (lambda c: c.update(hidden=-3), r"model_config.hidden must be an integer from 1 to 512"),
    (lambda c: c.update(steps="many"), "model_config.steps must be an integer, got 'many'"),
])
def test_out_of_range_config_is_one_line(saved: tuple[Path, RIM], edit, key: str) -> None:
    path, _ = saved
    _rewrite_meta(path, lambda m: edit(m["config"]))
    problem = _load_error(path)  # an InputFileError (it was a bare ValueError's traceback)
    assert problem.startswith("config does not match model 'rim.v1'") and key in problem


def _irim() -> tuple[IRIM, IRIMConfig]:
    config = IRIMConfig(steps=3, state_channels=4, levels=2, hidden=4, grad_hidden=4)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        return IRIM(config), config


def test_irim_stores_each_weight_once(tmp_path: Path) -> None:
    model, config = _irim()
    state = model.state_dict()
    assert not any(k.startswith("sequence.") for k in state)
    distinct = {p.data_ptr() for p in model.parameters()}
    assert len(distinct) == len(list(model.parameters()))
    weights = sum(t.numel() * t.element_size() for t in state.values())
    assert weights == sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers())
    path = save_checkpoint(tmp_path / "i.safetensors", model, name="irim.v1", config=config)
    assert path.stat().st_size < weights + 16_384  # the weights, a header and the metadata


def test_checkpoints_from_before_load_unchanged(tmp_path: Path) -> None:
    """A file in the old layout (every block also under ``sequence.blocks.j``) still loads."""
    model, config = _irim()
    path = save_checkpoint(tmp_path / "old.safetensors", model, name="irim.v1", config=config)
    owners = {0: "grad_steps", 1: "unets"}

    def old_layout(tensors: dict[str, torch.Tensor]) -> None:
        for key in list(tensors):
            owner, index, rest = key.split(".", 2)
            j = 2 * int(index) + (owner == "unets")
            assert owners[j % 2] == owner
            tensors[f"sequence.blocks.{j}.{rest}"] = tensors[key].clone()

    _resave(path, old_layout, digest=True)
    loaded, _ = load_checkpoint(path)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    x0 = torch.randn(1, 2, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x0, lambda x: 0.1 * x)[0], model(x0, lambda x: 0.1 * x)[0])

    # the two copies of a weight must agree
    def disagree(tensors: dict[str, torch.Tensor]) -> None:
        tensors[next(k for k in sorted(tensors) if k.startswith("sequence.blocks.1."))] += 1.0

    _resave(path, disagree, digest=True)
    assert "inconsistent weights" in _load_error(path)


@pytest.mark.parametrize("name,edit,key", [
    ("irim.v1", {"steps": 0}, "model_config.steps must be an integer from 1 to 64, got 0"),
    ("irim.v1", {"state_channels": 5}, "model_config.state_channels must be an even integer"),
    ("cinn.v1", {"levels": 0}, "model_config.levels must be an integer from 1 to 8, got 0"),
    ("cinn.v1", {"clamp": -1.0}, "model_config.clamp must be a number > 0"),
])
def test_out_of_range_irim_and_cinn_configs_are_one_line(tmp_path: Path, name: str, edit: dict,
                                                         key: str) -> None:
    config = ({"steps": 1, "state_channels": 4, "levels": 2, "hidden": 2, "grad_hidden": 2}
              if name == "irim.v1" else {"levels": 1, "blocks_per_level": 1, "hidden": 2,
                                          "cond_channels": 2, "cond_hidden": 2})
    model = registry.build(name, config)
    path = save_checkpoint(tmp_path / "m.safetensors", model, name=name, config=config)
    _rewrite_meta(path, lambda m: m["config"].update(edit))
    problem = _load_error(path)  # these were ValueErrors the loader let through as tracebacks
    assert problem.startswith(f"config does not match model '{name}'") and key in problem
