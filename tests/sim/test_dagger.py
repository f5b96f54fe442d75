"""DAgger: the relabeller's phase logic on ground truth, and `sim dagger` end to end into the trainer's reader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harmowam_edge.sim import arm as arm_desc
from harmowam_edge.sim import planning, success
from harmowam_edge.sim.tasks import PHASE_NAMES, parse_task

pytestmark = pytest.mark.sim

K, RATE = 12, 48.0


@pytest.fixture(scope="module")
def scene():
    """A world at rest (no physics thread), the pick task's context and a solver with the grasp rotation."""
    from harmowam_edge.sim.relabel import EpisodeContext
    from harmowam_edge.sim.world import SimWorld

    world = SimWorld(arms=1, seed=0)
    task = parse_task("pick_red_cube")
    pos, quat = world.object_pose(task.object)
    ik = planning.IKSolver(world)
    arm = world.arm(0)
    rot = planning.grasp_rotation(ik, arm, np.asarray(arm_desc.HOME), "box", quat)
    ctx = EpisodeContext(task, 0, pos, world.goal_position())
    return world, ctx, ik, arm, rot, quat


def _state(scene, tcp_target, g, obj_pos=None):
    """The frame of an arm whose TCP was brought to `tcp_target` (IK), gripper `g`, at rest."""
    from harmowam_edge.sim.relabel import FrameState

    _, ctx, ik, arm, rot, quat = scene
    q = ik.solve(arm, np.asarray(tcp_target, float), rot, np.asarray(arm_desc.HOME)).q
    tcp, _ = ik.tcp_pose(arm, q)
    obj = ctx.object_start if obj_pos is None else np.asarray(obj_pos, float)
    joint = np.append(q, g).astype(np.float32)
    return FrameState(10.0, 10.0, joint, np.zeros(7, np.float32), obj, quat, tcp)


def _tcp_z(scene, chunk):
    _, _, ik, arm, _, _ = scene
    return np.array([ik.tcp_pose(arm, row[:6].astype(float))[0][2] for row in chunk])


def test_a_mid_descent_state_is_labelled_to_go_down_not_back_up(scene):
    from harmowam_edge.sim.relabel import relabel

    world, ctx, *_ = scene
    grasp = success.grasp_point(ctx.object_start)
    f = _state(scene, grasp + np.array([0.0, 0.0, 0.06]), arm_desc.GRIPPER_MAX)  # half way down from the approach pose
    label = relabel(world, ctx, f, K, RATE)
    assert label.chunk.shape == (K, 7)
    assert label.chunk.dtype == np.float32
    assert (label.situation, PHASE_NAMES[label.phase]) == ("descend", "descend")
    z = _tcp_z(scene, label.chunk)
    assert z[-1] < z[0] - 1e-4  # down
    assert np.all(np.diff(z) <= 1e-6)  # and never up
    assert np.allclose(label.chunk[:, 6], arm_desc.GRIPPER_MAX, atol=1e-6)  # open until the grasp point
    # What plan_task would do from the same state (the demonstrations' start): back up to the approach pose.
    plan = planning.plan_task(world, 0, "pick", ctx.task.object, f.joint_pos[:6], float(f.joint_pos[6]))
    assert plan.trajectory.segments[0].label == "approach"


def test_a_lifted_and_held_object_is_labelled_to_go_on_up(scene):
    from harmowam_edge.sim.relabel import relabel

    world, ctx, *_ = scene
    lifted = ctx.object_start + np.array([0.0, 0.0, 0.05])
    f = _state(scene, success.grasp_point(lifted), 0.04, obj_pos=lifted)  # fingers on the 4 cm cube
    label = relabel(world, ctx, f, K, RATE)
    assert (label.situation, PHASE_NAMES[label.phase]) == ("carry", "lift")
    z = _tcp_z(scene, label.chunk)
    assert z[-1] > z[0] + 1e-4
    assert label.chunk[-1, 6] <= label.chunk[0, 6]  # the fingers keep squeezing


def test_a_missed_grasp_is_labelled_to_open_the_gripper(scene):
    from harmowam_edge.sim.relabel import relabel

    world, ctx, *_ = scene
    beside = ctx.object_start + np.array([0.045, 0.0, 0.0])  # closed 4.5 cm from the cube: nothing between them
    f = _state(scene, success.grasp_point(ctx.object_start), 0.0, obj_pos=beside)
    label = relabel(world, ctx, f, K, RATE)
    assert label.situation == "missed"
    assert PHASE_NAMES[label.phase] == "approach"
    # Opening at speed: ~18 mm in one chunk. From rest it was ~1 mm, replanned from rest again at every frame,
    # and a policy that learnt it kept its fingers shut.
    assert label.chunk[-1, 6] > 0.012


