"""Our demonstrations as a LeRobotDataset v3.0 (the layout LeRobot documents; docs/lerobot.md).

```
meta/info.json  meta/stats.json  meta/tasks.parquet  meta/episodes/chunk-000/file-000.parquet
data/chunk-000/file-000.parquet                      (frames of several episodes)
videos/observation.images.<camera>/chunk-000/file-000.mp4   (AV1 by default, as LeRobot records)
meta/harmowam/                                       (ours, LeRobot ignores it: dense setpoints, phases, success)
```

One row per camera frame: `observation.state` (measured joints, rad; gripper opening, m), `action` (the
setpoint in effect at the frame), `timestamp` on the camera's fps grid (its frame counter / fps: a frame the
renderer dropped leaves a gap, so time is not compressed), plus `harmowam.t_capture` (exact capture time) and
`harmowam.phase`. Depth is left out: LeRobot v3.0 has no z16
depth stream (its depth maps are lossy video); the native dataset keeps it. pyarrow and PyAV are imported
lazily: the `lerobot` extra.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import harmowam_edge
from harmowam_edge.errors import ConfigError, MissingDependencyError

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_FILE_MB = 100.0
VIDEO_FILE_MB = 500.0
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
IMAGE_KEY = "observation.images.{name}"
STATE = "observation.state"
ACTION = "action"
T_CAPTURE = "harmowam.t_capture"
PHASE = "harmowam.phase"
EXTRAS_FORMAT = "harmowam-lerobot-extras"
# LeRobot's own recording settings (SVT-AV1, 2-frame GOP for random access, CRF 30); H.264 for older players.
CODECS: dict[str, tuple[str, str, dict[str, str]]] = {
    "av1": ("libsvtav1", "av1", {"g": "2", "crf": "30", "preset": "8"}),
    "h264": ("libx264", "h264", {"g": "2", "crf": "18", "preset": "medium"}),
}
DEPTH_NOTE = (
    "depth left out: LeRobot v3.0 keeps no z16 depth stream (its depth maps are lossy video); "
    "the native dataset (harmowam-edge sim demos --format native) keeps aligned z16 depth"
)


@dataclass
class Episode:
    """One episode to write, in the action space's units."""

    task: str
    t_frame: np.ndarray  # float64 [T] capture time of each frame
    images: tuple[np.ndarray, ...]  # per camera uint8 [T, H, W, 3]
    joint_pos: np.ndarray  # float32 [T, A]
    action: np.ndarray  # float32 [T, A] setpoint in effect at each frame
    t_setpoint: np.ndarray  # float64 [N]
    setpoints: np.ndarray  # float32 [N, A]
    setpoint_phase: np.ndarray | None = None  # int16 [N]
    phase: np.ndarray | None = None  # int16 [T]
    success: bool | None = None
    source: str = ""
    seed: int | None = None
    frame_numbers: np.ndarray | None = None  # int [T] camera 0's frame counter (None: no frame was dropped)

    @property
    def frames(self) -> int:
        return int(self.t_frame.shape[0])


def _deps() -> tuple[Any, Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("pyarrow", "lerobot", "Writing a LeRobot dataset") from None
    try:
        import av
    except ImportError:
        raise MissingDependencyError("av", "lerobot", "Writing a LeRobot dataset") from None
    return pa, pq, av


# --------------------------------------------------------------------------------------------------------------
# Statistics (LeRobot's stats.json: min, max, mean, std, count per feature; images per channel in [0, 1])


def feature_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    v = np.asarray(values, np.float64).reshape(len(values), -1)
    return {
        "min": v.min(axis=0),
        "max": v.max(axis=0),
        "mean": v.mean(axis=0),
        "std": v.std(axis=0),
        "count": np.array([len(v)]),
    }


def image_stats(frames: np.ndarray, max_frames: int = 100) -> dict[str, np.ndarray]:
    """Per channel over (a sample of) the frames, in [0, 1], shaped [3, 1, 1] as LeRobot stores them."""
    step = max(1, math.ceil(len(frames) / max_frames))
    x = np.asarray(frames[::step], np.float64).reshape(-1, 3) / 255.0
    s = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0)}
    out = {k: v.reshape(3, 1, 1) for k, v in s.items()}
    out["count"] = np.array([len(frames[::step])])
    return out


