"""Demonstrations in, training samples out: reading our `sim demos` folders, and what one training frame holds.

`load_episodes` dispatches a folder to its reader (a LeRobot dataset has `meta/info.json`; anything else is read
as our own format) and every reader returns `EpisodeData`. `frame_targets` turns one episode into per-frame
targets: the K-step action chunk anchored at each frame's capture time at the bundle's action rate (interpolated
from the dense commanded setpoints), the frames at each world-model horizon step, gate labels from the expert's
phases, and which frames are no training target at all (commanded perturbations).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.errors import DatasetError
from export.learning.episodes import NO_PHASE, EpisodeData
from export.learning.retime import cruising_chunks

SIM_FORMAT = "harmowam-sim-demos"
SIM_VERSIONS = (1, 2)
DATASET_FILE = "dataset.json"

# Gate supervision from the scripted expert's phases: free-space motion goes to the predictive expert (1), the
# phases near contact to the reactive one (0). `perturb` (a commanded push) and `idle` are no expert behaviour.
PREDICTIVE_PHASES = frozenset({"approach", "lift", "hold", "move", "retreat"})
REACTIVE_PHASES = frozenset({"settle", "descend", "grasp", "place", "release"})
IGNORED_PHASES = frozenset({"perturb", "idle"})
SETPOINT_PHASE = "setpoint_phase"  # EpisodeData.meta key: int16 [N] phase of each setpoint (our v2 format)
# `sim dagger` step fields: the scripted expert's chunk [K, A] from the learner's state, and its phase.
LABEL_CHUNK = "label_chunk"
LABEL_PHASE = "label_phase"
# How a demonstration's chunks are timed: `recorded` (the setpoints as the expert sent them) or `cruising` (the
# rest of each demonstrated move at its peak speed, see `retime`). Labelled (DAgger) and unphased episodes keep
# their own chunks either way.
DEMO_TIMINGS = ("recorded", "cruising")


# --------------------------------------------------------------------------------------------------------------
# Reading


def load_episodes(paths: Sequence[str | Path], mapping: str | Path | None = None) -> list[EpisodeData]:
    """Every episode of every folder, in order. A folder with meta/info.json is a LeRobot dataset."""
    return list(iter_episodes(paths, mapping))


def iter_episodes(paths: Sequence[str | Path], mapping: str | Path | None = None) -> Iterator[EpisodeData]:
    """`load_episodes` one episode at a time (the training set keeps only shrunk frames, not the raw ones)."""
    if not paths:
        raise DatasetError("--data: expected at least one dataset folder")
    for p in paths:
        path = Path(p)
        if not path.is_dir():
            raise DatasetError(f"{path}: not a folder (expected a `sim demos` output or a LeRobot dataset)")
        if (path / "meta" / "info.json").is_file():
            from export.learning.lerobot import read_lerobot

            yield from read_lerobot(path, mapping)
        else:
            if mapping is not None:
                raise DatasetError(f"{path}: --mapping applies to LeRobot datasets; this is not one")
            yield from iter_sim_episodes(path)


def read_sim_episodes(dataset_dir: str | Path) -> list[EpisodeData]:
    """All episodes of a folder written by `harmowam-edge sim demos` (format versions 1 and 2)."""
    return list(iter_sim_episodes(dataset_dir))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: not found (is {path.parent} a folder written by `sim demos`?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    return data


def iter_sim_episodes(dataset_dir: str | Path) -> Iterator[EpisodeData]:
    root = Path(dataset_dir)
    meta_path = root / DATASET_FILE
    meta = _read_json(meta_path)
    if meta.get("format") != SIM_FORMAT:
        raise DatasetError(f"{meta_path}: format: expected {SIM_FORMAT!r}, got {meta.get('format')!r}")
    version = meta.get("version")
    if version not in SIM_VERSIONS:
        raise DatasetError(f"{meta_path}: version: this trainer reads {list(SIM_VERSIONS)}, got {version!r}")
    names = meta.get("action_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DatasetError(f"{meta_path}: action_names: expected a non-empty list of names")
    cams = meta.get("cameras")
    if not isinstance(cams, list) or not cams or not all(isinstance(c, Mapping) and "name" in c for c in cams):
        raise DatasetError(f"{meta_path}: cameras: expected a non-empty list of camera objects")
    episodes = meta.get("episodes")
    if not isinstance(episodes, list) or not episodes:
        raise DatasetError(f"{meta_path}: episodes: expected a non-empty list (did `sim demos` finish an episode?)")
    phase_names = tuple(str(p) for p in meta.get("phase_names", ()))
    for i, rec in enumerate(episodes):
        if not isinstance(rec, Mapping) or not isinstance(rec.get("dir"), str):
            raise DatasetError(f"{meta_path}: episodes[{i}].dir: expected the episode's folder name")
        ep_dir = root / rec["dir"]
        if rec.get("success") is False and not any(ep_dir.glob("[0-9]*.npz")):
            continue  # a failed episode that recorded nothing (e.g. the link failed at its start): no data
        if version == 1:
            ep = _read_v1_episode(ep_dir, rec, meta, tuple(names), tuple(str(c["name"]) for c in cams))
        else:
            ep = _read_v2_episode(ep_dir, rec, meta, tuple(names), tuple(str(c["name"]) for c in cams), phase_names)
        check_episode(ep)
        yield ep


def _task_name(rec: Mapping[str, Any], meta: Mapping[str, Any], where: Path) -> str:
    # v2 stores the full name (`pick_red_cube`); v1 the kind and the object apart.
    name = rec.get("task")
    kind = rec.get("kind", meta.get("task"))
    obj = rec.get("object", meta.get("object"))
    if isinstance(name, str) and name and (not isinstance(obj, str) or name.endswith(obj)):
        return name
    if isinstance(kind, str) and kind and isinstance(obj, str) and obj:
        return f"{kind}_{obj}"
    raise DatasetError(f"{where}: task: expected a task name (e.g. pick_red_cube) or task kind + object")


def _wanted(key: str) -> bool:
    # Only what training reads: each key of a zip member costs a header parse (most of the reading time).
    return key.startswith(("image_", "depth_")) or key in _STEP_KEYS


_STEP_KEYS = frozenset({"joint_pos", "t", "t_capture_0", "phase", "action", LABEL_CHUNK, LABEL_PHASE})


def _stack_steps(ep_dir: Path) -> dict[str, np.ndarray]:
    files = sorted(ep_dir.glob("[0-9]*.npz"))
    if not files:
        raise DatasetError(f"{ep_dir}: no step files (*.npz) in this episode folder")
    columns: dict[str, list[np.ndarray]] = {}
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as z:
                for k in z.files:
                    if _wanted(k):
                        columns.setdefault(k, []).append(z[k])
        except (OSError, ValueError) as e:
            raise DatasetError(f"{f}: not a readable .npz step file ({e})") from None
    out = {}
    for k, v in columns.items():
        if len(v) != len(files):
            raise DatasetError(f"{ep_dir}: {k}: in {len(v)} of {len(files)} step files")
        try:
            out[k] = np.stack(v)
        except ValueError:
            raise DatasetError(f"{ep_dir}: {k}: shape differs between step files") from None
    return out


def _need(arrays: Mapping[str, np.ndarray], key: str, where: Path) -> np.ndarray:
    if key not in arrays:
        raise DatasetError(f"{where}: {key}: missing")
    return arrays[key]


def _read_v1_episode(
    ep_dir: Path, rec: Mapping[str, Any], meta: Mapping[str, Any], names: tuple[str, ...], cams: tuple[str, ...]
) -> EpisodeData:
    """v1: one .npz per 10 Hz step; the setpoints are those steps' `action` (sparse, interpolated between)."""
    steps = _stack_steps(ep_dir)
    images = tuple(_need(steps, f"image_{i}", ep_dir) for i in range(len(cams)))
    depths = tuple(steps.get(f"depth_{i}") for i in range(len(cams)))
    t_frame = _need(steps, "t_capture_0", ep_dir).astype(np.float64)
    return EpisodeData(
        source=str(ep_dir),
        task=_task_name(rec, meta, ep_dir),
        action_names=names,
        camera_names=cams,
        t_frame=t_frame,
        images=images,
        joint_pos=_need(steps, "joint_pos", ep_dir).astype(np.float32),
        t_setpoint=_need(steps, "t", ep_dir).astype(np.float64),
        setpoints=_need(steps, "action", ep_dir).astype(np.float32),
        depths=depths if any(d is not None for d in depths) else (),
        success=bool(rec["success"]) if isinstance(rec.get("success"), bool) else None,
        meta={"seed": rec.get("seed"), "format_version": 1, "cameras": list(meta.get("cameras", []))},
    )


