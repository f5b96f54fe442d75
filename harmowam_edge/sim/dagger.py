"""`harmowam-edge sim dagger`: roll a bundle out on the simulated rig and label what it saw with the expert.

Each episode runs exactly as in `sim eval` (`evaluation.run_eval_episode`: the bundle's real `Policy` through
`run_policy`, the shared success predicate, the time budget); `DaggerRecorder` records the run in the demo
format v2 (one .npz per frame, `setpoints.npz` with the learner's own setpoints) and keeps, per frame, the
measured state and the world's ground truth. After the episode `relabel.relabel` plans the scripted expert
from each of those states and `label_chunk` [K, A] / `label_phase` are appended to the frame's file: the
learner's states, the expert's actions (DAgger). Labelling runs after the episode so the rollout's control loop
never shares the CPU with IK. The facts each label was planned from (`STATE_FIELDS`, and the episode's context
in episode.json) stay in the files, so `relabel_rollouts.relabel_rollouts` can label them again offline.

`phase` in the frame files and in setpoints.npz is `idle`: what the learner commanded is no expert behaviour, so a
reader that does not know the labels trains on none of it rather than cloning the learner.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import harmowam_edge
from harmowam_edge.bundle.loader import load_bundle
from harmowam_edge.bundle.schema import MANIFEST_NAME, sha256_file
from harmowam_edge.cameras.frames import Frame
from harmowam_edge.control.loop import RunObserver, TickRecord
from harmowam_edge.errors import ConfigError
from harmowam_edge.policy.policy import ActionChunk
from harmowam_edge.sim import seeds
from harmowam_edge.sim.demos import DemoWriter, append_arrays, check_out_dir
from harmowam_edge.sim.evaluation import EpisodeOutcome, open_rig_for, run_eval_episode
from harmowam_edge.sim.expert import EpisodeResult, Step
from harmowam_edge.sim.planning import IKSolver
from harmowam_edge.sim.relabel import EpisodeContext, FrameState, relabel
from harmowam_edge.sim.rig import SimRig
from harmowam_edge.sim.scene import check_scene
from harmowam_edge.sim.tasks import IDLE_PHASE, Task, parse_task

DRIVER = "dagger"
DEFAULT_RECORD_HZ = 15.0
DEFAULT_MAX_SECONDS = 20.0
CONTROL_HZ = 200.0  # the runtime loop's rate (dataset.json's control_hz, as `sim demos --bundle` writes it)


@dataclass(frozen=True)
class DaggerConfig:
    bundle: Path
    task: str  # a full name (pick_red_cube) or a kind (pick: the object comes from each seed)
    episodes: int
    seed: int
    out: Path
    scene: str = "id"
    threads: int | None = 1
    record_hz: float = DEFAULT_RECORD_HZ
    max_seconds: float = DEFAULT_MAX_SECONDS

    def validate(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"--episodes: expected at least 1, got {self.episodes}")
        seeds.check_training_seeds(self.seed, self.episodes)
        if not 0.5 <= self.record_hz <= 60.0:
            raise ConfigError(f"--record-hz: expected 0.5..60 steps per second, got {self.record_hz}")
        if not 1.0 <= self.max_seconds <= 600.0:
            raise ConfigError(f"--max-seconds: expected 1..600 s, got {self.max_seconds}")
        check_scene(self.scene)
        parse_task(self.task, None, self.seed)
        check_out_dir(self.out)


class DaggerRecorder(RunObserver):
    """Records a frame at `record_hz` while the loop sends setpoints (own thread), and every setpoint sent."""

    def __init__(self, rig: SimRig, task: Task, acting: int, writer: DemoWriter, record_hz: float) -> None:
        self.rig = rig
        self.task = task
        self.writer = writer
        self.period = 1.0 / record_hz
        self.context = EpisodeContext(task, acting, rig.world.object_pose(task.object)[0], rig.world.goal_position())
        self.states: list[FrameState] = []
        self.error: BaseException | None = None
        self._tick: TickRecord | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_start(self, info: Any) -> None:
        self._thread = threading.Thread(target=self._run, name="sim-dagger-recorder", daemon=True)
        self._thread.start()

    def on_tick(self, tick: TickRecord) -> None:
        self._tick = tick  # one store (and a list append): the control thread must not wait
        if tick.sent:
            self.writer.add_setpoint(tick.t, np.asarray(tick.command, np.float32), IDLE_PHASE)

    def on_chunk(self, chunk: ActionChunk, frames: Sequence[Frame]) -> None:
        pass

    def on_end(self, summary: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def _run(self) -> None:
        next_t = time.monotonic()
        try:
            while not self._stop.is_set():
                tick = self._tick
                if tick is not None and tick.sent:
                    self._record(tick)
                next_t += self.period
                self._stop.wait(max(0.0, next_t - time.monotonic()))
        except Exception as e:  # the run goes on; what was recorded stays
            self.error = e

    def _record(self, tick: TickRecord) -> None:
        world = self.rig.world
        images, depths, t_cap, numbers = [], [], [], []
        for cam in self.rig.cameras:
            f = cam.latest()
            if f is None:
                return  # no frame yet: nothing the policy could have seen
            images.append(f.color)
            depths.append(f.depth)
            t_cap.append(f.t_capture)
            numbers.append(f.frame_number)
        vel = np.concatenate([np.append(p.measure().velocities, 0.0) for p in self.rig.plants]).astype(np.float32)
        obj_pos, obj_quat = world.object_pose(self.task.object)
        tcp = world.tcp_position(self.context.acting)
        measured = np.asarray(tick.measured, np.float32)
        step = Step(
            index=len(self.states),
            t=time.monotonic(),
            images=tuple(images),
            depths=tuple(depths),
            t_capture=tuple(t_cap),
            frame_numbers=tuple(numbers),
            joint_pos=measured,
            joint_vel=vel,
            action=np.asarray(tick.command, np.float32),
            phase=IDLE_PHASE,
        )
        self.writer.add(step)
        command = np.asarray(tick.command, np.float32)
        self.states.append(FrameState(tick.t, t_cap[0], measured, vel, obj_pos, obj_quat, tcp, command))


def label_episode(
    rig: SimRig, recorder: DaggerRecorder, ep_dir: Path, chunk_size: int, rate_hz: float, ik: IKSolver
) -> dict[str, int]:
    """Append `label_chunk` and `label_phase` to every recorded frame of the episode; how many of each rule."""
    counts: dict[str, int] = {}
    for i, state in enumerate(recorder.states):
        label = relabel(rig.world, recorder.context, state, chunk_size, rate_hz, ik)
        counts[label.situation] = counts.get(label.situation, 0) + 1
        arrays: dict[str, np.ndarray] = {
            "label_chunk": label.chunk.astype(np.float32),
            "label_phase": np.array(label.phase, np.int16),
            **state_arrays(state),
        }
        append_arrays(ep_dir / f"{i:06d}.npz", arrays)
    return counts


# The recorded facts a label was planned from, kept in the frame file so `sim relabel` can plan again offline.
STATE_FIELDS = ("state_t", "state_object_pos", "state_object_quat", "state_tcp", "state_command")


def state_arrays(state: FrameState) -> dict[str, np.ndarray]:
    """A frame's `FrameState` beyond what the frame file holds already (joint_pos, joint_vel, t_capture_0)."""
    command = state.joint_pos if state.command is None else state.command
    return {
        "state_t": np.array(state.t_state, np.float64),
        "state_object_pos": np.asarray(state.object_pos, np.float64),
        "state_object_quat": np.asarray(state.object_quat, np.float64),
        "state_tcp": np.asarray(state.tcp, np.float64),
        "state_command": np.asarray(command, np.float32),
    }


