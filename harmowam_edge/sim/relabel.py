"""DAgger labels: what the scripted expert would command from a state the *learner* visited.

`relabel` takes one recorded moment of a policy rollout (the measured arm state and the ground truth of the
world: where the object is now and lay at the start, the TCP) and returns the expert's plan from that state,
sampled as one action chunk at the bundle's rate from the frame's capture time, plus the expert's phase there.

The plan is phase-aware, so a label never contradicts the demonstrations (which never go back up once the
descent began): lifted and held -> finish the lift; over the grasp point with the gripper open -> descend from
here; the object between closing fingers -> keep closing, lift; fingers closed on nothing -> open and
re-approach; anything else -> `planning.plan_task` from the state, exactly as the demonstrations start.

It runs after the episode, on recorded facts (`FrameState`): the plan never reads the live world's state, and
`IKSolver` works on a private MjData copy (the shared model is only read), so labelling may run while physics
steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harmowam_edge.sim import arm as arm_desc
from harmowam_edge.sim import planning, success
from harmowam_edge.sim.planning import GRASP_CLOSED, LIFT_HEIGHT, IKSolver, JointTrajectory, Segment
from harmowam_edge.sim.scene import SceneObject
from harmowam_edge.sim.tasks import IDLE_PHASE, Task, phase_index
from harmowam_edge.sim.world import SimWorld

ARM_WIDTH = len(arm_desc.JOINT_NAMES) + 1  # one arm's action-space entries: joints, then the gripper opening
BELOW_APPROACH = 0.01  # m: the TCP this far under the approach pose has begun the descent
# m: open fingers whose TCP is this close to the grasp point horizontally, and this far above it at most, close
# where they are. Why not "at the point" (it was 5 mm): `sim eval`'s grasp attempts close as well 12 mm off
# (91 % lifted at 8-12 mm, 93 % at 0-4 mm; 964 attempts of 7 bundles, docs/training.md), and a learner that
# places the TCP to ~1 cm hovered under labels that said "align first, close later" (rounds r16/r17).
CAPTURE_XY = 0.012
CAPTURE_Z = 0.008
OPEN_MARGIN = 0.015  # m: fingers wider than the object by this can still go down around it
# m: fingers this far inside the object's nominal width are squeezing it (closing is over). Measured on the red
# cube: the fingers touch at 39.4 mm and come to rest squeezed at 38.0 mm (nominal 40).
SQUEEZE = 0.001


@dataclass(frozen=True)
class EpisodeContext:
    """What stays fixed over one rollout."""

    task: Task
    acting: int  # the arm that does the task (the others hold where they are)
    object_start: np.ndarray  # where the target object lay at the start
    goal: np.ndarray  # centre of the goal pad


@dataclass(frozen=True)
class FrameState:
    """One recorded moment of the learner's rollout: the measured state and the world's ground truth."""

    t_state: float  # host time the arm state was measured (the plan's time zero)
    t_capture: float  # host time the frame was captured (the chunk's anchor, as in training)
    joint_pos: np.ndarray  # [A] measured action-space vector, every arm
    joint_vel: np.ndarray  # [A] measured (gripper entries unused)
    object_pos: np.ndarray
    object_quat: np.ndarray  # w, x, y, z
    tcp: np.ndarray  # the acting arm's tool centre point
    # [A] the setpoint the loop was sending at t_state. Plans start from it, not from the measured joints: the
    # demonstrations' setpoints lead the measured state by the tracking lag, and a label planned from the
    # measured pose would teach the policy to command less motion than the expert does.
    command: np.ndarray | None = None


@dataclass(frozen=True)
class Label:
    chunk: np.ndarray  # float32 [K, A]: the expert's absolute setpoints at t_capture + k / rate
    phase: int  # tasks.PHASE_NAMES index of the first sample (IDLE_PHASE: no plan, no training target)
    situation: str  # which rule planned it: carry, placed, closing, descend, missed, plan, unreachable


def cruising(seg: Segment) -> Segment:
    """The segment started at its peak speed (1.875 d / T, what the expert's minimum-jerk move reaches midway,
    within its velocity limit) and slowing to rest at its end, instead of starting from rest.

    Why: the policy sees the joint state but not its velocity, so a label that depends on how long the arm has
    been moving cannot be learnt. A plan from rest moves ~1 % of the way in one 0.25 s chunk; a policy trained on
    such labels stalls wherever it is (each chunk a crawl, the next state again "at rest"). Started at speed,
    the label is a function of the state and the goal alone: move towards the goal, slowing only near it.
    The gripper likewise: from rest, a reopening after a missed grasp moved the fingers ~1 mm per chunk, and
    every frame was planned from rest again (teacher r7: fingers shut 7 cm from the cube stayed shut for 15 s).
    """
    if seg.duration <= 0:
        return seg
    v0 = 1.875 * (seg.q1 - seg.q0) / seg.duration
    gv0 = 1.875 * (seg.g1 - seg.g0) / seg.duration
    return Segment(seg.q0, seg.q1, seg.g0, seg.g1, seg.duration, seg.label, v0=v0, gv0=gv0)


def contact_width(obj: SceneObject, object_quat: np.ndarray, closing_axis: np.ndarray) -> float:
    """The opening at which fingers closing along `closing_axis` (world, in the table plane) touch the object.

    Why the pose: a box gripped off its faces is wider along the fingers than across them (a 4 cm cube at 45°:
    5.7 cm). Fingers resting on its corners counted as still closing towards the face width, every frame was
    labelled "keep closing" and the lift never came (teacher r6: episodes ended in `grasp`, fingers at 45-53 mm).
    """
    if obj.kind != "box":
        return 2.0 * float(obj.size[0])
    rel = math.atan2(float(closing_axis[1]), float(closing_axis[0])) - planning.object_yaw(object_quat)
    return 2.0 * (obj.size[0] * abs(math.cos(rel)) + obj.size[1] * abs(math.sin(rel)))


def closing_time(g: float, contact: float) -> float:
    """Seconds of closing left at opening `g`: none once the fingers squeeze the object (`SQUEEZE` inside it).

    Why: the fingers stop at the object's width and stay there, so a wait computed from the opening alone never
    ends (every frame was labelled "close for 0.3 s more", longer than a chunk): the policy learnt to squeeze
    and never lift (teacher r4: 8 of 20 episodes ended in `grasp`, the cube lifted 0-7 mm)."""
    span = arm_desc.GRIPPER_MAX - contact
    left = (g - (contact - SQUEEZE)) / span if span > 0 else 0.0
    return planning.CLOSE_TIME * min(max(left, 0.0), 1.0)


def in_capture(tcp: np.ndarray, grasp: np.ndarray) -> bool:
    """Whether open fingers at `tcp` would close on an object whose grasp point is `grasp` (`CAPTURE_XY`)."""
    dz = float(tcp[2] - grasp[2])
    return float(np.linalg.norm(tcp[:2] - grasp[:2])) <= CAPTURE_XY and dz <= CAPTURE_Z


def descent_left(distance: float, descent_s: float) -> float:
    """Seconds the demonstrations' descent (minimum jerk over `APPROACH_HEIGHT` in `descent_s`) takes for its last
    `distance` metres.

    Why: a descent planned afresh from a state near the grasp point took at least `timed_segment`'s 0.8 s, so every
    near-cube frame of a rollout said "stay open for another 0.8 s" where the demonstrations at the same height
    were a fraction of a second from closing; the learner averaged the two to "not yet".
    """
    share = min(max(distance / planning.APPROACH_HEIGHT, 0.0), 1.0)
    lo, hi = 0.0, 1.0  # the time share s at which the minimum-jerk blend has 1 - share still to go
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if 10 * mid**3 - 15 * mid**4 + 6 * mid**5 < 1.0 - share:
            lo = mid
        else:
            hi = mid
    return descent_s * (1.0 - 0.5 * (lo + hi))


def _open_enough(world: SimWorld, object_name: str) -> float:
    size = world.object_spec(object_name).size
    return min(arm_desc.GRIPPER_MAX - 1e-3, 2.0 * max(size[0], size[1]) + OPEN_MARGIN)


def expert_trajectory(
    world: SimWorld, ctx: EpisodeContext, q: np.ndarray, g: float, v: np.ndarray, f: FrameState, ik: IKSolver
) -> tuple[JointTrajectory, str]:
    """The acting arm's plan from joints `q`, opening `g`, joint velocity `v`, and which rule made it."""
    kind, name = ctx.task.kind, ctx.task.object
    arm = world.arm(ctx.acting)
    obj = world.object_spec(name)
    quat = f.object_quat
    open_g = arm_desc.GRIPPER_MAX

    def from_state(q1: np.ndarray, g1: float, label: str, slow: bool = False) -> Segment:
        return cruising(planning.timed_segment(q, q1, g, g1, label, slow=slow))

    def finish(
        segments: list[Segment], q_lift: np.ndarray, rot: np.ndarray, grasp: np.ndarray, obj_pos: np.ndarray
    ) -> JointTrajectory:
        if kind == "pick":
            segments.append(planning.pause(q_lift, GRASP_CLOSED, GRASP_CLOSED, 0.4, "hold"))
        else:
            place = planning.place_point(grasp, obj_pos, obj.half_height, ctx.goal)
            segments += planning.place_segments(ik, arm, q_lift, rot, place)
        return JointTrajectory(tuple(segments))

    if kind != "reach":
        held = float(np.linalg.norm(f.object_pos - f.tcp)) < success.HELD_DISTANCE
        lift = float(f.object_pos[2] - ctx.object_start[2])
        rot = planning.grasp_rotation(ik, arm, q, obj.kind, quat)
        start_grasp = success.grasp_point(ctx.object_start)
        if kind == "pick_and_place":
            on_pad = float(np.linalg.norm(f.object_pos[:2] - ctx.goal[:2])) <= success.PLACE_TOLERANCE
            moved = float(np.linalg.norm(f.object_pos[:2] - ctx.object_start[:2])) > success.PLACE_TOLERANCE
            if on_pad and moved and lift < success.LIFTED:  # set down on the pad: let go, then retreat up
                above = f.tcp + np.array([0.0, 0.0, LIFT_HEIGHT])
                q_up = ik.solve(arm, above, rot, q).q
                segs = [
                    cruising(planning.pause(q, g, open_g, planning.CLOSE_TIME if held else 0.0, "release")),
                    planning.timed_segment(q, q_up, open_g, open_g, "retreat", slow=True),
                ]
                return JointTrajectory(tuple(segs)), "placed"
        if held and lift >= success.LIFTED:  # carried: straight up to the lift pose, then hold (or place)
            lift_point = np.array([f.tcp[0], f.tcp[1], start_grasp[2] + LIFT_HEIGHT])
            q_lift = ik.solve(arm, lift_point, rot, q).q
            segs = [from_state(q_lift, GRASP_CLOSED, "lift", slow=True)]
            return finish(segs, q_lift, rot, start_grasp, ctx.object_start), "carry"
        grasp = success.grasp_point(f.object_pos)
        near = float(np.linalg.norm(f.tcp[:2] - grasp[:2])) <= success.NEAR_XY
        below = f.tcp[2] < grasp[2] + planning.APPROACH_HEIGHT - BELOW_APPROACH
        lift_point = grasp + np.array([0.0, 0.0, LIFT_HEIGHT])
        if near and below:
            q_grasp = ik.solve(arm, grasp, rot, q).q
            q_lift = ik.solve(arm, lift_point, rot, q_grasp).q
            if held and g < _open_enough(world, name):  # the fingers are closing on it: go on, then lift
                _, rot_now = ik.tcp_pose(arm, q)
                wait = closing_time(g, contact_width(obj, quat, rot_now[:, 1]))
                up = planning.timed_segment(q, q_lift, GRASP_CLOSED, GRASP_CLOSED, "lift", slow=True)
                if wait > 0:
                    segs = [cruising(planning.pause(q, g, GRASP_CLOSED, wait, "grasp")), up]
                else:  # squeezing it: lift now, at speed (as `cruising` says why)
                    segs = [cruising(up)]
                return finish(segs, q_lift, rot, grasp, f.object_pos), "closing"
            if g >= _open_enough(world, name):  # on the way down: descend from here (never back up first)
                if not in_capture(f.tcp, grasp):
                    above = ik.solve(arm, grasp + np.array([0.0, 0.0, planning.APPROACH_HEIGHT]), rot, q).q
                    descent = planning.timed_segment(above, q_grasp, open_g, open_g, "descend", slow=True)
                    left = descent_left(float(np.linalg.norm(f.tcp - grasp)), descent.duration)
                    limit = planning.min_jerk_duration(
                        q_grasp - q, planning.SLOW_VELOCITY, planning.EXPERT_ACCELERATION, 0.0
                    )
                    down = Segment(q, q_grasp, g, open_g, max(left, limit, planning.gripper_time(g, open_g)), "descend")
                    segs = [
                        cruising(down),
                        planning.pause(q_grasp, open_g, GRASP_CLOSED, planning.CLOSE_TIME, "grasp"),
                    ]
                    q_at = q_grasp
                else:  # there: close from this state, at speed
                    segs = [cruising(planning.pause(q, g, GRASP_CLOSED, planning.CLOSE_TIME, "grasp"))]
                    q_at = q
                segs.append(planning.timed_segment(q_at, q_lift, GRASP_CLOSED, GRASP_CLOSED, "lift", slow=True))
                return finish(segs, q_lift, rot, grasp, f.object_pos), "descend"
    # Everything else, a missed grasp included (fingers closed on nothing: plan_task opens them on the way up to
    # the approach pose), is the demonstrations' own start: the whole task from the measured state.
    plan = planning.plan_task(
        world, ctx.acting, kind, ctx.task.object, q, g, object_pose=(f.object_pos, quat), goal=ctx.goal, ik=ik
    )
    first, *rest = plan.trajectory.segments
    traj = JointTrajectory((cruising(first), *rest))
    grasp = success.grasp_point(f.object_pos)
    at_object = float(np.linalg.norm(f.tcp[:2] - grasp[:2])) <= 2 * success.NEAR_XY and (
        f.tcp[2] < grasp[2] + planning.APPROACH_HEIGHT - BELOW_APPROACH
    )
    missed = kind != "reach" and at_object and g < _open_enough(world, name)
    return traj, "missed" if missed else "plan"