def _read_v2_episode(
    ep_dir: Path,
    rec: Mapping[str, Any],
    meta: Mapping[str, Any],
    names: tuple[str, ...],
    cams: tuple[str, ...],
    phase_names: tuple[str, ...],
) -> EpisodeData:
    """v2: frames at the camera rate (one .npz per frame) and every commanded setpoint in setpoints.npz."""
    steps = _stack_steps(ep_dir)
    sp_path = ep_dir / "setpoints.npz"
    try:
        with np.load(sp_path, allow_pickle=False) as z:
            sp = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DatasetError(f"{sp_path}: missing (a v2 episode stores its commanded setpoints here)") from None
    except (OSError, ValueError) as e:
        raise DatasetError(f"{sp_path}: not a readable .npz file ({e})") from None
    images = tuple(_need(steps, f"image_{i}", ep_dir) for i in range(len(cams)))
    depths = tuple(steps.get(f"depth_{i}") for i in range(len(cams)))
    t_key = "t_capture_0" if "t_capture_0" in steps else "t"
    phase = steps.get("phase")
    labels = steps.get(LABEL_CHUNK)
    label_rate: float | None = None
    success = bool(rec["success"]) if isinstance(rec.get("success"), bool) else None
    if labels is not None:
        # DAgger: the targets are the expert's labels and its phases; whether the learner's rollout succeeded
        # says nothing about them, so a failed rollout is kept (a failed *demonstration* would be skipped).
        phase = _need(steps, LABEL_PHASE, ep_dir)
        label_meta = meta.get("label")
        rate = label_meta.get("action_rate_hz") if isinstance(label_meta, Mapping) else None
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not rate > 0:
            raise DatasetError(f"{ep_dir.parent / DATASET_FILE}: label.action_rate_hz: expected the labels' rate (Hz)")
        label_rate = float(rate)
        success = None
    sp_phase = sp.get("phase")
    if sp_phase is not None and sp_phase.shape != sp["t"].shape:
        raise DatasetError(f"{sp_path}: phase: expected one label per setpoint {list(sp['t'].shape)}")
    return EpisodeData(
        source=str(ep_dir),
        task=_task_name(rec, meta, ep_dir),
        action_names=names,
        camera_names=cams,
        t_frame=_need(steps, t_key, ep_dir).astype(np.float64),
        images=images,
        joint_pos=_need(steps, "joint_pos", ep_dir).astype(np.float32),
        t_setpoint=_need(sp, "t", sp_path).astype(np.float64),
        setpoints=_need(sp, "setpoints" if "setpoints" in sp else "action", sp_path).astype(np.float32),
        depths=depths if any(d is not None for d in depths) else (),
        phase=None if phase is None else phase.astype(np.int16),
        phase_names=phase_names,
        success=success,
        meta={
            "seed": rec.get("seed"),
            "format_version": 2,
            "cameras": list(meta.get("cameras", [])),
            SETPOINT_PHASE: None if sp_phase is None else sp_phase.astype(np.int16),
            **({"driver": meta.get("driver"), "rollout_success": rec.get("success")} if labels is not None else {}),
        },
        label_chunks=None if labels is None else labels.astype(np.float32),
        label_rate_hz=label_rate,
    )


