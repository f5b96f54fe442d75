"""Frames for `calibrate check`: images, a RealSense recording, or the live camera (+ the arm for drift)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calibration.check import CheckFrame, CheckLimits, CheckResult, check_frames
from calibration.errors import CalibrationError, CaptureError
from calibration.file_format import CameraCalibration, load_calibration
from calibration.sources import iter_image_dir


def _realsense_frames(
    calib: CameraCalibration, *, serial: str | None, recording: Path | None, n: int, robot_pose: object = None
) -> tuple[list[CheckFrame], str]:
    from harmowam_edge.bundle.schema import CameraSpec
    from harmowam_edge.cameras.realsense import RealSenseSource, probe_recording

    streams: tuple[str, ...] = ("color",)
    if recording is not None:
        _, profiles = probe_recording(recording)
        if any(p.stream == "depth" for p in profiles):
            streams = ("color", "depth")
    else:
        streams = ("color", "depth")
    spec = CameraSpec(
        name="check", width=calib.intrinsics.width, height=calib.intrinsics.height, fps=30, streams=streams
    )
    if recording is not None:
        source = RealSenseSource.playback(spec, recording, realtime=False)
        got = []
        for f in source.frames():
            got.append(CheckFrame(f.color, f.depth, f.depth_units_m, None))
            if len(got) >= n:
                break
        return got, source.serial
    source = RealSenseSource.live(spec, serial=serial)
    source.start()
    try:
        got = []
        last: int | None = None
        while len(got) < n:
            frame = source.wait_newer(last, timeout=5.0)
            if frame is None:
                raise CaptureError(f"camera {serial}: no frame within 5 s")
            last = frame.frame_number
            pose = robot_pose() if callable(robot_pose) else None
            got.append(CheckFrame(frame.color, frame.depth, frame.depth_units_m, pose))
        return got, source.serial
    finally:
        source.stop()


def run_check(
    calib_path: str | Path,
    *,
    camera: str | None = None,
    recording: Path | None = None,
    images: Path | None = None,
    port: str | None = None,
    urdf: Path | None = None,
    tip_link: str | None = None,
    frames: int = 5,
    limits: CheckLimits | None = None,
) -> CheckResult:
    calib = load_calibration(calib_path)
    if sum(x is not None for x in (camera, recording, images)) > 1:
        raise CalibrationError("give at most one of --camera, --recording, --images")
    if images is not None:
        got = [CheckFrame(img) for _, img in iter_image_dir(images)]
        return check_frames(calib, got[: max(frames, 1)] if frames else got, limits=limits)
    if recording is not None:
        got, serial = _realsense_frames(calib, serial=None, recording=recording, n=frames)
        return check_frames(calib, got, limits=limits, serial=serial or None)
    serial = camera or calib.camera.serial
    if not serial:
        raise CalibrationError(
            f"{calib_path}: the calibration names no camera serial: give --camera SERIAL, "
            "--recording FILE or --images DIR"
        )
    if port is None:
        got, real_serial = _realsense_frames(calib, serial=serial, recording=None, n=frames)
        return check_frames(calib, got, limits=limits, serial=real_serial or None)
    if urdf is None:
        raise CalibrationError("--port needs --urdf FILE for the drift check")
    from calibration.kinematics import UrdfKinematics
    from firmware_bridge import ArmLink

    ext = calib.extrinsics
    kin = UrdfKinematics(urdf, tip_link or (ext.parent_link if ext and ext.parent_link else None))
    with ArmLink.open(port) as link:

        def pose() -> np.ndarray | None:
            s = link.wait_state(1.0)
            return None if s is None else kin.fk(np.asarray(s.positions))

        got, real_serial = _realsense_frames(calib, serial=serial, recording=None, n=frames, robot_pose=pose)
    return check_frames(calib, got, limits=limits, serial=real_serial or None)
