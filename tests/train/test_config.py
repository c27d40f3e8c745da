"""Training configuration: defaults, YAML + dotted overrides, key and type checks, round trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from mrirecon.errors import InputFileError, InvalidParameterError
from mrirecon.models.registry import config_for
from mrirecon.train.config import (
    MaskConfig,
    OptimConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)


def _yaml(tmp_path, data, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_defaults_are_valid_and_model_config_is_resolved():
    cfg = load_config(None, [])
    assert cfg == TrainConfig()
    assert cfg.model == "irim.v1"
    assert cfg.model_config == dataclasses.asdict(config_for("irim.v1"))
    assert cfg.mask.accelerations == [4.0, 8.0] and cfg.mask.center_fractions is None
    assert cfg.optim.lr > 0 and cfg.optim.schedule == "cosine"


def test_yaml_file_then_overrides_win(tmp_path):
    path = _yaml(tmp_path, {"seed": 3, "optim": {"lr": 0.01, "weight_decay": 0.1},
                            "data": {"train": ["a", "b"], "batch_size": 2}})
    cfg = load_config(path, ["optim.lr=1e-4", "seed=5", "seed=6"])
    assert cfg.optim.lr == pytest.approx(1e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.optim.weight_decay == 0.1  # from the file, untouched by the override
    assert cfg.seed == 6  # the later override wins
    assert cfg.data.train == ["a", "b"] and cfg.data.batch_size == 2


def test_dotted_overrides_lists_bools_none_and_model_config():
    cfg = load_config(None, [
        "mask.accelerations=[4, 8, 12]", "mask.center_fractions=[0.08, 0.04, 0.03]",
        "amp=true", "data.crop=320", "data.crop=null", "optim.grad_clip=none",
        "model_config.steps=4", "model_config.shared_weights=true", "data.train=/data/knee",
        "max_steps=1e3", "mask.kind=equispaced",
    ])
    assert cfg.mask.accelerations == [4.0, 8.0, 12.0]
    assert cfg.mask.center_fractions == [0.08, 0.04, 0.03]
    assert cfg.amp is True and cfg.data.crop is None and cfg.optim.grad_clip is None
    assert cfg.model_config["steps"] == 4 and cfg.model_config["shared_weights"] is True
    assert cfg.model_config["hidden"] == config_for("irim.v1").hidden  # defaults filled in
    assert cfg.data.train == ["/data/knee"]  # a single path becomes a one-item list
    assert cfg.max_steps == 1000 and isinstance(cfg.max_steps, int)
    assert cfg.mask.kind == "equispaced"


def test_model_switch_validates_against_that_models_config():
    cfg = load_config(None, ["model=rim.v1", "model_config.hidden=16"])
    assert cfg.model_config == dataclasses.asdict(config_for("rim.v1", {"hidden": 16}))
    with pytest.raises(InvalidParameterError, match="unknown model 'nope.v1'"):
        load_config(None, ["model=nope.v1"])


@pytest.mark.parametrize("override, message", [
    ("lrr=1", r"unknown key 'lrr'; valid keys: model, model_config, data, mask, optim"),
    ("optim.lrr=1", r"unknown key 'optim.lrr'; valid keys in optim: lr, weight_decay, schedule"),
    ("mask.accel=4", r"unknown key 'mask.accel'; valid keys in mask: kind, accelerations"),
    ("model_config.stepz=4",
     r"unknown key 'model_config.stepz'; valid keys in model_config for irim.v1: steps, "),
])
def test_unknown_keys_list_the_valid_ones(override, message):
    with pytest.raises(InvalidParameterError, match=message):
        load_config(None, [override])


def test_unknown_key_in_yaml_file(tmp_path):
    path = _yaml(tmp_path, {"loss": {"ssim": 1.0, "l2": 1.0}})
    with pytest.raises(InvalidParameterError, match=r"unknown key 'loss.l2'; valid keys in "
                                                     r"loss: kind, ssim, l1, mse, steps, ssdu_"):
        load_config(path, [])


@pytest.mark.parametrize("override, message", [
    ("optim.lr=abc", r"optim.lr must be a number, got 'abc'"),
    ("data.batch_size=2.5", r"data.batch_size must be an integer, got 2.5"),
    ("amp=1", r"amp must be true or false, got 1"),
    ("device=0", r"device must be a string, got 0"),
    ("optim=3", r"optim must be a mapping, got 3"),
    ("mask.accelerations={a: 1}", r"mask.accelerations must be a list"),
    ("mask.accelerations=[4, x]", r"mask.accelerations\[1\] must be a number, got 'x'"),
    ("model_config.steps=2.5", r"model_config.steps must be an integer, got 2.5"),
    ("model_config=[1]", r"model_config must be a mapping, got \[1\]"),
    ("seed.x=1", r"cannot set 'seed.x': 'seed' is not a section"),
])
def test_wrong_types_are_rejected(override, message):
    overrides = ["seed=1", override] if override.startswith("seed.") else [override]
    with pytest.raises(InvalidParameterError, match=message):
        load_config(None, overrides)


@pytest.mark.parametrize("override, message", [
    ("optim.lr=-1", r"optim.lr must be > 0, got -1.0"),
    ("optim.weight_decay=-0.1", r"optim.weight_decay must be >= 0"),
    ("optim.schedule=step", r"optim.schedule must be one of cosine, constant, got 'step'"),
    ("optim.grad_clip=0", r"optim.grad_clip must be null or > 0"),
    ("mask.kind=spiral", r"mask.kind must be one of random, equispaced, .*got 'spiral'"),
    ("mask.accelerations=[1, 4]", r"mask.accelerations must be a non-empty list of numbers > 1"),
    ("mask.accelerations=[]", r"mask.accelerations must be a non-empty list"),
    ("mask.center_fractions=[0.08]", r"mask.center_fractions must be null or 2 fraction\(s\)"),
    ("data.crop=0", r"data.crop must be null or an integer > 0, got 0"),
    ("data.batch_size=0", r"data.batch_size must be an integer >= 1, got 0"),
    ("loss.ssim=-1", r"loss.ssim must be >= 0"),
    ("loss.mse=-1", r"loss.mse must be >= 0"),
    ("loss.steps=first", r"loss.steps must be 'all' or 'last', got 'first'"),
    ("device=tpu", r"device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
    ("epochs=0", r"epochs must be null or an integer >= 1, got 0"),
    ("max_minutes=0", r"max_minutes must be null or > 0"),
    ("model_config.steps=0", r"model_config.steps must be an integer from 1 to 64, got 0"),
])
def test_validation_messages_name_key_and_expected_value(override, message):
    with pytest.raises(InvalidParameterError, match=message):
        load_config(None, [override])


def test_cross_field_validation():
    with pytest.raises(InvalidParameterError,
                       match=r"loss.l1 must be > 0 when loss.ssim and loss.mse are 0"):
        load_config(None, ["loss.ssim=0"])
    assert load_config(None, ["loss.ssim=0", "loss.mse=1"]).loss.mse == 1.0
    with pytest.raises(InvalidParameterError, match=r"epochs must be set when max_steps is null"):
        load_config(None, ["epochs=null"])
    assert load_config(None, ["epochs=null", "max_steps=10"]).max_steps == 10


def test_direct_construction_coerces_and_validates():
    assert OptimConfig(lr="1e-3").lr == pytest.approx(1e-3)  # YAML 1.1 reads 1e-3 as a string
    assert MaskConfig(accelerations=(4, 8)).accelerations == [4.0, 8.0]
    with pytest.raises(InvalidParameterError, match=r"optim.lr must be > 0, got -1"):
        OptimConfig(lr=-1)


@pytest.mark.parametrize("item", ["optim.lr", "=3", "optim..lr=3", ".lr=1"])
def test_malformed_overrides(item):
    with pytest.raises(InvalidParameterError, match="malformed override"):
        load_config(None, [item])


@pytest.mark.parametrize("content, problem", [
    (None, "cannot read configuration"),
    ("optim: {lr: [1,\n", "invalid YAML"),
    ("- 1\n- 2\n", "expected a mapping of configuration keys, got list"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_bad_yaml_files(tmp_path, content, problem):
    path = tmp_path / "bad.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(InputFileError, match=problem) as info:
        load_config(path, [])
    assert info.value.path == path


def test_empty_yaml_file_gives_defaults(tmp_path):
    assert load_config(_yaml(tmp_path, ""), []) == TrainConfig()


def test_save_load_round_trip(tmp_path):
    cfg = load_config(None, [
        "model_config.steps=3", "optim.lr=3e-4", "mask.accelerations=[4, 8]",
        "mask.center_fractions=[0.08, 0.04]", "data.train=[a, b]", "data.crop=320",
        "max_minutes=90.5", "resume=runs/x/last.pt", "amp=true", "device=cuda:1",
    ])
    path = tmp_path / "run" / "config.yaml"
    save_config(cfg, path)
    assert load_config(path, []) == cfg
    assert yaml.safe_load(path.read_text()) == config_to_dict(cfg)
    save_config(TrainConfig(), path)  # replaces the file
    assert load_config(path, []) == TrainConfig()
    assert not [p for p in path.parent.iterdir() if p.name != "config.yaml"]  # no temp files


def test_config_to_dict_is_plain_and_nested():
    d = config_to_dict(TrainConfig())
    assert d["optim"]["lr"] == TrainConfig().optim.lr and isinstance(d["mask"], dict)
    assert yaml.safe_load(yaml.safe_dump(d)) == d
    assert config_from_dict(d) == TrainConfig()
    with pytest.raises(InvalidParameterError, match="configuration must be a mapping"):
        config_from_dict([1])


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[2] / "configs")
                                        .glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_example_configs_load(path: Path) -> None:
    cfg = load_config(path, [])
    assert cfg.model in ("rim.v1", "irim.v1") and (cfg.data.train or cfg.data.synthetic)
