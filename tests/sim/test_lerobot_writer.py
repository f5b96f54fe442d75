"""Our demonstrations written as a LeRobotDataset v3.0: the documented layout, and a round trip through the reader.

The layout is checked against LeRobot's documented v3.0 format (lerobot itself cannot be installed here: it needs
torchvision, which does not load against our torch build). The round trip records real sim demos, converts them
and reads them back through `export.learning.lerobot`: states, setpoints, times, phases exact; frames within the
codec's tolerance (yuv420p chroma subsampling dominates at these tiny sizes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
av = pytest.importorskip("av")

from harmowam_edge.errors import ConfigError  # noqa: E402
from harmowam_edge.sim.lerobot import Episode, LeRobotWriter  # noqa: E402

NAMES = (*(f"joint_{i}" for i in range(1, 7)), "gripper")
INFO_KEYS = {
    "codebase_version",
    "robot_type",
    "total_episodes",
    "total_frames",
    "total_tasks",
    "chunks_size",
    "data_files_size_in_mb",
    "video_files_size_in_mb",
    "fps",
    "splits",
    "data_path",
    "video_path",
    "features",
}
KEY = "observation.images.front"


def _episode(i: int, frames: int, rng: np.random.Generator) -> Episode:
    images = np.zeros((frames, 24, 32, 3), np.uint8)
    for t in range(frames):
        images[t] = 30 + 20 * t + 50 * i
    jp = rng.uniform(-1, 1, (frames, 7)).astype(np.float32)
    jp[:, 6] = 0.04
    n = 4 * frames
    setpoints = rng.uniform(-1, 1, (n, 7)).astype(np.float32)
    setpoints[:, 6] = rng.uniform(0, 0.08, n)
    return Episode(
        task=("pick_red_cube", "place_red_cube_on_pad")[i % 2],
        t_frame=1000.0 + np.cumsum(rng.uniform(0.03, 0.04, frames)),
        images=(images,),
        joint_pos=jp,
        action=jp + np.float32(0.01),
        t_setpoint=1000.0 + np.arange(n) / 120.0,
        setpoints=setpoints,
        setpoint_phase=np.arange(n, dtype=np.int16) % 3,
        phase=np.arange(frames, dtype=np.int16) % 3,
        success=i != 1,
        frame_numbers=np.array([3, 4, 6, 7, 8]) if i == 0 else None,  # episode 0 dropped a frame
    )


def _write(out: Path, lengths=(5, 7, 4), **kw) -> list[Episode]:
    rng = np.random.default_rng(0)
    eps = [_episode(i, n, rng) for i, n in enumerate(lengths)]
    w = LeRobotWriter(out, fps=30, action_names=NAMES, cameras=(("front", 32, 24),), phase_names=("a", "b", "c"), **kw)
    for e in eps:
        w.add(e)
    w.close()
    return eps


def test_writer_lays_out_a_v3_dataset_as_lerobot_documents_it(tmp_path):
    out = tmp_path / "ds"
    eps = _write(out, episodes_per_file=2)
    info = json.loads((out / "meta/info.json").read_text())
    assert set(info) == INFO_KEYS
    assert info["codebase_version"] == "v3.0"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"], info["fps"]) == (3, 16, 2, 30)
    assert info["splits"] == {"train": "0:3"}
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert info["features"][key]["shape"] == [1]
    assert info["features"]["observation.state"] == {"dtype": "float32", "shape": [7], "names": list(NAMES)}
    video = info["features"][KEY]
    assert video["shape"] == [24, 32, 3]
    assert video["names"] == ["height", "width", "channels"]
    assert video["info"]["video.codec"] == "av1"
    assert video["info"]["video.fps"] == 30
    # several episodes in one data file and one video file: episodes 0, 1 in file-000, episode 2 in file-001
    rows = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [r["data/file_index"] for r in rows] == [0, 0, 1]
    assert [r[f"videos/{KEY}/file_index"] for r in rows] == [0, 0, 1]
    # episode 0 spans 6 frame periods (a dropped frame leaves a gap in time, not a compressed video)
    assert [r[f"videos/{KEY}/from_timestamp"] for r in rows] == pytest.approx([0, 6 / 30, 0])
    assert [r[f"videos/{KEY}/to_timestamp"] for r in rows] == pytest.approx([6 / 30, 13 / 30, 4 / 30])
    assert [(r["dataset_from_index"], r["dataset_to_index"]) for r in rows] == [(0, 5), (5, 12), (12, 16)]
    assert rows[1]["tasks"] == ["place_red_cube_on_pad"]
    assert rows[0]["stats/observation.state/count"] == [5]
    first = pq.read_table(out / "data/chunk-000/file-000.parquet")
    assert first.column("timestamp").to_pylist()[:5] == pytest.approx([0, 1 / 30, 3 / 30, 4 / 30, 5 / 30])
    data = pq.read_table(out / "data/chunk-000/file-001.parquet")
    assert data.column("index").to_pylist() == [12, 13, 14, 15]
    assert data.column("timestamp").to_pylist() == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30])
    np.testing.assert_array_equal(data.column("harmowam.t_capture").to_numpy(), eps[2].t_frame)
    for f, frames in (("file-000", 12), ("file-001", 4)):
        with av.open(str(out / f"videos/{KEY}/chunk-000/{f}.mp4")) as c:
            s = c.streams.video[0]
            assert s.codec_context.name in ("libdav1d", "av1")
            assert sum(1 for _ in c.decode(s)) == frames
    # tasks.parquet as pandas writes a frame indexed by the task string (LeRobot reads it with pd.read_parquet)
    tasks = pq.read_table(out / "meta/tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    assert tasks.to_pylist() == [
        {"task_index": 0, "task": "pick_red_cube"},
        {"task_index": 1, "task": "place_red_cube_on_pad"},
    ]
    stats = json.loads((out / "meta/stats.json").read_text())
    state = np.concatenate([e.joint_pos for e in eps]).astype(np.float64)
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats["observation.state"]["std"], state.std(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(stats["observation.state"]["min"], state.min(0))
    assert stats["observation.state"]["count"] == [16]
    assert np.array(stats[KEY]["mean"]).shape == (3, 1, 1)
    extras = json.loads((out / "meta/harmowam/extras.json").read_text())
    assert "depth left out" in extras["depth"]


def test_written_dataset_reads_back_exactly(tmp_path):
    from export.learning.lerobot import read_lerobot

    out = tmp_path / "ds"
    eps = _write(out, codec="h264", episodes_per_file=2)
    got = read_lerobot(out, {"cache": False})
    assert [g.task for g in got] == [e.task for e in eps]
    assert [g.success for g in got] == [True, False, True]
    for e, g in zip(eps, got, strict=True):
        np.testing.assert_array_equal(g.t_frame, e.t_frame)
        np.testing.assert_array_equal(g.joint_pos, e.joint_pos)
        np.testing.assert_array_equal(g.t_setpoint, e.t_setpoint)
        np.testing.assert_array_equal(g.setpoints, e.setpoints)
        np.testing.assert_array_equal(g.phase, e.phase)
        assert g.phase_names == ("a", "b", "c")
        assert g.action_names == NAMES
        assert np.abs(g.images[0].astype(int) - e.images[0]).max() <= 2


def test_writer_refuses_what_lerobot_cannot_hold(tmp_path):
    kw = {"fps": 30, "action_names": NAMES}
    with pytest.raises(ConfigError, match=r"camera front: 31x24: yuv420p video needs an even width and height"):
        LeRobotWriter(tmp_path / "a", cameras=(("front", 31, 24),), **kw)
    with pytest.raises(ConfigError, match=r"--codec: expected one of av1, h264, got 'vp9'"):
        LeRobotWriter(tmp_path / "b", cameras=(("front", 32, 24),), codec="vp9", **kw)
    with pytest.raises(ConfigError, match=r"fps: LeRobot datasets need an integer frame rate"):
        LeRobotWriter(tmp_path / "c", cameras=(("front", 32, 24),), fps=29.97, action_names=NAMES)  # type: ignore[arg-type]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("")
    with pytest.raises(ConfigError, match=r"--out .*d: exists and is not an empty folder"):
        LeRobotWriter(tmp_path / "d", cameras=(("front", 32, 24),), **kw)


# --------------------------------------------------------------------------------------------------------------
# Real sim demos -> LeRobot -> read back, against the native reading


@pytest.fixture(scope="module")
def native_demos(tmp_path_factory):
    pytest.importorskip("mujoco")
    from harmowam_edge.bundle.schema import CameraSpec
    from harmowam_edge.sim.demos import collect_demos

    out = tmp_path_factory.mktemp("lerobot") / "native"
    collect_demos("reach", 2, out, cameras=(CameraSpec("front", 64, 48, 30, ("color", "depth")),), seed=3)
    # On a loaded machine the sim can stamp two consecutive frames with one capture time, which the native
    # reader refuses; drop such repeats so the comparison does not depend on the machine's load.
    for ep in sorted(out.glob("episode_*")):
        last = -np.inf
        for f in sorted(ep.glob("[0-9]*.npz")):
            with np.load(f) as z:
                t = float(z["t_capture_0"])
            if t <= last:
                f.unlink()
            last = max(last, t)
    return out


def _run_cli(capsys, *args: str) -> tuple[int, str, str]:
    from harmowam_edge.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_sim_demos_round_trip_through_lerobot_equals_the_native_reading(native_demos, tmp_path, capsys):
    from export.learning.data import check_episode, frame_targets, read_sim_episodes
    from export.learning.lerobot import read_lerobot

    out = tmp_path / "lerobot"
    code, text, err = _run_cli(capsys, "sim", "to-lerobot", str(native_demos), "--out", str(out))
    assert code == 0, err
    assert "wrote LeRobot v3.0 dataset" in text
    native = read_sim_episodes(native_demos)
    got = read_lerobot(out, {"cache_dir": str(tmp_path / "cache")})
    assert len(got) == len(native) == 2
    for n, g in zip(native, got, strict=True):
        check_episode(g)  # what the trainer checks of every episode
        assert (g.task, g.action_names, g.camera_names, g.success) == (
            n.task,
            n.action_names,
            n.camera_names,
            n.success,
        )
        np.testing.assert_array_equal(g.t_frame, n.t_frame)
        np.testing.assert_array_equal(g.joint_pos, n.joint_pos)
        np.testing.assert_array_equal(g.t_setpoint, n.t_setpoint)
        np.testing.assert_array_equal(g.setpoints, n.setpoints)
        np.testing.assert_array_equal(g.phase, n.phase)
        assert g.phase_names == n.phase_names
        # the trainer's per-frame targets (48 Hz chunks, horizon frames, gate labels, weights) are the same
        tn, tg = frame_targets(n, 12, 48.0, 4, 0.1), frame_targets(g, 12, 48.0, 4, 0.1)
        for field in ("chunks", "horizon_frames", "gate", "weight"):
            np.testing.assert_array_equal(getattr(tg, field), getattr(tn, field))
        assert len(n.depths) == 1
        assert g.depths == ()  # left out, with a note in meta/harmowam/extras.json
        a, b = n.images[0].astype(np.float64), g.images[0].astype(np.float64)
        assert a.shape == b.shape
        mse = ((a - b) ** 2).mean()
        assert 10 * np.log10(255**2 / mse) > 25  # measured ~29 dB at 64x48 (AV1 CRF 30, yuv420p)
        shifted = ((a[1:] - b[:-1]) ** 2).mean()
        assert mse < shifted  # each frame is its own, not its neighbour


def test_sim_demos_format_lerobot_writes_the_dataset_in_place_of_the_native_one(tmp_path, capsys):
    pytest.importorskip("mujoco")
    out = tmp_path / "lr"
    code, _, err = _run_cli(
        capsys, "sim", "demos", "--task", "reach_red_cube", "--episodes", "1", "--out", str(out),
        "--cameras", "front:32x24", "--no-depth", "--format", "lerobot",
    )  # fmt: skip
    assert code == 0, err
    assert (out / "meta/info.json").is_file()
    assert (out / f"videos/{KEY}/chunk-000/file-000.mp4").is_file()
    assert not (tmp_path / ".lr.native").exists()
    assert json.loads((out / "meta/info.json").read_text())["total_episodes"] == 1
    code, _, err = _run_cli(capsys, "sim", "demos", "--task", "reach", "--episodes", "1", "--out", str(tmp_path / "x"),
                            "--format", "parquet")  # fmt: skip
    assert code == 2
    assert "--format: expected native or lerobot, got 'parquet'" in err