def check_episode(ep: EpisodeData) -> None:
    """Shapes, dtypes and times one can train on; the error names the episode and the field."""
    src, t, a = ep.source, ep.frames, len(ep.action_names)
    if t < 2:
        raise DatasetError(f"{src}: frames: expected at least 2, got {t}")
    # Non-decreasing, not strictly: the simulated camera can stamp two frames alike on a loaded machine.
    tf = ep.t_frame
    if tf.shape != (t,) or not np.all(np.isfinite(tf)) or np.any(np.diff(tf) < 0) or tf[-1] <= tf[0]:
        raise DatasetError(f"{src}: t_frame: expected {t} finite, increasing capture times")
    if len(ep.images) != len(ep.camera_names) or not ep.images:
        raise DatasetError(f"{src}: images: expected one array per camera {list(ep.camera_names)}")
    for i, img in enumerate(ep.images):
        if img.dtype != np.uint8 or img.ndim != 4 or img.shape[0] != t or img.shape[3] != 3:
            raise DatasetError(f"{src}: image_{i}: expected uint8 [{t}, H, W, 3], got {img.dtype} {list(img.shape)}")
    if ep.joint_pos.shape != (t, a) or not np.all(np.isfinite(ep.joint_pos)):
        raise DatasetError(
            f"{src}: joint_pos: expected finite float [{t}, {a}] ({a} action names), got {list(ep.joint_pos.shape)}"
        )
    n = ep.t_setpoint.shape[0]
    if n < 1 or ep.t_setpoint.shape != (n,) or np.any(np.diff(ep.t_setpoint) < 0):
        raise DatasetError(
            f"{src}: t_setpoint: expected increasing setpoint times, got shape {list(ep.t_setpoint.shape)}"
        )
    if ep.setpoints.shape != (n, a) or not np.all(np.isfinite(ep.setpoints)):
        raise DatasetError(f"{src}: setpoints: expected finite float [{n}, {a}], got {list(ep.setpoints.shape)}")
    if ep.label_chunks is not None:
        lc = ep.label_chunks
        if lc.ndim != 3 or lc.shape[0] != t or lc.shape[1] < 1 or lc.shape[2] != a or not np.all(np.isfinite(lc)):
            raise DatasetError(f"{src}: {LABEL_CHUNK}: expected finite float [{t}, K, {a}], got {list(lc.shape)}")
        if ep.phase is None:
            raise DatasetError(f"{src}: {LABEL_PHASE}: missing (labelled frames carry the expert's phase)")
    if ep.phase is not None:
        if ep.phase.shape != (t,):
            raise DatasetError(f"{src}: phase: expected one label per frame [{t}], got {list(ep.phase.shape)}")
        bad = (ep.phase != NO_PHASE) & ((ep.phase < 0) | (ep.phase >= len(ep.phase_names)))
        if np.any(bad):
            raise DatasetError(
                f"{src}: phase: index {int(ep.phase[bad][0])} outside phase_names ({len(ep.phase_names)})"
            )