def aggregate_stats(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Pooled min/max/mean/std of episodes (count-weighted, with the between-episode variance)."""
    counts = np.array([float(p["count"][0]) for p in parts])
    w = counts / counts.sum()
    means = np.stack([p["mean"] for p in parts])
    mean = np.tensordot(w, means, axes=1)
    var = np.tensordot(w, np.stack([p["std"] ** 2 for p in parts]) + (means - mean) ** 2, axes=1)
    return {
        "min": np.min(np.stack([p["min"] for p in parts]), axis=0),
        "max": np.max(np.stack([p["max"] for p in parts]), axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([int(counts.sum())]),
    }


def _jsonable(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    return {k: {s: np.asarray(v).tolist() for s, v in d.items()} for k, d in stats.items()}


# --------------------------------------------------------------------------------------------------------------
# The writer


class _VideoFile:
    """One open MP4 of one camera; frames of consecutive episodes follow each other on one pts clock."""

    def __init__(self, av: Any, path: Path, fps: int, width: int, height: int, codec: str) -> None:
        encoder, _, options = CODECS[codec]
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream(encoder, rate=fps, options=dict(options))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.av = av
        self.frames = 0
        self.bytes = 0

    def add(self, rgb: np.ndarray, pts: int) -> None:
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = pts
        for packet in self.stream.encode(frame):
            self.bytes += packet.size
            self.container.mux(packet)
        self.frames = pts + 1  # the next episode starts after this one's last frame period

    def close(self) -> None:
        for packet in self.stream.encode():
            self.bytes += packet.size
            self.container.mux(packet)
        self.container.close()


def _next_file(chunk: int, file: int) -> tuple[int, int]:
    return (chunk + 1, 0) if file == CHUNKS_SIZE - 1 else (chunk, file + 1)


class LeRobotWriter:
    """Streams episodes into a new v3.0 dataset folder; `close()` writes the metadata."""

    def __init__(
        self,
        out: Path,
        *,
        fps: int,
        action_names: tuple[str, ...],
        cameras: tuple[tuple[str, int, int], ...],  # (name, width, height)
        phase_names: tuple[str, ...] = (),
        robot_type: str = "harmowam_reference_arm",
        codec: str = "av1",
        data_file_mb: float = DATA_FILE_MB,
        video_file_mb: float = VIDEO_FILE_MB,
        episodes_per_file: int | None = None,
        source: dict[str, Any] | None = None,
    ) -> None:
        self.pa, self.pq, self.av = _deps()
        if codec not in CODECS:
            raise ConfigError(f"--codec: expected one of {', '.join(CODECS)}, got {codec!r}")
        if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
            raise ConfigError(f"fps: LeRobot datasets need an integer frame rate >= 1, got {fps!r}")
        for name, w, h in cameras:
            if w % 2 or h % 2:
                raise ConfigError(f"camera {name}: {w}x{h}: yuv420p video needs an even width and height")
        out = Path(out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ConfigError(f"--out {out}: exists and is not an empty folder; choose a new one")
        out.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration to stderr otherwise
        self.out, self.fps, self.names, self.cameras = out, fps, tuple(action_names), tuple(cameras)
        self.phase_names, self.robot_type, self.codec = tuple(phase_names), robot_type, codec
        self.data_limit, self.video_limit = data_file_mb * 2**20, video_file_mb * 2**20
        # Encoders hold packets back (look-ahead), so a byte limit starts a new file late: a count is exact.
        self.per_file = episodes_per_file
        self.in_data_file = 0
        self.in_video_file = {name: 0 for name, _, _ in cameras}
        self.source = source or {}
        a = len(self.names)
        vec = self.pa.list_(self.pa.float32(), a)
        self.schema = self.pa.schema(
            [
                (STATE, vec),
                (ACTION, vec),
                ("timestamp", self.pa.float32()),
                ("frame_index", self.pa.int64()),
                ("episode_index", self.pa.int64()),
                ("index", self.pa.int64()),
                ("task_index", self.pa.int64()),
                (T_CAPTURE, self.pa.float64()),
                (PHASE, self.pa.int64()),
            ]
        )
        self.row_bytes = 2 * 4 * a + 8 * 7
        self.tasks: dict[str, int] = {}
        self.episodes: list[dict[str, Any]] = []
        self.stats: list[dict[str, dict[str, np.ndarray]]] = []
        self.extras: list[dict[str, Any]] = []
        self.setpoint_rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self.total_frames = 0
        self.data_at = (0, 0)
        self.data_writer: Any = None
        self.data_rows = 0
        self.video_at = {name: (0, 0) for name, _, _ in self.cameras}
        self.videos: dict[str, _VideoFile] = {}

    def _data_file(self) -> Any:
        full = self.per_file is not None and self.in_data_file >= self.per_file
        if self.data_writer is not None and (full or self.data_rows * self.row_bytes >= self.data_limit):
            self.data_writer.close()
            self.data_writer = None
            self.data_at = _next_file(*self.data_at)
        if self.data_writer is None:
            c, f = self.data_at
            path = self.out / DATA_PATH.format(chunk_index=c, file_index=f)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.data_writer = self.pq.ParquetWriter(path, self.schema)
            self.data_rows = 0
            self.in_data_file = 0
        self.in_data_file += 1
        return self.data_writer

    def _video(self, name: str, width: int, height: int) -> _VideoFile:
        v = self.videos.get(name)
        full = self.per_file is not None and self.in_video_file[name] >= self.per_file
        if v is not None and (full or v.bytes >= self.video_limit):
            v.close()
            del self.videos[name]
            self.video_at[name] = _next_file(*self.video_at[name])
        if name not in self.videos:
            c, f = self.video_at[name]
            key = IMAGE_KEY.format(name=name)
            path = self.out / VIDEO_PATH.format(video_key=key, chunk_index=c, file_index=f)
            self.videos[name] = _VideoFile(self.av, path, self.fps, width, height, self.codec)
            self.in_video_file[name] = 0
        self.in_video_file[name] += 1
        return self.videos[name]

    def add(self, ep: Episode) -> None:
        index = len(self.episodes)
        t, a = ep.frames, len(self.names)
        where = ep.source or f"episode {index}"
        if t < 1:
            raise ConfigError(f"{where}: no frames")
        if ep.joint_pos.shape != (t, a) or ep.action.shape != (t, a) or len(ep.images) != len(self.cameras):
            raise ConfigError(f"{where}: expected {t} frames of {a} joints and {len(self.cameras)} cameras")
        task_index = self.tasks.setdefault(ep.task, len(self.tasks))
        writer = self._data_file()
        grid = np.arange(t, dtype=np.int64)
        if ep.frame_numbers is not None:
            grid = np.asarray(ep.frame_numbers, np.int64) - int(ep.frame_numbers[0])
            if grid.shape != (t,) or (t > 1 and not (np.diff(grid) > 0).all()):
                raise ConfigError(f"{where}: frame_number_0: expected {t} increasing camera frame numbers")
        ts = grid.astype(np.float64) / self.fps
        phase = ep.phase if ep.phase is not None else np.full(t, -1, np.int16)
        columns = {
            STATE: self.pa.FixedSizeListArray.from_arrays(self.pa.array(ep.joint_pos.astype(np.float32).ravel()), a),
            ACTION: self.pa.FixedSizeListArray.from_arrays(self.pa.array(ep.action.astype(np.float32).ravel()), a),
            "timestamp": self.pa.array(ts.astype(np.float32)),
            "frame_index": self.pa.array(np.arange(t, dtype=np.int64)),
            "episode_index": self.pa.array(np.full(t, index, np.int64)),
            "index": self.pa.array(np.arange(self.total_frames, self.total_frames + t, dtype=np.int64)),
            "task_index": self.pa.array(np.full(t, task_index, np.int64)),
            T_CAPTURE: self.pa.array(np.asarray(ep.t_frame, np.float64)),
            PHASE: self.pa.array(np.asarray(phase, np.int64)),
        }
        writer.write_table(self.pa.table(columns, schema=self.schema))
        self.data_rows += t
        row: dict[str, Any] = {
            "episode_index": index,
            "tasks": [ep.task],
            "length": t,
            "data/chunk_index": self.data_at[0],
            "data/file_index": self.data_at[1],
            "dataset_from_index": self.total_frames,
            "dataset_to_index": self.total_frames + t,
        }
        stats: dict[str, dict[str, np.ndarray]] = {
            STATE: feature_stats(ep.joint_pos),
            ACTION: feature_stats(ep.action),
            "timestamp": feature_stats(ts),
            "frame_index": feature_stats(np.arange(t)),
            "episode_index": feature_stats(np.full(t, index)),
            "index": feature_stats(np.arange(self.total_frames, self.total_frames + t)),
            "task_index": feature_stats(np.full(t, task_index)),
        }
        for (name, w, h), frames in zip(self.cameras, ep.images, strict=True):
            if frames.shape != (t, h, w, 3) or frames.dtype != np.uint8:
                raise ConfigError(f"{where}: camera {name}: expected uint8 [{t}, {h}, {w}, 3], got {frames.shape}")
            video = self._video(name, w, h)
            start = video.frames
            for img, k in zip(frames, grid, strict=True):
                video.add(img, start + int(k))
            key = IMAGE_KEY.format(name=name)
            c, f = self.video_at[name]
            row[f"videos/{key}/chunk_index"] = c
            row[f"videos/{key}/file_index"] = f
            row[f"videos/{key}/from_timestamp"] = start / self.fps
            row[f"videos/{key}/to_timestamp"] = video.frames / self.fps
            stats[key] = image_stats(frames)
        for feature, s in stats.items():
            for stat, v in s.items():
                row[f"stats/{feature}/{stat}"] = np.asarray(v).tolist()
        row["meta/episodes/chunk_index"] = 0
        row["meta/episodes/file_index"] = 0
        self.episodes.append(row)
        self.stats.append(stats)
        self.extras.append({"episode_index": index, "success": ep.success, "source": ep.source, "seed": ep.seed})
        sp_phase = ep.setpoint_phase if ep.setpoint_phase is not None else np.full(len(ep.t_setpoint), -1, np.int16)
        self.setpoint_rows.append((index, ep.t_setpoint, ep.setpoints, sp_phase))
        self.total_frames += t

    def close(self) -> dict[str, Any]:
        """Finish the files and write meta/: returns info.json as written."""
        if self.data_writer is not None:
            self.data_writer.close()
        for v in self.videos.values():
            v.close()
        if not self.episodes:
            raise ConfigError(f"{self.out}: no episodes to write")
        pa, pq = self.pa, self.pq
        meta = self.out / "meta"
        (meta / "harmowam").mkdir(parents=True, exist_ok=True)
        info = self.info()
        (meta / "info.json").write_text(json.dumps(info, indent=4) + "\n")
        features = list(self.stats[0])
        total = {k: aggregate_stats([s[k] for s in self.stats]) for k in features}
        (meta / "stats.json").write_text(json.dumps(_jsonable(total), indent=4) + "\n")
        self._write_tasks(meta / "tasks.parquet")
        ep_path = self.out / EPISODES_PATH.format(chunk_index=0, file_index=0)
        ep_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self.episodes), ep_path)
        self._write_setpoints(meta / "harmowam" / "setpoints.parquet")
        extras = {
            "format": EXTRAS_FORMAT,
            "version": 1,
            "generator": f"harmowam-edge {harmowam_edge.__version__}",
            "action_names": list(self.names),
            "units": {"joints": "rad", "gripper": "m (opening)"},
            "phase_names": list(self.phase_names),
            "depth": DEPTH_NOTE,
            "timestamps": "timestamp = camera frame counter / fps (gaps: dropped frames); "
            "harmowam.t_capture is each frame's exact capture time",
            "source": self.source,
            "episodes": self.extras,
        }
        (meta / "harmowam" / "extras.json").write_text(json.dumps(extras, indent=2) + "\n")
        return info

    def info(self) -> dict[str, Any]:
        a = len(self.names)
        features: dict[str, Any] = {
            STATE: {"dtype": "float32", "shape": [a], "names": list(self.names)},
            ACTION: {"dtype": "float32", "shape": [a], "names": list(self.names)},
        }
        _, codec_name, _ = CODECS[self.codec]
        for name, w, h in self.cameras:
            features[IMAGE_KEY.format(name=name)] = {
                "dtype": "video",
                "shape": [h, w, 3],
                "names": ["height", "width", "channels"],
                "info": {
                    "video.height": h,
                    "video.width": w,
                    "video.codec": codec_name,
                    "video.pix_fmt": "yuv420p",
                    "video.is_depth_map": False,
                    "video.fps": self.fps,
                    "video.channels": 3,
                    "has_audio": False,
                },
            }
        for key, dtype in (
            ("timestamp", "float32"),
            ("frame_index", "int64"),
            ("episode_index", "int64"),
            ("index", "int64"),
            ("task_index", "int64"),
            (T_CAPTURE, "float64"),
            (PHASE, "int64"),
        ):
            features[key] = {"dtype": dtype, "shape": [1], "names": None}
        return {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": len(self.episodes),
            "total_frames": self.total_frames,
            "total_tasks": len(self.tasks),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": self.data_limit / 2**20,
            "video_files_size_in_mb": self.video_limit / 2**20,
            "fps": self.fps,
            "splits": {"train": f"0:{len(self.episodes)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH,
            "features": features,
        }

    def _write_tasks(self, path: Path) -> None:
        """A pandas-style table indexed by the task string, as LeRobot's `pd.read_parquet` expects it."""
        pa, pq = self.pa, self.pq
        order = sorted(self.tasks, key=self.tasks.__getitem__)
        table = pa.table({"task_index": pa.array([self.tasks[t] for t in order], pa.int64()), "task": order})
        pandas_meta = {
            "index_columns": ["task"],
            "column_indexes": [
                {
                    "name": None,
                    "field_name": None,
                    "pandas_type": "unicode",
                    "numpy_type": "object",
                    "metadata": {"encoding": "UTF-8"},
                }
            ],
            "columns": [
                {
                    "name": "task_index",
                    "field_name": "task_index",
                    "pandas_type": "int64",
                    "numpy_type": "int64",
                    "metadata": None,
                },
                {
                    "name": "task",
                    "field_name": "task",
                    "pandas_type": "unicode",
                    "numpy_type": "object",
                    "metadata": None,
                },
            ],
            "creator": {"library": "pyarrow", "version": pa.__version__},
            "pandas_version": "2.2.3",
        }
        pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), path)

    def _write_setpoints(self, path: Path) -> None:
        pa, pq = self.pa, self.pq
        a = len(self.names)
        eps = np.concatenate([np.full(len(t), i, np.int64) for i, t, _, _ in self.setpoint_rows])
        times = np.concatenate([np.asarray(t, np.float64) for _, t, _, _ in self.setpoint_rows])
        values = np.concatenate([np.asarray(v, np.float32).reshape(-1, a) for _, _, v, _ in self.setpoint_rows])
        phases = np.concatenate([np.asarray(p, np.int64) for _, _, _, p in self.setpoint_rows])
        table = pa.table(
            {
                "episode_index": pa.array(eps),
                "t": pa.array(times),
                "setpoint": pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), a),
                "phase": pa.array(phases),
            }
        )
        pq.write_table(table, path)


