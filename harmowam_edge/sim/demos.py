"""Demonstration episodes on disk (format in docs/sim.md): one folder per episode, one .npz per camera frame,
and the dense commanded setpoints of the episode in `setpoints.npz`.

Each step file is keyed by the world model's input names (`image_<i>`, `depth_<i>`, `joint_pos`) plus `task`,
so an episode folder is also a directory of observations that `export bundle --calib` reads for INT8
calibration. `action`, `phase`, `joint_vel`, `t`, `t_capture_<i>` and `frame_number_<i>` ride along for
training; `setpoints.npz` holds every setpoint sent (time, action, phase) to build action chunks at any rate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import harmowam_edge
from firmware_bridge import BridgeError
from harmowam_edge.bundle.schema import JOINT_POS, CameraSpec, depth_input, image_input
from harmowam_edge.errors import ConfigError
from harmowam_edge.sim import seeds
from harmowam_edge.sim.expert import (
    CONTROL_HZ,
    RECORD_HZ,
    EpisodeResult,
    ExpertError,
    ScriptedExpert,
    Step,
    unplannable,
)
from harmowam_edge.sim.perturb import PerturbConfig
from harmowam_edge.sim.rig import SimRig, open_sim_rig
from harmowam_edge.sim.tasks import PERTURB_PHASE, PHASE_NAMES, Task, parse_task

FORMAT = "harmowam-sim-demos"
VERSION = 2
READABLE_VERSIONS = (1, 2)
DATASET_FILE = "dataset.json"
EPISODE_META = "episode.json"
SETPOINTS_FILE = "setpoints.npz"
MAX_LOST_EPISODES = 3  # link errors in a row before `sim demos` gives up


def episode_dir(out: Path, index: int) -> Path:
    return out / f"episode_{index:06d}"


def check_out_dir(out: Path) -> None:
    """Demonstrations go into a new or empty folder: never mixed with (or over) earlier ones."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out}: exists and is not an empty folder; choose a new one")


def episode_task(requested: str, object_name: str | None, seed: int) -> Task:
    """The task of one episode: the requested one if it names its object, else `<kind>_<object of the seed>`."""
    return parse_task(requested, object_name, seed)