def relabel(
    world: SimWorld,
    ctx: EpisodeContext,
    f: FrameState,
    chunk_size: int,
    action_rate_hz: float,
    ik: IKSolver | None = None,
) -> Label:
    """The expert's chunk for one frame: every arm's setpoints at `f.t_capture + k / action_rate_hz` (the arms
    that do not act hold their measured pose), and the acting arm's phase at the first sample."""
    a = f.joint_pos.shape[0]
    if a != ARM_WIDTH * world.arms:
        raise ValueError(f"joint_pos: expected {ARM_WIDTH * world.arms} entries ({world.arms} arm(s)), got {a}")
    ik = ik or IKSolver(world)
    lo = ctx.acting * ARM_WIDTH
    start = f.joint_pos if f.command is None else f.command
    q = np.asarray(start[lo : lo + ARM_WIDTH - 1], float)
    g = float(f.joint_pos[lo + ARM_WIDTH - 1])
    v = np.asarray(f.joint_vel[lo : lo + ARM_WIDTH - 1], float)
    hold = np.repeat(np.asarray(f.joint_pos, np.float32)[None, :], chunk_size, axis=0)
    try:
        traj, situation = expert_trajectory(world, ctx, q, g, v, f, ik)
    except planning.IKError:  # an unreachable state: no label, and the frame is no training target
        return Label(hold, IDLE_PHASE, "unreachable")
    chunk = hold.copy()
    times = f.t_capture - f.t_state + np.arange(chunk_size) / action_rate_hz
    for k, t in enumerate(times):
        qk, _, gk = traj.sample(max(float(t), 0.0))
        chunk[k, lo : lo + ARM_WIDTH] = np.append(qk, gk)
    phase = phase_index(traj.segment_at(max(float(times[0]), 0.0)).label)
    return Label(chunk, phase, situation)
