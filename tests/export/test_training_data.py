"""Reading demonstrations for training: our v2 format, per-frame targets, and errors that name the file and field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.errors import DatasetError
from export.learning.data import frame_targets, interpolate_setpoints, load_episodes, read_sim_episodes
from export.learning.episodes import EpisodeData
from export.learning.sampler import normalization_from_data, task_embedding
from harmowam_edge.bundle.schema import reference_action_space
from tests.export.training_data import write_demos


def test_reads_our_v2_format(tmp_path: Path) -> None:
    eps = read_sim_episodes(write_demos(tmp_path / "d", 2))
    assert len(eps) == 2
    ep = eps[0]
    assert ep.task == "reach_red_cube"
    assert ep.images[0].shape == (30, 48, 64, 3)
    assert ep.images[0].dtype == np.uint8
    assert ep.setpoints.shape == (300, 7)
    assert ep.phase is not None
    assert set(np.unique(ep.phase)) == {0, 1}
    assert ep.phase_names[0] == "approach"
    assert ep.source.endswith("episode_000000")


def test_chunk_is_anchored_at_the_frame_and_interpolated_at_the_action_rate() -> None:
    t_sp = np.array([0.0, 1.0])
    sp = np.array([[0.0], [48.0]], np.float32)  # 48 units per second: one unit per action step
    ep = EpisodeData(
        source="mem",
        task="t",
        action_names=("a",),
        camera_names=("c",),
        t_frame=np.array([0.25, 0.5]),
        images=(np.zeros((2, 8, 8, 3), np.uint8),),
        joint_pos=np.zeros((2, 1), np.float32),
        t_setpoint=t_sp,
        setpoints=sp,
    )
    tg = frame_targets(ep, chunk_size=4, action_rate_hz=48.0, horizon=2, horizon_dt_s=0.25)
    np.testing.assert_allclose(tg.chunks[0, :, 0], [12.0, 13.0, 14.0, 15.0], atol=1e-5)
    np.testing.assert_allclose(tg.chunks[1, :, 0], [24.0, 25.0, 26.0, 27.0], atol=1e-5)
    # Horizon frames: the nearest frame to t + 0.25 and t + 0.5, clamped to the last one.
    assert tg.horizon_frames.tolist() == [[1, 1], [1, 1]]
    # Past the last setpoint the chunk holds it.
    assert interpolate_setpoints(t_sp, sp, np.array([2.0]))[0, 0] == pytest.approx(48.0)


def test_push_frames_are_no_target(tmp_path: Path) -> None:
    root = write_demos(tmp_path / "d", 1)
    ep_dir = root / "episode_000000"
    # Mark the setpoints between 1.0 s and 1.2 s as a commanded push.
    with np.load(ep_dir / "setpoints.npz") as z:
        sp = dict(z)
    t = sp["t"] - sp["t"][0]
    sp["phase"] = np.where((t >= 1.0) & (t < 1.2), 2, 0).astype(np.int16)
    np.savez_compressed(ep_dir / "setpoints.npz", **sp)
    (ep,) = read_sim_episodes(root)
    tg = frame_targets(ep, 12, 48.0, 2, 0.1)
    rel = ep.t_frame - ep.t_frame[0]
    window_hits = (rel + 11 / 48.0 >= 1.0) & (rel < 1.2)
    assert np.all(tg.weight[window_hits] == 0)
    assert np.all(tg.weight[~window_hits] == 1)
    assert tg.gate[0] == 1.0  # approach -> predictive
    assert tg.gate[-1] == 0.0  # grasp -> reactive


def test_missing_setpoints_names_the_file(tmp_path: Path) -> None:
    root = write_demos(tmp_path / "d", 1)
    (root / "episode_000000" / "setpoints.npz").unlink()
    with pytest.raises(DatasetError, match=r"episode_000000/setpoints\.npz: missing"):
        read_sim_episodes(root)


def test_bad_joint_pos_names_the_episode_and_field(tmp_path: Path) -> None:
    root = write_demos(tmp_path / "d", 1)
    f = root / "episode_000000" / "000003.npz"
    with np.load(f) as z:
        step = dict(z)
    step["joint_pos"] = np.full(7, np.nan, np.float32)
    np.savez_compressed(f, **step)
    with pytest.raises(DatasetError, match=r"episode_000000: joint_pos: expected finite"):
        read_sim_episodes(root)


def test_wrong_format_and_missing_folder(tmp_path: Path) -> None:
    root = write_demos(tmp_path / "d", 1)
    meta = json.loads((root / "dataset.json").read_text())
    meta["format"] = "something-else"
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"dataset\.json: format: expected 'harmowam-sim-demos'"):
        load_episodes([root])
    with pytest.raises(DatasetError, match="not a folder"):
        load_episodes([tmp_path / "nowhere"])


def test_normalization_floor_and_task_embeddings() -> None:
    space = reference_action_space(1)
    still = np.zeros((10, 7), np.float32)  # nothing moves: every std would be 0
    norm = normalization_from_data(still, still, space)
    assert min(norm.action_std) > 0
    assert norm.action_std[0] == pytest.approx(5.8 * 0.01)
    a, b, c = (np.array(task_embedding(n, 32)) for n in ("pick_red_cube", "pick_green_cube", "reach_blue_cube"))
    assert np.linalg.norm(a) == pytest.approx(1.0)
    assert a @ b > a @ c  # two words shared against one
    assert task_embedding("pick_red_cube", 32) == task_embedding("pick_red_cube", 32)


def test_a_folder_with_meta_info_goes_to_the_lerobot_reader(tmp_path: Path) -> None:
    pytest.importorskip("export.learning.lerobot")
    root = tmp_path / "lerobot"
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"meta/info\.json"):
        load_episodes([root])
    with pytest.raises(DatasetError, match="--mapping applies to LeRobot datasets"):
        load_episodes([write_demos(tmp_path / "ours", 1)], mapping="m.yaml")


def test_the_goal_target_is_where_the_expert_grasps_and_the_loss_uses_it(tmp_path: Path) -> None:
    """The auxiliary goal: the first setpoint of the `grasp` phase, per frame of its episode; none without phases."""
    import dataclasses

    import torch

    from export.checkpoint import build_networks
    from export.config import PRESETS, CheckpointConfig, Task
    from export.learning.losses import PolicyModel
    from export.learning.sampler import TrainingSet, episode_goal

    eps = read_sim_episodes(write_demos(tmp_path / "d", episodes=3))
    for ep in eps:
        goal = episode_goal(ep)
        assert goal is not None
        # The synthetic reach ends on its goal; the grasp phase starts there (setpoints lead by 0.1 s).
        np.testing.assert_allclose(goal, ep.setpoints[-1], atol=1e-6)
    assert episode_goal(dataclasses.replace(eps[0], meta={})) is None
    space = reference_action_space(1)
    arch = PRESETS["nano"]
    ts = TrainingSet(eps, arch, space, val_fraction=0.0)
    assert ts.goal_weight.min() == 1.0
    np.testing.assert_allclose(ts.goal[: eps[0].frames], np.repeat(eps[0].setpoints[-1:], eps[0].frames, 0), atol=1e-6)
    cfg = CheckpointConfig(
        architecture=arch,
        action_space=space,
        normalization=ts.normalization,
        cameras=ts.cameras,
        tasks=tuple(Task(n, tuple(float(x) for x in row)) for n, row in zip(ts.tasks, ts.task_table, strict=True)),
    )
    model = PolicyModel(build_networks(cfg))
    b = ts.batch(ts.train_index[:8], torch.device("cpu"))
    args = (b, torch.zeros(8, arch.horizon, arch.latent_tokens, arch.dim), torch.zeros(8, 12, 7), torch.rand(8))
    with_goal = model(*args)["goal"]
    assert float(with_goal.detach()) > 0
    b.goal_weight = torch.zeros(8)
    assert float(model(*args)["goal"].detach()) == 0.0

    # --gate-labels: with phases the gate's loss follows the labels; with accuracy the labels do not matter.
    def gate_loss(label: float) -> float:
        b.gate = torch.full((8,), label)
        return float(model(*args)["gate"].detach())

    assert abs(gate_loss(1.0) - gate_loss(0.0)) > 1e-3
    model.gate_from_phases = False
    assert gate_loss(1.0) == gate_loss(0.0)


def test_frames_that_reopen_shut_fingers_are_found_and_drawn_more_often(tmp_path: Path) -> None:
    """--reopen-weight: a missed grasp's retry (fingers shut, label opening them) is drawn that many times as often."""
    import dataclasses

    from export.config import PRESETS
    from export.learning.sampler import TrainingSet, reopening_frames

    space = reference_action_space(1)
    state = np.zeros((7, 7), np.float32)
    state[:, 6] = [0.0, 0.0, 0.038, 0.038, 0.08, 0.019, 0.021]  # shut, shut, holding a 4 cm cube twice, open, 19/21 mm
    chunks = np.repeat(state[:, None, :], 12, axis=1)
    chunks[0, -1, 6] = 0.03  # opens 30 mm within the chunk
    chunks[1, -1, 6] = 0.004  # a crawl: 4 mm
    chunks[2, -1, 6] = 0.08  # a release from 38 mm: the fingers were not shut
    chunks[3, -1, 6] = 0.0  # squeezes on
    chunks[5:, -1, 6] = 0.08  # both open fully; only the one at or under 20 mm (a quarter of the range) was shut
    assert reopening_frames(state, chunks, space).tolist() == [True, False, False, False, False, True, False]

    eps = read_sim_episodes(write_demos(tmp_path / "d", episodes=3))
    shut = eps[0].joint_pos.copy()
    shut[:, 6] = 0.0  # the demos' setpoints keep the fingers open at 80 mm: every frame of episode 0 reopens
    eps[0] = dataclasses.replace(eps[0], joint_pos=shut)
    share = {}
    for w in (1.0, 5.0):
        ts = TrainingSet(eps, PRESETS["nano"], space, val_fraction=0.0, reopen_weight=w)
        assert ts.reopening.sum() == (ts.episode == 0).sum()  # the frames of episode 0, and only those
        drawn = np.concatenate([ts.sample(np.random.default_rng(i), 64) for i in range(40)])
        share[w] = float(np.mean(ts.episode[drawn] == 0))
    base = float(np.mean(ts.episode[ts.train_index] == 0))
    assert abs(share[1.0] - base) < 0.06
    assert abs(share[5.0] - 5 * base / (5 * base + 1 - base)) < 0.06
