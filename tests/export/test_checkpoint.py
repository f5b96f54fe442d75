"""Checkpoints: seeded init is reproducible, and loading names the file, key or shape of every defect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export import CheckpointError, ConfigError, OutputExistsError, init_checkpoint
from export.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_checkpoint
from harmowam_edge.bundle.schema import CameraSpec
from tests.export.conftest import SMALL_CAM, copy_ckpt


def test_init_is_seeded_and_says_untrained(tmp_path: Path, nano_ckpt: Path) -> None:
    again = init_checkpoint(tmp_path / "again", camera=SMALL_CAM)
    other = init_checkpoint(tmp_path / "other", camera=SMALL_CAM, seed=1)
    assert (again / WEIGHTS_FILE).read_bytes() == (nano_ckpt / WEIGHTS_FILE).read_bytes()
    assert (other / WEIGHTS_FILE).read_bytes() != (nano_ckpt / WEIGHTS_FILE).read_bytes()
    cfg = json.loads((nano_ckpt / CONFIG_FILE).read_text())
    assert cfg["untrained"] is True
    assert cfg["seed"] == 0
    ck = load_checkpoint(nano_ckpt)
    assert ck.config.cameras == (SMALL_CAM,)
    assert [d.name for d in ck.config.action_space.dims][-1] == "gripper"
    assert len(ck.sha256) == 64


def test_init_dual_arm_and_refuses_to_overwrite(tmp_path: Path, nano_ckpt: Path) -> None:
    dual = init_checkpoint(tmp_path / "dual", arms=2, camera=CameraSpec("cam0", 64, 48, 15))
    ck = load_checkpoint(dual)
    assert ck.config.action_dim == 14
    assert ck.config.action_space.arms[1].name == "right"
    with pytest.raises(OutputExistsError, match="--force"):
        init_checkpoint(dual)
    with pytest.raises(ConfigError, match="arms"):
        init_checkpoint(tmp_path / "three", arms=3)
    with pytest.raises(ConfigError, match="preset"):
        init_checkpoint(tmp_path / "huge", preset="huge")


def test_missing_directory_config_and_weights(tmp_path: Path, nano_ckpt: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint directory"):
        load_checkpoint(tmp_path / "nope")
    ck = copy_ckpt(nano_ckpt, tmp_path / "ck")
    (ck / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match=rf"{WEIGHTS_FILE}: missing"):
        load_checkpoint(ck)
    (ck / CONFIG_FILE).unlink()
    with pytest.raises(CheckpointError, match=rf"{CONFIG_FILE}: missing"):
        load_checkpoint(ck)


def test_truncated_weights_name_the_file(tmp_path: Path, nano_ckpt: Path) -> None:
    ck = copy_ckpt(nano_ckpt, tmp_path / "ck")
    data = (ck / WEIGHTS_FILE).read_bytes()
    (ck / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"weights\.safetensors: not a readable safetensors file"):
        load_checkpoint(ck)


def test_config_weights_mismatch_names_key_and_shape(tmp_path: Path, nano_ckpt: Path) -> None:
    ck = copy_ckpt(nano_ckpt, tmp_path / "ck")
    cfg = json.loads((ck / CONFIG_FILE).read_text())
    cfg["architecture"]["dim"] = 96  # weights were made for 64
    cfg["architecture"]["heads"] = 2
    (ck / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"expected shape \[1, 96\].*got \[1, 64\]|expected shape \[.*96.*\]"):
        load_checkpoint(ck)
    # Dual-arm config over single-arm weights: the action dimension is named.
    ck2 = copy_ckpt(nano_ckpt, tmp_path / "ck2")
    dual = init_checkpoint(tmp_path / "dual", arms=2, camera=SMALL_CAM)
    (ck2 / CONFIG_FILE).write_text((dual / CONFIG_FILE).read_text())
    with pytest.raises(CheckpointError, match=r"expected shape \[.*14.*\]"):
        load_checkpoint(ck2)


def test_missing_and_unexpected_tensors(tmp_path: Path, nano_ckpt: Path) -> None:
    from safetensors.torch import load_file, save_file

    ck = copy_ckpt(nano_ckpt, tmp_path / "ck")
    tensors = load_file(str(ck / WEIGHTS_FILE))
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    save_file(tensors, str(ck / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match=rf"missing tensor '{dropped}'"):
        load_checkpoint(ck)
    tensors = load_file(str(nano_ckpt / WEIGHTS_FILE))
    tensors["gate.extra.weight"] = tensors[dropped].clone()
    save_file(tensors, str(ck / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match=r"unexpected tensor 'gate\.extra\.weight'"):
        load_checkpoint(ck)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_named(tmp_path: Path, nano_ckpt: Path, bad: float) -> None:
    from safetensors.torch import load_file, save_file

    ck = copy_ckpt(nano_ckpt, tmp_path / "ck")
    tensors = load_file(str(ck / WEIGHTS_FILE))
    key = "reactive_expert.head.weight"
    tensors[key][0, 0] = bad
    save_file(tensors, str(ck / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match=rf"{key}: 1 non-finite value"):
        load_checkpoint(ck)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.pop("architecture"), "architecture: missing"),
        (lambda c: c["architecture"].__setitem__("patch", 7), "architecture.patch"),
        (lambda c: c["architecture"].__setitem__("depth", 0), r"architecture\.depth: expected an integer >= 1"),
        (lambda c: c["architecture"].__setitem__("wings", 2), r"architecture\.wings: unknown key"),
        (lambda c: c["normalization"]["action_std"].pop(), r"normalization\.action_std: expected 7 values"),
        (lambda c: c["normalization"]["proprio_std"].__setitem__(0, 0.0), r"normalization\.proprio_std"),
        (lambda c: c["tasks"][0]["embedding"].pop(), r"tasks\[0\]\.embedding: expected 32 values"),
        (lambda c: c["cameras"][0].__setitem__("width", 0), r"cameras\[0\]\.width"),
        (lambda c: c["action_space"]["arms"][0]["joints"][0].__setitem__("upper", -5.0), r"action_space\.arms"),
        (lambda c: c.__setitem__("format", "other"), "format: expected 'harmowam-edge-checkpoint'"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, nano_ckpt: Path, edit, message: str) -> None:
    ck = copy_ckpt(nano_ckpt, tmp_path / "ck")
    cfg = json.loads((ck / CONFIG_FILE).read_text())
    edit(cfg)
    (ck / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=message) as info:
        load_checkpoint(ck)
    assert str(ck / CONFIG_FILE) in str(info.value)


def test_invalid_json_config(tmp_path: Path, nano_ckpt: Path) -> None:
    ck = copy_ckpt(nano_ckpt, tmp_path / "ck")
    (ck / CONFIG_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: not valid JSON"):
        load_checkpoint(ck)
