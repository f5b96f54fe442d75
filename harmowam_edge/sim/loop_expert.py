"""The scripted expert through the runtime's own control loop: it takes the policy's place, nothing else changes.

`ScriptedPolicy.step(observation)` returns `ActionChunk`s sampled from an IK plan (K actions at the bundle's
action rate, anchored to the observation time, as the networks' chunks are), so the chunk scheduler, the
safety filter, the arm links and the firmware simulator all run exactly as for `harmowam-edge run`.
`DemoObserver` records the run in the demonstration format and judges success when the plan ends (before the
run's controlled stop turns torque off and the fingers let go).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from firmware_bridge import ArmLink, ArmMode
from harmowam_edge.bundle.loader import LoadedBundle, load_bundle
from harmowam_edge.bundle.schema import Manifest
from harmowam_edge.cameras.frames import Frame
from harmowam_edge.control.loop import Rig, RunObserver, RunOptions, RunSummary, TickRecord, run_policy
from harmowam_edge.control.safety import SafetyConfig
from harmowam_edge.errors import ConfigError
from harmowam_edge.policy.gate import GateMode
from harmowam_edge.policy.policy import STAGES, ActionChunk, Observation
from harmowam_edge.sim import planning, seeds
from harmowam_edge.sim.demos import DemoWriter, check_out_dir, episode_task
from harmowam_edge.sim.expert import (
    RECORD_HZ,
    EpisodeResult,
    SetpointSink,
    Step,
    choose_arm,
    judge,
    unplannable,
)
from harmowam_edge.sim.rig import SimRig, open_sim_rig
from harmowam_edge.sim.tasks import IDLE_PHASE, Task, parse_task, phase_index

SCRIPTED_MODE = cast(GateMode, "scripted")  # not a gate decision: the chunks come from the plan
SIM_STATE_TIMEOUT_S = 0.5  # as run --sim
RUN_MARGIN_S = 2.0  # run time beyond the plan: start-up (enable, first frame) and the judging after it ends


class ScriptedPolicy:
    """Stands in for `harmowam_edge.policy.Policy` in `run_policy`: chunks from a plan made for the rig."""

    gate = None  # no gate: the run's statistics report none

    def __init__(self, manifest: Manifest, plans: Sequence[planning.TaskPlan | None], task: Task) -> None:
        self.k = manifest.policy.chunk_size
        self.rate = manifest.policy.action_rate_hz
        self.arms = manifest.action_space.arms
        self.plans = list(plans)  # one per arm; None: that arm holds where it was at the first observation
        self.task = task
        self.t0: float | None = None
        self._hold: list[np.ndarray] = []
        self._index = 0

    @property
    def duration(self) -> float:
        return max((p.trajectory.duration for p in self.plans if p is not None), default=0.0)

    def elapsed(self, now: float) -> float | None:
        """Plan time at host time `now` (None before the first chunk)."""
        return None if self.t0 is None else now - self.t0

    def step(self, obs: Observation) -> ActionChunk:
        t_start = time.perf_counter()
        t_obs = obs.time
        if self.t0 is None:
            self.t0 = t_obs
            start = 0
            for arm in self.arms:
                n = len(arm.dims)
                self._hold.append(np.asarray(obs.joint_pos[start : start + n], dtype=np.float64))
                start += n
        rows = []
        for k in range(self.k):
            t = t_obs - self.t0 + k / self.rate
            parts = []
            for i, plan in enumerate(self.plans):
                if plan is None:
                    parts.append(self._hold[i])
                else:
                    q, _, g = plan.trajectory.sample(t)
                    parts.append(np.append(q, g))
            rows.append(np.concatenate(parts))
        self._index += 1
        timings = dict.fromkeys(STAGES, 0.0)
        timings["total"] = time.perf_counter() - t_start
        return ActionChunk(
            index=self._index,
            t_obs=t_obs,
            actions=np.asarray(rows, dtype=np.float32),
            gate_weights=np.zeros(self.k, np.float32),
            blend_weights=np.zeros(self.k, np.float32),
            mode=SCRIPTED_MODE,
            experts=("scripted",),
            timings=timings,
            t_ready=time.monotonic(),
            task=self.task.name,
            frame_numbers=tuple(f.frame_number for f in obs.frames),
        )


class DemoObserver(RunObserver):
    """Records a step per camera frame (or at `record_hz`; own thread) and every setpoint the loop sent, and
    judges the episode from ground truth when the plan ends."""

    def __init__(
        self,
        rig: SimRig,
        policy: ScriptedPolicy,
        acting: int,
        record_hz: float | None = RECORD_HZ,
        on_step: Callable[[Step], None] | None = None,
        on_setpoint: SetpointSink | None = None,
    ) -> None:
        self.rig = rig
        self.policy = policy
        self.acting = acting
        self.record_hz = record_hz
        self.on_step = on_step
        self.on_setpoint = on_setpoint
        plan = policy.plans[acting]
        assert plan is not None
        self.plan = plan
        self._target = plan.approach_position if plan.kind == "reach" else plan.grasp_position
        self._obj_start, _ = rig.world.object_pose(plan.object)
        self._lock = threading.Lock()
        self._tick: TickRecord | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.steps = 0
        self.reach_error = float("inf")
        self.limit_violations = 0
        self.result: EpisodeResult | None = None
        self.error: BaseException | None = None
        space = rig.action_space
        self._lower = np.array([d.lower for d in space.dims])
        self._upper = np.array([d.upper for d in space.dims])

    def on_start(self, info: Any) -> None:
        self._thread = threading.Thread(target=self._run, name="sim-demo-recorder", daemon=True)
        self._thread.start()

    def on_tick(self, tick: TickRecord) -> None:
        self._tick = tick  # one store (and a list append): the control thread must not wait
        if self.on_setpoint is not None and tick.sent:
            self.on_setpoint(tick.t, np.asarray(tick.command, np.float32), self.phase_at(tick.t))

    def phase_at(self, now: float) -> int:
        """The acting arm's plan phase at host time `now` (idle before the first chunk and after the plan)."""
        elapsed = self.policy.elapsed(now)
        if elapsed is None or elapsed > self.plan.trajectory.duration:
            return IDLE_PHASE
        return phase_index(self.plan.trajectory.segment_at(elapsed).label)

    def on_chunk(self, chunk: ActionChunk, frames: Sequence[Frame]) -> None:
        pass

    def on_end(self, summary: RunSummary) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def _run(self) -> None:
        period = 1.0 / self.record_hz if self.record_hz is not None else 0.0
        world = self.rig.world
        cam0 = self.rig.cameras[0] if self.rig.cameras else None
        last_frame: int | None = None
        next_t = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.record_hz is None and cam0 is not None:  # one step per new frame of the first camera
                    frame = cam0.wait_newer(last_frame, timeout=0.1)
                    if frame is None:
                        continue
                    last_frame = frame.frame_number
                now = time.monotonic()
                elapsed = self.policy.elapsed(now)
                tick = self._tick
                if elapsed is not None and tick is not None and tick.sent:
                    tcp = world.tcp_position(self.acting)
                    self.reach_error = min(self.reach_error, float(np.linalg.norm(tcp - self._target)))
                    meas = np.asarray(tick.measured)
                    if np.any(meas < self._lower - 1e-3) or np.any(meas > self._upper + 1e-3):
                        self.limit_violations += 1
                    if elapsed <= self.policy.duration:
                        if self.on_step is not None:
                            self.on_step(self._observe(now, tick))
                        self.steps += 1
                    if self.result is None and elapsed >= self.policy.duration:
                        self.result = self._judge()
                if self.record_hz is not None or cam0 is None:
                    next_t += period or 1.0 / 30.0
                    self._stop.wait(max(0.0, next_t - time.monotonic()))
        except Exception as e:  # the run goes on; the episode is reported as failed
            self.error = e

    def _observe(self, now: float, tick: TickRecord) -> Step:
        images, depths, t_cap, numbers = [], [], [], []
        for cam in self.rig.cameras:
            f = cam.latest()
            if f is None:
                raise RuntimeError(f"camera {cam.spec.name}: no frame")
            images.append(f.color)
            depths.append(f.depth)
            t_cap.append(f.t_capture)
            numbers.append(f.frame_number)
        vel = []
        for plant in self.rig.plants:
            vel.append(np.append(plant.measure().velocities, 0.0))
        return Step(
            index=self.steps,
            t=now,
            images=tuple(images),
            depths=tuple(depths),
            t_capture=tuple(t_cap),
            frame_numbers=tuple(numbers),
            joint_pos=np.asarray(tick.measured, np.float32),
            joint_vel=np.concatenate(vel).astype(np.float32),
            action=np.asarray(tick.command, np.float32),
            phase=self.phase_at(now),
        )

    def _judge(self) -> EpisodeResult:
        result = EpisodeResult(
            self.policy.task, 0, self.plan.arm, False, False, self.reach_error, 0.0, None, 0.0, 0, 0, 0, 0
        )
        judge(self.rig, result, self.plan, self._obj_start, self.acting, settle_s=0.2)
        return result


