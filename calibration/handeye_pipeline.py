"""Hand-eye end to end: robot poses (pose file, or the arm link + URDF) and board images -> extrinsics in the file.

Calibration never moves the arm: with `--port` the user moves it (teach mode, pendant, or its own program) and the
link is only read. A capture is refused while the arm moves, because the joint state and the frame would then
describe different poses.
"""

from __future__ import annotations

# ruff: noqa: N803, N806
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from calibration.boards import BoardSpec
from calibration.detection import BoardDetector, to_gray
from calibration.errors import BoardSpecError, CaptureError, KinematicsError, PoseFileError
from calibration.file_format import CameraCalibration, Extrinsics, load_calibration, save_calibration, utc_now
from calibration.handeye import (
    HandEyeResult,
    HandEyeSample,
    board_pose_pnp,
    motion_diversity,
    solve_hand_eye,
)
from calibration.kinematics import UrdfKinematics
from calibration.poses import load_pose_file, write_pose_file
from calibration.sources import read_image

Progress = Callable[[str], None]
MAX_PNP_RMS_PX = 2.0


def board_of(calib: CameraCalibration, board: str | None) -> BoardSpec:
    text = board or calib.board
    if not text:
        raise BoardSpecError("the calibration file names no board: give --board")
    spec = BoardSpec.parse(text)
    if spec.symmetric:
        raise BoardSpecError(
            f"board {spec.describe()} looks the same rotated 180 deg (inner corners both odd or both "
            "even), so its pose is ambiguous: use a chessboard with one odd and one even count "
            "(e.g. 9x6) or a ChArUco board for hand-eye"
        )
    return spec


@dataclass
class SampleSet:
    samples: list[HandEyeSample] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why


def samples_from_pose_file(
    poses_path: str | Path,
    calib: CameraCalibration,
    spec: BoardSpec,
    urdf: str | Path | None = None,
    tip_link: str | None = None,
) -> tuple[SampleSet, str]:
    """Board poses by solvePnP on each image, paired with the file's robot poses; returns (samples, parent link)."""
    pf = load_pose_file(poses_path)
    kin = None
    if pf.needs_kinematics:
        if urdf is None:
            raise PoseFileError(f"{pf.path}: some poses give joints only; pass --urdf FILE for forward kinematics")
        kin = UrdfKinematics(urdf, tip_link or pf.tip_link or None)
    detector = BoardDetector(spec)
    K, dist = calib.intrinsics.camera_matrix, np.asarray(calib.intrinsics.distortion)
    out = SampleSet()
    for e in pf.entries:
        name = e.image.name
        img = read_image(e.image)
        calib.check_camera(None, None, (img.shape[1], img.shape[0]), source=str(e.image))
        T_bg = e.T_base_gripper
        if T_bg is None:
            assert kin is not None
            assert e.joints is not None
            T_bg = kin.fk(e.joints)
        sample, why = _sample(name, img, T_bg, detector, K, dist)
        if sample is None:
            out.skipped[name] = why
        else:
            out.samples.append(sample)
    link = kin.tip_link if kin is not None else (tip_link or pf.tip_link or "gripper")
    return out, link


def _sample(
    name: str,
    img: np.ndarray,
    T_bg: np.ndarray,
    detector: BoardDetector,
    K: np.ndarray,
    dist: np.ndarray,
) -> tuple[HandEyeSample | None, str]:
    det = detector.detect(img)
    if det is None:
        return None, "board not found"
    T_cb, rms = board_pose_pnp(det.object_points, det.image_points, K, dist)
    if rms > MAX_PNP_RMS_PX:
        return None, f"board pose fits badly ({rms:.2f} px > {MAX_PNP_RMS_PX} px): blurred or wrong intrinsics"
    return HandEyeSample(
        name, T_bg, T_cb, det.image_points.astype(np.float64), det.object_points.astype(np.float64)
    ), ""


def calibrate_and_store(
    calib_path: str | Path,
    calib: CameraCalibration,
    samples: Sequence[HandEyeSample],
    mode: str,
    parent_link: str,
    out: str | Path | None = None,
) -> HandEyeResult:
    """Solve with every method, keep the best, write the extrinsics into the calibration file (atomically)."""
    K, dist = calib.intrinsics.camera_matrix, np.asarray(calib.intrinsics.distortion)
    result = solve_hand_eye(samples, mode, K=K, dist=dist)
    ext = Extrinsics(
        mode=mode,
        T_parent_camera=result.T_parent_camera,
        method=result.best.name,
        parent_link=parent_link,
        methods=result.methods_dict(),
        residuals=result.residuals_dict(),
        board_pose=result.best.board_pose,
        poses=len(samples),
        created_utc=utc_now(),
    )
    save_calibration(calib.with_extrinsics(ext), out or calib_path)
    return result


# -- guided capture over the arm link ---------------------------------------------------------------------------


class StateReader(Protocol):
    """What capture needs of `firmware_bridge.ArmLink`."""

    def wait_state(self, timeout: float) -> Any: ...


class FrameReader(Protocol):
    """What capture needs of a `harmowam_edge.cameras.CameraSource`."""

    def wait_newer(self, after_frame_number: int | None, timeout: float) -> Any: ...


