"""Inverse kinematics and pick plans for the scripted expert: pure computation on a private copy of the model.

`IKSolver` solves for a tool-centre-point pose with damped least squares on MuJoCo's site Jacobian, inside the
joint limits. `plan_pick` turns "pick this object" into joint-space segments (approach above it, descend
straight, close, lift) timed as minimum-jerk moves within the reference arm's velocity and acceleration limits.
`JointTrajectory.sample(t)` is what the expert streams as setpoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from harmowam_edge.bundle.schema import (
    REFERENCE_GRIPPER,
    REFERENCE_JOINT_MAX_ACCELERATION,
    REFERENCE_JOINT_MAX_VELOCITY,
)
from harmowam_edge.sim import arm as arm_desc
from harmowam_edge.sim import success
from harmowam_edge.sim.tasks import TASK_KINDS
from harmowam_edge.sim.world import ArmIndex, SimWorld

# The expert moves well inside the firmware's limits, so the firmware never has to clip its reference.
EXPERT_VELOCITY = 0.6 * REFERENCE_JOINT_MAX_VELOCITY
EXPERT_ACCELERATION = 0.5 * REFERENCE_JOINT_MAX_ACCELERATION
SLOW_VELOCITY = 0.4 * EXPERT_VELOCITY  # the expert's careful moves: the descent, the lift, the place
GRIPPER_VELOCITY = 0.8 * REFERENCE_GRIPPER[2]
GRIPPER_ACCELERATION = 0.8 * REFERENCE_GRIPPER[3]
APPROACH_HEIGHT = success.APPROACH_HEIGHT  # m above the grasp point
LIFT_HEIGHT = 0.15  # m above the grasp point
GRASP_CLOSED = 0.0  # commanded opening when closing: the fingers stop on the object and squeeze
CLOSE_TIME = 0.6  # s for the fingers to close and settle


class IKError(RuntimeError):
    """No joint configuration within the limits reaches the requested pose."""


@dataclass(frozen=True)
class IKResult:
    q: np.ndarray
    position_error: float  # m
    rotation_error: float  # rad
    iterations: int


def top_down_rotation(yaw: float) -> np.ndarray:
    """Tool frame pointing straight down (z = -world z), its closing axis (y) at `yaw` in the table plane."""
    c, s = math.cos(yaw), math.sin(yaw)
    y = np.array([c, s, 0.0])
    z = np.array([0.0, 0.0, -1.0])
    x = np.cross(y, z)
    return np.column_stack([x, y, z])


def _rotation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Axis-angle vector (world frame) rotating `current` onto `target`."""
    r = target @ current.T
    angle = math.acos(max(-1.0, min(1.0, (np.trace(r) - 1.0) / 2.0)))
    if angle < 1e-9:
        return np.zeros(3)
    if math.pi - angle < 1e-6:  # half turn: axis from the symmetric part
        w, v = np.linalg.eigh((r + np.eye(3)) / 2.0)
        return v[:, int(np.argmax(w))] * angle
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / (2.0 * math.sin(angle))
    return axis * angle