def _clear_estops(rig: SimRig) -> None:
    """A run that ended on a fault leaves its arm e-stopped (latched, as a real firmware does); between
    episodes the operator resets it, here through the same link a person would use."""
    for port, address in zip(rig.arm_ports, rig.arm_addresses, strict=True):
        with ArmLink.open(port, arm=address) as link:
            state = link.wait_state(1.0)
            if state is not None and state.mode is ArmMode.ESTOP:
                link.reset_estop()


def run_episode_via_runtime(
    bundle: LoadedBundle,
    rig: SimRig,
    task: Task,
    seed: int,
    *,
    record_hz: float | None = RECORD_HZ,
    on_step: Callable[[Step], None] | None = None,
    on_setpoint: SetpointSink | None = None,
) -> tuple[EpisodeResult, RunSummary | None]:
    """Reset the world for `seed`, plan from the arms' home pose, and run the plan through `run_policy`
    (the summary is None when no plan could be made and nothing ran)."""
    _clear_estops(rig)
    rig.world.reset(seed)
    time.sleep(0.05)  # the firmware's reference follows the teleported arm while disabled
    acting = choose_arm(rig, task.object)
    plans: list[planning.TaskPlan | None] = [None] * len(rig.plants)
    start = rig.plants[acting].measure()
    try:
        plans[acting] = planning.plan_task(rig.world, acting, task.kind, task.object, start.positions, start.gripper)
    except planning.IKError as e:  # an unreachable layout is a failed episode, not a crash
        return unplannable(task, seed, rig.arm_names[acting], e), None
    policy = ScriptedPolicy(bundle.manifest, plans, task)
    observer = DemoObserver(rig, policy, acting, record_hz, on_step, on_setpoint)
    options = RunOptions(
        task=task.name,
        duration_s=policy.duration + RUN_MARGIN_S,
        seed=seed,
        handle_signals=False,
        # As `run --sim`: rendering and physics share the CPU with the loop, so allow the simulated firmware's
        # state stream longer gaps than a real arm's before the loop calls it lost.
        safety=SafetyConfig(state_timeout_s=SIM_STATE_TIMEOUT_S),
    )
    t0 = time.monotonic()
    summary = run_policy(
        bundle,
        Rig(list(rig.arm_ports), list(rig.cameras), name="sim", stop_cameras=False),
        options,
        [observer],
        policy=policy,  # type: ignore[arg-type]  # duck-typed: step() and gate, as run_policy uses them
    )
    result = observer.result
    if result is None:
        why = observer.error or summary.reason.message
        result = EpisodeResult(
            task, seed, observer.plan.arm, False, False, observer.reach_error, 0.0, None, 0.0, 0, 0, 0, 0
        )
        result.notes.append(f"the plan did not finish: {why}")
    result.seed = seed
    result.steps = observer.steps
    result.duration_s = time.monotonic() - t0
    result.setpoints = int(summary.stats.get("setpoints_sent", 0))
    result.late_ticks = int(summary.stats.get("loop", {}).get("missed_ticks", 0))
    result.limit_violations = observer.limit_violations
    if not summary.clean:
        result.success = False
        result.notes.append(f"the run stopped on a fault: {summary.reason.kind}: {summary.reason.message}")
    return result, summary


