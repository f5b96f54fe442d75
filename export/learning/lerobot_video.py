"""Frames of one episode out of a LeRobot MP4 (AV1 or H.264, several episodes per file), by timestamp, cached.

LeRobot locates an episode in a shared video by `from_timestamp` and each frame by `from_timestamp +
timestamp`. We seek to the keyframe before the first wanted time and decode forward, taking for every wanted
time the decoded frame within a tenth of a frame period of it (frame-accurate: a neighbour is 10x further
away). A wanted time with no such frame is an error, as is a video that ends before the episode does.

Decoded episodes are kept as .npy files keyed by the video's path, size, mtime and the wanted times; the next
read memory-maps them (copy-on-write: writable, the file never changes) instead of decoding again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from export.errors import DatasetError


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harmowam-edge" / "lerobot-frames"


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise DatasetError(
            "decoding LeRobot videos needs PyAV, which is not installed: pip install 'harmowam-edge[lerobot]'"
        ) from None
    return av


def _cache_key(path: Path, key: str, times: np.ndarray, shape: tuple[int, int]) -> str:
    st = path.stat()
    h = hashlib.sha256()
    h.update(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{key}|{shape}|v1".encode())
    h.update(np.ascontiguousarray(times, dtype=np.float64).tobytes())
    return h.hexdigest()[:32]


def episode_frames(
    path: Path,
    key: str,
    times: np.ndarray,
    shape: tuple[int, int],
    fps: float,
    episode: int,
    cache_dir: Path | None,
) -> np.ndarray:
    """uint8 [T, H, W, 3] RGB frames of `path` at the absolute stream times `times` (seconds, increasing)."""
    if not path.is_file():
        raise DatasetError(f"{path}: {key}: video file not found (episode {episode})")
    if cache_dir is not None:
        cached = cache_dir / f"{_cache_key(path, key, times, shape)}.npy"
        if cached.is_file():
            try:
                arr = np.load(cached, mmap_mode="c")
                if arr.shape == (len(times), *shape, 3) and arr.dtype == np.uint8:
                    return arr
            except (OSError, ValueError):
                pass  # a truncated cache file: decode again and overwrite it
    frames = decode_at(path, key, times, shape, fps, episode)
    if cache_dir is None:
        return frames
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, frames)
        Path(tmp).replace(cached)  # atomic: a reader (another rank) never sees half a file
    except OSError as e:
        raise DatasetError(
            f"{cache_dir}: cannot write the decoded-frame cache ({e.strerror}); set the mapping's `cache_dir` "
            "to a writable folder, or `cache: false`"
        ) from None
    return np.load(cached, mmap_mode="c")


def decode_at(path: Path, key: str, times: np.ndarray, shape: tuple[int, int], fps: float, episode: int) -> np.ndarray:
    av = _import_av()
    n = len(times)
    h, w = shape
    out = np.empty((n, h, w, 3), np.uint8)
    if n == 0:
        return out
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise DatasetError(f"{path}: {key}: cannot open the video ({e})") from None
    with container:
        if not container.streams.video:
            raise DatasetError(f"{path}: {key}: no video stream in the file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = float(stream.time_base) if stream.time_base else 1.0 / fps
        # A tenth of the shorter frame period: frame-accurate (a neighbour is 10x further away), yet 30x
        # LeRobot's own 1e-4 s, for timestamps rounded through float32.
        rate = float(stream.average_rate) if stream.average_rate else fps
        tol = 0.1 / max(fps, rate)
        if times[0] > tol:
            container.seek(max(0, int((times[0] - tol) / tb)), stream=stream, backward=True, any_frame=False)
        j = 0
        last_t = None
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = frame.pts * tb
                last_t = t
                if j < n and t > times[j] + tol:
                    raise DatasetError(
                        f"{path}: {key}: episode {episode} wants a frame at {times[j]:.4f} s but the video has "
                        f"none within {tol * 1e3:.1f} ms (next frame at {t:.4f} s): timestamps off the video's "
                        f"{fps:g} fps grid, or a frame missing"
                    )
                if j < n and abs(t - times[j]) <= tol:
                    if frame.width != w or frame.height != h:
                        raise DatasetError(
                            f"{path}: {key}: frames are {frame.width}x{frame.height}, "
                            f"info.json says {w}x{h} (features.{key}.shape)"
                        )
                    img = frame.to_ndarray(format="rgb24")
                    while j < n and abs(t - times[j]) <= tol:
                        out[j] = img
                        j += 1
                if j >= n:
                    break
        except av.error.FFmpegError as e:
            raise DatasetError(f"{path}: {key}: decoding failed for episode {episode} ({e})") from None
    if j < n:
        ends = "has no frames" if last_t is None else f"ends at {last_t:.4f} s"
        raise DatasetError(
            f"{path}: {key}: video shorter than episode {episode}: it needs frames up to {times[-1]:.4f} s "
            f"(from_timestamp + timestamp) but the video {ends} ({n - j} of {n} frames missing)"
        )
    return out