def test_the_fingers_closing_on_the_cube_keep_closing(scene):
    from harmowam_edge.sim.relabel import relabel

    world, ctx, *_ = scene
    f = _state(scene, success.grasp_point(ctx.object_start), 0.05)
    label = relabel(world, ctx, f, K, RATE)
    assert (label.situation, PHASE_NAMES[label.phase]) == ("closing", "grasp")
    assert label.chunk[-1, 6] < 0.05 - 0.004  # at speed, not the ~0.3 mm a close from rest makes in a chunk


def test_fingers_open_at_the_grasp_point_are_labelled_to_close_at_speed(scene):
    from harmowam_edge.sim.relabel import relabel

    world, ctx, *_ = scene
    f = _state(scene, success.grasp_point(ctx.object_start), arm_desc.GRIPPER_MAX)
    label = relabel(world, ctx, f, K, RATE)
    assert (label.situation, PHASE_NAMES[label.phase]) == ("descend", "grasp")
    assert label.chunk[-1, 6] < arm_desc.GRIPPER_MAX - 0.012


def test_open_fingers_a_centimetre_off_the_cube_close_where_they_are(scene):
    """Inside the capture region (grasps that close 8-12 mm off lift as often as centred ones) the label closes
    now and holds the arm still; just outside it, it still moves to the grasp point first."""
    from harmowam_edge.sim.relabel import CAPTURE_XY, relabel

    world, ctx, *_ = scene
    grasp = success.grasp_point(ctx.object_start)
    f = _state(scene, grasp + np.array([0.009, -0.004, 0.003]), arm_desc.GRIPPER_MAX)
    label = relabel(world, ctx, f, K, RATE)
    assert (label.situation, PHASE_NAMES[label.phase]) == ("descend", "grasp")
    assert label.chunk[-1, 6] < arm_desc.GRIPPER_MAX - 0.012  # closing at speed
    np.testing.assert_allclose(label.chunk[:, :6], np.repeat(f.joint_pos[None, :6], K, axis=0), atol=1e-6)
    outside = _state(scene, grasp + np.array([CAPTURE_XY + 0.004, 0.0, 0.0]), arm_desc.GRIPPER_MAX)
    label = relabel(world, ctx, outside, K, RATE)
    assert (label.situation, PHASE_NAMES[label.phase]) == ("descend", "descend")
    assert np.allclose(label.chunk[:, 6], arm_desc.GRIPPER_MAX, atol=1e-6)


def test_the_rest_of_a_descent_takes_what_the_demonstrations_take() -> None:
    """The minimum-jerk descent's tail: all of it for the whole approach height, half the time for half the
    way (the blend is symmetric), and a short distance near the bottom only a fraction of the 0.8 s a fresh
    plan would take."""
    from harmowam_edge.sim.relabel import descent_left

    t = 1.2
    assert descent_left(planning.APPROACH_HEIGHT, t) == pytest.approx(t, abs=1e-9)
    assert descent_left(planning.APPROACH_HEIGHT / 2, t) == pytest.approx(t / 2, abs=1e-9)
    assert descent_left(0.0, t) == pytest.approx(0.0, abs=1e-5)  # the blend rounds to 1 within ~4 µs of the end
    left = [descent_left(d, t) for d in np.linspace(0.0, planning.APPROACH_HEIGHT, 25)]
    assert np.all(np.diff(left) > 0)
    assert descent_left(0.01, t) < 0.3


def test_a_state_two_centimetres_above_the_cube_descends_at_the_demonstrations_pace(scene):
    """20 mm above the grasp point the demonstrations are ~0.37 s from closing: the label covers most of the way
    in one chunk (a fresh 0.8 s plan covered under half of it) and stays open."""
    from harmowam_edge.sim.relabel import relabel

    world, ctx, *_ = scene
    grasp = success.grasp_point(ctx.object_start)
    f = _state(scene, grasp + np.array([0.0, 0.0, 0.02]), arm_desc.GRIPPER_MAX)
    label = relabel(world, ctx, f, K, RATE)
    assert (label.situation, PHASE_NAMES[label.phase]) == ("descend", "descend")
    z = _tcp_z(scene, label.chunk)
    assert z[-1] - grasp[2] < 0.5 * (z[0] - grasp[2])
    assert np.all(np.diff(z) <= 1e-6)
    assert np.allclose(label.chunk[:, 6], arm_desc.GRIPPER_MAX, atol=1e-6)


