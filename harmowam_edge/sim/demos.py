"""Demonstration episodes on disk (format in docs/sim.md): one folder per episode, one .npz per recorded step.

Each step file is keyed by the world model's input names (`image_<i>`, `depth_<i>`, `joint_pos`) plus `task`,
so an episode folder is also a directory of observations that `export bundle --calib` reads for INT8
calibration. `action`, `joint_vel`, `t`, `t_capture_<i>` and `frame_number_<i>` ride along for training.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import harmowam_edge
from harmowam_edge.bundle.schema import JOINT_POS, CameraSpec, depth_input, image_input
from harmowam_edge.errors import ConfigError
from harmowam_edge.sim.expert import CONTROL_HZ, RECORD_HZ, EpisodeResult, ScriptedExpert, Step, Task, parse_task
from harmowam_edge.sim.rig import SimRig, open_sim_rig

FORMAT = "harmowam-sim-demos"
VERSION = 1
DATASET_FILE = "dataset.json"
EPISODE_META = "episode.json"


def episode_dir(out: Path, index: int) -> Path:
    return out / f"episode_{index:06d}"


def check_out_dir(out: Path) -> None:
    """Demonstrations go into a new or empty folder: never mixed with (or over) earlier ones."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out}: exists and is not an empty folder; choose a new one")


class DemoWriter:
    """Writes episodes under `out` and keeps dataset.json current after every episode (nothing is lost)."""

    def __init__(self, out: Path, rig: SimRig, task: Task, record_hz: float, control_hz: float) -> None:
        out = Path(out)
        check_out_dir(out)
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.task = task
        self.cameras = [c.spec for c in rig.cameras]
        self.meta: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "generator": f"harmowam-edge {harmowam_edge.__version__} sim demos",
            "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "task": task.kind,
            "object": task.object,
            "arms": len(rig.action_space.arms),
            "action_space": rig.action_space.to_dict(),
            "action_names": [d.name for d in rig.action_space.dims],
            "cameras": [c.to_dict() for c in self.cameras],
            "record_hz": record_hz,
            "control_hz": control_hz,
            "episodes": [],
            "success_rate": None,
        }
        self._current: Path | None = None
        self._steps = 0
        self._flush()

    def begin(self, index: int) -> Path:
        self._current = episode_dir(self.out, index)
        self._current.mkdir()
        self._steps = 0
        return self._current

    def add(self, step: Step) -> None:
        if self._current is None:
            raise RuntimeError("begin() an episode before adding steps")
        arrays: dict[str, np.ndarray] = {
            JOINT_POS: step.joint_pos,
            "joint_vel": step.joint_vel,
            "action": step.action,
            "task": np.array(self.task.kind),
            "t": np.array(step.t, np.float64),
            "step": np.array(step.index, np.int64),
        }
        for i, (img, depth) in enumerate(zip(step.images, step.depths, strict=True)):
            arrays[image_input(i)] = img
            if depth is not None and self.cameras[i].has_depth:
                arrays[depth_input(i)] = depth
            arrays[f"t_capture_{i}"] = np.array(step.t_capture[i], np.float64)
            arrays[f"frame_number_{i}"] = np.array(step.frame_numbers[i], np.int64)
        # (numpy's stubs type **kwds as its keyword flags; every value here is an array)
        np.savez_compressed(self._current / f"{step.index:06d}.npz", **arrays)  # type: ignore[arg-type]
        self._steps += 1

    def end(self, result: EpisodeResult) -> None:
        if self._current is None:
            raise RuntimeError("no episode to end")
        record = {"dir": self._current.name, **result.to_dict()}
        (self._current / EPISODE_META).write_text(json.dumps(record, indent=2) + "\n")
        self.meta["episodes"].append(record)
        done = self.meta["episodes"]
        self.meta["success_rate"] = sum(1 for e in done if e["success"]) / len(done)
        self._current = None
        self._flush()

    def _flush(self) -> None:
        tmp = self.out / (DATASET_FILE + ".tmp")
        tmp.write_text(json.dumps(self.meta, indent=2) + "\n")
        tmp.replace(self.out / DATASET_FILE)


def read_episode(path: Path) -> dict[str, np.ndarray]:
    """An episode's steps stacked along a leading time axis: {"image_0": [T, H, W, 3], "action": [T, A], ...}."""
    path = Path(path)
    files = sorted(path.glob("*.npz"))
    if not files:
        raise ConfigError(f"{path}: no step files (*.npz) in this episode folder")
    columns: dict[str, list[np.ndarray]] = {}
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            for k in z.files:
                columns.setdefault(k, []).append(z[k])
    return {k: np.stack(v) for k, v in columns.items()}


def read_dataset(out: Path) -> dict[str, Any]:
    path = Path(out) / DATASET_FILE
    try:
        meta: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (is {out} a folder written by `harmowam-edge sim demos`?)") from None
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{path}: format: expected {FORMAT!r}, got {meta.get('format')!r}")
    return meta


def collect_demos(
    task_name: str,
    episodes: int,
    out: Path,
    *,
    arms: int = 1,
    cameras: tuple[CameraSpec, ...] | None = None,
    object_name: str | None = None,
    seed: int = 0,
    record_hz: float = RECORD_HZ,
    control_hz: float = CONTROL_HZ,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the scripted expert for `episodes` episodes (seeds seed, seed+1, ...) and write them under `out`."""
    from firmware_bridge import ArmLink

    if episodes < 1:
        raise ConfigError(f"--episodes: expected at least 1, got {episodes}")
    say = progress or (lambda _m: None)
    task = parse_task(task_name, object_name, seed)
    check_out_dir(Path(out))
    with contextlib.ExitStack() as stack:
        rig = stack.enter_context(open_sim_rig(arms, cameras, seed))
        links = [
            stack.enter_context(ArmLink.open(port, arm=addr))
            for port, addr in zip(rig.arm_ports, rig.arm_addresses, strict=True)
        ]
        expert = ScriptedExpert(rig, links, control_hz=control_hz, record_hz=record_hz)
        writer = DemoWriter(out, rig, task, record_hz, control_hz)
        try:
            for i in range(episodes):
                ep_seed = seed + i
                ep_task = (
                    task if object_name is not None or task_name != task.kind else parse_task(task.kind, None, ep_seed)
                )
                expert.reset(ep_seed)
                writer.begin(i)
                result = expert.run(ep_task, ep_seed, on_step=writer.add)
                writer.end(result)
                say(
                    f"episode {i + 1}/{episodes} (seed {ep_seed}, {ep_task.describe()}): "
                    f"{'success' if result.success else 'FAILED'} "
                    f"[reach error {result.reach_error_m * 1e3:.1f} mm, lift {result.lift_m * 1e3:.0f} mm, "
                    f"{result.steps} steps]"
                )
        finally:
            for link in links:
                with contextlib.suppress(Exception):
                    link.disable()
    return writer.meta