# --------------------------------------------------------------------------------------------------------------
# Our demonstrations -> episodes


def native_episodes(src: Path) -> tuple[dict[str, Any], Iterator[Episode]]:
    """dataset.json of a `sim demos` folder and its episodes, read one at a time."""
    from harmowam_edge.sim.demos import read_dataset, read_episode, read_setpoints

    src = Path(src)
    meta = read_dataset(src)

    def episodes() -> Iterator[Episode]:
        for record in meta["episodes"]:
            d = src / str(record["dir"])
            steps = read_episode(d)
            ncam = len(meta["cameras"])
            t_frame = np.asarray(steps["t_capture_0"] if "t_capture_0" in steps else steps["t"], np.float64)
            action = np.asarray(steps["action"], np.float32)
            if meta.get("version", 1) >= 2:
                sp = read_setpoints(d)
                t_sp, sp_action, sp_phase = sp["t"], sp["action"], sp["phase"]
            else:  # version 1 recorded setpoints only per step
                t_sp, sp_action, sp_phase = np.asarray(steps["t"], np.float64), action, None
            yield Episode(
                task=str(record.get("task") or steps["task"][0]),
                t_frame=t_frame,
                images=tuple(np.asarray(steps[f"image_{i}"]) for i in range(ncam)),
                joint_pos=np.asarray(steps["joint_pos"], np.float32),
                action=action,
                t_setpoint=np.asarray(t_sp, np.float64),
                setpoints=np.asarray(sp_action, np.float32),
                setpoint_phase=None if sp_phase is None else np.asarray(sp_phase, np.int16),
                phase=np.asarray(steps["phase"], np.int16) if "phase" in steps else None,
                success=record.get("success"),
                source=str(d),
                seed=record.get("seed"),
                frame_numbers=steps.get("frame_number_0"),
            )

    return meta, episodes()