def test_fingers_squeezing_the_cube_are_labelled_to_lift_now(scene):
    """The fingers stop at the cube's width and stay there: the label must lift within the chunk, not wait for
    closing that never ends."""
    from harmowam_edge.sim.relabel import closing_time, relabel

    world, ctx, *_ = scene
    width = 2.0 * min(world.object_spec(ctx.task.object).size[:2])
    assert closing_time(width - 0.0015, width) == 0.0  # squeezed
    assert closing_time(width + 0.0005, width) > 0.0  # touching, not yet squeezing
    f = _state(scene, success.grasp_point(ctx.object_start), width - 0.0015)
    label = relabel(world, ctx, f, K, RATE)
    assert (label.situation, PHASE_NAMES[label.phase]) == ("closing", "lift")
    z = _tcp_z(scene, label.chunk)
    assert z[-1] > z[0] + 2e-3  # up by millimetres within one chunk
    assert np.all(label.chunk[:, 6] == 0.0)  # squeezing all the way


def _turned(quat, angle):
    """`quat` (w, x, y, z) turned by `angle` about the world z axis."""
    c, s = np.cos(angle / 2), np.sin(angle / 2)
    w, x, y, z = quat
    return np.array([c * w - s * z, c * x - s * y, c * y + s * x, c * z + s * w])


def test_the_contact_width_follows_the_box_s_yaw_against_the_fingers() -> None:
    from harmowam_edge.sim.relabel import contact_width
    from harmowam_edge.sim.scene import SceneObject

    cube = SceneObject("c", "box", (0.02, 0.02, 0.02), (1, 0, 0, 1))
    bar = SceneObject("b", "box", (0.01, 0.03, 0.02), (1, 0, 0, 1))
    can = SceneObject("k", "cylinder", (0.025, 0.01), (1, 0, 0, 1))
    level = np.array([1.0, 0.0, 0.0, 0.0])
    x_axis = np.array([1.0, 0.0, 0.0])
    assert contact_width(cube, level, x_axis) == pytest.approx(0.04)
    assert contact_width(cube, _turned(level, np.pi / 4), x_axis) == pytest.approx(0.04 * np.sqrt(2))
    assert contact_width(cube, _turned(level, np.pi / 2), x_axis) == pytest.approx(0.04)
    assert contact_width(bar, level, x_axis) == pytest.approx(0.02)  # across its narrow faces
    assert contact_width(bar, level, np.array([0.0, 1.0, 0.0])) == pytest.approx(0.06)
    assert contact_width(can, _turned(level, 0.7), x_axis) == pytest.approx(0.05)  # round: its diameter


def test_fingers_resting_on_a_turned_cube_are_labelled_to_lift_now(scene):
    """Fingers at 53 mm have not reached a face-on cube's 40 mm (keep closing), but they rest squeezed on the
    same cube turned 30° against them (55 mm across): lift now."""
    import dataclasses

    from harmowam_edge.sim.relabel import relabel

    world, ctx, *_ = scene
    f = _state(scene, success.grasp_point(ctx.object_start), 0.053)
    face_on = relabel(world, ctx, f, K, RATE)
    assert (face_on.situation, PHASE_NAMES[face_on.phase]) == ("closing", "grasp")
    turned = dataclasses.replace(f, object_quat=_turned(f.object_quat, np.radians(30)))
    label = relabel(world, ctx, turned, K, RATE)
    assert (label.situation, PHASE_NAMES[label.phase]) == ("closing", "lift")
    assert _tcp_z(scene, label.chunk)[-1] > _tcp_z(scene, label.chunk)[0] + 2e-3


def test_labels_start_at_speed_so_a_policy_at_rest_is_told_to_move() -> None:
    """A cruising segment starts at the minimum-jerk move's peak speed, only slows, and ends at rest on its goal;
    over one chunk it moves many times what the move from rest would (the stall a state-only policy learns)."""
    from harmowam_edge.sim.relabel import cruising

    q0, q1 = np.zeros(6), np.array([0.4, -0.3, 0.2, 0.0, 0.1, -0.2])
    seg = planning.timed_segment(q0, q1, 0.08, 0.08, "approach")
    fast = cruising(seg)
    times = np.linspace(0.0, seg.duration, 200)
    speeds = [np.abs(fast.sample(t)[1]) for t in times]
    assert np.all(np.diff(np.array(speeds), axis=0) <= 1e-9)  # never speeds up
    assert float(np.max(speeds[0])) <= planning.EXPERT_VELOCITY + 1e-9
    end_q, end_v, _ = fast.sample(seg.duration)
    np.testing.assert_allclose(end_q, q1, atol=1e-9)
    np.testing.assert_allclose(end_v, 0.0, atol=1e-9)
    chunk_s = (K - 1) / RATE
    moved_fast = np.linalg.norm(fast.sample(chunk_s)[0] - q0)
    moved_rest = np.linalg.norm(seg.sample(chunk_s)[0] - q0)
    assert moved_fast > 3 * moved_rest


