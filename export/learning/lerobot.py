"""LeRobotDataset v3.0 (and the older v2.1/v2.0 per-episode layout) read into `EpisodeData` for training.

Layout as LeRobot documents it (docs/lerobot.md has the summary and the rules):
- v3.0: `meta/info.json`, `meta/tasks.parquet`, `meta/episodes/chunk-XXX/file-XXX.parquet` (one row per
  episode: its data file and index range, per camera its video file and from/to timestamps),
  `data/chunk-XXX/file-XXX.parquet` (frames of several episodes), `videos/<key>/chunk-XXX/file-XXX.mp4`.
- v2.x: `meta/info.json`, `meta/episodes.jsonl`, `meta/tasks.jsonl`, one parquet and one MP4 per episode.

Frames keep the dataset's clock (`timestamp`); the recorded `action` per frame becomes the setpoint series.
Datasets written by `harmowam-edge sim demos --format lerobot` also carry `meta/harmowam/`: the exact capture
times, the dense setpoints and the expert's phases, so they read back to exactly what the native format gives.
Every error names the file and the key.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.errors import DatasetError
from export.learning.episodes import NO_PHASE, EpisodeData
from export.learning.lerobot_mapping import (
    IMAGE_PREFIX,
    LeRobotMapping,
    camera_name,
    cast_mapping,
    joint_name,
    task_name,
    to_action_units,
    units_note,
)
from export.learning.lerobot_video import default_cache_dir, episode_frames

INFO = "meta/info.json"
V3 = "v3.0"
V2 = ("v2.1", "v2.0")
SUPPORTED_VERSIONS = (V3, *V2)
V3_TASKS = "meta/tasks.parquet"
V3_EPISODES_DIR = "meta/episodes"
V2_EPISODES = "meta/episodes.jsonl"
V2_TASKS = "meta/tasks.jsonl"
V3_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
V2_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V2_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
# Our own additions (LeRobot ignores them): per-frame columns and a folder of extras.
T_CAPTURE = "harmowam.t_capture"
PHASE = "harmowam.phase"
EXTRAS_DIR = "meta/harmowam"
EXTRAS_JSON = "meta/harmowam/extras.json"
SETPOINTS = "meta/harmowam/setpoints.parquet"
EXTRAS_FORMAT = "harmowam-lerobot-extras"


def is_lerobot_dataset(path: Path) -> bool:
    return (Path(path) / INFO).is_file()


@dataclass(frozen=True)
class Camera:
    key: str  # LeRobot feature key, e.g. observation.images.front
    name: str  # bundle camera name
    height: int
    width: int
    stored: str  # "video" or "image"


@dataclass
class DatasetInfo:
    """What meta/info.json says, checked."""

    root: Path
    version: str
    fps: float  # an integer in every LeRobot dataset seen; float only if info.json says so
    features: dict[str, Any]
    data_path: str
    video_path: str | None
    chunks_size: int
    robot_type: str | None
    names: tuple[str, ...]  # the dataset's joint names (state and action agree)
    cameras: tuple[Camera, ...]
    skipped: tuple[str, ...] = ()  # features left out and why

    @property
    def info_path(self) -> Path:
        return self.root / INFO


@dataclass
class EpisodeRef:
    index: int
    length: int
    tasks: list[str]
    data_file: Path
    from_index: int | None = None  # dataset_from_index (v3), for a consistency check only
    videos: dict[str, tuple[Path, float]] = field(default_factory=dict)  # camera key -> (file, from_timestamp)
    video_to: dict[str, float] = field(default_factory=dict)  # camera key -> to_timestamp (v3)


# --------------------------------------------------------------------------------------------------------------
# The public entry point


def read_lerobot(
    path: str | Path, mapping: LeRobotMapping | Mapping[str, Any] | str | Path | None = None
) -> list[EpisodeData]:
    """Every episode of a LeRobot dataset folder (the one holding meta/info.json) as `EpisodeData`.

    `mapping`: a `LeRobotMapping`, a dict of its fields, or the path of a mapping file (YAML/JSON).
    """
    return list(iter_lerobot(path, mapping))


def iter_lerobot(
    path: str | Path, mapping: LeRobotMapping | Mapping[str, Any] | str | Path | None = None
) -> Iterator[EpisodeData]:
    """`read_lerobot` one episode at a time, in episode order (the metadata is checked before the first)."""
    m = cast_mapping(mapping)
    info = read_info(Path(path), m)
    episodes = read_episode_refs(info)
    if m.episodes is not None:
        wanted = set(m.episodes)
        missing = sorted(wanted - {e.index for e in episodes})
        if missing:
            raise DatasetError(f"{info.root}: mapping episodes: no episode {missing[0]} in the dataset")
        episodes = [e for e in episodes if e.index in wanted]
    tasks = read_tasks(info)
    extras = read_extras(info)
    if extras is None or not extras.setpoints:
        check_fps(info, m)
    cache_dir = (m.cache_dir or default_cache_dir()) if m.cache else None
    return _episodes(info, m, episodes, tasks, extras, cache_dir)


def _episodes(
    info: DatasetInfo,
    m: LeRobotMapping,
    episodes: list[EpisodeRef],
    tasks: dict[int, str],
    extras: Extras | None,
    cache_dir: Path | None,
) -> Iterator[EpisodeData]:
    table: _DataFile | None = None  # episodes of one data file are consecutive: each file is read once
    for ep in episodes:
        if table is None or table.path != ep.data_file:
            table = _DataFile(ep.data_file, info, m)
        yield _episode(info, m, table, ep, tasks, extras, cache_dir)


def describe(episodes: list[EpisodeData]) -> list[str]:
    """Lines for a check before a long run: episodes, frames, cameras, tasks, shapes of the first episode."""
    if not episodes:
        return ["no episodes"]
    first = episodes[0]
    frames = sum(e.frames for e in episodes)
    tasks: dict[str, int] = {}
    for e in episodes:
        tasks[e.task] = tasks.get(e.task, 0) + 1
    lines = [
        f"{len(episodes)} episodes, {frames} frames ({frames / len(episodes):.0f} per episode)",
        f"actions: {', '.join(first.action_names)}",
        "cameras: "
        + ", ".join(
            f"{n} {img.shape[2]}x{img.shape[1]}" for n, img in zip(first.camera_names, first.images, strict=True)
        ),
        "tasks: " + ", ".join(f"{t} ({n})" for t, n in sorted(tasks.items())),
        (
            f"first episode ({first.source}): t_frame {first.t_frame.shape}, joint_pos {first.joint_pos.shape}, "
            f"setpoints {first.setpoints.shape}, images {[i.shape for i in first.images]}"
        ),
    ]
    note = first.meta.get("units")
    if note:
        lines.append(f"units: {note}")
    return lines


# --------------------------------------------------------------------------------------------------------------
# meta/


def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: not found ({what})") from None
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from None


def _names(ft: Mapping[str, Any], key: str, n: int, where: str) -> tuple[str, ...] | None:
    names = ft.get("names")
    if isinstance(names, Mapping):  # v2.0 ports: {"motors": [...]}
        lists = [v for v in names.values() if isinstance(v, list)]
        names = lists[0] if len(lists) == 1 else None
    if names is None:
        return None
    if not isinstance(names, list) or len(names) != n or not all(isinstance(x, str) for x in names):
        raise DatasetError(f"{where}: features.{key}.names: expected {n} joint names, got {names!r}")
    return tuple(names)


def _vector_feature(features: Mapping[str, Any], key: str, where: str) -> tuple[int, tuple[str, ...] | None]:
    if key not in features:
        raise DatasetError(
            f"{where}: features.{key}: missing (the dataset has {', '.join(sorted(features))}); "
            "name the right feature in the mapping file (state/action)"
        )
    ft = features[key]
    if not isinstance(ft, Mapping) or ft.get("dtype") not in ("float32", "float64"):
        raise DatasetError(f"{where}: features.{key}.dtype: expected float32 or float64, got {ft.get('dtype')!r}")
    shape = ft.get("shape")
    if not isinstance(shape, list) or len(shape) != 1 or not isinstance(shape[0], int) or shape[0] < 1:
        raise DatasetError(f"{where}: features.{key}.shape: expected [A], got {shape!r}")
    return shape[0], _names(ft, key, shape[0], where)


def _image_shape(ft: Mapping[str, Any], key: str, where: str) -> tuple[int, int]:
    shape = ft.get("shape")
    names = ft.get("names")
    if not isinstance(shape, list) or len(shape) != 3 or not all(isinstance(v, int) and v > 0 for v in shape):
        raise DatasetError(f"{where}: features.{key}.shape: expected [height, width, 3], got {shape!r}")
    if isinstance(names, list) and names and names[0] in ("channel", "channels"):
        c, h, w = shape
    else:
        h, w, c = shape
    if c != 3:
        raise DatasetError(f"{where}: features.{key}.shape: expected 3 colour channels, got {shape!r}")
    return h, w


def read_info(root: Path, m: LeRobotMapping) -> DatasetInfo:
    path = root / INFO
    raw = _load_json(path, "is this a LeRobot dataset folder?")
    if not isinstance(raw, Mapping):
        raise DatasetError(f"{path}: expected a JSON object")
    version = raw.get("codebase_version")
    if version not in SUPPORTED_VERSIONS:
        raise DatasetError(
            f"{path}: codebase_version: expected one of {', '.join(SUPPORTED_VERSIONS)}, got {version!r} "
            "(convert older datasets with LeRobot's converter)"
        )
    fps = raw.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise DatasetError(f"{path}: fps: expected a frame rate > 0, got {fps!r}")
    features = raw.get("features")
    if not isinstance(features, Mapping) or not features:
        raise DatasetError(f"{path}: features: expected an object of features, got {features!r}")
    a_state, n_state = _vector_feature(features, m.state, str(path))
    a_action, n_action = _vector_feature(features, m.action, str(path))
    if a_state != a_action:
        raise DatasetError(
            f"{path}: features.{m.state} has {a_state} dimensions and features.{m.action} {a_action}: "
            "the policy's state and actions share one action space"
        )
    names = n_state or n_action
    if n_state and n_action and n_state != n_action:
        raise DatasetError(
            f"{path}: features.{m.state}.names {list(n_state)} and features.{m.action}.names {list(n_action)} differ"
        )
    if names is None:
        if len(m.joints) != a_state:
            raise DatasetError(
                f"{path}: features.{m.state}.names: missing; name the {a_state} joints in the mapping file's "
                '`joints` (index order: {"0": joint_1, ...})'
            )
        names = tuple(m.joints)
    cameras: list[Camera] = []
    skipped: list[str] = []
    keys = list(m.cameras) if m.cameras else [k for k, f in features.items() if _is_camera(f)]
    for key in keys:
        ft = features.get(key)
        if ft is None:
            raise DatasetError(f"{path}: features.{key}: missing (named in the mapping's cameras)")
        if not _is_camera(ft):
            raise DatasetError(f"{path}: features.{key}.dtype: expected video or image, got {ft.get('dtype')!r}")
        vinfo = ft.get("info") or {}
        if vinfo.get("video.is_depth_map"):
            skipped.append(f"{key} (a depth map: not read)")
            continue
        vfps = vinfo.get("video.fps")
        if vfps is not None and abs(float(vfps) - float(fps)) > 1e-6:
            raise DatasetError(f"{path}: features.{key}.info.video.fps: {vfps} differs from the dataset's fps {fps}")
        h, w = _image_shape(ft, key, str(path))
        cameras.append(Camera(key, camera_name(key, m), h, w, str(ft["dtype"])))
    if not cameras:
        raise DatasetError(f"{path}: features: no camera (video or image feature); the policy needs at least one")
    v3 = version == V3
    data_path = raw.get("data_path") or (V3_DATA_PATH if v3 else V2_DATA_PATH)
    video_path = raw.get("video_path") or (V3_VIDEO_PATH if v3 else V2_VIDEO_PATH)
    chunks_size = raw.get("chunks_size", 1000)
    if isinstance(chunks_size, bool) or not isinstance(chunks_size, int) or chunks_size < 1:
        raise DatasetError(f"{path}: chunks_size: expected an integer >= 1, got {chunks_size!r}")
    return DatasetInfo(
        root=root,
        version=str(version),
        fps=int(fps) if float(fps).is_integer() else float(fps),
        features=dict(features),
        data_path=str(data_path),
        video_path=str(video_path),
        chunks_size=chunks_size,
        robot_type=raw.get("robot_type"),
        names=names,
        cameras=tuple(cameras),
        skipped=tuple(skipped),
    )


def check_fps(info: DatasetInfo, m: LeRobotMapping) -> None:
    """Chunks at the action rate are interpolated from the per-frame actions: at least one recorded action per
    two chunk steps, i.e. fps >= action rate / 2 (30 fps recordings pass at 48 Hz; 15 fps do not)."""
    if info.fps < m.action_rate_hz / 2:
        raise DatasetError(
            f"{info.info_path}: fps: {info.fps:g} is below {m.action_rate_hz / 2:g} Hz, half the policy's "
            f"{m.action_rate_hz:g} Hz action rate: a chunk at that rate cannot be built from actions this sparse "
            "(more than every other step would be invented by interpolation)"
        )


def _is_camera(ft: Any) -> bool:
    return isinstance(ft, Mapping) and ft.get("dtype") in ("video", "image")


def _pq() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(
            "reading LeRobot datasets needs pyarrow, which is not installed: pip install 'harmowam-edge[lerobot]'"
        ) from None
    return pq


def _read_table(path: Path, what: str, columns: list[str] | None = None) -> Any:
    pq = _pq()
    import pyarrow as pa

    if not path.is_file():
        raise DatasetError(f"{path}: not found ({what})")
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{path}: cannot read the Parquet file ({str(e).splitlines()[0]})") from None


def _column(table: Any, name: str, path: Path) -> Any:
    if name not in table.column_names:
        raise DatasetError(f"{path}: column {name!r} missing (it has {', '.join(table.column_names)})")
    return table.column(name)


def read_episode_refs(info: DatasetInfo) -> list[EpisodeRef]:
    if info.version == V3:
        return _v3_episode_refs(info)
    return _v2_episode_refs(info)


def _format(template: str, path: Path, key: str, **kw: Any) -> str:
    try:
        return template.format(**kw)
    except (KeyError, IndexError, ValueError) as e:
        raise DatasetError(f"{path}: {key}: template {template!r} cannot be filled ({e})") from None


def _v3_episode_refs(info: DatasetInfo) -> list[EpisodeRef]:
    files = sorted((info.root / V3_EPISODES_DIR).glob("*/*.parquet"))
    if not files:
        raise DatasetError(f"{info.root / V3_EPISODES_DIR}: no chunk-XXX/file-XXX.parquet episode metadata")
    refs: list[EpisodeRef] = []
    for f in files:
        t = _read_table(f, "episode metadata")
        rows = {c: t.column(c).to_pylist() for c in t.column_names if not c.startswith("stats/")}
        need = ["episode_index", "length", "data/chunk_index", "data/file_index"]
        for cam in info.cameras:
            if cam.stored == "video":
                need += [f"videos/{cam.key}/{k}" for k in ("chunk_index", "file_index", "from_timestamp")]
        for c in need:
            if c not in rows:
                raise DatasetError(f"{f}: column {c!r} missing (LeRobot v3.0 episode metadata)")
        for i in range(t.num_rows):
            ep = int(rows["episode_index"][i])
            data = info.root / _format(
                info.data_path,
                info.info_path,
                "data_path",
                chunk_index=int(rows["data/chunk_index"][i]),
                file_index=int(rows["data/file_index"][i]),
            )
            ref = EpisodeRef(
                index=ep,
                length=int(rows["length"][i]),
                tasks=list(rows["tasks"][i] or []) if "tasks" in rows else [],
                data_file=data,
                from_index=int(rows["dataset_from_index"][i]) if "dataset_from_index" in rows else None,
            )
            for cam in info.cameras:
                if cam.stored != "video":
                    continue
                p = f"videos/{cam.key}/"
                video = info.root / _format(
                    info.video_path or V3_VIDEO_PATH,
                    info.info_path,
                    "video_path",
                    video_key=cam.key,
                    chunk_index=int(rows[p + "chunk_index"][i]),
                    file_index=int(rows[p + "file_index"][i]),
                )
                ref.videos[cam.key] = (video, float(rows[p + "from_timestamp"][i]))
                if p + "to_timestamp" in rows and rows[p + "to_timestamp"][i] is not None:
                    ref.video_to[cam.key] = float(rows[p + "to_timestamp"][i])
            refs.append(ref)
    refs.sort(key=lambda r: r.index)
    return refs


def _jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DatasetError(f"{path}: not found ({what})")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}: line {n}: not valid JSON ({e})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{path}: line {n}: expected a JSON object")
        out.append(row)
    return out


def _v2_episode_refs(info: DatasetInfo) -> list[EpisodeRef]:
    path = info.root / V2_EPISODES
    refs = []
    for n, row in enumerate(_jsonl(path, "LeRobot v2.x episode list"), 1):
        for k in ("episode_index", "length"):
            if not isinstance(row.get(k), int):
                raise DatasetError(f"{path}: line {n}: {k}: expected an integer, got {row.get(k)!r}")
        ep = int(row["episode_index"])
        chunk = ep // info.chunks_size
        data = info.root / _format(info.data_path, info.info_path, "data_path", episode_chunk=chunk, episode_index=ep)
        ref = EpisodeRef(index=ep, length=int(row["length"]), tasks=list(row.get("tasks") or []), data_file=data)
        for cam in info.cameras:
            if cam.stored == "video":
                video = info.root / _format(
                    info.video_path or V2_VIDEO_PATH,
                    info.info_path,
                    "video_path",
                    episode_chunk=chunk,
                    video_key=cam.key,
                    episode_index=ep,
                )
                ref.videos[cam.key] = (video, 0.0)
        refs.append(ref)
    refs.sort(key=lambda r: r.index)
    return refs


def read_tasks(info: DatasetInfo) -> dict[int, str]:
    if info.version != V3:
        path = info.root / V2_TASKS
        out: dict[int, str] = {}
        for n, row in enumerate(_jsonl(path, "LeRobot v2.x task list"), 1):
            if not isinstance(row.get("task_index"), int) or not isinstance(row.get("task"), str):
                raise DatasetError(f"{path}: line {n}: expected task_index (integer) and task (string)")
            out[int(row["task_index"])] = str(row["task"])
        return out
    path = info.root / V3_TASKS
    t = _read_table(path, "LeRobot v3.0 task table")
    idx = _column(t, "task_index", path).to_pylist()
    # LeRobot writes a pandas frame indexed by the task string: the column is the index's.
    candidates = ["task", "__index_level_0__"]
    meta = t.schema.metadata or {}
    if b"pandas" in meta:
        with contextlib.suppress(ValueError, AttributeError):
            candidates += [c for c in json.loads(meta[b"pandas"]).get("index_columns", []) if isinstance(c, str)]
    col = next((c for c in candidates if c in t.column_names), None)
    if col is None:
        raise DatasetError(f"{path}: no task string column (expected 'task' or the pandas index)")
    return {int(i): str(s) for i, s in zip(idx, t.column(col).to_pylist(), strict=True)}


@dataclass
class Extras:
    """meta/harmowam/ of a dataset we wrote: phase names, success per episode, dense setpoints."""

    phase_names: tuple[str, ...] = ()
    success: dict[int, bool | None] = field(default_factory=dict)
    setpoints: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    action_names: tuple[str, ...] = ()


def read_extras(info: DatasetInfo) -> Extras | None:
    path = info.root / EXTRAS_JSON
    if not path.is_file():
        return None
    raw = _load_json(path, "harmowam extras")
    if not isinstance(raw, Mapping) or raw.get("format") != EXTRAS_FORMAT:
        raise DatasetError(f"{path}: format: expected {EXTRAS_FORMAT!r}, got {raw.get('format')!r}")
    ex = Extras(
        phase_names=tuple(raw.get("phase_names") or ()),
        success={int(e["episode_index"]): e.get("success") for e in raw.get("episodes", [])},
        action_names=tuple(raw.get("action_names") or ()),
    )
    sp_path = info.root / SETPOINTS
    if sp_path.is_file():
        t = _read_table(sp_path, "dense setpoints")
        eps = _column(t, "episode_index", sp_path).to_numpy()
        times = _column(t, "t", sp_path).to_numpy().astype(np.float64)
        values = _matrix(_column(t, "setpoint", sp_path), len(info.names), sp_path, "setpoint")
        for e in np.unique(eps):
            sel = eps == e
            ex.setpoints[int(e)] = (times[sel], values[sel])
    return ex


# --------------------------------------------------------------------------------------------------------------
# data/


def _matrix(col: Any, a: int, path: Path, key: str) -> np.ndarray:
    """A list (or fixed-size list) column of length-`a` vectors as float64 [rows, a]."""
    import pyarrow as pa

    arr = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    rows = len(arr)
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        flat = arr.flatten().to_numpy(zero_copy_only=False)
        if flat.shape[0] != rows * a:
            raise DatasetError(f"{path}: column {key!r}: expected {a} values per row")
        return np.asarray(flat, dtype=np.float64).reshape(rows, a)
    if a == 1:
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64).reshape(rows, 1)
    raise DatasetError(f"{path}: column {key!r}: expected a list of {a} numbers per row, got {arr.type}")


def _scalar(col: Any, path: Path, key: str) -> np.ndarray:
    return _matrix(col, 1, path, key)[:, 0]


class _DataFile:
    """One data parquet, read once for all the episodes it holds."""

    def __init__(self, path: Path, info: DatasetInfo, m: LeRobotMapping) -> None:
        self.path = path
        a = len(info.names)
        t = _read_table(path, "episode frames")
        for key in (m.state, m.action, "episode_index", "timestamp"):
            _column(t, key, path)
        self.episode = _scalar(t.column("episode_index"), path, "episode_index").astype(np.int64)
        self.frame_index = (
            _scalar(t.column("frame_index"), path, "frame_index").astype(np.int64)
            if "frame_index" in t.column_names
            else None
        )
        self.timestamp = _scalar(t.column("timestamp"), path, "timestamp")
        self.task_index = (
            _scalar(t.column("task_index"), path, "task_index").astype(np.int64)
            if "task_index" in t.column_names
            else None
        )
        self.index = _scalar(t.column("index"), path, "index").astype(np.int64) if "index" in t.column_names else None
        self.state = _matrix(t.column(m.state), a, path, m.state)
        self.action = _matrix(t.column(m.action), a, path, m.action)
        self.t_capture = _scalar(t.column(T_CAPTURE), path, T_CAPTURE) if T_CAPTURE in t.column_names else None
        self.phase = _scalar(t.column(PHASE), path, PHASE).astype(np.int16) if PHASE in t.column_names else None
        self.images = {c.key: t.column(c.key) for c in info.cameras if c.stored == "image"}
        for c in info.cameras:
            if c.stored == "image" and c.key not in t.column_names:
                raise DatasetError(f"{path}: column {c.key!r} missing (an image feature of info.json)")

    def rows(self, ep: EpisodeRef) -> np.ndarray:
        sel = np.nonzero(self.episode == ep.index)[0]
        if self.frame_index is not None:
            sel = sel[np.argsort(self.frame_index[sel], kind="stable")]
        if len(sel) != ep.length:
            raise DatasetError(
                f"{self.path}: episode {ep.index}: {len(sel)} rows, but the episode metadata says length {ep.length}"
            )
        if ep.from_index is not None and self.index is not None and len(sel):
            first = int(self.index[sel[0]])
            # dataset_from_index is the global `index` of the first frame (older v3.0 writers: the row in the file)
            if first != ep.from_index and int(sel[0]) != ep.from_index:
                raise DatasetError(
                    f"{self.path}: episode {ep.index}: first frame has index {first}, "
                    f"the episode metadata says dataset_from_index {ep.from_index}"
                )
        return sel


def _png_frames(col: Any, rows: np.ndarray, cam: Camera, path: Path) -> np.ndarray:
    """An `image` feature: PNG (or JPEG) bytes per row, decoded with PyAV's image decoders."""
    from export.learning.lerobot_video import _import_av

    av = _import_av()
    out = np.empty((len(rows), cam.height, cam.width, 3), np.uint8)
    cells = col.take(rows).to_pylist()
    for i, cell in enumerate(cells):
        data = cell.get("bytes") if isinstance(cell, Mapping) else cell
        if not isinstance(data, (bytes, bytearray)):
            raise DatasetError(f"{path}: column {cam.key!r}: row {int(rows[i])} holds no image bytes")
        codec = "mjpeg" if data[:2] == b"\xff\xd8" else "png"
        try:
            frames = av.CodecContext.create(codec, "r").decode(av.Packet(bytes(data)))
        except av.error.FFmpegError as e:
            raise DatasetError(f"{path}: column {cam.key!r}: row {int(rows[i])}: cannot decode ({e})") from None
        img = frames[0].to_ndarray(format="rgb24")
        if img.shape[:2] != (cam.height, cam.width):
            raise DatasetError(
                f"{path}: column {cam.key!r}: image {img.shape[1]}x{img.shape[0]}, "
                f"info.json says {cam.width}x{cam.height}"
            )
        out[i] = img
    return out