def demo_fps(meta: dict[str, Any], where: str) -> int:
    """The dataset's frame rate: one step per camera frame (record_hz unset), else the recording rate."""
    rates = {float(c["fps"]) for c in meta["cameras"]}
    rate = meta.get("record_hz") or (rates.pop() if len(rates) == 1 else None)
    if rate is None:
        raise ConfigError(f"{where}: cameras run at different rates {sorted(rates)}: LeRobot has one fps")
    if not float(rate).is_integer():
        raise ConfigError(f"{where}: record_hz {rate} is not a whole number: LeRobot datasets have an integer fps")
    return int(rate)


def convert_demos(
    src: Path,
    out: Path,
    *,
    codec: str = "av1",
    data_file_mb: float = DATA_FILE_MB,
    video_file_mb: float = VIDEO_FILE_MB,
    episodes_per_file: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """A `sim demos` folder -> a LeRobot v3.0 dataset at `out`; returns the info.json written."""
    say = progress or (lambda _m: None)
    meta, episodes = native_episodes(src)
    where = str(Path(src) / "dataset.json")
    cams = tuple((str(c["name"]), int(c["width"]), int(c["height"])) for c in meta["cameras"])
    writer = LeRobotWriter(
        out,
        fps=demo_fps(meta, where),
        action_names=tuple(meta["action_names"]),
        cameras=cams,
        phase_names=tuple(meta.get("phase_names") or ()),
        codec=codec,
        data_file_mb=data_file_mb,
        video_file_mb=video_file_mb,
        episodes_per_file=episodes_per_file,
        source={k: meta.get(k) for k in ("format", "version", "generator", "created_utc", "scene", "seed_range")}
        | {"path": str(src)},
    )
    n = len(meta["episodes"])
    for i, ep in enumerate(episodes):
        writer.add(ep)
        gaps = 0 if ep.frame_numbers is None else int(ep.frame_numbers[-1] - ep.frame_numbers[0]) + 1 - ep.frames
        say(f"episode {i + 1}/{n}: {ep.frames} frames ({ep.task})" + (f", {gaps} dropped (gaps)" if gaps else ""))
    return writer.close()
