"""The scripted expert's planning: IK within limits, smooth timed moves, and a plan the physics can execute."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="the sim extra (MuJoCo) is not installed")

from harmowam_edge.bundle.schema import REFERENCE_JOINT_MAX_ACCELERATION, REFERENCE_JOINT_MAX_VELOCITY
from harmowam_edge.sim import arm as arm_desc
from harmowam_edge.sim import planning, scene
from harmowam_edge.sim.world import SimWorld

pytestmark = pytest.mark.sim


def test_ik_reaches_poses_of_random_configurations_within_limits():
    world = SimWorld(1, [], seed=0)
    arm = world.arm_index[0]
    ik = planning.IKSolver(world)
    rng = np.random.default_rng(3)
    solved = 0
    for _ in range(20):
        # A pose the arm can reach: forward kinematics of a random configuration near home.
        q_true = np.clip(np.array(arm_desc.HOME) + rng.normal(0, 0.4, 6), arm.lower, arm.upper)
        pos, rot = ik.tcp_pose(arm, q_true)
        res = ik.solve(arm, pos, rot, np.array(arm_desc.HOME))
        p2, r2 = ik.tcp_pose(arm, res.q)
        assert np.all(res.q >= arm.lower)
        assert np.all(res.q <= arm.upper)
        assert np.linalg.norm(p2 - pos) < 2e-4
        assert np.allclose(r2, rot, atol=2e-3)
        solved += 1
    assert solved == 20


def test_ik_refuses_an_unreachable_pose():
    world = SimWorld(1, [], seed=0)
    ik = planning.IKSolver(world)
    with pytest.raises(planning.IKError, match="did not converge"):
        ik.solve(
            world.arm_index[0], np.array([2.0, 0.0, 0.3]), planning.top_down_rotation(0.0), np.array(arm_desc.HOME)
        )


def test_top_down_rotation_points_the_tool_down_with_its_closing_axis_at_yaw():
    r = planning.top_down_rotation(0.3)
    assert r[:, 2] == pytest.approx([0, 0, -1])
    assert r[:, 1] == pytest.approx([math.cos(0.3), math.sin(0.3), 0])
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_grasp_yaw_picks_the_face_nearest_the_current_wrist_yaw():
    quat = np.array([math.cos(0.2), 0, 0, math.sin(0.2)])  # object yaw 0.4 rad
    yaw = planning.grasp_yaw(quat, current_yaw=1.5)
    assert yaw == pytest.approx(0.4 + math.pi / 2)


def test_pick_plan_stays_within_the_reference_arm_limits():
    world = SimWorld(1, [], seed=2)
    arm = world.arm_index[0]
    plan = planning.plan_pick(world, 0, "blue_cube", np.array(arm_desc.HOME), arm_desc.GRIPPER_MAX)
    dt = 0.002
    ts = np.arange(0.0, plan.trajectory.duration, dt)
    qs = np.array([plan.trajectory.sample(t)[0] for t in ts])
    vs = np.array([plan.trajectory.sample(t)[1] for t in ts])
    assert np.all(qs >= arm.lower - 1e-9)
    assert np.all(qs <= arm.upper + 1e-9)
    assert np.abs(vs).max() <= REFERENCE_JOINT_MAX_VELOCITY
    assert np.abs(np.diff(qs, axis=0) / dt).max() <= REFERENCE_JOINT_MAX_VELOCITY
    acc = np.abs(np.diff(vs, axis=0) / dt).max()
    assert acc <= REFERENCE_JOINT_MAX_ACCELERATION
    # The analytic velocity is the derivative of the position (the feed-forward the plant gets is honest).
    assert np.abs(np.gradient(qs, dt, axis=0)[1:-1] - vs[1:-1]).max() < 0.05
    labels = [s.label for s in plan.trajectory.segments]
    assert labels == ["approach", "settle", "descend", "grasp", "lift", "hold"]


def test_descent_stays_near_the_vertical_line_above_the_object():
    world = SimWorld(1, [], seed=5)
    arm = world.arm_index[0]
    plan = planning.plan_pick(world, 0, "red_cube", np.array(arm_desc.HOME), arm_desc.GRIPPER_MAX)
    ik = planning.IKSolver(world)
    seg = next(s for s in plan.trajectory.segments if s.label == "descend")
    for t in np.linspace(0, seg.duration, 15):
        pos, _ = ik.tcp_pose(arm, seg.sample(t)[0])
        assert np.linalg.norm(pos[:2] - plan.grasp_position[:2]) < 0.01  # fingers open 8 cm around a 4 cm cube


def test_the_physics_executes_a_pick_plan_when_the_servos_track_it():
    """The scene's contact model can grasp: driving the servos straight along the plan lifts the object."""
    world = SimWorld(1, [], seed=1)
    world.step(100)
    arm = world.arm_index[0]
    name = "green_cube"
    plan = planning.plan_pick(world, 0, name, np.array(arm_desc.HOME), arm_desc.GRIPPER_MAX)
    before, _ = world.object_pose(name)
    dt = float(world.model.opt.timestep)
    for t in np.arange(0.0, plan.trajectory.duration, dt):
        q, v, g = plan.trajectory.sample(t)
        world.data.ctrl[arm.ctrl] = q + scene.JOINT_KV / scene.JOINT_KP * v
        world.data.ctrl[arm.finger_ctrl] = g / 2
        world.step(1)
    after, _ = world.object_pose(name)
    assert after[2] - before[2] > 0.1
    assert np.linalg.norm(world.tcp_position(0) - plan.lift_position) < 0.005
    # The fingers stopped on the cube (4 cm wide), not closed through it.
    assert world.data.qpos[arm.finger_qpos].sum() == pytest.approx(0.04, abs=0.004)
