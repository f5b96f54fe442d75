"""`harmowam-edge replay`: the policy over every frame of a recording, no arm — actions, gate weights, timings.

The recording plays through pyrealsense2 in non-real-time mode (every frame, as fast as the policy takes them).
Without an arm, the joint state the policy sees is open loop: it starts at `joint_pos` (default: the action
space's zero, clamped into the limits) and then follows the previous chunk's trajectory at each frame's device
time, as a perfectly tracking arm would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harmowam_edge.bundle.loader import LoadedBundle
from harmowam_edge.cameras.realsense import RealSenseSource
from harmowam_edge.control.scheduler import Trajectory
from harmowam_edge.errors import CameraError, ConfigError
from harmowam_edge.policy.policy import STAGES, Observation, Policy
from harmowam_edge.telemetry.stats import json_default, summarize

OUTPUT_SUFFIXES = (".npz", ".json")


@dataclass
class ReplayResult:
    out: Path
    steps: int
    modes: dict[str, int] = field(default_factory=dict)
    timings_ms: dict[str, dict[str, float]] = field(default_factory=dict)


def replay_recordings(
    bundle: LoadedBundle,
    recordings: Sequence[Path],
    out: Path,
    *,
    task: str,
    seed: int = 0,
    joint_pos: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    m = bundle.manifest
    if out.suffix not in OUTPUT_SUFFIXES:
        raise ConfigError(f"--out {out}: expected a file ending in {' or '.join(OUTPUT_SUFFIXES)}")
    if len(recordings) != len(m.cameras):
        names = ", ".join(c.name for c in m.cameras)
        raise ConfigError(
            f"--recording: the bundle has {len(m.cameras)} camera(s) ({names}): give one recording each, in that "
            f"order; got {len(recordings)}"
        )
    sources = [
        RealSenseSource.playback(spec, path, realtime=False) for spec, path in zip(m.cameras, recordings, strict=True)
    ]
    lo = np.array([d.lower for d in m.action_space.dims])
    hi = np.array([d.upper for d in m.action_space.dims])
    q = np.clip(np.zeros(m.policy.action_dim) if joint_pos is None else np.asarray(joint_pos, float), lo, hi)
    if q.shape != (m.policy.action_dim,):
        raise ConfigError(f"--joint-pos: expected {m.policy.action_dim} values, got {q.shape}")
    policy = Policy(bundle, task, seed=seed)
    dt = 1.0 / m.policy.action_rate_hz
    rows: dict[str, list] = {
        k: [] for k in ("frame_number", "t_device_ms", "joint_pos", "actions", "gate_weights", "blend_weights")
    }
    modes: list[str] = []
    experts: list[str] = []
    timings: list[list[float]] = []
    traj: Trajectory | None = None
    iters = [s.frames() for s in sources]
    try:
        for frames in zip(*iters, strict=False):
            t_dev = frames[0].t_device_ms / 1000.0
            if traj is not None:
                q = np.clip(traj.sample(t_dev), lo, hi)
            chunk = policy.step(Observation(list(frames), q))
            if np.isfinite(chunk.actions).all():
                traj = Trajectory(chunk.actions, t_dev, dt)
            rows["frame_number"].append(frames[0].frame_number)
            rows["t_device_ms"].append(frames[0].t_device_ms)
            rows["joint_pos"].append(q.astype(np.float32))
            rows["actions"].append(chunk.actions)
            rows["gate_weights"].append(chunk.gate_weights)
            rows["blend_weights"].append(chunk.blend_weights)
            modes.append(chunk.mode)
            experts.append(",".join(chunk.experts))
            timings.append([chunk.timings[s] * 1000.0 for s in STAGES])
            if progress is not None:
                progress(len(modes))
    finally:
        for it in iters:
            close = getattr(it, "close", None)
            if close is not None:
                close()
    if not modes:
        raise CameraError(f"{recordings[0]}: no frames could be read")
    meta = {
        "bundle": str(bundle.root),
        "recordings": [str(r) for r in recordings],
        "task": task,
        "seed": seed,
        "backend": bundle.backend,
        "stages": list(STAGES),
        "joint_names": [d.name for d in m.action_space.dims],
        "action_rate_hz": m.policy.action_rate_hz,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    t = np.asarray(timings)
    if out.suffix == ".npz":
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in rows.items()}
        arrays.update(
            mode=np.asarray(modes),
            experts=np.asarray(experts),
            timings_ms=t,
            stages=np.asarray(STAGES),
            meta=np.asarray(json.dumps(meta)),
        )
        np.savez_compressed(out, **arrays)
    else:
        records = [
            {
                "frame_number": rows["frame_number"][i],
                "t_device_ms": rows["t_device_ms"][i],
                "joint_pos": rows["joint_pos"][i],
                "actions": rows["actions"][i],
                "gate_weights": rows["gate_weights"][i],
                "blend_weights": rows["blend_weights"][i],
                "mode": modes[i],
                "experts": experts[i].split(","),
                "timings_ms": dict(zip(STAGES, timings[i], strict=True)),
            }
            for i in range(len(modes))
        ]
        out.write_text(json.dumps({"meta": meta, "steps": records}, default=json_default) + "\n")
    counts = {k: modes.count(k) for k in sorted(set(modes))}
    return ReplayResult(
        out=out,
        steps=len(modes),
        modes=counts,
        timings_ms={s: summarize(t[:, i] / 1000.0) for i, s in enumerate(STAGES)},
    )
