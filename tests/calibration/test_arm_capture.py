"""Hand-eye guided capture over the real arm link: pyserial on a pseudo-terminal to the firmware simulator, the
project's reference-arm URDF through Pinocchio, and a camera that renders the board where the arm holds it.

The camera is the one stand-in here (no RealSense on this machine): a `CameraSource`-like object rendering real
images through the synthetic camera, so the detector, solvePnP and the solvers all run on real pixels.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from calibration.boards import BoardSpec
from calibration.errors import CaptureError
from calibration.file_format import CameraCalibration, CameraId, Intrinsics
from calibration.geometry import invert, make_transform, transform_distance
from calibration.handeye import solve_hand_eye
from calibration.handeye_pipeline import capture_handeye
from calibration.kinematics import UrdfKinematics
from calibration.synthetic import board_centre, project, render_view

from .conftest import CAMERA, CHESSBOARD

fb = pytest.importorskip("firmware_bridge")
pytest.importorskip("mujoco", reason="the reference-arm URDF comes from the sim extra (MuJoCo)")

SPEC = BoardSpec.parse(CHESSBOARD)
# Eye-to-hand: the camera 0.55 m above the workspace looking down; the board hangs under the flange.
CAM_R = np.column_stack([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])
BASE_CAM = make_transform(CAM_R, np.array([0.36, 0.0, 0.62]))
GRIPPER_BOARD = make_transform(np.eye(3), np.array([0, 0, 0.06]) - board_centre(SPEC))
NOMINAL = np.array([0.0, 0.5, 1.3, 0.0, np.pi - 1.8, 0.0])  # tool pointing down in front of the base


class MovablePlant:
    """A plant the test moves by hand, as a user jogs an arm in teach mode (the firmware only reads it)."""

    def __init__(self, q: np.ndarray) -> None:
        self._lock = threading.Lock()
        self.q = np.array(q, dtype=np.float64)
        self.moving = False

    def set(self, q: np.ndarray, moving: bool = False) -> None:
        with self._lock:
            self.q, self.moving = np.array(q, dtype=np.float64), moving

    def measure(self) -> fb.PlantState:
        with self._lock:
            vel = np.full(6, 0.2 if self.moving else 0.0)
            return fb.PlantState(self.q.copy(), vel, 0.04, None)

    def command(self, positions: np.ndarray, velocities: np.ndarray, gripper: float) -> None:
        pass

    def set_torque(self, on: bool) -> None:
        pass


class RenderedCamera:
    """Frames of the board held by the arm, rendered at the arm's current (measured) pose."""

    def __init__(self, plant: MovablePlant, kin: UrdfKinematics) -> None:
        self.plant, self.kin, self.n = plant, kin, 0
        self.rng = np.random.default_rng(0)

    def wait_newer(self, after_frame_number: int | None, timeout: float):
        from harmowam_edge.cameras import Frame

        T_cb = invert(BASE_CAM) @ self.kin.fk(self.plant.measure().positions) @ GRIPPER_BOARD
        self.n += 1
        img = render_view(SPEC, CAMERA, T_cb, rng=self.rng, noise_sigma=1.0)
        return Frame("cam", np.repeat(img[..., None], 3, axis=2), time.monotonic(), self.n)


def _poses(kin: UrdfKinematics, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    while len(out) < n:
        q = NOMINAL + rng.uniform(-1, 1, 6) * np.array([0.25, 0.12, 0.12, 0.5, 0.35, 0.8])
        T_cb = invert(BASE_CAM) @ kin.fk(q) @ GRIPPER_BOARD
        uv = project(SPEC, CAMERA, T_cb)
        if (
            T_cb[2, 3] > 0.2
            and (uv > 15).all()
            and (uv[:, 0] < CAMERA.width - 15).all()
            and (uv[:, 1] < CAMERA.height - 15).all()
        ):
            out.append(q)
    return out


def test_guided_capture_over_the_arm_link(tmp_path: Path) -> None:
    from harmowam_edge.sim.urdf import write_urdf

    kin = UrdfKinematics(write_urdf(tmp_path / "arm.urdf"))
    poses = _poses(kin, 9, np.random.default_rng(3))
    plant = MovablePlant(poses[0])
    calib = CameraCalibration(
        CameraId("1", "color"),
        Intrinsics(CAMERA.width, CAMERA.height, CAMERA.fx, CAMERA.fy, CAMERA.cx, CAMERA.cy, "plumb_bob", CAMERA.dist),
    )
    script = iter([("move", poses[0], True), *[("pose", q, False) for q in poses], ("quit", None, False)])
    messages: list[str] = []

    def ask(prompt: str) -> str:
        kind, q, moving = next(script)
        if kind == "quit":
            return "q"
        plant.set(q, moving)
        time.sleep(0.03)  # a few state reports at the new pose
        return ""

    sim = fb.FirmwareSimulator(plant=plant)
    port = sim.start()
    try:
        with fb.ArmLink.open(port) as link:
            samples, entries = capture_handeye(
                link,
                RenderedCamera(plant, kin),
                kin,
                calib,
                SPEC,
                "eye-to-hand",
                ask,
                messages.append,
                save_dir=tmp_path,
            )
    finally:
        sim.stop()
    assert any("the arm is moving" in m for m in messages)
    assert len(samples.samples) == len(poses)
    assert len(entries) == len(poses)
    assert (tmp_path / entries[0]["image"]).exists()
    np.testing.assert_allclose(entries[3]["joints"], poses[3], atol=1e-5)  # joints as the firmware reported them
    assert "enough" in messages[-1]
    result = solve_hand_eye(samples.samples, "eye-to-hand", K=CAMERA.K, dist=np.asarray(CAMERA.dist))
    dr, dt = transform_distance(result.T_parent_camera, BASE_CAM)
    assert np.degrees(dr) < 0.5
    assert dt < 0.005


def test_capture_without_a_firmware_answering_is_a_clear_error(tmp_path: Path) -> None:
    from harmowam_edge.sim.urdf import write_urdf

    kin = UrdfKinematics(write_urdf(tmp_path / "arm.urdf"))
    calib = CameraCalibration(
        CameraId("1", "color"),
        Intrinsics(CAMERA.width, CAMERA.height, CAMERA.fx, CAMERA.fy, CAMERA.cx, CAMERA.cy, "plumb_bob", CAMERA.dist),
    )

    class Silent:
        def wait_state(self, timeout: float) -> None:
            return None

    with pytest.raises(CaptureError, match="no state from the arm"):
        capture_handeye(
            Silent(),
            RenderedCamera(MovablePlant(NOMINAL), kin),
            kin,
            calib,
            SPEC,
            "eye-to-hand",
            lambda _: "",
            lambda _: None,
        )
