"""Reading LeRobot datasets (v3.0 and v2.1) built here by hand, file by file, as LeRobot lays them out.

The datasets are made with pyarrow and PyAV directly (not with our writer), the way LeRobot writes them: an SO-100
style arm in degrees with a gripper in percent, `shoulder_pan.pos` names, a pandas-indexed tasks.parquet,
several episodes in one data file and one video file, H.264 and AV1. Each frame is one grey level that encodes
(episode, frame), so a frame decoded from the wrong time is caught.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
av = pytest.importorskip("av")

from export.errors import DatasetError  # noqa: E402
from export.learning import lerobot_video  # noqa: E402
from export.learning.lerobot import describe, read_lerobot  # noqa: E402
from export.learning.lerobot_mapping import LeRobotMapping  # noqa: E402

NAMES = ["shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos", "wrist_roll.pos", "gripper.pos"]
W, H, FPS = 32, 24, 30
LENGTHS = (7, 9, 6)
TASKS = ("Grab the black cube.", "Put it in the bin")
EPISODE_TASK = (0, 1, 0)
CAM = "observation.images.front"


def grey(ep: int, frame: int) -> int:
    return (40 * ep + 9 * frame + 20) % 220 + 10


def state_deg(ep: int, t: int) -> list[float]:
    return [10.0 * ep + t, -45.0 + t, 90.0 - 2 * t, 5.0 * ep, -170.0 + t, 20.0 + 5 * t]  # last: gripper %


def _encode(path: Path, frames: list[int], codec: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = {"h264": ("libx264", {"g": "2", "crf": "10"}), "av1": ("libsvtav1", {"g": "2", "crf": "20"})}[codec]
    with av.open(str(path), "w") as c:
        s = c.add_stream(enc[0], rate=FPS, options=enc[1])
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for i, g in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.full((H, W, 3), g, np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _features(dims: int = 6, names: object = NAMES) -> dict:
    return {
        "action": {"dtype": "float32", "shape": [dims], "names": names},
        "observation.state": {"dtype": "float32", "shape": [dims], "names": names},
        CAM: {
            "dtype": "video",
            "shape": [H, W, 3],
            "names": ["height", "width", "channels"],
            "info": {"video.fps": FPS, "video.codec": "h264", "video.pix_fmt": "yuv420p", "video.is_depth_map": False},
        },
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }


def _rows(episodes: list[int], start_index: int) -> pa.Table:
    cols: dict[str, list] = {k: [] for k in ("state", "action", "ts", "fi", "ei", "ix", "ti")}
    ix = start_index
    for ep in episodes:
        for t in range(LENGTHS[ep]):
            s = state_deg(ep, t)
            cols["state"].append(s)
            cols["action"].append([v + 0.5 for v in s])
            cols["ts"].append(t / FPS)
            cols["fi"].append(t)
            cols["ei"].append(ep)
            cols["ix"].append(ix)
            cols["ti"].append(EPISODE_TASK[ep])
            ix += 1
    vec = pa.list_(pa.float32())  # a variable list, as pandas writes it
    return pa.table(
        {
            "observation.state": pa.array(cols["state"], vec),
            "action": pa.array(cols["action"], vec),
            "timestamp": pa.array(cols["ts"], pa.float32()),
            "frame_index": pa.array(cols["fi"], pa.int64()),
            "episode_index": pa.array(cols["ei"], pa.int64()),
            "index": pa.array(cols["ix"], pa.int64()),
            "task_index": pa.array(cols["ti"], pa.int64()),
        }
    )


def make_v3(root: Path, codec: str = "h264", fps: int = FPS, short_by: int = 0) -> Path:
    """Episodes 0 and 1 share data/file-000 and videos/file-000; episode 2 is in file-001 of both."""
    files = [[0, 1], [2]]
    info = {
        "codebase_version": "v3.0",
        "robot_type": "so101_follower",
        "total_episodes": 3,
        "total_frames": sum(LENGTHS),
        "total_tasks": 2,
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 500,
        "fps": fps,
        "splits": {"train": "0:3"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": _features(),
    }
    (root / "meta").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    # pandas' to_parquet of a frame indexed by the task string (LeRobot's write_tasks)
    tasks = pa.table({"task_index": pa.array([0, 1], pa.int64()), "__index_level_0__": list(TASKS)})
    pandas_meta = {"index_columns": ["__index_level_0__"], "columns": []}
    pq.write_table(tasks.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), root / "meta/tasks.parquet")
    rows, index = [], 0
    for file_index, eps in enumerate(files):
        data = root / f"data/chunk-000/file-{file_index:03d}.parquet"
        data.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_rows(eps, index), data)
        grey_frames: list[int] = []
        for ep in eps:
            n = LENGTHS[ep]
            start = len(grey_frames)
            grey_frames += [grey(ep, t) for t in range(n)]
            rows.append(
                {
                    "episode_index": ep,
                    "tasks": [TASKS[EPISODE_TASK[ep]]],
                    "length": n,
                    "data/chunk_index": 0,
                    "data/file_index": file_index,
                    "dataset_from_index": index,
                    "dataset_to_index": index + n,
                    f"videos/{CAM}/chunk_index": 0,
                    f"videos/{CAM}/file_index": file_index,
                    f"videos/{CAM}/from_timestamp": start / FPS,
                    f"videos/{CAM}/to_timestamp": (start + n) / FPS,
                    "stats/action/mean": [0.0] * 6,
                    "meta/episodes/chunk_index": 0,
                    "meta/episodes/file_index": 0,
                }
            )
            index += n
        if short_by and file_index == len(files) - 1:
            grey_frames = grey_frames[:-short_by]
        _encode(root / f"videos/{CAM}/chunk-000/file-{file_index:03d}.mp4", grey_frames, codec)
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "meta/episodes/chunk-000/file-000.parquet")
    (root / "meta/stats.json").write_text("{}")
    return root


def make_v21(root: Path) -> Path:
    info = {
        "codebase_version": "v2.1",
        "robot_type": "koch",
        "total_episodes": 3,
        "total_frames": sum(LENGTHS),
        "total_tasks": 2,
        "total_videos": 3,
        "total_chunks": 1,
        "chunks_size": 1000,
        "fps": FPS,
        "splits": {"train": "0:3"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": _features(names={"motors": NAMES}),
    }
    (root / "meta").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info))
    (root / "meta/tasks.jsonl").write_text(
        "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(TASKS))
    )
    lines, index = [], 0
    for ep, n in enumerate(LENGTHS):
        lines.append(json.dumps({"episode_index": ep, "tasks": [TASKS[EPISODE_TASK[ep]]], "length": n}))
        path = root / f"data/chunk-000/episode_{ep:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_rows([ep], index), path)
        index += n
        _encode(root / f"videos/chunk-000/{CAM}/episode_{ep:06d}.mp4", [grey(ep, t) for t in range(n)], "h264")
    (root / "meta/episodes.jsonl").write_text("\n".join(lines) + "\n")
    return root


SO100 = {"joint_unit": "deg", "gripper_unit": "percent", "gripper_open_m": 0.1}


def _mapping(tmp_path: Path, **kw: object) -> LeRobotMapping:
    return LeRobotMapping.from_dict({**SO100, "cache_dir": str(tmp_path / "cache"), **kw})


def _check_episodes(eps, sources: tuple[str, ...]) -> None:
    assert [e.meta["episode_index"] for e in eps] == [0, 1, 2]
    assert [e.frames for e in eps] == list(LENGTHS)
    assert [e.task for e in eps] == ["grab_the_black_cube", "put_it_in_the_bin", "grab_the_black_cube"]
    for ep_index, e in enumerate(eps):
        assert e.action_names == ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
        assert e.camera_names == ("front",)
        assert sources[ep_index] in e.source
        want = np.array([state_deg(ep_index, t) for t in range(e.frames)])
        np.testing.assert_allclose(e.joint_pos[:, :5], np.deg2rad(want[:, :5]), rtol=1e-6)
        np.testing.assert_allclose(e.joint_pos[:, 5], want[:, 5] / 100 * 0.1, rtol=1e-6)
        np.testing.assert_allclose(e.setpoints[:, :5], np.deg2rad(want[:, :5] + 0.5), rtol=1e-6)
        np.testing.assert_allclose(e.t_frame, np.arange(e.frames) / FPS, atol=1e-6)
        np.testing.assert_array_equal(e.t_setpoint, e.t_frame)
        assert e.images[0].shape == (e.frames, H, W, 3)
        assert e.images[0].dtype == np.uint8
        levels = e.images[0].reshape(e.frames, -1).mean(axis=1)
        np.testing.assert_allclose(levels, [grey(ep_index, t) for t in range(e.frames)], atol=3)
        assert e.depths == ()
        assert e.phase is None
        assert e.success is None


@pytest.mark.parametrize("codec", ["h264", "av1"])
def test_v3_dataset_with_episodes_sharing_files_reads_frame_accurately(tmp_path, codec):
    root = make_v3(tmp_path / "ds", codec)
    eps = read_lerobot(root, _mapping(tmp_path))
    _check_episodes(eps, ("file-000.parquet", "file-000.parquet", "file-001.parquet"))
    assert eps[0].meta["codebase_version"] == "v3.0"
    assert eps[0].meta["units"] == "joints deg, gripper percent, open = 0.1 m"


def test_v21_per_episode_layout_reads_the_same(tmp_path):
    eps = read_lerobot(make_v21(tmp_path / "ds"), _mapping(tmp_path))
    _check_episodes(eps, tuple(f"episode_{i:06d}.parquet" for i in range(3)))
    assert eps[0].meta["codebase_version"] == "v2.1"


def test_mapping_file_renames_joints_cameras_tasks_and_selects_episodes(tmp_path):
    root = make_v3(tmp_path / "ds")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "joint_unit: deg\ngripper_unit: percent\n"
        "joints: {shoulder_pan.pos: joint_1, gripper.pos: gripper}\n"
        f"cameras: {{{CAM}: cam0}}\n"
        "tasks: {'Put it in the bin': place_black_cube_in_bin}\n"
        "episodes: [1]\n"
        f"cache_dir: {tmp_path / 'cache'}\n"
    )
    (ep,) = read_lerobot(root, mapping)  # the trainer hands the file's path
    assert ep.action_names[0] == "joint_1"
    assert ep.action_names[-1] == "gripper"
    assert ep.action_names[1] == "shoulder_lift"  # unmapped: the name without its unit suffix
    assert ep.camera_names == ("cam0",)
    assert ep.task == "place_black_cube_in_bin"
    assert ep.meta["lerobot_task"] == "Put it in the bin"


def test_decoded_frames_are_cached_and_memory_mapped(tmp_path, monkeypatch):
    root = make_v3(tmp_path / "ds")
    first = read_lerobot(root, _mapping(tmp_path))
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3
    # The second read must not decode at all.
    monkeypatch.setattr(lerobot_video, "decode_at", lambda *a, **k: pytest.fail("decoded again"))
    second = read_lerobot(root, _mapping(tmp_path))
    for a, b in zip(first, second, strict=True):
        assert isinstance(b.images[0], np.memmap)
        np.testing.assert_array_equal(a.images[0], b.images[0])
    # A re-encoded video (new mtime and size) is decoded anew, not served from the old cache.
    video = root / f"videos/{CAM}/chunk-000/file-001.mp4"
    video.unlink()
    _encode(video, [grey(2, t) for t in range(LENGTHS[2])], "av1")
    with pytest.raises(pytest.fail.Exception, match="decoded again"):
        read_lerobot(root, _mapping(tmp_path))


def test_describe_lists_what_a_check_run_prints(tmp_path):
    lines = describe(read_lerobot(make_v3(tmp_path / "ds"), _mapping(tmp_path, cache=False)))
    text = "\n".join(lines)
    assert "3 episodes, 22 frames" in text
    assert "front 32x24" in text
    assert "grab_the_black_cube (2)" in text
    assert "put_it_in_the_bin (1)" in text
    assert "joints deg, gripper percent" in text


# --------------------------------------------------------------------------------------------------------------
# Every refusal names the file and the key


def _edit_info(root: Path, **changes: object) -> None:
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    info.update(changes)
    path.write_text(json.dumps(info))


def test_unknown_codebase_version_is_refused(tmp_path):
    root = make_v3(tmp_path / "ds")
    _edit_info(root, codebase_version="v1.6")
    with pytest.raises(DatasetError, match=r"meta/info\.json: codebase_version: expected one of v3\.0, v2\.1.*'v1\.6'"):
        read_lerobot(root, _mapping(tmp_path))


def test_missing_feature_is_named(tmp_path):
    root = make_v3(tmp_path / "ds")
    with pytest.raises(DatasetError, match=r"meta/info\.json: features\.observation\.joints: missing"):
        read_lerobot(root, _mapping(tmp_path, state="observation.joints"))
    with pytest.raises(DatasetError, match=r"features\.observation\.images\.wrist: missing"):
        read_lerobot(root, _mapping(tmp_path, cameras={"observation.images.wrist": "wrist"}))


def _set_fps(root: Path, fps: int, video_fps: int | None = None) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    info["features"][CAM]["info"]["video.fps"] = fps if video_fps is None else video_fps
    _edit_info(root, fps=fps, features=info["features"])


def test_an_fps_the_action_rate_cannot_be_built_from_is_refused(tmp_path):
    root = make_v3(tmp_path / "ds")
    _set_fps(root, 15)
    with pytest.raises(DatasetError, match=r"meta/info\.json: fps: 15 is below 24 Hz, half the policy's 48 Hz"):
        read_lerobot(root, _mapping(tmp_path))
    # 24 fps is one recorded action per two chunk steps: accepted
    _set_fps(root, 24)
    assert len(read_lerobot(root, _mapping(tmp_path))) == 3
    _set_fps(root, 30, video_fps=25)
    with pytest.raises(DatasetError, match=r"features\.observation\.images\.front\.info\.video\.fps: 25 differs"):
        read_lerobot(root, _mapping(tmp_path))


def test_a_video_shorter_than_its_episode_is_refused(tmp_path):
    root = make_v3(tmp_path / "ds", short_by=2)
    with pytest.raises(DatasetError, match=r"file-001\.mp4: observation\.images\.front: video shorter than episode 2"):
        read_lerobot(root, _mapping(tmp_path))


def test_timestamps_off_the_video_grid_are_refused(tmp_path):
    root = make_v3(tmp_path / "ds")
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    t = pq.read_table(path).to_pylist()
    t[1][f"videos/{CAM}/from_timestamp"] += 0.5 / FPS  # half a frame: no frame is near
    pq.write_table(pa.Table.from_pylist(t), path)
    with pytest.raises(DatasetError, match=r"file-000\.mp4: observation\.images\.front: episode 1 wants a frame at"):
        read_lerobot(root, _mapping(tmp_path))


def test_degrees_read_as_the_assumed_radians_are_refused_naming_the_feature(tmp_path):
    root = make_v3(tmp_path / "ds")
    with pytest.raises(
        DatasetError, match=r"file-000\.parquet: observation\.state: wrist_roll\.pos reaches 170.*joint_unit: deg"
    ):
        read_lerobot(root, LeRobotMapping(cache=False))
    with pytest.raises(
        DatasetError, match=r"observation\.state: gripper\.pos spans 20\.\.50.*gripper_unit 'm' \(the unit assumed\)"
    ):
        read_lerobot(root, LeRobotMapping(joint_unit="deg", cache=False))


def test_broken_metadata_names_the_file_and_column(tmp_path):
    root = make_v3(tmp_path / "ds")
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    pq.write_table(table.drop_columns([f"videos/{CAM}/from_timestamp"]), path)
    with pytest.raises(
        DatasetError,
        match=r"episodes/chunk-000/file-000\.parquet: column 'videos/observation\.images\.front/from_timestamp'",
    ):
        read_lerobot(root, _mapping(tmp_path))
    rows = table.to_pylist()
    rows[0]["length"] = 99
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(
        DatasetError,
        match=r"data/chunk-000/file-000\.parquet: episode 0: 7 rows, but the episode metadata says length 99",
    ):
        read_lerobot(root, _mapping(tmp_path))


def test_a_missing_tasks_file_and_a_bad_mapping_file_are_named(tmp_path):
    root = make_v21(tmp_path / "ds")
    (root / "meta/tasks.jsonl").unlink()
    with pytest.raises(DatasetError, match=r"meta/tasks\.jsonl: not found"):
        read_lerobot(root, _mapping(tmp_path))
    bad = tmp_path / "m.yaml"
    bad.write_text("joint_units: deg\n")
    with pytest.raises(DatasetError, match=r"m\.yaml: joint_units: unknown field"):
        read_lerobot(root, bad)
    bad.write_text("joint_unit: grad\n")
    with pytest.raises(DatasetError, match=r"m\.yaml: joint_unit: expected one of rad, deg, got 'grad'"):
        read_lerobot(root, bad)


def _png(img: np.ndarray) -> bytes:
    cc = av.CodecContext.create("png", "w")
    cc.width, cc.height, cc.pix_fmt = img.shape[1], img.shape[0], "rgb24"
    packets = cc.encode(av.VideoFrame.from_ndarray(img, format="rgb24"))
    return bytes(packets[0])


def test_image_features_stored_in_the_parquet_decode_losslessly(tmp_path):
    root = make_v21(tmp_path / "ds")
    info = json.loads((root / "meta/info.json").read_text())
    info["features"][CAM] = {"dtype": "image", "shape": [H, W, 3], "names": ["height", "width", "channel"]}
    (root / "meta/info.json").write_text(json.dumps(info))
    rng = np.random.default_rng(1)
    want = {}
    for ep, n in enumerate(LENGTHS):
        path = root / f"data/chunk-000/episode_{ep:06d}.parquet"
        imgs = rng.integers(0, 256, (n, H, W, 3), dtype=np.uint8)
        want[ep] = imgs
        cells = [{"bytes": _png(i), "path": f"frame_{t:06d}.png"} for t, i in enumerate(imgs)]
        pq.write_table(pq.read_table(path).append_column(CAM, pa.array(cells)), path)
    eps = read_lerobot(root, _mapping(tmp_path))
    for ep in eps:
        np.testing.assert_array_equal(ep.images[0], want[ep.meta["episode_index"]])


def test_check_command_prints_the_dataset_or_one_error_line(tmp_path, capsys, monkeypatch):
    from export.learning.lerobot import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = make_v3(tmp_path / "ds")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("joint_unit: deg\ngripper_unit: percent\n")
    assert main([str(root), "--mapping", str(mapping)]) == 0
    out = capsys.readouterr().out
    assert "3 episodes, 22 frames" in out
    assert list((tmp_path / "xdg/harmowam-edge/lerobot-frames").glob("*.npy"))  # the default cache
    assert main([str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "joint_unit: deg" in err


def test_an_unwritable_frame_cache_is_named_not_skipped(tmp_path):
    root = make_v3(tmp_path / "ds")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(DatasetError, match=r"not-a-folder: cannot write the decoded-frame cache.*`cache: false`"):
        read_lerobot(root, {**SO100, "cache_dir": str(blocker)})