def _episode(
    info: DatasetInfo,
    m: LeRobotMapping,
    table: _DataFile,
    ep: EpisodeRef,
    tasks: dict[int, str],
    extras: Extras | None,
    cache_dir: Path | None,
) -> EpisodeData:
    path = table.path
    where = f"{path}: episode {ep.index}"
    rows = table.rows(ep)
    if len(rows) == 0:
        raise DatasetError(f"{where}: no frames")
    ts = table.timestamp[rows]
    if len(ts) > 1 and not (np.diff(ts) > 0).all():
        k = int(np.argmin(np.diff(ts)))
        raise DatasetError(f"{where}: timestamp: not increasing at frame {k + 1} ({ts[k]:.4f} -> {ts[k + 1]:.4f} s)")
    # One task per episode: the policy is conditioned on one task name.
    if table.task_index is not None:
        ids = np.unique(table.task_index[rows])
        if len(ids) != 1:
            raise DatasetError(f"{where}: task_index: {len(ids)} different tasks in one episode ({ids.tolist()})")
        if int(ids[0]) not in tasks:
            raise DatasetError(f"{where}: task_index {int(ids[0])} is not in the dataset's task table")
        task = tasks[int(ids[0])]
    elif len(ep.tasks) == 1:
        task = ep.tasks[0]
    else:
        raise DatasetError(f"{where}: no task_index column and {len(ep.tasks)} tasks in the episode metadata")
    names = tuple(joint_name(n, m) for n in info.names)
    joint_pos = to_action_units(table.state[rows], info.names, m, f"{path}: {m.state}")
    action = to_action_units(table.action[rows], info.names, m, f"{path}: {m.action}")
    images = []
    for cam in info.cameras:
        if cam.stored == "image":
            images.append(_png_frames(table.images[cam.key], rows, cam, path))
            continue
        video, from_ts = ep.videos[cam.key]
        to_ts = ep.video_to.get(cam.key)
        wanted = from_ts + ts
        if to_ts is not None and wanted[-1] > to_ts + 0.1 / info.fps:
            raise DatasetError(
                f"{where}: {cam.key}: timestamps run to {wanted[-1]:.4f} s, past the episode's "
                f"videos/{cam.key}/to_timestamp {to_ts:.4f} s"
            )
        images.append(episode_frames(video, cam.key, wanted, (cam.height, cam.width), info.fps, ep.index, cache_dir))
    t_frame = table.t_capture[rows] if table.t_capture is not None else ts.astype(np.float64)
    t_setpoint, setpoints = t_frame.copy(), action
    phase = None
    phase_names: tuple[str, ...] = ()
    success = None
    if extras is not None:
        if ep.index in extras.setpoints:
            t_setpoint, raw = extras.setpoints[ep.index]
            setpoints = to_action_units(raw, info.names, m, f"{info.root / SETPOINTS}: setpoint")
        success = extras.success.get(ep.index)
        phase_names = extras.phase_names
        if table.phase is not None:
            phase = table.phase[rows].copy()
    if phase is None and table.phase is not None:
        phase = np.full(len(rows), NO_PHASE, np.int16)
    return EpisodeData(
        source=f"{path} (episode_index {ep.index})",
        task=task_name(task, m),
        action_names=names,
        camera_names=tuple(c.name for c in info.cameras),
        t_frame=np.asarray(t_frame, np.float64),
        images=tuple(images),
        joint_pos=joint_pos,
        t_setpoint=np.asarray(t_setpoint, np.float64),
        setpoints=np.asarray(setpoints, np.float32),
        depths=(),  # LeRobot's depth maps (lossy video) are not read: see DatasetInfo.skipped
        phase=phase,
        phase_names=phase_names,
        success=success,
        meta={
            "format": "lerobot",
            "codebase_version": info.version,
            "fps": info.fps,
            "episode_index": ep.index,
            "lerobot_task": task,
            "robot_type": info.robot_type,
            "units": units_note(m),
            "skipped_features": list(info.skipped),
            "dataset": str(info.root),
        },
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m export.learning.lerobot DIR [--mapping FILE]`: read a dataset whole and print what training gets."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m export.learning.lerobot", description=main.__doc__)
    parser.add_argument("dataset", type=Path, help="the folder holding meta/info.json")
    parser.add_argument("--mapping", type=Path, default=None, help="a mapping file (docs/lerobot.md)")
    args = parser.parse_args(argv)
    try:
        episodes = read_lerobot(args.dataset, args.mapping)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(describe(episodes)))
    return 0


__all__ = ["IMAGE_PREFIX", "LeRobotMapping", "describe", "is_lerobot_dataset", "iter_lerobot", "main", "read_lerobot"]

if __name__ == "__main__":
    raise SystemExit(main())
