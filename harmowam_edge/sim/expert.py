"""The scripted expert: reach, pick, or pick-and-place a named object by IK, driving the rig over `ArmLink`.

It streams setpoints to the firmware simulators through their pseudo-terminals exactly as the runtime does
(enable, absolute setpoints with velocity feed-forward, the firmware limits them), records observations
(frames, joint state) and the actions it sent, and judges success from the simulator's ground truth.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from firmware_bridge import ArmClient, ArmMode, ArmState, FaultBits
from harmowam_edge.errors import ConfigError, HarmowamError
from harmowam_edge.sim import perturb as perturb_mod
from harmowam_edge.sim import planning
from harmowam_edge.sim import success as success_mod
from harmowam_edge.sim.rig import SimRig
from harmowam_edge.sim.tasks import IDLE_PHASE, PERTURB_PHASE, PHASE_NAMES, Task, parse_task, phase_index

CONTROL_HZ = 100.0  # setpoint stream rate of the expert
RECORD_HZ: float | None = None  # None: record a step for every new frame of the first camera (the camera rate)
REACH_TOLERANCE = success_mod.REACH_TOLERANCE
LIFT_SUCCESS = success_mod.LIFT_SUCCESS
PLACE_TOLERANCE = success_mod.PLACE_TOLERANCE
_FAULTS = (
    FaultBits.WATCHDOG_HOLD
    | FaultBits.WATCHDOG_TORQUE_OFF
    | FaultBits.ESTOP_LATCHED
    | FaultBits.HARDWARE_ESTOP
    | FaultBits.DRIVE_FAULT
    | FaultBits.COMMAND_REJECTED
)
_LIMITED = FaultBits.POSITION_CLAMPED | FaultBits.VELOCITY_LIMITED | FaultBits.ACCELERATION_LIMITED

__all__ = ["PHASE_NAMES", "ExpertError", "ScriptedExpert", "Step", "Task", "parse_task"]


class ExpertError(HarmowamError):
    """The scripted expert could not run (a link refused to enable, a task it does not know)."""


@dataclass(frozen=True)
class Step:
    """One recorded observation and the action sent at that moment (action-space order, raw units)."""

    index: int
    t: float  # host monotonic seconds
    images: tuple[np.ndarray, ...]  # uint8 [H, W, 3] per camera
    depths: tuple[np.ndarray | None, ...]  # uint16 [H, W] z16 per camera (None without depth)
    t_capture: tuple[float, ...]  # per camera
    frame_numbers: tuple[int, ...]
    joint_pos: np.ndarray  # float32 [A] measured
    joint_vel: np.ndarray  # float32 [A] measured (gripper: 0, the firmware reports no gripper velocity)
    action: np.ndarray  # float32 [A] the setpoint sent
    phase: int = IDLE_PHASE  # the acting arm's phase at this step (index into tasks.PHASE_NAMES)


# One commanded setpoint: host monotonic time it was sent, the action-space vector, its phase.
SetpointSink = Callable[[float, np.ndarray, int], None]


@dataclass
class EpisodeResult:
    task: Task
    seed: int
    arm: str
    success: bool
    reached: bool
    reach_error_m: float  # closest the TCP came to its target (grasp point, or the point above for reach)
    lift_m: float  # how far the object ends above where it lay
    place_error_m: float | None  # object centre to goal centre at the end (pick_and_place)
    duration_s: float
    setpoints: int
    late_ticks: int  # control ticks more than one period late (a loaded machine)
    limit_violations: int  # measured positions outside the arm's limits (must stay 0)
    fault_states: int  # state reports with a fault condition (watchdog, e-stop, drive fault) set
    limited_states: int = 0  # state reports saying the firmware had to limit or clamp the expert's setpoints
    steps: int = 0
    pushes: int = 0  # mid-episode perturbations the expert recovered from (re-planned after)
    replans: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "task": self.task.name,
            "kind": self.task.kind,
            "object": self.task.object,
            "seed": self.seed,
            "arm": self.arm,
            "success": bool(self.success),
            "reached": bool(self.reached),
            "reach_error_m": round(self.reach_error_m, 5),
            "lift_m": round(self.lift_m, 5),
            "place_error_m": None if self.place_error_m is None else round(self.place_error_m, 5),
            "duration_s": round(self.duration_s, 3),
            "setpoints": self.setpoints,
            "late_ticks": self.late_ticks,
            "limit_violations": self.limit_violations,
            "fault_states": self.fault_states,
            "limited_states": self.limited_states,
            "steps": self.steps,
            "pushes": self.pushes,
            "replans": self.replans,
            "notes": list(self.notes),
        }


def unplannable(task: Task, seed: int, arm: str, error: Exception) -> EpisodeResult:
    """The result of an episode whose plan could not be made (nothing was sent to the arm)."""
    result = EpisodeResult(task, seed, arm, False, False, float("inf"), 0.0, None, 0.0, 0, 0, 0, 0)
    result.notes.append(f"no plan: {error}")
    return result


def choose_arm(rig: SimRig, object_name: str) -> int:
    """The arm that picks: the one whose base is nearest the object (single arm: that one)."""
    pos, _ = rig.world.object_pose(object_name)
    mounts = [a.mount for a in rig.world.arm_index]
    return int(np.argmin([np.linalg.norm(pos[:2] - np.asarray(m.pos[:2])) for m in mounts]))


def _state(link: ArmClient, timeout: float = 1.0) -> ArmState:
    s = link.wait_state(timeout)
    if s is None:
        s = link.state()
    if s is None:
        raise ExpertError("no state from the arm within 1 s: is the firmware simulator running?")
    return s


class ScriptedExpert:
    """Drives every arm of a rig over its links; one arm does the task, the others hold still."""

    def __init__(
        self,
        rig: SimRig,
        links: Sequence[ArmClient],
        *,
        control_hz: float = CONTROL_HZ,
        record_hz: float | None = RECORD_HZ,
        perturb: perturb_mod.PerturbConfig | None = None,
    ) -> None:
        if len(links) != len(rig.arm_ports):
            raise ConfigError(f"links: expected one per arm ({len(rig.arm_ports)}), got {len(links)}")
        if record_hz is not None and not record_hz > 0:
            raise ConfigError(f"--record-hz: expected a rate > 0, got {record_hz}")
        self.rig = rig
        self.links = list(links)
        self.control_hz = control_hz
        self.record_hz = record_hz
        self.perturb = perturb or perturb_mod.PerturbConfig()
        self._lower = [np.array([j.lower for j in a.joints]) for a in rig.action_space.arms]
        self._upper = [np.array([j.upper for j in a.joints]) for a in rig.action_space.arms]

    def reset(self, seed: int) -> None:
        """A fresh episode: torque off, the world reset for the seed (objects placed; arms home, or at a seeded
        perturbed pose with `--perturb start`), torque on."""
        for link in self.links:
            state = link.wait_state(0.5)
            if state is not None and state.mode is ArmMode.ESTOP:  # latched by a fault in an earlier episode
                link.reset_estop()
            link.disable()
        poses = None
        if self.perturb.start:
            poses = [perturb_mod.start_pose(seed, i, self.perturb) for i in range(len(self.links))]
        self.rig.world.reset(seed, arm_poses=poses)
        time.sleep(0.05)  # let the firmware's reference follow the arm home while disabled
        self.enable()

    def enable(self) -> None:
        for i, link in enumerate(self.links):
            state = _state(link)
            if not state.enabled:
                link.enable()
            deadline = time.monotonic() + 2.0
            while not (state := _state(link)).enabled:
                if time.monotonic() > deadline:
                    raise ExpertError(f"arm {self.rig.arm_names[i]}: did not enable (mode {state.mode.name})")

    def _plan(self, task: Task, acting: int) -> planning.TaskPlan:
        s = _state(self.links[acting])
        return planning.plan_task(
            self.rig.world, acting, task.kind, task.object, np.asarray(s.positions, float), float(s.gripper or 0.0)
        )

    def run(
        self,
        task: Task,
        seed: int,
        on_step: Callable[[Step], None] | None = None,
        on_setpoint: SetpointSink | None = None,
    ) -> EpisodeResult:
        """Plan from the measured state and stream the plan at the control rate; record a step per camera frame
        (or at `record_hz`) and every setpoint sent. With `--perturb push`, one commanded push mid-episode, then
        a new plan from the measured state."""
        rig, world = self.rig, self.rig.world
        acting = choose_arm(rig, task.object)
        starts = [_state(link) for link in self.links]
        q_start = [np.asarray(s.positions, float) for s in starts]
        g_start = [float(s.gripper or 0.0) for s in starts]
        try:
            plan = self._plan(task, acting)
        except planning.IKError as e:  # an unreachable layout is a failed episode, not a crash
            return unplannable(task, seed, rig.arm_names[acting], e)
        obj_start, _ = world.object_pose(task.object)
        push = perturb_mod.push_for(seed, self.perturb) if self.perturb.push else None
        push_at = None if push is None else push.fraction * _time_to_grasp(plan)
        push_seg: planning.Segment | None = None  # the push being played (then: a new plan)
        period = 1.0 / self.control_hz
        result = EpisodeResult(task, seed, plan.arm, False, False, float("inf"), 0.0, None, 0.0, 0, 0, 0, 0)
        cam0 = rig.cameras[0] if rig.cameras else None
        last_frame = -1
        last_record = -np.inf
        t0 = time.monotonic()
        t_plan = t0  # when the current plan (or push) started
        q_cmd, g_cmd = q_start[acting], g_start[acting]
        tick = 0
        while True:
            now = time.monotonic()
            t = now - t_plan
            if push_seg is not None and t >= push_seg.duration:
                push_seg = None
                try:
                    plan = self._plan(task, acting)  # from where the push left the arm, as measured
                    result.replans += 1
                    result.pushes += 1
                except planning.IKError as e:
                    result.notes.append(f"no plan after the push: {e}")
                    break
                t_plan, t = now, 0.0
            elif push_seg is None and push_at is not None and now - t0 >= push_at:
                push_at = None
                push_seg = self._push_segment(acting, q_cmd, g_cmd, push, result)
                if push_seg is not None:
                    t_plan, t = now, 0.0
            if push_seg is not None:
                q, v, g = push_seg.sample(t)
                phase = PERTURB_PHASE
                done = False
            else:
                q, v, g = plan.trajectory.sample(t)
                phase = phase_index(plan.trajectory.segment_at(t).label)
                done = t >= plan.trajectory.duration
            q_cmd, g_cmd = q, g
            actions = []
            for i, link in enumerate(self.links):
                if i == acting:
                    link.send_setpoint(q, v, g)
                    actions.append(np.append(q, g))
                else:
                    link.send_setpoint(q_start[i], np.zeros_like(q_start[i]), g_start[i])
                    actions.append(np.append(q_start[i], g_start[i]))
                result.setpoints += 1
            action = np.concatenate(actions).astype(np.float32)
            if on_setpoint is not None:
                on_setpoint(now, action, phase)
            frame = cam0.latest() if cam0 is not None else None
            fresh = frame is None or frame.frame_number != last_frame
            due = self.record_hz is None or now - last_record >= 0.999 / self.record_hz
            if fresh and due:  # one step per camera frame: never the same frame twice
                step = self._observe(result.steps, now, action, phase, result)
                last_frame = step.frame_numbers[0] if step.frame_numbers else -1
                last_record = now
                target = plan.approach_position if task.kind == "reach" else plan.grasp_position
                tcp = world.tcp_position(acting)
                result.reach_error_m = min(result.reach_error_m, float(np.linalg.norm(tcp - target)))
                if on_step is not None:
                    on_step(step)
                result.steps += 1
            if done:
                break
            tick += 1
            wake = t0 + tick * period
            delay = wake - time.monotonic()
            if delay < -period:
                result.late_ticks += 1
            if delay > 0:
                time.sleep(delay)
        result.duration_s = time.monotonic() - t0
        judge(self.rig, result, plan, obj_start, acting)
        return result

    def _push_segment(
        self, acting: int, q: np.ndarray, g: float, push: perturb_mod.Push | None, result: EpisodeResult
    ) -> planning.Segment | None:
        """A move of the tool by the push's offset from the commanded pose (None, with a note, if IK cannot)."""
        if push is None:
            return None
        ik = planning.IKSolver(self.rig.world)
        arm = self.rig.world.arm(acting)
        pos, rot = ik.tcp_pose(arm, q)
        try:
            q_push = ik.solve(arm, pos + push.offset, rot, q).q
        except planning.IKError as e:
            result.notes.append(f"push skipped: {e}")
            return None
        seg = planning.timed_segment(q, q_push, g, g, "perturb")
        return planning.Segment(seg.q0, seg.q1, seg.g0, seg.g1, seg.duration + 0.15, "perturb")  # then a pause

    def _observe(self, index: int, now: float, action: np.ndarray, phase: int, result: EpisodeResult) -> Step:
        images, depths, t_cap, numbers = [], [], [], []
        for cam in self.rig.cameras:
            f = cam.latest()
            if f is None:
                f = cam.wait_newer(None, timeout=2.0)
            if f is None:
                raise ExpertError(f"camera {cam.spec.name}: no frame within 2 s")
            images.append(f.color)
            depths.append(f.depth)
            t_cap.append(f.t_capture)
            numbers.append(f.frame_number)
        pos, vel = [], []
        for i, link in enumerate(self.links):
            s = _state(link, 0.05)
            q = np.asarray(s.positions, float)
            pos.append(np.append(q, float(s.gripper or 0.0)))
            vel.append(np.append(np.asarray(s.velocities, float), 0.0))
            if np.any(q < self._lower[i] - 1e-6) or np.any(q > self._upper[i] + 1e-6):
                result.limit_violations += 1
            if s.fault_bits & _FAULTS:
                result.fault_states += 1
            if s.fault_bits & _LIMITED:
                result.limited_states += 1
        return Step(
            index=index,
            t=now,
            images=tuple(images),
            depths=tuple(depths),
            t_capture=tuple(t_cap),
            frame_numbers=tuple(numbers),
            joint_pos=np.concatenate(pos).astype(np.float32),
            joint_vel=np.concatenate(vel).astype(np.float32),
            action=action,
            phase=phase,
        )


