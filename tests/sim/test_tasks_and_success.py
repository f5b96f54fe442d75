"""Pure parts of the sim's task layer: task names, success predicates, perturbations, seed ranges (no MuJoCo)."""

from __future__ import annotations

import numpy as np
import pytest

from harmowam_edge.errors import ConfigError
from harmowam_edge.sim import arm as arm_desc
from harmowam_edge.sim import perturb, seeds, success
from harmowam_edge.sim.tasks import PHASE_NAMES, TASK_KINDS, TASK_NAMES, Task, names_object, parse_task, phase_index


def test_every_task_names_its_target_and_export_defaults_to_the_same_names():
    assert len(TASK_NAMES) == len(set(TASK_NAMES)) == 12
    for name in TASK_NAMES:
        task = parse_task(name)
        assert task.name == name
        assert task.kind in TASK_KINDS
        assert names_object(name)
    assert not names_object("pick")
    assert parse_task("pick", seed=5).name.startswith("pick_")
    config = pytest.importorskip("export.config", reason="the export package is not importable")
    assert config.DEFAULT_TASKS == TASK_NAMES


def test_phase_codes_round_trip_and_an_unknown_phase_is_refused():
    assert [phase_index(p) for p in PHASE_NAMES] == list(range(len(PHASE_NAMES)))
    with pytest.raises(ValueError, match="phase: expected one of"):
        phase_index("close")
    assert Task("pick", "red_cube").describe() == "pick red_cube"


def _facts(obj_start, obj_now, tcp, goal=(0.4, 0.1, 0.0)):
    return success.WorldFacts(*(np.asarray(v, float) for v in (obj_start, obj_now, tcp, goal)))


def test_reach_succeeds_within_a_centimetre_of_the_point_above_the_object():
    start = (0.35, 0.05, 0.02)
    above = success.reach_point(np.array(start))
    np.testing.assert_allclose(above, [0.35, 0.05, success.GRASP_MIN_Z + success.APPROACH_HEIGHT])
    assert success.judge_task("reach", _facts(start, start, above + np.array([0.0, 0.009, 0.0]))).success
    v = success.judge_task("reach", _facts(start, start, above + np.array([0.0, 0.0, 0.011])))
    assert not v.success
    assert v.measure == pytest.approx(0.011)


def test_pick_needs_the_object_lifted_and_between_the_fingers():
    start = np.array([0.35, 0.05, 0.02])
    lifted = start + np.array([0.0, 0.0, 0.06])
    assert success.pick_success(_facts(start, lifted, lifted + np.array([0.0, 0.0, 0.01]))).success
    low = start + np.array([0, 0, 0.04])
    assert not success.pick_success(_facts(start, low, low)).success  # too low
    knocked_up = success.pick_success(_facts(start, lifted, lifted + np.array([0.05, 0.0, 0.0])))  # flying, not held
    assert not knocked_up.success
    assert "not between the fingers" in knocked_up.why


def test_place_needs_the_object_resting_on_the_pad_and_released():
    start = np.array([0.30, -0.1, 0.02])
    goal = np.array([0.40, 0.10, 0.0])
    on_pad = np.array([0.42, 0.10, 0.02])
    away = on_pad + np.array([0.0, 0.0, 0.15])
    assert success.place_success(_facts(start, on_pad, away, goal)).success
    off = on_pad + np.array([0.02, 0.0, 0.0])  # 40 mm from the pad's centre
    assert not success.place_success(_facts(start, off, away, goal)).success
    held = success.place_success(_facts(start, on_pad, on_pad + np.array([0.0, 0.0, 0.01]), goal))
    assert not held.success
    assert "still between the fingers" in held.why
    carried = success.place_success(_facts(start, on_pad + np.array([0.0, 0.0, 0.05]), away, goal))
    assert not carried.success
    with pytest.raises(ValueError, match="task kind"):
        success.judge_task("push", _facts(start, on_pad, away, goal))


def test_perturbations_are_seeded_and_stay_safe():
    cfg = perturb.parse_perturb("start,push")
    assert (cfg.start, cfg.push) == (True, True)
    assert perturb.parse_perturb("none") == perturb.PerturbConfig()
    with pytest.raises(ConfigError, match="--perturb 'shove'"):
        perturb.parse_perturb("shove")
    links = {link.joint: link for link in arm_desc.ARM_LINKS if link.joint in arm_desc.JOINT_NAMES}
    poses = []
    for seed in range(40):
        q, g = perturb.start_pose(seed, 0, cfg)
        again = perturb.start_pose(seed, 0, cfg)
        np.testing.assert_array_equal(q, again[0])
        assert all(links[j].lower <= v <= links[j].upper for j, v in zip(arm_desc.JOINT_NAMES, q, strict=True))
        assert np.max(np.abs(q - np.asarray(arm_desc.HOME))) <= cfg.start_rad + 1e-9
        assert arm_desc.forward_kinematics(q)["tcp"][2, 3] >= perturb.START_MIN_TCP_Z
        assert 0 < g <= arm_desc.GRIPPER_MAX
        poses.append(q)
        push = perturb.push_for(seed, cfg)
        assert perturb.PUSH_WINDOW[0] <= push.fraction <= perturb.PUSH_WINDOW[1]
        assert push.offset[2] > 0  # never toward the table
        assert np.all(np.abs(push.offset[:2]) <= cfg.push_m)
    assert np.std(np.array(poses), axis=0).min() > 0.05  # the starts really differ
    assert not np.array_equal(perturb.start_pose(1, 0, cfg)[0], perturb.start_pose(1, 1, cfg)[0])  # per arm


def test_training_and_evaluation_seed_ranges_never_overlap():
    assert seeds.TRAINING.stop <= seeds.EVALUATION.start
    seeds.check_training_seeds(0, 500)
    seeds.check_evaluation_seeds(seeds.EVALUATION.start, 50)
    with pytest.raises(ConfigError, match=r"uses seeds 99990\.\.100009: training seeds are 0\.\.99999"):
        seeds.check_training_seeds(99_990, 20)
    with pytest.raises(ConfigError, match="evaluation seeds are 100000"):
        seeds.check_evaluation_seeds(1000, 10)
    with pytest.raises(ConfigError, match=r"overlaps seeds 100005\.\.100009 the bundle was trained on"):
        seeds.check_evaluation_seeds(100_000, 10, used=[(100_005, 100_010)])
    seeds.check_evaluation_seeds(100_010, 10, used=[(100_005, 100_010)])  # half-open: touching is fine
