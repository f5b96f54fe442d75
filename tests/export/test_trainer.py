"""`harmowam-edge train` on tiny synthetic demos: it learns, its checkpoint exports, resume and seeds are exact."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from export.checkpoint import describe_checkpoint, load_checkpoint
from export.errors import ConfigError, OutputExistsError
from export.learning.trainer import CURVE_FILE, STATE_FILE, TrainOptions, train, weights_sha256
from tests.export.training_data import write_demos

QUIET = {"say": lambda _m: None, "progress": False}


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demos(tmp_path_factory.mktemp("train") / "demos", episodes=10)


def _opts(steps: int, **kw: object) -> TrainOptions:
    base: dict[str, object] = {
        "preset": "nano",
        "steps": steps,
        "batch_size": 16,
        "lr": 1e-3,
        "threads": 1,
        "val_fraction": 0.2,
        "eval_every": steps,
        "checkpoint_every": steps,
    }
    base.update(kw)
    return TrainOptions(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained(demos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "nano"
    train([demos], out, _opts(150), **QUIET)  # type: ignore[arg-type]
    return out


def test_training_lowers_the_loss_and_beats_the_untrained_network(trained: Path) -> None:
    cfg = json.loads((trained / "config.json").read_text())
    t = cfg["training"]
    assert cfg["untrained"] is False
    assert t["steps"] == 150
    assert t["episodes"] == 10
    assert t["val_episodes"] == 2
    log = [json.loads(line) for line in (trained / "training_log.jsonl").read_text().splitlines()]
    first = sum(r["total"] for r in log[:20]) / 20
    last = sum(r["total"] for r in log[-20:]) / 20
    assert last < 0.5 * first
    # Held-out episodes (targets the network never saw): the chunks beat the untrained network's and holding the
    # pose (errors in the experts' units: offsets from the joint state, normalised).
    assert t["relative_actions"] is True
    assert t["demo_timing"] == "cruising"  # the default: the synthetic demos carry setpoint phases, so it applies
    assert t["val_final"]["blend"] < 0.7 * t["val_initial"]["blend"]
    assert t["val_final"]["error_reactive"] < 0.6 * t["val_initial"]["error_reactive"]
    # The reactive expert's chunk beats holding the pose by a margin (0.34 vs 0.48 measured; untrained 0.66); the
    # blend, with the predictive expert still far from trained after 150 steps, beats it too.
    assert t["val_final"]["error_reactive"] < 0.8 * t["val_final"]["hold"]
    assert t["val_final"]["blend"] < t["val_final"]["hold"]
    assert (trained / CURVE_FILE).stat().st_size > 1000
    assert t["data"][0]["sha256"]
    assert len(t["data"][0]["sha256"]) == 64


def test_trained_checkpoint_round_trips_and_says_trained(trained: Path) -> None:
    ck = load_checkpoint(trained)
    assert not ck.config.untrained
    assert ck.config.training is not None
    assert ck.config.training["steps"] == 150
    assert "UNTRAINED" not in describe_checkpoint(ck)
    assert next(t.name for t in ck.config.tasks) == "reach_red_cube"
    assert ck.config.cameras[0].width == 64
    assert ck.config.cameras[0].height == 48
    # The trained weights are what was saved: the reactive expert's output is a function of the weights alone.
    again = load_checkpoint(trained)
    assert weights_sha256(torch.nn.ModuleList(ck.networks.modules().values())) == weights_sha256(
        torch.nn.ModuleList(again.networks.modules().values())
    )


def _interrupt_at(step: int) -> Callable[[str], None]:
    def say(message: str) -> None:
        if message.startswith(f"step {step}/"):
            raise KeyboardInterrupt  # as if Ctrl-C came right after that step's validation

    return say


def test_interrupt_then_resume_continues_exactly_and_a_seed_repeats(demos: Path, tmp_path: Path) -> None:
    opts = _opts(12, checkpoint_every=12, eval_every=6)
    straight = train([demos], tmp_path / "straight", opts, say=lambda _m: None, progress=False)
    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        train([demos], part, opts, say=_interrupt_at(6), progress=False)
    assert (part / STATE_FILE).is_file()
    assert json.loads((part / "config.json").read_text())["training"]["steps"] == 6
    resumed = train([demos], part, opts, resume=True, say=lambda _m: None, progress=False)
    assert resumed.training["rank_weight_sha256"] == straight.training["rank_weight_sha256"]
    other = train([demos], tmp_path / "seed1", _opts(12, seed=1), **QUIET)  # type: ignore[arg-type]
    assert other.training["rank_weight_sha256"] != straight.training["rank_weight_sha256"]


def test_refuses_to_overwrite_and_to_resume_nothing(demos: Path, tmp_path: Path) -> None:
    out = tmp_path / "ck"
    out.mkdir()
    (out / "something").write_text("x")
    with pytest.raises(OutputExistsError, match="--resume to continue it or --force"):
        train([demos], out, _opts(2), **QUIET)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"--resume: .*training_state\.pt not found"):
        train([demos], tmp_path / "empty", _opts(2), resume=True, **QUIET)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--image: expected WIDTHxHEIGHT"):
        train([demos], tmp_path / "x", _opts(2, image="big"), **QUIET)  # type: ignore[arg-type]


def test_trained_checkpoint_exports_to_a_bundle(trained: Path, tmp_path: Path, cached_export: None) -> None:
    from export import build_bundle

    report = build_bundle(trained, tmp_path / "bundle")
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["provenance"]["untrained"] is False
    assert "reach_red_cube" in manifest["tasks"]["names"]
    assert report is not None
    # The bundle says what the policy learnt from: `sim eval` keeps off these layouts.
    from harmowam_edge.sim.evaluation import trained_seed_ranges

    training = json.loads((trained / "config.json").read_text())["training"]
    carried = manifest["provenance"]["training"]
    assert carried["seed_ranges"] == training["seed_ranges"] != []
    assert carried["steps"] == 150
    assert carried["relative_actions"] is True
    assert trained_seed_ranges(tmp_path / "bundle") == [tuple(r) for r in training["seed_ranges"]]


def test_per_camera_frame_swap_tells_which_camera_the_networks_lean_on(tmp_path: Path) -> None:
    """Two cameras, the second a blank wall: swapping its frames changes nothing (gain exactly 0), and swapping
    the first alone is the whole swap. Validation reports both, and the progress line names the cameras."""
    import numpy as np

    demos = write_demos(tmp_path / "demos", episodes=4, seed=2, cameras=2)
    for f in sorted(demos.glob("episode_*/0*.npz")):
        step = dict(np.load(f))
        step["image_1"] = np.full_like(step["image_1"], 128)
        np.savez_compressed(f, **step)  # type: ignore[arg-type]
    lines: list[str] = []
    out = tmp_path / "ck"
    train([demos], out, _opts(20, val_fraction=0.5), say=lines.append, progress=False)
    v = json.loads((out / "config.json").read_text())["training"]["val_final"]
    assert v["swap_gain_1"] == pytest.approx(0.0, abs=1e-9)
    assert v["swap_gain_0"] == pytest.approx(v["swap_gain"], abs=1e-6)
    assert any("(cam0 +" in line and ", cam1 +" in line for line in lines), lines
