"""`train --init`: start from a checkpoint, keep its normalisation and task table, record where it came from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.checkpoint import checkpoint_sha256, init_checkpoint, load_checkpoint
from export.config import CheckpointConfig
from export.errors import ConfigError
from export.learning.trainer import TrainOptions, load_training_set, train
from harmowam_edge.bundle.schema import CameraSpec
from tests.export.training_data import HEIGHT, WIDTH, write_demos

QUIET = {"say": lambda _m: None, "progress": False}


def _opts(**kw: object) -> TrainOptions:
    base: dict[str, object] = {"preset": "nano", "steps": 2, "batch_size": 4, "threads": 1, "val_fraction": 0.0}
    base.update(kw)
    return TrainOptions(**base)  # type: ignore[arg-type]


def _relative_start(path: Path, flow_steps: int | None = None) -> Path:
    """A seeded untrained checkpoint with relative actions, as `train` asks by default."""
    cam = CameraSpec("cam0", WIDTH, HEIGHT, 10, ("color",))
    start = init_checkpoint(path, preset="nano", camera=cam, seed=3, flow_steps=flow_steps)
    raw = json.loads((start / "config.json").read_text())
    raw["architecture"]["relative_actions"] = True
    (start / "config.json").write_text(json.dumps(raw))
    return start


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demos(tmp_path_factory.mktemp("init") / "demos", episodes=3, seed=5)


def test_init_keeps_the_checkpoints_normalisation_and_task_table(demos: Path, tmp_path: Path) -> None:
    # An untrained checkpoint's statistics come from the joint limits, far from anything the data implies.
    start = _relative_start(tmp_path / "start")
    before = load_checkpoint(start).config
    _, fresh = load_training_set([demos], _opts())
    assert fresh.normalization != before.normalization  # else the test would show nothing

    out = tmp_path / "next"
    result = train([demos], out, _opts(), init=start, **QUIET)  # type: ignore[arg-type]
    after = CheckpointConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert after.normalization == before.normalization
    assert after.tasks == before.tasks  # the random table of `export init`, not the trainer's own embeddings
    assert result.training["init"] == {"path": str(start), "sha256": checkpoint_sha256(start)}
    assert after.untrained is False
    w0 = load_checkpoint(start).networks.state_dict()
    w1 = load_checkpoint(out).networks.state_dict()
    # Two steps from the init's weights: close to them, not a fresh network of another seed.
    k = next(n for n in w0 if n.endswith("weight") and w0[n].ndim == 2)
    assert float((w1[k] - w0[k]).abs().max()) < 0.05
    assert not np.array_equal(w1[k].numpy(), w0[k].numpy())


def test_init_refuses_another_architecture(demos: Path, tmp_path: Path) -> None:
    cam = CameraSpec("cam0", WIDTH, HEIGHT, 10, ("color",))
    start = init_checkpoint(tmp_path / "start", preset="nano", camera=cam)  # relative_actions false
    with pytest.raises(ConfigError, match=r"--init .*another architecture: relative_actions False \(asked True\)"):
        train([demos], tmp_path / "out", _opts(), init=start, **QUIET)  # type: ignore[arg-type]


def test_init_keeps_its_flow_steps_or_takes_the_ones_asked(demos: Path, tmp_path: Path) -> None:
    # A 2-step student grows into a teacher with more steps: the step count is not a weight, so --init takes it.
    start = _relative_start(tmp_path / "start", flow_steps=2)
    assert load_checkpoint(start).config.architecture.flow_steps != TrainOptions().architecture().flow_steps

    kept = train([demos], tmp_path / "kept", _opts(), init=start, **QUIET)  # type: ignore[arg-type]
    assert load_checkpoint(kept.checkpoint).config.architecture.flow_steps == 2

    grown = train([demos], tmp_path / "grown", _opts(flow_steps=6), init=start, **QUIET)  # type: ignore[arg-type]
    ck = load_checkpoint(grown.checkpoint)
    assert ck.config.architecture.flow_steps == 6
    assert ck.networks.predictive_expert.arch.flow_steps == 6  # what sampling and the exported graph run
    w0 = load_checkpoint(start).networks.state_dict()
    w1 = ck.networks.state_dict()
    k = next(n for n in w0 if n.startswith("predictive_expert.") and n.endswith("weight") and w0[n].ndim == 2)
    assert float((w1[k] - w0[k]).abs().max()) < 0.05  # the init's weights, two steps on


def test_flow_steps_below_one_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"--flow-steps: expected an integer >= 1, got 0"):
        _opts(flow_steps=0).validate()