def dataset_digest(path: str | Path) -> str:
    """sha256 over every file under a dataset folder (relative names and contents, in sorted order)."""
    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        try:
            with f.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        except FileNotFoundError:  # a temporary file renamed away while we read (a folder still being written)
            continue
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------------------
# Per-frame targets (pure)


@dataclass(frozen=True)
class FrameTargets:
    """Training targets of every frame of one episode."""

    chunks: np.ndarray  # float32 [T, K, A]: setpoints at t_frame + k / action_rate, k = 0..K-1
    horizon_frames: np.ndarray  # int64 [T, H]: the frame nearest t_frame + h * horizon_dt, h = 1..H (clamped)
    gate: np.ndarray  # float32 [T]: 1 predictive, 0 reactive, -1 unknown (no phase labels)
    weight: np.ndarray  # float32 [T]: 0 for frames that are no target (a push within the chunk)


def interpolate_setpoints(t_setpoint: np.ndarray, setpoints: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Linear interpolation per dimension; before the first / after the last setpoint it holds that one."""
    flat = times.reshape(-1)
    out = np.stack([np.interp(flat, t_setpoint, setpoints[:, j]) for j in range(setpoints.shape[1])], axis=-1)
    return out.reshape(*times.shape, setpoints.shape[1]).astype(np.float32)


def frame_targets(
    ep: EpisodeData,
    chunk_size: int,
    action_rate_hz: float,
    horizon: int,
    horizon_dt_s: float,
    demo_timing: str = "recorded",
) -> FrameTargets:
    if demo_timing not in DEMO_TIMINGS:
        raise ValueError(f"demo_timing: expected one of {DEMO_TIMINGS}, got {demo_timing!r}")
    t = ep.t_frame
    offsets = np.arange(chunk_size, dtype=np.float64) / action_rate_hz
    retimed = None
    sp_phase = ep.meta.get(SETPOINT_PHASE)
    if ep.label_chunks is None and demo_timing == "cruising" and isinstance(sp_phase, np.ndarray) and ep.phase_names:
        retimed = cruising_chunks(
            t, ep.joint_pos, ep.t_setpoint, ep.setpoints, sp_phase, offsets, ep.phase_names, IGNORED_PHASES
        )
    if ep.label_chunks is not None:
        chunks = _label_chunks(ep, chunk_size, action_rate_hz)
    elif retimed is not None:
        chunks = retimed[0]
    else:
        chunk_times = t[:, None] + offsets[None, :]
        chunks = interpolate_setpoints(ep.t_setpoint, ep.setpoints, chunk_times)
    want = t[:, None] + horizon_dt_s * np.arange(1, horizon + 1, dtype=np.float64)[None, :]
    idx = np.clip(np.searchsorted(t, want), 0, len(t) - 1)
    prev = np.clip(idx - 1, 0, len(t) - 1)
    nearer_prev = np.abs(t[prev] - want) < np.abs(t[idx] - want)
    horizon_frames = np.where(nearer_prev, prev, idx).astype(np.int64)
    gate = np.full(len(t), -1.0, np.float32)
    weight = np.ones(len(t), np.float32)
    if ep.phase is not None and ep.phase_names:
        names = [ep.phase_names[p] if p != NO_PHASE else "" for p in ep.phase]
        gate = np.array(
            [1.0 if n in PREDICTIVE_PHASES else 0.0 if n in REACTIVE_PHASES else -1.0 for n in names], np.float32
        )
        ignored = np.array([n in IGNORED_PHASES for n in names], bool)
        if ep.label_chunks is not None:
            # A label is the expert's plan from this frame's own state: only its own phase can rule it out (an
            # unreachable state is labelled idle); the setpoints are the learner's, no expert behaviour.
            weight = (~ignored).astype(np.float32)
            return FrameTargets(chunks=chunks, horizon_frames=horizon_frames, gate=gate, weight=weight)
        # A frame is no target if it, or any frame inside its chunk's time window, is a push or idle ...
        end = t + offsets[-1]
        last = np.searchsorted(t, end, side="right")
        csum = np.concatenate([[0], np.cumsum(ignored)])
        weight = (csum[last] - csum[np.arange(len(t))] == 0).astype(np.float32)
        if isinstance(sp_phase, np.ndarray) and sp_phase.shape == ep.t_setpoint.shape:
            # ... or any setpoint commanded inside that window is (the push itself is no expert behaviour).
            codes = np.array([n in IGNORED_PHASES for n in ep.phase_names], bool)
            valid = (sp_phase >= 0) & (sp_phase < len(codes))
            bad = valid & codes[np.where(valid, sp_phase, 0)]
            scum = np.concatenate([[0], np.cumsum(bad)])
            lo = np.searchsorted(ep.t_setpoint, t, side="left")
            hi = np.searchsorted(ep.t_setpoint, end, side="right")
            weight *= (scum[hi] - scum[lo] == 0).astype(np.float32)
    if retimed is not None:  # a move cut short by a push has no known end (with or without per-frame phases)
        weight *= retimed[1].astype(np.float32)
    return FrameTargets(chunks=chunks, horizon_frames=horizon_frames, gate=gate, weight=weight)


def _label_chunks(ep: EpisodeData, chunk_size: int, action_rate_hz: float) -> np.ndarray:
    """The expert's labels as targets: the first `chunk_size` steps, recorded at the model's own action rate."""
    assert ep.label_chunks is not None
    k = ep.label_chunks.shape[1]
    if ep.label_rate_hz is None or abs(ep.label_rate_hz - action_rate_hz) > 1e-6 or k < chunk_size:
        raise DatasetError(
            f"{ep.source}: {LABEL_CHUNK}: labelled {k} steps at {ep.label_rate_hz} Hz; the model needs "
            f"{chunk_size} at {action_rate_hz:g} Hz (run `sim dagger` with a bundle of this architecture)"
        )
    return ep.label_chunks[:, :chunk_size].astype(np.float32)
