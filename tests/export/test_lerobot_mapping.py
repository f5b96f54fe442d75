"""The LeRobot feature mapping and unit rules (pure: no files but a mapping file)."""

from __future__ import annotations

import numpy as np
import pytest

from export.errors import DatasetError
from export.learning.lerobot_mapping import (
    LeRobotMapping,
    camera_name,
    joint_name,
    slug,
    task_name,
    to_action_units,
    units_note,
)

NAMES = ("shoulder_pan.pos", "elbow.pos", "gripper.pos")


def test_default_names_follow_lerobot_conventions():
    m = LeRobotMapping()
    assert slug("Grab the black cube.") == "grab_the_black_cube"
    assert slug("  ?? ") == "task"
    assert task_name("Pick it", LeRobotMapping(tasks={"Pick it": "pick_red_cube"})) == "pick_red_cube"
    assert joint_name("shoulder_pan.pos", m) == "shoulder_pan"
    assert joint_name("shoulder_pan.pos", LeRobotMapping(joints={"shoulder_pan.pos": "joint_1"})) == "joint_1"
    assert camera_name("observation.images.wrist.left", m) == "wrist_left"
    assert camera_name("observation.images.top", LeRobotMapping(cameras={"observation.images.top": "cam0"})) == "cam0"


def test_units_convert_degrees_and_gripper_ranges():
    v = np.array([[90.0, -180.0, 50.0], [0.0, 45.0, 100.0]])
    out = to_action_units(v, NAMES, LeRobotMapping(joint_unit="deg", gripper_unit="percent"), "f: action")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, :2], np.deg2rad(v[:, :2]), rtol=1e-6)
    np.testing.assert_allclose(out[:, 2], [0.04, 0.08], rtol=1e-6)
    frac = to_action_units(
        np.array([[0.1, 0.2, 0.5]]), NAMES, LeRobotMapping(gripper_unit="fraction", gripper_open_m=0.05), "f"
    )
    np.testing.assert_allclose(frac[0], [0.1, 0.2, 0.025], rtol=1e-6)
    same = to_action_units(np.array([[0.1, -2.0, 0.03]]), NAMES, LeRobotMapping(), "f")
    np.testing.assert_allclose(same[0], [0.1, -2.0, 0.03], rtol=1e-6)
    assert units_note(LeRobotMapping()) == "joints rad (assumed), gripper m (assumed)"


def test_values_outside_the_unit_are_refused_naming_the_feature_and_the_fix():
    with pytest.raises(DatasetError, match=r"data\.parquet: action: elbow\.pos reaches 180.*`joint_unit: deg`"):
        to_action_units(np.array([[0.0, 180.0, 0.0]]), NAMES, LeRobotMapping(), "data.parquet: action")
    with pytest.raises(DatasetError, match=r"joints reach 900 degrees"):
        to_action_units(np.array([[0.0, 900.0, 0.0]]), NAMES, LeRobotMapping(joint_unit="deg"), "f")
    with pytest.raises(DatasetError, match=r"gripper\.pos spans 55\.\.55, outside -0\.02\.\.0\.3 for gripper_unit 'm'"):
        to_action_units(np.array([[0.0, 0.0, 55.0]]), NAMES, LeRobotMapping(), "f")
    with pytest.raises(DatasetError, match=r"f: non-finite value nan at frame 0, elbow\.pos"):
        to_action_units(np.array([[0.0, np.nan, 0.0]]), NAMES, LeRobotMapping(), "f")
    with pytest.raises(DatasetError, match=r"several dimensions look like a gripper"):
        to_action_units(np.zeros((1, 2)), ("left_gripper", "right_gripper"), LeRobotMapping(), "f")
    with pytest.raises(DatasetError, match=r"mapping gripper 'claw' is not one of its names"):
        to_action_units(np.zeros((1, 3)), NAMES, LeRobotMapping(gripper="claw"), "f")


def test_mapping_fields_are_validated_by_name(tmp_path):
    with pytest.raises(DatasetError, match=r"mapping: gripper_open_m: expected a number > 0"):
        LeRobotMapping(gripper_open_m=-1.0)
    with pytest.raises(DatasetError, match=r"x\.yaml: episodes: expected a list of episode indices"):
        LeRobotMapping.from_dict({"episodes": [1, -2]}, "x.yaml")
    with pytest.raises(DatasetError, match=r"x\.yaml: cameras\.observation\.images\.top: expected a string"):
        LeRobotMapping.from_dict({"cameras": {"observation.images.top": 3}}, "x.yaml")
    f = tmp_path / "m.yaml"
    f.write_text("action_rate_hz: 30\nepisodes: [0, 2]\ncache: false\n")
    m = LeRobotMapping.from_file(f)
    assert (m.action_rate_hz, m.episodes, m.cache) == (30.0, (0, 2), False)
    with pytest.raises(DatasetError, match=r"nope\.yaml: mapping file not found"):
        LeRobotMapping.from_file(tmp_path / "nope.yaml")


def test_a_yaml_syntax_error_is_one_line_naming_file_line_and_column(tmp_path):
    f = tmp_path / "map.yaml"
    f.write_text("state: observation.state\naction: [action\ngripper_open_m: 0.08\n")
    with pytest.raises(DatasetError) as e:
        LeRobotMapping.from_file(f)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{f}:3:")  # file:line:col of the problem
    assert "not valid YAML" in msg