def _time_to_grasp(plan: planning.TaskPlan) -> float:
    """Plan time up to the grasp (reach: to the end of the approach): the window a push may fall in. Later, a
    push would drag a half-grasped object (or tip it over) rather than move the tool."""
    t = 0.0
    for seg in plan.trajectory.segments:
        if seg.label == ("settle" if plan.kind == "reach" else "grasp"):
            return t
        t += seg.duration
    return t


def facts(rig: SimRig, object_name: str, obj_start: np.ndarray, acting: int) -> success_mod.WorldFacts:
    """Ground truth for the success predicates, read from the live world."""
    world = rig.world
    obj_now, _ = world.object_pose(object_name)
    return success_mod.WorldFacts(obj_start, obj_now, world.tcp_position(acting), world.goal_position())


def judge(
    rig: SimRig,
    result: EpisodeResult,
    plan: planning.TaskPlan,
    obj_start: np.ndarray,
    acting: int,
    settle_s: float = 0.2,
) -> None:
    """Fill in success from the task's predicate on ground truth (after `settle_s` for the object to come to rest)."""
    time.sleep(settle_s)
    f = facts(rig, plan.object, obj_start, acting)
    result.lift_m = float(f.object_now[2] - f.object_start[2])
    result.reached = bool(result.reach_error_m <= REACH_TOLERANCE)
    verdict = success_mod.judge_task(plan.kind, f)
    result.success = verdict.success
    if plan.kind == "pick_and_place":
        result.place_error_m = verdict.measure
    if not verdict.success:
        result.notes.append(verdict.why)
    if result.limit_violations:
        result.notes.append(f"{result.limit_violations} measured positions outside the joint limits")