def capture_handeye(
    link: StateReader,
    camera: FrameReader,
    kin: UrdfKinematics,
    calib: CameraCalibration,
    spec: BoardSpec,
    mode: str,
    ask: Callable[[str], str],
    progress: Progress,
    *,
    save_dir: Path | None = None,
    max_poses: int = 40,
    still_rad_s: float = 0.01,
) -> tuple[SampleSet, list[dict[str, Any]]]:
    """Interactive capture: the user moves the arm, presses Enter; each pose is read from the link, the board from
    a fresh frame. Says after each pose how diverse the motions are and when they are enough; 'q' finishes.

    Returns the samples and pose-file entries (joints + saved image names) so the session can be re-solved later.
    """
    detector = BoardDetector(spec)
    K, dist = calib.intrinsics.camera_matrix, np.asarray(calib.intrinsics.distortion)
    out = SampleSet()
    entries: list[dict[str, Any]] = []
    last_frame: int | None = None
    while len(out.samples) < max_poses:
        answer = ask(f"pose {len(out.samples) + 1}: move the arm, keep the board in view, then Enter (q = finish)")
        if answer.strip().lower() in ("q", "quit", "done"):
            break
        state = link.wait_state(1.0)
        if state is None:
            raise CaptureError("no state from the arm within 1 s: is the firmware running and the port right?")
        if float(np.abs(np.asarray(state.velocities)).max(initial=0.0)) > still_rad_s:
            progress("the arm is moving: wait until it stands still, then press Enter again")
            continue
        frame = None
        t_end = time.monotonic() + 2.0
        # A frame exposed after the state was read, so both show the arm at rest in the same pose.
        while time.monotonic() < t_end:
            f = camera.wait_newer(last_frame, timeout=0.5)
            if f is None:
                continue
            last_frame = f.frame_number
            if f.t_capture >= state.t_received - 0.05:
                frame = f
                break
        if frame is None:
            raise CaptureError("no frame from the camera within 2 s")
        after = link.wait_state(1.0)
        if after is not None and float(np.abs(np.asarray(after.positions) - np.asarray(state.positions)).max()) > 1e-3:
            progress("the arm moved during the capture: hold it still and press Enter again")
            continue
        joints = [float(x) for x in np.asarray(state.positions)]
        name = f"pose_{len(entries):03d}.png"
        gray = to_gray(frame.color)
        calib.check_camera(None, None, (gray.shape[1], gray.shape[0]), source="camera")
        sample, why = _sample(name, gray, kin.fk(joints), detector, K, dist)
        if sample is None:
            progress(f"{name}: skipped, {why}")
            continue
        if save_dir is not None:
            cv2.imwrite(str(save_dir / name), gray)
            entries.append({"image": name, "joints": joints})
        out.samples.append(sample)
        robot = [s.T_base_gripper for s in out.samples]
        d = motion_diversity(robot if mode == "eye-in-hand" else [np.linalg.inv(T) for T in robot])
        progress(
            f"{name}: kept ({len(out.samples)} poses, largest rotation {d.max_rotation_deg:.0f} deg, axis spread "
            f"{d.axis_spread:.2f}); {d.advice}"
        )
    return out, entries


def handeye_with_arm(
    calib_path: str | Path,
    mode: str,
    port: str,
    urdf: str | Path,
    serial: str | None,
    *,
    board: str | None,
    tip_link: str | None,
    out: str | Path | None,
    save_poses: Path | None,
    ask: Callable[[str], str],
    progress: Progress,
    baudrate: int | None = None,
) -> tuple[HandEyeResult, CameraCalibration]:
    """`calibrate handeye --port PORT --urdf FILE`: live RealSense + arm link (needs both; not runnable here)."""
    from firmware_bridge import ArmLink
    from harmowam_edge.bundle.schema import CameraSpec
    from harmowam_edge.cameras.realsense import RealSenseSource

    calib = load_calibration(calib_path)
    spec = board_of(calib, board)
    kin = UrdfKinematics(urdf, tip_link)
    serial = serial or calib.camera.serial
    if not serial:
        raise CaptureError("no camera: give --serial (the calibration file names none)")
    cam = RealSenseSource.live(
        CameraSpec(name="calibration", width=calib.intrinsics.width, height=calib.intrinsics.height, fps=30),
        serial=serial,
    )
    save_dir = save_poses.parent if save_poses is not None else None
    with ArmLink.open(port) if baudrate is None else ArmLink.open(port, baudrate=baudrate) as link:
        if link.info.joint_count != len(kin.joint_names):
            raise KinematicsError(
                f"{urdf}: chain to {kin.tip_link} has {len(kin.joint_names)} joints but the arm on "
                f"{port} reports {link.info.joint_count}"
            )
        cam.start()
        try:
            calib.check_camera(cam.serial, "color", None, source=f"camera {serial}")
            samples, entries = capture_handeye(link, cam, kin, calib, spec, mode, ask, progress, save_dir=save_dir)
        finally:
            cam.stop()
    if save_poses is not None and entries:
        write_pose_file(save_poses, entries, kin.tip_link)
        progress(f"wrote {save_poses} ({len(entries)} poses): re-solve later with --poses {save_poses} --urdf {urdf}")
    result = calibrate_and_store(calib_path, calib, samples.samples, mode, kin.tip_link, out)
    return result, calib
