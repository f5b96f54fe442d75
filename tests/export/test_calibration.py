"""Calibration observations: the .npz directory format, frames-only sources, recordings, and every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export import CalibrationDataError
from export.calibration import MIN_OBSERVATIONS, load_calibration, split_holdout, synthetic_observations
from export.checkpoint import load_config


def write_npz_dir(path: Path, n: int, *, joint: bool = True, task: str | None = "pick_red_cube", **overrides) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arrays = {"image_0": rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)}
        if joint:
            arrays["joint_pos"] = (rng.random(7) * 0.5).astype(np.float32)
        if task is not None:
            arrays["task"] = np.array(task)
        arrays.update(overrides)
        np.savez(path / f"obs_{i:04d}.npz", **arrays)
    return path


def test_npz_directory(tmp_path: Path, nano_ckpt: Path) -> None:
    cfg = load_config(nano_ckpt)
    obs = load_calibration(write_npz_dir(tmp_path / "calib", 12), cfg)
    assert len(obs) == 12
    o = obs[0]
    assert o["image_0"].shape == (1, 120, 160, 3)
    assert o["joint_pos"].shape == (1, 7)
    assert o["joint_pos"].dtype == np.float32
    push = [t.name for t in cfg.tasks].index("pick_red_cube")
    np.testing.assert_array_equal(o["task_embedding"][0], np.asarray(cfg.tasks[push].embedding, np.float32))
    calib, hold = split_holdout(obs)
    assert len(calib) + len(hold) == 12
    assert len(hold) >= 4
    assert not {id(x) for x in calib} & {id(x) for x in hold}


def test_frames_only_observations_get_joint_states_from_the_training_statistics(
    tmp_path: Path, nano_ckpt: Path
) -> None:
    cfg = load_config(nano_ckpt)
    obs = load_calibration(write_npz_dir(tmp_path / "calib", 12, joint=False, task=None), cfg)
    joints = np.concatenate([o["joint_pos"] for o in obs])
    lower = np.array([d.lower for d in cfg.action_space.dims], np.float32)
    upper = np.array([d.upper for d in cfg.action_space.dims], np.float32)
    assert np.all(joints >= lower)
    assert np.all(joints <= upper)
    assert joints.std(axis=0).min() > 0  # varied, not one pose
    tasks = {o["task_embedding"].tobytes() for o in obs}
    assert len(tasks) == len(cfg.tasks)  # tasks cycled
    again = load_calibration(tmp_path / "calib", cfg)
    np.testing.assert_array_equal(again[3]["joint_pos"], obs[3]["joint_pos"])  # seeded


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"image_0": np.zeros((120, 161, 3), np.uint8)},
            r"image_0: expected uint8 \[120, 160, 3\].*got uint8 \[120, 161, 3\]",
        ),
        ({"image_0": np.zeros((120, 160, 3), np.float32)}, r"image_0: expected uint8 .*got float32"),
        ({"joint_pos": np.zeros(6, np.float32)}, r"joint_pos: expected 7 floats .*joint_1"),
        ({"joint_pos": np.full(7, np.nan, np.float32)}, r"joint_pos: non-finite"),
        ({"task": np.array("juggle")}, r"task: 'juggle' is not a task of the checkpoint"),
    ],
)
def test_bad_observations_name_file_and_key(tmp_path: Path, nano_ckpt: Path, overrides: dict, message: str) -> None:
    cfg = load_config(nano_ckpt)
    d = write_npz_dir(tmp_path / "calib", 12, **overrides)
    with pytest.raises(CalibrationDataError, match=message) as info:
        load_calibration(d, cfg)
    assert "obs_0000.npz" in str(info.value)


def test_missing_image_too_few_empty_and_unreadable(tmp_path: Path, nano_ckpt: Path) -> None:
    cfg = load_config(nano_ckpt)
    d = tmp_path / "noimg"
    d.mkdir()
    np.savez(d / "a.npz", joint_pos=np.zeros(7, np.float32))
    with pytest.raises(CalibrationDataError, match=r"a\.npz: missing 'image_0'"):
        load_calibration(d, cfg)
    few = write_npz_dir(tmp_path / "few", 5)
    with pytest.raises(CalibrationDataError, match=rf"5 observation\(s\); need at least {MIN_OBSERVATIONS}"):
        load_calibration(few, cfg)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationDataError, match=r"no \.npz observations"):
        load_calibration(tmp_path / "empty", cfg)
    with pytest.raises(CalibrationDataError, match="not found"):
        load_calibration(tmp_path / "absent", cfg)
    bad = write_npz_dir(tmp_path / "bad", 12)
    (bad / "obs_0003.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CalibrationDataError, match=r"obs_0003\.npz: not a readable \.npz"):
        load_calibration(bad, cfg)


def test_iterable_and_synthetic_sources(nano_ckpt: Path) -> None:
    cfg = load_config(nano_ckpt)
    synth = synthetic_observations(cfg, count=12)
    assert len(load_calibration(iter(synth), cfg)) == 12
    with pytest.raises(CalibrationDataError, match=r"calib\[0\]: expected a dict"):
        load_calibration([np.zeros(3)] * 12, cfg)  # type: ignore[list-item]
    assert len(load_calibration("synthetic", cfg)) >= MIN_OBSERVATIONS


@pytest.mark.realsense
def test_recording_becomes_observations(tmp_path: Path, nano_ckpt: Path) -> None:
    """A real .db3 recording (rs.software_device), played back by the runtime's RealSenseSource."""
    pytest.importorskip("pyrealsense2", reason="needs pyrealsense2")
    from harmowam_edge.commands.export import _calibration_source
    from tests.recordings import gradient_color, make_recording

    rec = make_recording(tmp_path / "cam.db3", width=160, height=120, fps=30, frames=14, pace=False)
    obs = _calibration_source(str(rec.path), nano_ckpt)
    assert 12 <= len(obs) <= 14
    color = gradient_color(160, 120)
    index = int(obs[0]["image_0"][0, 0, 2])  # the frame index is written into pixel (0, 0)
    np.testing.assert_array_equal(obs[0]["image_0"], color(index))
    cfg = load_config(nano_ckpt)
    full = load_calibration(obs, cfg)
    assert full[0]["joint_pos"].shape == (1, 7)
    wrong = make_recording(tmp_path / "wrong.db3", width=64, height=48, fps=30, frames=3, pace=False)
    with pytest.raises(CalibrationDataError, match=r"wrong\.db3: the bundle expects color 160x120"):
        _calibration_source(str(wrong.path), nano_ckpt)
    with pytest.raises(CalibrationDataError, match=r"2 recording\(s\) for 1 camera"):
        _calibration_source(f"{rec.path},{rec.path}", nano_ckpt)