class DemoWriter:
    """Writes episodes under `out` and keeps dataset.json current after every episode (nothing is lost).

    Step files are compressed and written by a thread of their own, so the control loop never waits on zlib.
    """

    def __init__(
        self,
        out: Path,
        rig: SimRig,
        task: str,
        record_hz: float | None,
        control_hz: float,
        *,
        scene: str = "id",
        perturb: PerturbConfig | None = None,
    ) -> None:
        out = Path(out)
        check_out_dir(out)
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.cameras = [c.spec for c in rig.cameras]
        self.meta: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "generator": f"harmowam-edge {harmowam_edge.__version__} sim demos",
            "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "task": task,  # as asked for (`pick` or `pick_red_cube`); each episode's full name is in `episodes`
            "tasks": [],
            "arms": len(rig.action_space.arms),
            "action_space": rig.action_space.to_dict(),
            "action_names": [d.name for d in rig.action_space.dims],
            "cameras": [c.to_dict() for c in self.cameras],
            "record_hz": record_hz,  # None: one step per frame of the first camera
            "control_hz": control_hz,
            "phase_names": list(PHASE_NAMES),
            "perturb_phase": PHASE_NAMES[PERTURB_PHASE],
            "scene": scene,
            "perturb": (perturb or PerturbConfig()).to_dict(),
            "seed_range": None,
            "episodes": [],
            "success_rate": None,
        }
        self._current: Path | None = None
        self._task: Task | None = None
        self._seed = 0
        self._steps = 0
        self._sp_t: list[float] = []
        self._sp_action: list[np.ndarray] = []
        self._sp_phase: list[int] = []
        self._queue: queue.Queue[tuple[Path, dict[str, np.ndarray]] | None] = queue.Queue(maxsize=256)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_files, name="sim-demo-writer", daemon=True)
        self._thread.start()
        self._flush()

    def begin(self, index: int, task: Task | None = None, seed: int = 0) -> Path:
        self._current = episode_dir(self.out, index)
        self._current.mkdir()
        self._task = task
        self._seed = seed
        self._steps = 0
        self._sp_t, self._sp_action, self._sp_phase = [], [], []
        return self._current

    def add(self, step: Step) -> None:
        if self._current is None:
            raise RuntimeError("begin() an episode before adding steps")
        name = self._task.name if self._task is not None else str(self.meta["task"])
        arrays: dict[str, np.ndarray] = {
            JOINT_POS: step.joint_pos,
            "joint_vel": step.joint_vel,
            "action": step.action,
            "phase": np.array(step.phase, np.int16),
            "task": np.array(name),
            "t": np.array(step.t, np.float64),
            "step": np.array(step.index, np.int64),
        }
        for i, (img, depth) in enumerate(zip(step.images, step.depths, strict=True)):
            arrays[image_input(i)] = img
            if depth is not None and self.cameras[i].has_depth:
                arrays[depth_input(i)] = depth
            arrays[f"t_capture_{i}"] = np.array(step.t_capture[i], np.float64)
            arrays[f"frame_number_{i}"] = np.array(step.frame_numbers[i], np.int64)
        self._queue.put((self._current / f"{step.index:06d}.npz", arrays))
        self._steps += 1

    def add_setpoint(self, t: float, action: np.ndarray, phase: int) -> None:
        """One commanded setpoint (every control tick): host monotonic time, action-space vector, phase."""
        self._sp_t.append(t)
        self._sp_action.append(np.asarray(action, np.float32))
        self._sp_phase.append(phase)

    def wait_written(self) -> None:
        """Until every step file added so far is on disk (`sim dagger` then appends its labels to them)."""
        self._queue.join()
        if self._error is not None:
            raise RuntimeError(f"writing {self._current}: {self._error}") from self._error

    def end(self, result: EpisodeResult, extra: dict[str, Any] | None = None) -> None:
        """Finish the episode: setpoints.npz, episode.json (`extra` merged into its record), dataset.json."""
        if self._current is None:
            raise RuntimeError("no episode to end")
        self.wait_written()  # every step file of the episode is on disk
        width = len(self.meta["action_names"])
        np.savez_compressed(
            self._current / SETPOINTS_FILE,
            t=np.asarray(self._sp_t, np.float64),
            action=np.asarray(self._sp_action, np.float32).reshape(-1, width),
            phase=np.asarray(self._sp_phase, np.int16),
        )
        record = {
            "dir": self._current.name,
            **result.to_dict(),
            "seed": self._seed,
            "scene": self.meta["scene"],
            "setpoints_file": SETPOINTS_FILE,
            "setpoints_recorded": len(self._sp_t),
            **(extra or {}),
        }
        (self._current / EPISODE_META).write_text(json.dumps(record, indent=2) + "\n")
        self.meta["episodes"].append(record)
        done = self.meta["episodes"]
        self.meta["success_rate"] = sum(1 for e in done if e["success"]) / len(done)
        self.meta["tasks"] = sorted({str(e["task"]) for e in done})
        ep_seeds = [int(e["seed"]) for e in done]
        self.meta["seed_range"] = [min(ep_seeds), max(ep_seeds) + 1]
        self._current = None
        self._flush()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30.0)

    def _write_files(self) -> None:
        while (item := self._queue.get()) is not None:
            path, arrays = item
            try:
                # (numpy's stubs type **kwds as its keyword flags; every value here is an array)
                np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
            except BaseException as e:  # reported by end(), in the caller's thread
                self._error = e
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _flush(self) -> None:
        tmp = self.out / (DATASET_FILE + ".tmp")
        tmp.write_text(json.dumps(self.meta, indent=2) + "\n")
        tmp.replace(self.out / DATASET_FILE)


def append_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Add arrays to an existing .npz step file (a zip of .npy members) without rewriting what it holds."""
    import zipfile

    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)


def step_files(path: Path) -> list[Path]:
    """The step files of an episode folder, in order (not `setpoints.npz`)."""
    return sorted(f for f in Path(path).glob("*.npz") if f.name != SETPOINTS_FILE)


def read_episode(path: Path) -> dict[str, np.ndarray]:
    """An episode's steps stacked along a leading time axis: {"image_0": [T, H, W, 3], "action": [T, A], ...}."""
    path = Path(path)
    files = step_files(path)
    if not files:
        raise ConfigError(f"{path}: no step files (*.npz) in this episode folder")
    columns: dict[str, list[np.ndarray]] = {}
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            for k in z.files:
                columns.setdefault(k, []).append(z[k])
    return {k: np.stack(v) for k, v in columns.items()}