def collect_demos_via_runtime(
    bundle_path: Path,
    task_name: str,
    episodes: int,
    out: Path,
    *,
    object_name: str | None = None,
    seed: int = 0,
    record_hz: float | None = RECORD_HZ,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """`sim demos --bundle B`: episodes through the runtime's loop, on B's cameras and action space."""
    if episodes < 1:
        raise ConfigError(f"--episodes: expected at least 1, got {episodes}")
    seeds.check_training_seeds(seed, episodes)
    say = progress or (lambda _m: None)
    parse_task(task_name, object_name, seed)  # a clear error before anything starts
    check_out_dir(Path(out))
    with contextlib.ExitStack() as stack:
        bundle = load_bundle(bundle_path)
        stack.callback(bundle.close)
        m = bundle.manifest
        rig = stack.enter_context(
            open_sim_rig(len(m.action_space.arms), list(m.cameras), seed, action_space=m.action_space)
        )
        control_hz = 200.0
        writer = DemoWriter(out, rig, task_name, record_hz, control_hz)
        stack.callback(writer.close)
        writer.meta["driver"] = f"runtime control loop (run_policy) with bundle {bundle_path}"
        for i in range(episodes):
            ep_seed = seed + i
            ep_task = episode_task(task_name, object_name, ep_seed)
            writer.begin(i, ep_task, ep_seed)
            result, _ = run_episode_via_runtime(
                bundle,
                rig,
                ep_task,
                ep_seed,
                record_hz=record_hz,
                on_step=writer.add,
                on_setpoint=writer.add_setpoint,
            )
            writer.end(result)
            say(
                f"episode {i + 1}/{episodes} (seed {ep_seed}, {ep_task.name}, through the runtime loop): "
                f"{'success' if result.success else 'FAILED'} [reach error {result.reach_error_m * 1e3:.1f} mm, "
                f"lift {result.lift_m * 1e3:.0f} mm, {result.steps} steps]"
                + (f" ({'; '.join(result.notes)})" if result.notes else "")
            )
    return writer.meta