def test_the_gripper_label_starts_at_speed_too() -> None:
    """A reopening after a missed grasp: the fingers move at speed from the first sample and end at rest, open."""
    from harmowam_edge.sim.relabel import cruising

    q = np.zeros(6)
    seg = planning.timed_segment(q, q, 0.0, arm_desc.GRIPPER_MAX, "approach")
    fast = cruising(seg)
    times = np.linspace(0.0, seg.duration, 200)
    g = np.array([fast.sample(t)[2] for t in times])
    assert np.all(np.diff(g) >= 0.0)  # only opens
    steps = np.diff(g) / np.diff(times)
    assert np.all(np.diff(steps) <= 1e-9)  # never speeds up
    assert float(steps[0]) <= planning.GRIPPER_VELOCITY + 1e-9
    assert fast.sample(seg.duration)[2] == pytest.approx(arm_desc.GRIPPER_MAX, abs=1e-9)
    chunk_s = (K - 1) / RATE
    assert fast.sample(chunk_s)[2] > 10 * seg.sample(chunk_s)[2]


def test_sim_dagger_refuses_evaluation_seeds(tmp_path, capsys):
    from harmowam_edge.cli import main

    # The seeds are checked before anything loads: no bundle needed to be refused.
    args = ["sim", "dagger", "--bundle", str(tmp_path / "b"), "--task", "pick", "--episodes", "1",
            "--seed", "100000", "--out", str(tmp_path / "d")]  # fmt: skip
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "training seeds are 0..99999" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()


def test_sim_dagger_writes_labelled_rollouts_the_trainer_reads(nano_bundle, tmp_path, capsys):
    from export.learning.data import frame_targets, load_episodes
    from harmowam_edge.bundle.schema import MANIFEST_NAME, sha256_file
    from harmowam_edge.cli import main
    from harmowam_edge.sim.demos import read_setpoints

    out = tmp_path / "dagger"
    args = ["sim", "dagger", "--bundle", str(nano_bundle), "--task", "pick_red_cube", "--episodes", "1",
            "--seed", "7", "--out", str(out), "--record-hz", "5", "--max-seconds", "2"]  # fmt: skip
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "episode 1/1 seed 7 pick_red_cube" in captured.out
    assert "sim dagger: " in captured.out
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["driver"] == "dagger"
    assert meta["bundle"] == {
        "path": str(nano_bundle),
        "manifest_sha256": sha256_file(nano_bundle / MANIFEST_NAME),
    }
    (rec,) = meta["episodes"]
    if rec["steps"] < 2:  # the rollout got no CPU to record in (an overloaded machine): nothing to read
        pytest.skip(f"the rollout recorded {rec['steps']} frame(s): {rec['notes']}")
    sp = read_setpoints(out / rec["dir"])  # the learner's own setpoints are still there
    assert len(sp["t"]) > 0
    (ep,) = load_episodes([out])
    assert ep.label_chunks is not None
    m = json.loads((nano_bundle / MANIFEST_NAME).read_text())["policy"]
    k, rate = m["chunk_size"], m["action_rate_hz"]
    assert ep.label_chunks.shape == (ep.frames, k, 7) == (rec["steps"], k, 7)
    assert ep.success is None  # a rollout's outcome is no verdict on the expert's labels
    tg = frame_targets(ep, k, rate, horizon=2, horizon_dt_s=0.1)
    np.testing.assert_array_equal(tg.chunks, ep.label_chunks)
    assert sum(rec["labels"].values()) == ep.frames
    # The states each label was planned from stay in the files: `sim relabel` plans them again, to a copy.
    assert rec["context"]["acting"] == 0
    again = tmp_path / "again"
    with pytest.raises(SystemExit) as e:  # typer exits 0 once the command is done
        main(["sim", "relabel", str(out), "--out", str(again)])
    captured = capsys.readouterr()
    assert e.value.code in (0, None), captured.err
    assert "sim relabel: " in captured.out
    (ep2,) = load_episodes([again])
    np.testing.assert_array_equal(ep2.label_chunks, ep.label_chunks)  # the same rules: the same labels
    np.testing.assert_array_equal(ep2.images[0], ep.images[0])
    meta2 = json.loads((again / "dataset.json").read_text())
    assert meta2["relabelled"]["from"] == str(out)
    assert meta2["episodes"][0]["labels"] == rec["labels"]


def test_sim_relabel_refuses_rollouts_without_their_states(tmp_path, capsys):
    """Rollouts recorded before `sim dagger` kept its states cannot be relabelled: one line, nothing written."""
    from harmowam_edge.cli import main

    src = tmp_path / "old"
    src.mkdir()
    meta = {"driver": "dagger", "label": {"fields": ["label_chunk", "label_phase"], "chunk_size": 12,
            "action_rate_hz": 48.0}, "episodes": []}  # fmt: skip
    (src / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit) as e:
        main(["sim", "relabel", str(src), "--out", str(tmp_path / "new")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "dataset.json: label.state_fields: lacks state_t" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "new").exists()