class IKSolver:
    """Damped least squares on one arm's six joints, using a private MjData (the live world is not touched)."""

    def __init__(self, world: SimWorld) -> None:
        self.model = world.model
        self.data = mujoco.MjData(world.model)
        with world.lock:
            self.data.qpos[:] = world.data.qpos
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))

    def tcp_pose(self, arm: ArmIndex, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.data.qpos[arm.qpos] = q
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[arm.tcp_site].copy(), self.data.site_xmat[arm.tcp_site].reshape(3, 3).copy()

    def solve(
        self,
        arm: ArmIndex,
        position: np.ndarray,
        rotation: np.ndarray,
        q0: np.ndarray,
        *,
        tolerance: float = 1e-4,
        accept: float = 1e-3,
        max_iterations: int = 300,
    ) -> IKResult:
        """From `q0`, then from a few other starts (home, base turned toward the target) if that one sticks at a
        joint limit; a solution within `accept` (m; and 10x that in rad) of the pose is good enough to grasp."""
        starts = [np.asarray(q0, float), np.asarray(arm_desc.HOME, float)]
        toward = np.asarray(arm_desc.HOME, float).copy()
        base = self.data.xpos[self.model.jnt_bodyid[self.model.dof_jntid[arm.dof[0]]]]
        toward[0] = math.atan2(position[1] - base[1], position[0] - base[0])
        starts.append(toward)
        best: IKResult | None = None
        for start in starts:
            res = self._solve_from(arm, position, rotation, start, tolerance, max_iterations)
            if res.position_error < tolerance and res.rotation_error < 10 * tolerance:
                return res
            if best is None or res.position_error + 0.1 * res.rotation_error < (
                best.position_error + 0.1 * best.rotation_error
            ):
                best = res
        assert best is not None
        if best.position_error <= accept and best.rotation_error <= 10 * accept:
            return best
        raise IKError(
            f"IK did not converge to {np.round(position, 3).tolist()} within the joint limits "
            f"(position error {best.position_error * 1e3:.1f} mm, rotation error "
            f"{math.degrees(best.rotation_error):.1f} deg)"
        )

    def _solve_from(
        self,
        arm: ArmIndex,
        position: np.ndarray,
        rotation: np.ndarray,
        q0: np.ndarray,
        tolerance: float,
        max_iterations: int,
    ) -> IKResult:
        q = np.clip(np.asarray(q0, float).copy(), arm.lower, arm.upper)
        damping = 1e-3
        err_p = err_r = math.inf
        for it in range(1, max_iterations + 1):
            pos, rot = self.tcp_pose(arm, q)
            e = np.concatenate([position - pos, _rotation_error(rot, rotation)])
            err_p, err_r = float(np.linalg.norm(e[:3])), float(np.linalg.norm(e[3:]))
            if err_p < tolerance and err_r < 10 * tolerance:
                return IKResult(q, err_p, err_r, it)
            mujoco.mj_comPos(self.model, self.data)
            mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, arm.tcp_site)
            j = np.vstack([self._jacp[:, arm.dof], self._jacr[:, arm.dof]])
            dq = j.T @ np.linalg.solve(j @ j.T + damping * np.eye(6), e)
            step = float(np.max(np.abs(dq)))
            if step > 0.3:  # keep each iteration in the region where the linearisation holds
                dq *= 0.3 / step
            q = np.clip(q + dq, arm.lower, arm.upper)
        pos, rot = self.tcp_pose(arm, q)
        err_p = float(np.linalg.norm(position - pos))
        err_r = float(np.linalg.norm(_rotation_error(rot, rotation)))
        return IKResult(q, err_p, err_r, max_iterations)


# ----------------------------------------------------------------------------------------------------------------
# Trajectories


def min_jerk_duration(delta: np.ndarray, v_max: float, a_max: float, minimum: float = 0.3) -> float:
    """Shortest minimum-jerk duration whose peak velocity (1.875 d/T) and acceleration (5.774 d/T^2) fit."""
    d = float(np.max(np.abs(delta))) if np.size(delta) else 0.0
    return max(minimum, 1.875 * d / v_max, math.sqrt(5.774 * d / a_max))


@dataclass(frozen=True)
class Segment:
    """A minimum-jerk move from `q0` to `q1` (joints) and `g0` to `g1` (gripper opening) over `duration`; `label`
    is its phase (`tasks.PHASE_NAMES`)."""

    q0: np.ndarray
    q1: np.ndarray
    g0: float
    g1: float
    duration: float
    label: str
    # Joint velocity at the start (None: from rest). A plan made from a moving state (the DAgger relabeller)
    # continues that motion instead of commanding a stop first: the quintic keeps position, velocity and zero
    # acceleration at both ends.
    v0: np.ndarray | None = None
    gv0: float | None = None  # the gripper's, likewise (m/s)

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Position, velocity and gripper opening at time t into the segment."""
        if self.duration <= 0:
            return self.q1.copy(), np.zeros_like(self.q1), self.g1
        s = min(max(t / self.duration, 0.0), 1.0)
        blend = 10 * s**3 - 15 * s**4 + 6 * s**5
        if self.gv0 is None:
            g = self.g0 + (self.g1 - self.g0) * blend
        else:
            g = self.g0 + float(_from_speed(np.float64(self.g1 - self.g0), np.float64(self.gv0), self.duration, s)[0])
        if self.v0 is None:
            dblend = (30 * s**2 - 60 * s**3 + 30 * s**4) / self.duration
            return self.q0 + (self.q1 - self.q0) * blend, (self.q1 - self.q0) * dblend, g
        dq, v = _from_speed(self.q1 - self.q0, self.v0, self.duration, s)
        return self.q0 + dq, v, g


def _from_speed(d: np.ndarray, v0: np.ndarray, duration: float, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Offset and velocity at time share `s` of the quintic that covers `d` in `duration`, starting at speed `v0`
    (zero acceleration) and ending at rest."""
    tt, big_t = s * duration, duration
    c3 = (10 * d - 6 * v0 * big_t) / big_t**3
    c4 = (-15 * d + 8 * v0 * big_t) / big_t**4
    c5 = (6 * d - 3 * v0 * big_t) / big_t**5
    return v0 * tt + c3 * tt**3 + c4 * tt**4 + c5 * tt**5, v0 + 3 * c3 * tt**2 + 4 * c4 * tt**3 + 5 * c5 * tt**4