def read_setpoints(path: Path) -> dict[str, np.ndarray]:
    """An episode's dense commanded setpoints: `t` float64 [N], `action` float32 [N, A], `phase` int16 [N]
    (version 2; a version-1 episode has none: ConfigError)."""
    f = Path(path) / SETPOINTS_FILE
    try:
        with np.load(f, allow_pickle=False) as z:
            out = {k: z[k] for k in ("t", "action", "phase")}
    except FileNotFoundError:
        raise ConfigError(f"{f}: not found (a version-1 episode records setpoints only per step)") from None
    except KeyError as e:
        raise ConfigError(f"{f}: missing the field {e.args[0]!r}") from None
    return out


def read_dataset(out: Path) -> dict[str, Any]:
    """dataset.json of a demo folder, version 1 or 2 (a v1 index gets v2's defaults: phase_names, scene)."""
    path = Path(out) / DATASET_FILE
    try:
        meta: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (is {out} a folder written by `harmowam-edge sim demos`?)") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{path}: format: expected {FORMAT!r}, got {meta.get('format')!r}")
    if meta.get("version") not in READABLE_VERSIONS:
        raise ConfigError(
            f"{path}: version: expected one of {', '.join(map(str, READABLE_VERSIONS))}, got {meta.get('version')!r}"
        )
    meta.setdefault("phase_names", [])
    meta.setdefault("scene", "id")
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
    record_hz: float | None = RECORD_HZ,
    control_hz: float = CONTROL_HZ,
    perturb: PerturbConfig | None = None,
    scene: str = "id",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the scripted expert for `episodes` episodes (seeds seed, seed+1, ...) and write them under `out`."""
    from firmware_bridge import ArmLink

    if episodes < 1:
        raise ConfigError(f"--episodes: expected at least 1, got {episodes}")
    seeds.check_training_seeds(seed, episodes)
    say = progress or (lambda _m: None)
    parse_task(task_name, object_name, seed)  # a clear error before anything starts
    check_out_dir(Path(out))
    with contextlib.ExitStack() as stack:
        rig = stack.enter_context(open_sim_rig(arms, cameras, seed, scene=scene))
        links = [
            stack.enter_context(ArmLink.open(port, arm=addr))
            for port, addr in zip(rig.arm_ports, rig.arm_addresses, strict=True)
        ]
        expert = ScriptedExpert(rig, links, control_hz=control_hz, record_hz=record_hz, perturb=perturb)
        writer = DemoWriter(out, rig, task_name, record_hz, control_hz, scene=scene, perturb=perturb)
        stack.callback(writer.close)
        lost_in_a_row = 0
        try:
            for i in range(episodes):
                ep_seed = seed + i
                ep_task = episode_task(task_name, object_name, ep_seed)
                writer.begin(i, ep_task, ep_seed)
                try:
                    expert.reset(ep_seed)
                    result = expert.run(ep_task, ep_seed, on_step=writer.add, on_setpoint=writer.add_setpoint)
                    lost_in_a_row = 0
                except (BridgeError, ExpertError) as e:
                    # A link that timed out (an overloaded machine) fails this episode, not the whole set.
                    lost_in_a_row += 1
                    if lost_in_a_row >= MAX_LOST_EPISODES:
                        raise
                    result = unplannable(ep_task, ep_seed, "?", e)
                    result.notes[-1] = f"the episode stopped on a link error: {e}"
                writer.end(result)
                say(
                    f"episode {i + 1}/{episodes} (seed {ep_seed}, {ep_task.name}): "
                    f"{'success' if result.success else 'FAILED'} "
                    f"[reach error {result.reach_error_m * 1e3:.1f} mm, lift {result.lift_m * 1e3:.0f} mm, "
                    f"{result.steps} steps" + (f", {result.pushes} push" if result.pushes else "") + "]"
                )
        finally:
            for link in links:
                with contextlib.suppress(Exception):
                    link.disable()
    return writer.meta
