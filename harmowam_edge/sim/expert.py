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

from firmware_bridge import ArmClient, ArmState, FaultBits
from harmowam_edge.errors import ConfigError, HarmowamError
from harmowam_edge.sim import planning, scene
from harmowam_edge.sim.rig import SimRig

CONTROL_HZ = 100.0  # setpoint stream rate of the expert
RECORD_HZ = 10.0  # observation/action rate written to demonstrations
REACH_TOLERANCE = 0.01  # m: the TCP "reached" its target within this
LIFT_SUCCESS = 0.05  # m: a picked object is at least this far above where it lay
PLACE_TOLERANCE = 0.03  # m: a placed object's centre within this of the goal pad's centre
_FAULTS = (
    FaultBits.WATCHDOG_HOLD
    | FaultBits.WATCHDOG_TORQUE_OFF
    | FaultBits.ESTOP_LATCHED
    | FaultBits.HARDWARE_ESTOP
    | FaultBits.DRIVE_FAULT
    | FaultBits.COMMAND_REJECTED
)
_LIMITED = FaultBits.POSITION_CLAMPED | FaultBits.VELOCITY_LIMITED | FaultBits.ACCELERATION_LIMITED


class ExpertError(HarmowamError):
    """The scripted expert could not run (a link refused to enable, a task it does not know)."""


@dataclass(frozen=True)
class Task:
    """`kind` is the bundle task name (reach, pick, pick_and_place); `object` the scene object it is about."""

    kind: str
    object: str

    @property
    def name(self) -> str:
        return self.kind

    def describe(self) -> str:
        return f"{self.kind} {self.object}"


def parse_task(name: str, object_name: str | None = None, seed: int = 0) -> Task:
    """`pick_red_cube`, `pick_and_place` with `object_name`, or a kind alone (the object then comes from the seed)."""
    kinds = sorted(planning.TASK_KINDS, key=len, reverse=True)  # pick_and_place before pick
    for kind in kinds:
        if name == kind or name.startswith(kind + "_"):
            rest = name[len(kind) + 1 :]
            if rest and rest in scene.OBJECT_NAMES:
                if object_name is not None and object_name != rest:
                    raise ConfigError(f"--task {name} names {rest!r} but --object is {object_name!r}")
                return Task(kind, rest)
            if rest:
                continue  # e.g. "pick_and_place" read as pick + "and_place": try the next kind
            if object_name is None:
                object_name = scene.OBJECT_NAMES[int(np.random.default_rng(seed).integers(len(scene.OBJECT_NAMES)))]
            scene.object_by_name(object_name)
            return Task(kind, object_name)
    examples = ", ".join([*planning.TASK_KINDS, f"pick_{scene.OBJECT_NAMES[0]}"])
    raise ConfigError(
        f"--task {name!r}: the scripted expert knows {', '.join(planning.TASK_KINDS)} (optionally followed by "
        f"_<object>, objects: {', '.join(scene.OBJECT_NAMES)}); e.g. {examples}"
    )


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
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "task": self.task.kind,
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
        record_hz: float = RECORD_HZ,
    ) -> None:
        if len(links) != len(rig.arm_ports):
            raise ConfigError(f"links: expected one per arm ({len(rig.arm_ports)}), got {len(links)}")
        self.rig = rig
        self.links = list(links)
        self.control_hz = control_hz
        self.record_hz = record_hz
        self._lower = [np.array([j.lower for j in a.joints]) for a in rig.action_space.arms]
        self._upper = [np.array([j.upper for j in a.joints]) for a in rig.action_space.arms]

    def reset(self, seed: int) -> None:
        """A fresh episode: torque off, the world reset for the seed (arms home, objects placed), torque on."""
        for link in self.links:
            link.disable()
        self.rig.world.reset(seed)
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

    def run(self, task: Task, seed: int, on_step: Callable[[Step], None] | None = None) -> EpisodeResult:
        """Plan from the measured state, stream the plan at the control rate, record at the record rate."""
        rig, world = self.rig, self.rig.world
        acting = choose_arm(rig, task.object)
        starts = [_state(link) for link in self.links]
        q_start = [np.asarray(s.positions, float) for s in starts]
        g_start = [float(s.gripper or 0.0) for s in starts]
        try:
            plan = planning.plan_task(world, acting, task.kind, task.object, q_start[acting], g_start[acting])
        except planning.IKError as e:  # an unreachable layout is a failed episode, not a crash
            return unplannable(task, seed, rig.arm_names[acting], e)
        obj_start, _ = world.object_pose(task.object)
        target = plan.approach_position if task.kind == "reach" else plan.grasp_position
        period = 1.0 / self.control_hz
        record_every = max(1, round(self.control_hz / self.record_hz))
        result = EpisodeResult(task, seed, plan.arm, False, False, float("inf"), 0.0, None, 0.0, 0, 0, 0, 0)
        t0 = time.monotonic()
        tick = 0
        while True:
            now = time.monotonic()
            t = now - t0
            done = t >= plan.trajectory.duration
            actions = []
            for i, link in enumerate(self.links):
                if i == acting:
                    q, v, g = plan.trajectory.sample(t)
                else:
                    q, v, g = q_start[i], np.zeros_like(q_start[i]), g_start[i]
                link.send_setpoint(q, v, g)
                actions.append(np.append(q, g))
                result.setpoints += 1
            if tick % record_every == 0 or done:
                step = self._observe(result.steps, now, np.concatenate(actions), result)
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

    def _observe(self, index: int, now: float, action: np.ndarray, result: EpisodeResult) -> Step:
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
            action=action.astype(np.float32),
        )


def judge(
    rig: SimRig,
    result: EpisodeResult,
    plan: planning.TaskPlan,
    obj_start: np.ndarray,
    acting: int,
    settle_s: float = 0.2,
) -> None:
    """Fill in success from the simulator's ground truth (after `settle_s` for the object to come to rest)."""
    world = rig.world
    time.sleep(settle_s)
    obj_end, _ = world.object_pose(plan.object)
    tcp = world.tcp_position(acting)
    result.lift_m = float(obj_end[2] - obj_start[2])
    result.reached = bool(result.reach_error_m <= REACH_TOLERANCE)
    if plan.kind == "reach":
        result.success = bool(np.linalg.norm(tcp - plan.approach_position) <= REACH_TOLERANCE)
    elif plan.kind == "pick":
        held = bool(np.linalg.norm(obj_end - tcp) < 0.03)
        result.success = result.lift_m >= LIFT_SUCCESS and held
        if not held:
            result.notes.append("the object is not between the fingers at the end")
    else:
        goal = world.goal_position()
        result.place_error_m = float(np.linalg.norm(obj_end[:2] - goal[:2]))
        resting = bool(abs(obj_end[2] - obj_start[2]) < 0.01)
        result.success = result.place_error_m <= PLACE_TOLERANCE and resting
    if result.limit_violations:
        result.notes.append(f"{result.limit_violations} measured positions outside the joint limits")