@dataclass(frozen=True)
class JointTrajectory:
    segments: tuple[Segment, ...]

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    def segment_at(self, t: float) -> Segment:
        for seg in self.segments:
            if t < seg.duration:
                return seg
            t -= seg.duration
        return self.segments[-1]

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray, float]:
        for seg in self.segments:
            if t < seg.duration:
                return seg.sample(t)
            t -= seg.duration
        last = self.segments[-1]
        return last.q1.copy(), np.zeros_like(last.q1), last.g1


PLACE_CLEARANCE = 0.004  # m: release the object this far above its resting height


@dataclass(frozen=True)
class TaskPlan:
    """A scripted task for one arm: the joint trajectory and the world points it aims at (for checking)."""

    kind: str
    arm: str
    object: str
    trajectory: JointTrajectory
    grasp_position: np.ndarray  # TCP at the grasp (reach: the point above the object)
    approach_position: np.ndarray
    lift_position: np.ndarray
    place_position: np.ndarray | None = None  # TCP at the release (pick_and_place)


def object_yaw(object_quat: np.ndarray) -> float:
    """The heading (rotation about world z) of an object's pose quaternion (w, x, y, z)."""
    w, x, y, z = (float(c) for c in object_quat)
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def grasp_yaw(object_quat: np.ndarray, current_yaw: float) -> float:
    """The closing-axis yaw for a top-down grasp: across the object's faces, nearest to the current wrist yaw."""
    obj_yaw = object_yaw(object_quat)
    candidates = [obj_yaw + k * math.pi / 2 for k in range(-4, 5)]
    return min(candidates, key=lambda a: abs(math.atan2(math.sin(a - current_yaw), math.cos(a - current_yaw))))


def gripper_time(g0: float, g1: float) -> float:
    """Shortest minimum-jerk time for the gripper to go from opening `g0` to `g1` within its limits."""
    return min_jerk_duration(np.array([g1 - g0]), GRIPPER_VELOCITY, GRIPPER_ACCELERATION, 0.0)


def timed_segment(q0: np.ndarray, q1: np.ndarray, g0: float, g1: float, label: str, slow: bool = False) -> Segment:
    """A minimum-jerk move as fast as the expert's velocity and acceleration limits allow (`slow`: 40 %)."""
    v = SLOW_VELOCITY if slow else EXPERT_VELOCITY
    duration = max(min_jerk_duration(q1 - q0, v, EXPERT_ACCELERATION, 0.8), gripper_time(g0, g1))
    return Segment(q0, q1, g0, g1, duration, label)


def pause(q: np.ndarray, g0: float, g1: float, duration: float, label: str) -> Segment:
    """Hold the arm still for `duration` (longer if the gripper needs it to move within its limits)."""
    return Segment(q, q, g0, g1, max(duration, gripper_time(g0, g1)), label)


_pause = pause  # the name this module's plans used before `pause` was public


def grasp_rotation(ik: IKSolver, arm: ArmIndex, q: np.ndarray, object_kind: str, object_quat: np.ndarray) -> np.ndarray:
    """The top-down tool rotation for grasping from joints `q`: a box across its faces, nearest the wrist's yaw
    now; anything round at the wrist's yaw now (no turn needed)."""
    _, rot_now = ik.tcp_pose(arm, np.asarray(q, float))
    yaw_now = math.atan2(rot_now[1, 1], rot_now[0, 1])
    return top_down_rotation(grasp_yaw(object_quat, yaw_now) if object_kind == "box" else yaw_now)


def place_point(grasp: np.ndarray, object_pos: np.ndarray, half_height: float, goal: np.ndarray) -> np.ndarray:
    """The TCP at the release over the goal pad: the object's centre `PLACE_CLEARANCE` above its resting height."""
    return np.array([goal[0], goal[1], grasp[2] - object_pos[2] + half_height + PLACE_CLEARANCE + goal[2]])


