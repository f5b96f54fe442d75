"""URDF forward kinematics through Pinocchio, and the hand-eye pose file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calibration.errors import KinematicsError, PoseFileError
from calibration.geometry import exp_so3, make_transform, quat_from_matrix
from calibration.kinematics import UrdfKinematics
from calibration.poses import load_pose_file

# A small two-link planar arm + a fixed tool and a finger off the chain: FK is easy to write down by hand.
SMALL_URDF = """<?xml version="1.0"?>
<robot name="tiny">
  <link name="base"/><link name="l1"/><link name="l2"/><link name="tool"/><link name="finger"/>
  <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/><origin xyz="0 0 0.1" rpy="0 0 0"/>
    <axis xyz="0 0 1"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
  <joint name="j2" type="revolute"><parent link="l1"/><child link="l2"/><origin xyz="0.3 0 0" rpy="0 0 0"/>
    <axis xyz="0 0 1"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
  <joint name="tool_joint" type="fixed"><parent link="l2"/><child link="tool"/>
    <origin xyz="0.2 0 0" rpy="0 0 0"/></joint>
  <joint name="finger_joint" type="prismatic"><parent link="tool"/><child link="finger"/>
    <origin xyz="0 0 0" rpy="0 0 0"/><axis xyz="0 1 0"/><limit lower="0" upper="0.04" effort="1" velocity="1"/></joint>
</robot>
"""


@pytest.fixture
def small_urdf(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.urdf"
    p.write_text(SMALL_URDF)
    return p


def test_small_urdf_fk_matches_hand_computation(small_urdf: Path) -> None:
    kin = UrdfKinematics(small_urdf, "tool")
    assert kin.joint_names == ["j1", "j2"]
    q1, q2 = 0.4, -0.9
    T = kin.fk([q1, q2])
    x = 0.3 * np.cos(q1) + 0.2 * np.cos(q1 + q2)
    y = 0.3 * np.sin(q1) + 0.2 * np.sin(q1 + q2)
    np.testing.assert_allclose(T[:3, 3], [x, y, 0.1], atol=1e-12)
    np.testing.assert_allclose(T[:3, :3], exp_so3(np.array([0, 0, q1 + q2])), atol=1e-12)


def test_kinematics_errors_name_the_problem(small_urdf: Path, tmp_path: Path) -> None:
    with pytest.raises(KinematicsError, match="no link named 'flange'"):
        UrdfKinematics(small_urdf, "flange")
    with pytest.raises(KinematicsError, match=r"has 2 joints .* but 6 joint positions"):
        UrdfKinematics(small_urdf, "tool").fk(np.zeros(6))
    with pytest.raises(KinematicsError, match="no such URDF"):
        UrdfKinematics(tmp_path / "missing.urdf")
    (tmp_path / "bad.urdf").write_text("<robot><link></robot>")
    with pytest.raises(KinematicsError, match="not a URDF"):
        UrdfKinematics(tmp_path / "bad.urdf")


def test_reference_arm_urdf_fk_matches_the_simulated_rig(tmp_path: Path) -> None:
    """The project's reference arm: Pinocchio's FK equals the rig's own FK (the description both come from)."""
    pytest.importorskip("mujoco", reason="the sim extra (MuJoCo) is not installed")
    from harmowam_edge.sim import arm
    from harmowam_edge.sim.urdf import write_urdf

    kin = UrdfKinematics(write_urdf(tmp_path / "arm.urdf"))
    assert kin.tip_link == "link_6"
    assert kin.joint_names == [f"joint_{i}" for i in range(1, 7)]
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = rng.uniform(-1.5, 1.5, 6)
        np.testing.assert_allclose(kin.fk(q), arm.forward_kinematics(q)["link_6"], atol=1e-9)


def _write(tmp_path: Path, poses: list, **top) -> Path:
    p = tmp_path / "poses.json"
    p.write_text(json.dumps({"format": "harmowam-edge/handeye-poses", "version": 1, "poses": poses, **top}))
    return p


def test_pose_file_forms_agree(tmp_path: Path) -> None:
    T = make_transform(exp_so3(np.array([0.3, -0.2, 1.0])), np.array([0.4, 0.1, 0.3]))
    q = quat_from_matrix(T[:3, :3]).tolist()
    T_in_mm = T.copy()
    T_in_mm[:3, 3] *= 1000
    p = _write(
        tmp_path,
        [
            {"image": "a.png", "T_base_gripper": T_in_mm.tolist()},
            {"image": "b.png", "translation": (T[:3, 3] * 1000).tolist(), "quaternion_xyzw": q},
            {"image": "c.png", "joints": [0.1, 0.2]},
        ],
        translation_unit="mm",
    )
    pf = load_pose_file(p)  # translation_unit mm applies to both pose forms
    np.testing.assert_allclose(pf.entries[0].T_base_gripper, T, atol=1e-12)
    np.testing.assert_allclose(pf.entries[1].T_base_gripper, T, atol=1e-9)
    assert pf.entries[2].T_base_gripper is None
    assert pf.entries[2].joints == (0.1, 0.2)
    assert pf.needs_kinematics
    assert pf.entries[0].image == (tmp_path / "a.png").resolve()


@pytest.mark.parametrize(
    ("poses", "words"),
    [
        ([{"image": "a.png"}], "exactly one of"),
        ([{"image": "a.png", "translation": [0, 0, 0]}], "needs quaternion_xyzw"),
        ([{"image": "a.png", "translation": [0, 0, 0], "quaternion_xyzw": [0, 0, 0, 2]}], "not a unit quaternion"),
        (
            [{"image": "a.png", "T_base_gripper": [[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}],
            "not a rigid transform",
        ),
        ([{"translation": [0, 0, 0], "quaternion_xyzw": [0, 0, 0, 1]}], r"poses\[0\].image"),
        ([], "non-empty list"),
    ],
)
def test_bad_pose_files_name_the_entry(tmp_path: Path, poses: list, words: str) -> None:
    with pytest.raises(PoseFileError, match=words):
        load_pose_file(_write(tmp_path, poses))


def test_not_a_pose_file(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"poses": []}))
    with pytest.raises(PoseFileError, match="not a hand-eye pose file"):
        load_pose_file(tmp_path / "x.json")
