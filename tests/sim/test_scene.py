"""The scene: the reference arm as the schema describes it, seeded placement, deterministic RGB-D rendering."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco", reason="the sim extra (MuJoCo) is not installed")

from harmowam_edge.bundle.schema import CameraSpec, reference_action_space  # noqa: E402
from harmowam_edge.errors import ConfigError  # noqa: E402
from harmowam_edge.sim import arm as arm_desc  # noqa: E402
from harmowam_edge.sim import scene  # noqa: E402
from harmowam_edge.sim.camera import SceneRenderer, depth_to_z16  # noqa: E402
from harmowam_edge.sim.urdf import urdf_xml  # noqa: E402
from harmowam_edge.sim.world import SimWorld  # noqa: E402

pytestmark = pytest.mark.sim

W, H = 160, 120
FRONT = CameraSpec("front", W, H, 30, ("color", "depth"))


def _joint(model, name):
    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)


@pytest.mark.parametrize("arms", [1, 2])
def test_scene_builds_the_reference_arm_with_the_schema_limits(arms):
    world = SimWorld(arms, [FRONT], seed=0)
    m = world.model
    space = reference_action_space(arms)
    for arm_spec, index in zip(space.arms, world.arm_index, strict=True):
        assert index.mount.name == arm_spec.name
        for j, spec in zip(arm_spec.joints, index.qpos, strict=True):
            jid = _joint(m, j.name)
            assert jid >= 0, j.name
            assert m.jnt_qposadr[jid] == spec
            assert m.jnt_range[jid] == pytest.approx([j.lower, j.upper])
            act = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, j.name)
            assert m.actuator_ctrlrange[act] == pytest.approx([j.lower, j.upper])
        # The gripper opening (0..0.08 m) is the sum of two fingers' travel.
        assert arm_spec.gripper is not None
        prefix = index.mount.prefix
        travel = [m.jnt_range[_joint(m, prefix + f)] for f in arm_desc.FINGER_JOINTS]
        assert sum(t[1] for t in travel) == pytest.approx(arm_spec.gripper.upper)
        assert all(t[0] == 0.0 for t in travel)
    # Six position servos and two finger servos per arm, nothing else.
    assert m.nu == 8 * arms


def test_dual_arm_names_are_prefixed_and_arms_stand_apart():
    world = SimWorld(2, [FRONT], seed=0)
    names = [world.model.joint(i).name for i in range(world.model.njnt)]
    assert "left_joint_1" in names
    assert "right_joint_6" in names
    assert "joint_1" not in names
    left, right = world.tcp_position("left"), world.tcp_position("right")
    assert left[1] > 0.2
    assert right[1] < -0.2


def test_placement_is_deterministic_for_a_seed_and_objects_do_not_touch():
    a, b, c = scene.place_objects(7), scene.place_objects(7), scene.place_objects(8)
    assert all(np.array_equal(a[n][0], b[n][0]) and a[n][1] == b[n][1] for n in a)
    assert any(not np.allclose(a[n][0], c[n][0]) for n in a)
    (x0, x1), (y0, y1) = scene.workspace(1)
    pos = {n: p for n, (p, _) in a.items()}
    for n, p in pos.items():
        assert x0 <= p[0] <= x1
        assert y0 <= p[1] <= y1
        for m, q in pos.items():
            if m != n:
                assert np.linalg.norm(p[:2] - q[:2]) > 0.06


def test_objects_rest_on_the_table_after_settling():
    world = SimWorld(1, [], seed=3)
    world.step(250)  # 0.5 s
    for name in scene.OBJECT_NAMES:
        pos, _ = world.object_pose(name)
        assert pos[2] == pytest.approx(scene.object_by_name(name).half_height, abs=2e-3), name
    # The arm holds its home pose under its servos.
    q = world.data.qpos[world.arm_index[0].qpos]
    assert q == pytest.approx(arm_desc.HOME, abs=2e-3)


def _render(seed: int, spec: CameraSpec = FRONT) -> tuple[np.ndarray, np.ndarray, SimWorld]:
    world = SimWorld(1, [spec], seed=seed)
    r = SceneRenderer(world, spec.name, spec.width, spec.height)
    try:
        r.snapshot()
        rgb, depth = r.render()
    finally:
        r.close()
    return rgb, depth, world


def test_rendering_is_deterministic_for_a_seed():
    rgb1, d1, _ = _render(11)
    rgb2, d2, _ = _render(11)
    rgb3, _, _ = _render(12)
    assert rgb1.shape == (H, W, 3)
    assert rgb1.dtype == np.uint8
    assert d1.shape == (H, W)
    assert d1.dtype == np.float32
    assert np.array_equal(rgb1, rgb2)
    assert np.array_equal(d1, d2)
    assert not np.array_equal(rgb1, rgb3)  # other seed, other placement
    assert rgb1.std() > 10  # a scene, not a blank frame


def test_depth_is_metric_z_along_the_optical_axis_and_aligned_to_colour():
    _rgb, depth, world = _render(5)
    K = scene.d435_intrinsics(W, H)
    pose = world.camera_pose("front")
    rng = np.random.default_rng(0)
    geom = np.zeros(1, np.int32)
    errors = []
    for _ in range(200):
        u, v = int(rng.integers(0, W)), int(rng.integers(0, H))
        ray = np.array([(u - K.cx) / K.fx, (v - K.cy) / K.fy, 1.0])
        direction = pose[:3, :3] @ ray
        dist = mujoco.mj_ray(
            world.model, world.data, pose[:3, 3], direction / np.linalg.norm(direction), None, 1, -1, geom
        )
        if dist < 0:
            assert not np.isfinite(depth[v, u]) or depth[v, u] > 5.0
            continue
        errors.append(abs(depth[v, u] - dist / np.linalg.norm(ray)))
    assert len(errors) > 100
    assert max(errors) < 2e-3  # metres; the D435 itself is far noisier


def test_intrinsics_project_objects_onto_their_colour():
    rgb, _, world = _render(4)
    K = scene.d435_intrinsics(W, H)
    assert K.fy == pytest.approx(615.0 * H / 480)
    assert world.model.cam_fovy[0] == pytest.approx(math.degrees(2 * math.atan(H / 2 / K.fy)), abs=1e-4)
    world_to_cam = np.linalg.inv(world.camera_pose("front"))
    for name in ("red_cube", "green_cube", "blue_cube"):
        pos, _ = world.object_pose(name)
        p = world_to_cam @ np.append(pos, 1.0)
        u, v = (K.matrix() @ (p[:3] / p[2]))[:2]
        colour = rgb[round(v), round(u)].astype(int)
        expected = np.array(scene.object_by_name(name).rgba[:3]) * 255
        assert int(np.argmax(colour)) == int(np.argmax(expected)), (name, colour)


def test_z16_conversion_rounds_to_units_and_zeroes_invalid_depth():
    depth = np.array([[0.05, 0.5004, 1.2346, np.inf, 12.0]], np.float32)
    z = depth_to_z16(depth, 0.001)
    assert z.dtype == np.uint16
    assert z.tolist() == [[0, 500, 1235, 0, 0]]


def test_camera_mounts_by_name_and_in_order():
    cams = [CameraSpec("cam_a", W, H, 30), CameraSpec("front", W, H, 30), CameraSpec("wrist", W, H, 30)]
    mounts = scene.camera_mounts(cams, arms=1)
    assert [m.name for m in mounts] == ["cam_a", "front", "wrist"]
    assert mounts[1].pos == scene.FIXED_MOUNTS["front"][0]
    assert mounts[0].pos == scene.FIXED_MOUNTS["side"][0]  # first free mount
    assert mounts[2].body == "palm"
    with pytest.raises(ConfigError, match="no arm 'left'"):
        scene.camera_mounts([CameraSpec("left_wrist", W, H, 30)], arms=1)


def test_wrist_camera_moves_with_the_arm():
    spec = CameraSpec("wrist", W, H, 30, ("color", "depth"))
    world = SimWorld(1, [spec], seed=0)
    before = world.camera_pose("wrist")
    palm = world.data.xpos[world.model.body("palm").id].copy()
    with world.lock:
        world.data.qpos[world.arm_index[0].qpos[0]] = 0.5
        mujoco.mj_forward(world.model, world.data)
    after = world.camera_pose("wrist")
    assert not np.allclose(before[:3, 3], after[:3, 3])
    # At home the tool points straight down; the camera looks down and in, its optical axis crossing the tool
    # axis WRIST_CAMERA_AIM past the palm frame, so the fingertips and what they grasp stay in view.
    target = palm + np.array([0.0, 0.0, -scene.WRIST_CAMERA_AIM])
    view = target - before[:3, 3]
    assert before[:3, 2] == pytest.approx(view / np.linalg.norm(view), abs=1e-6)
    assert before[2, 2] < -0.8  # mostly down: a lean of about 30 degrees


# ----------------------------------------------------------------------------------------------------------------
# Kinematics: the description's FK, the MJCF and the URDF agree.


def _urdf_fk(text: str, values: dict[str, float]) -> dict[str, np.ndarray]:
    """A small independent URDF forward-kinematics reader (fixed, revolute, prismatic, mimic)."""

    def rpy_matrix(r, p, y):
        cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
        rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
        ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
        rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
        return rz @ ry @ rx

    root = ET.fromstring(text)
    joints = root.findall("joint")
    children = {j.find("child").get("link"): j for j in joints}
    links = [link.get("name") for link in root.findall("link")]
    base = next(n for n in links if n not in children)
    poses = {base: np.eye(4)}

    def pose(link):
        if link in poses:
            return poses[link]
        j = children[link]
        origin = j.find("origin")
        t = np.eye(4)
        t[:3, 3] = [float(x) for x in origin.get("xyz").split()]
        t[:3, :3] = rpy_matrix(*[float(x) for x in origin.get("rpy").split()])
        kind = j.get("type")
        if kind != "fixed":
            axis = np.array([float(x) for x in j.find("axis").get("xyz").split()])
            mimic = j.find("mimic")
            q = values[mimic.get("joint") if mimic is not None else j.get("name")]
            motion = np.eye(4)
            if kind == "revolute":
                motion[:3, :3] = arm_desc.rotation(tuple(axis), q)
            else:
                motion[:3, 3] = axis * q
            t = t @ motion
        poses[link] = pose(j.find("parent").get("link")) @ t
        return poses[link]

    for link in links:
        pose(link)
    return poses


def test_forward_kinematics_of_description_mjcf_and_urdf_agree():
    world = SimWorld(1, [], seed=0)
    m, d = world.model, world.data
    index = world.arm_index[0]
    text = urdf_xml()
    rng = np.random.default_rng(1)
    for _ in range(10):
        q = rng.uniform(index.lower, index.upper)
        opening = float(rng.uniform(0, 0.08))
        d.qpos[index.qpos] = q
        d.qpos[index.finger_qpos] = opening / 2
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        ours = arm_desc.forward_kinematics(q, opening)
        urdf = _urdf_fk(text, {**dict(zip(arm_desc.JOINT_NAMES, q, strict=True)), "finger_left": opening / 2})
        for link in [*(lk.name for lk in arm_desc.ARM_LINKS), "tcp"]:
            if link == "tcp":
                mj_pos = d.site_xpos[index.tcp_site]
                mj_rot = d.site_xmat[index.tcp_site].reshape(3, 3)
            else:
                body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, link)
                mj_pos, mj_rot = d.xpos[body], d.xmat[body].reshape(3, 3)
            for name, pose in (("description", ours[link]), ("urdf", urdf[link])):
                assert pose[:3, 3] == pytest.approx(mj_pos, abs=1e-9), (name, link)
                assert pose[:3, :3] == pytest.approx(mj_rot, abs=1e-9), (name, link)


def test_urdf_joint_limits_match_the_schema_and_mujoco_loads_it():
    root = ET.fromstring(urdf_xml())
    arm_spec = reference_action_space(1).arms[0]
    for j in arm_spec.joints:
        el = root.find(f"joint[@name='{j.name}']")
        assert el is not None
        assert el.get("type") == "revolute"
        limit = el.find("limit")
        assert float(limit.get("lower")) == pytest.approx(j.lower)
        assert float(limit.get("upper")) == pytest.approx(j.upper)
        assert float(limit.get("velocity")) == pytest.approx(j.max_velocity)
    model = mujoco.MjModel.from_xml_string(urdf_xml())  # a well-formed URDF by MuJoCo's own parser
    assert model.njnt == 8
    prefixed = ET.fromstring(urdf_xml("left_"))
    assert prefixed.find("joint[@name='left_joint_3']") is not None


def test_urdf_loads_in_the_calibration_kinematics_and_agrees(tmp_path):
    """Hand-eye calibration reads this URDF with Pinocchio: the simulated arm's FK must come out the same."""
    pytest.importorskip("pinocchio", reason="Pinocchio (calib extra) is not installed")
    kinematics = pytest.importorskip("calibration.kinematics")
    from harmowam_edge.sim.urdf import write_urdf

    path = write_urdf(tmp_path / "arm.urdf")
    kin = kinematics.UrdfKinematics(path, "tcp")
    assert kin.joint_names == list(arm_desc.JOINT_NAMES)
    rng = np.random.default_rng(4)
    for _ in range(5):
        q = rng.uniform(-1.5, 1.5, 6)
        np.testing.assert_allclose(np.asarray(kin.fk(q)), arm_desc.forward_kinematics(q)["tcp"], atol=1e-9)


@pytest.mark.parametrize("arms", [1, 2])
def test_every_layout_is_reachable_and_plannable(arms):
    """Over many seeds: objects and the goal pad within top-down reach, and the expert finds a plan for each."""
    from harmowam_edge.sim import planning

    for seed in range(0, 60, 3):
        objects, goal = scene.place_scene(seed, arms)
        assert scene.reachable(goal[:2], arms, every_arm=True)
        for name, (pos, _) in objects.items():
            assert scene.reachable(pos[:2], arms)
            assert np.linalg.norm(pos[:2] - goal[:2]) > scene.GOAL_RADIUS + scene.object_by_name(name).footprint
    world = SimWorld(arms, [], seed=7)
    for seed in range(0, 40, 4):
        world.reset(seed)
        for name in scene.OBJECT_NAMES:
            pos, _ = world.object_pose(name)
            acting = int(np.argmin([np.linalg.norm(pos[:2] - np.asarray(a.mount.pos[:2])) for a in world.arm_index]))
            plan = planning.plan_task(world, acting, "pick_and_place", name, np.array(arm_desc.HOME), 0.08)
            assert plan.place_position is not None