def place_segments(
    ik: IKSolver, arm: ArmIndex, q_from: np.ndarray, rot: np.ndarray, place: np.ndarray
) -> list[Segment]:
    """pick_and_place after the lift, from joints `q_from` holding the object: carry over the pad, lower,
    release, retreat."""
    above_place = place + np.array([0.0, 0.0, LIFT_HEIGHT])
    q_carry = ik.solve(arm, above_place, rot, q_from).q
    q_place = ik.solve(arm, place, rot, q_carry).q
    open_g = arm_desc.GRIPPER_MAX
    return [
        timed_segment(q_from, q_carry, GRASP_CLOSED, GRASP_CLOSED, "move"),
        timed_segment(q_carry, q_place, GRASP_CLOSED, GRASP_CLOSED, "place", slow=True),
        pause(q_place, GRASP_CLOSED, open_g, CLOSE_TIME, "release"),
        timed_segment(q_place, q_carry, open_g, open_g, "retreat", slow=True),
    ]


def plan_task(
    world: SimWorld,
    which: int | str,
    kind: str,
    object_name: str,
    q_start: np.ndarray,
    g_start: float,
    *,
    object_pose: tuple[np.ndarray, np.ndarray] | None = None,
    goal: np.ndarray | None = None,
    ik: IKSolver | None = None,
) -> TaskPlan:
    """reach: stop above the object; pick: grasp it and lift; pick_and_place: then set it on the goal pad.

    `object_pose` (position, quaternion) and `goal` default to the live world's; given, the plan is made for a
    recorded moment (the DAgger relabeller plans after the episode). `ik`: a solver to reuse.
    """
    if kind not in TASK_KINDS:
        raise ValueError(f"task: expected one of {', '.join(TASK_KINDS)}, got {kind!r}")
    obj = world.object_spec(object_name)
    arm = world.arm(which)
    pos, quat = world.object_pose(object_name) if object_pose is None else object_pose
    ik = ik or IKSolver(world)
    q0 = np.asarray(q_start, float)
    rot = grasp_rotation(ik, arm, q0, obj.kind, quat)
    grasp = success.grasp_point(pos)  # the fingertips just clear of the table (the TCP is 15 mm above them)
    approach = grasp + np.array([0.0, 0.0, APPROACH_HEIGHT])
    lift = grasp + np.array([0.0, 0.0, LIFT_HEIGHT])
    open_g = arm_desc.GRIPPER_MAX
    q_approach = ik.solve(arm, approach, rot, q0).q
    segments = [
        timed_segment(q0, q_approach, g_start, open_g, "approach"),
        _pause(q_approach, open_g, open_g, 0.2, "settle"),
    ]
    if kind == "reach":
        segments.append(_pause(q_approach, open_g, open_g, 0.6, "hold"))
        return TaskPlan(
            kind, arm.mount.name, object_name, JointTrajectory(tuple(segments)), approach, approach, approach
        )
    q_grasp = ik.solve(arm, grasp, rot, q_approach).q
    q_lift = ik.solve(arm, lift, rot, q_grasp).q
    segments += [
        timed_segment(q_approach, q_grasp, open_g, open_g, "descend", slow=True),
        _pause(q_grasp, open_g, GRASP_CLOSED, CLOSE_TIME, "grasp"),
        timed_segment(q_grasp, q_lift, GRASP_CLOSED, GRASP_CLOSED, "lift", slow=True),
    ]
    if kind == "pick":
        segments.append(_pause(q_lift, GRASP_CLOSED, GRASP_CLOSED, 0.4, "hold"))
        return TaskPlan(kind, arm.mount.name, object_name, JointTrajectory(tuple(segments)), grasp, approach, lift)
    place = place_point(grasp, pos, obj.half_height, world.goal_position() if goal is None else goal)
    segments += place_segments(ik, arm, q_lift, rot, place)
    return TaskPlan(kind, arm.mount.name, object_name, JointTrajectory(tuple(segments)), grasp, approach, lift, place)


def plan_pick(world: SimWorld, which: int | str, object_name: str, q_start: np.ndarray, g_start: float) -> TaskPlan:
    """Approach above the object, descend straight, close the gripper, lift."""
    return plan_task(world, which, "pick", object_name, q_start, g_start)