def context_record(ctx: EpisodeContext) -> dict[str, Any]:
    """What `EpisodeContext` holds besides the task, for episode.json (`sim relabel` rebuilds it from this)."""
    return {"acting": ctx.acting, "object_start": ctx.object_start.tolist(), "goal": ctx.goal.tolist()}


def _result(task: Task, seed: int, arm: str, outcome: EpisodeOutcome, rec: DaggerRecorder | None) -> EpisodeResult:
    states = rec.states if rec is not None else []
    target_reach = np.inf
    lift = 0.0
    if rec is not None and states:
        from harmowam_edge.sim import success

        target = success.grasp_point(rec.context.object_start)
        target_reach = min(float(np.linalg.norm(s.tcp - target)) for s in states)
        lift = float(states[-1].object_pos[2] - rec.context.object_start[2])
    result = EpisodeResult(task, seed, arm, outcome.success, target_reach <= 0.01, target_reach, lift, None,
                           outcome.duration_s, 0, 0, 0, 0)  # fmt: skip
    result.steps = len(states)
    result.notes.append(f"{outcome.reason}: {outcome.message}; {outcome.verdict}")
    return result


def collect_dagger(cfg: DaggerConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Roll `cfg.bundle` out for seeds seed..seed+episodes-1, label every frame with the expert, write `cfg.out`."""
    cfg.validate()
    say = progress or (lambda _m: None)
    tasks = [parse_task(cfg.task, None, cfg.seed + i) for i in range(cfg.episodes)]
    with contextlib.ExitStack() as stack:
        bundle = load_bundle(cfg.bundle, threads=cfg.threads)
        stack.callback(bundle.close)
        for name in sorted({t.name for t in tasks}):
            bundle.task_embedding(name)  # a clear error now for a task the bundle was not made for
        m = bundle.manifest
        k, rate = m.policy.chunk_size, m.policy.action_rate_hz
        rig = stack.enter_context(open_rig_for(m, cfg.seed, cfg.scene))
        writer = DemoWriter(cfg.out, rig, cfg.task, cfg.record_hz, CONTROL_HZ, scene=cfg.scene)
        stack.callback(writer.close)
        writer.meta.update(
            generator=f"harmowam-edge {harmowam_edge.__version__} sim dagger",
            driver=DRIVER,
            bundle={"path": str(cfg.bundle), "manifest_sha256": sha256_file(Path(cfg.bundle) / MANIFEST_NAME)},
            label={
                "fields": ["label_chunk", "label_phase"],
                "chunk_size": k,
                "action_rate_hz": rate,
                "state_fields": list(STATE_FIELDS),
            },
            max_seconds=cfg.max_seconds,
        )
        ik = IKSolver(rig.world)  # one solver for every label (private MjData; the model is only read)
        successes = 0
        for i, task in enumerate(tasks):
            ep_seed = cfg.seed + i
            ep_dir = writer.begin(i, task, ep_seed)
            recorders: list[DaggerRecorder] = []

            def make(r: SimRig, t: Task, acting: int, made: list[DaggerRecorder] = recorders) -> list[RunObserver]:
                made.append(DaggerRecorder(r, t, acting, writer, cfg.record_hz))
                return [made[-1]]

            outcome = run_eval_episode(bundle, cfg.bundle.name, rig, task, ep_seed, cfg.max_seconds,
                                       observer_factory=make)  # fmt: skip
            rec = recorders[0] if recorders else None
            writer.wait_written()
            t0 = time.monotonic()
            counts: dict[str, int] = {}
            if rec is not None and len(rec.states) >= 2:
                counts = label_episode(rig, rec, ep_dir, k, rate, ik)
            else:  # fewer than two frames is no episode to train on: keep none of it
                for f in ep_dir.glob("[0-9]*.npz"):
                    f.unlink()
                if rec is not None:
                    rec.states.clear()
            arm = rig.arm_names[rec.context.acting] if rec is not None else "?"
            result = _result(task, ep_seed, arm, outcome, rec)
            if not counts:
                result.success = False  # nothing recorded: the reader skips it
            successes += int(outcome.success)
            writer.end(
                result,
                extra={
                    "rollout": outcome.to_dict(),
                    "labels": counts,
                    **({"context": context_record(rec.context)} if rec is not None else {}),
                    "label_time_s": round(time.monotonic() - t0, 3),
                    **({"recorder_error": repr(rec.error)} if rec is not None and rec.error else {}),
                },
            )
            say(
                f"episode {i + 1}/{cfg.episodes} seed {ep_seed} {task.name}: "
                f"{'success' if outcome.success else 'FAILED'} ({outcome.stage}), {result.steps} steps labelled"
                + (f" [{', '.join(f'{s} {n}' for s, n in sorted(counts.items()))}]" if counts else "")
            )
    say(
        f"sim dagger: {successes}/{cfg.episodes} rollouts succeeded; "
        f"{sum(int(e['steps']) for e in writer.meta['episodes'])} frames labelled by the expert; wrote {cfg.out}"
    )
    return writer.meta
