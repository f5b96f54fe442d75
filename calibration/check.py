"""Does a stored calibration still hold? Board in view -> reprojection error, extrinsic drift, depth sanity.

`check_frames` is pure over frames (tests feed rendered ones); `check_before_run` takes a started
`CameraSource` (the runtime's own) and an optional robot pose, so the runtime can run the check before a run.
The verdict says plainly whether to recalibrate, and which part.
"""

from __future__ import annotations

# ruff: noqa: N803, N806
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from calibration.boards import BoardSpec
from calibration.detection import BoardDetector, Detection, to_gray
from calibration.errors import BoardNotFoundError, CaptureError
from calibration.file_format import CameraCalibration
from calibration.geometry import rodrigues, transform_distance
from calibration.handeye import board_pose_pnp, predicted_cam_board


@dataclass(frozen=True)
class CheckLimits:
    reprojection_px: float = 1.0  # with the stored intrinsics; above it the intrinsics no longer fit
    # ... and above this many times the RMS at calibration time (when that is over `relative_floor_px`): a pose
    # fit absorbs much of a focal-length change, so a jump relative to the original fit is the earlier sign.
    relative_factor: float = 4.0
    relative_floor_px: float = 0.3
    drift_mm: float = 5.0
    drift_deg: float = 1.0
    depth_bias_fraction: float = 0.01  # of the board's distance
    depth_bias_min_mm: float = 3.0
    depth_noise_fraction: float = 0.01


@dataclass(frozen=True)
class DepthCheck:
    distance_mm: float  # median depth of the board (along the optical axis)
    bias_mm: float  # median(measured - expected) depth on the board: + = camera reads too far
    noise_mm: float  # RMS of the measured points about their own best-fit plane
    tilt_deg: float  # angle between the depth plane and the colour board plane
    points: int
    ok: bool
    message: str


@dataclass
class CheckResult:
    frames: int
    reprojection_px: float
    drift_mm: float | None = None
    drift_deg: float | None = None
    drift_px: float | None = None
    depth: DepthCheck | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def verdict(self) -> str:
        if self.ok:
            return "OK: the calibration still holds; no need to recalibrate"
        return "RECALIBRATE: " + "; ".join(self.problems)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "ok": self.ok,
            "frames": self.frames,
            "reprojection_px": self.reprojection_px,
            "drift_mm": self.drift_mm,
            "drift_deg": self.drift_deg,
            "drift_px": self.drift_px,
            "problems": list(self.problems),
            "verdict": self.verdict(),
        }
        if self.depth is not None:
            d["depth"] = self.depth.__dict__.copy()
        return d


@dataclass(frozen=True)
class CheckFrame:
    """One view to check with: colour (grey or RGB), optional depth aligned to colour, optional robot pose."""

    color: np.ndarray
    depth: np.ndarray | None = None
    depth_units_m: float = 0.001
    T_base_gripper: np.ndarray | None = None


def check_frames(
    calib: CameraCalibration,
    frames: Sequence[CheckFrame],
    spec: BoardSpec | None = None,
    limits: CheckLimits | None = None,
    serial: str | None = None,
) -> CheckResult:
    limits = limits or CheckLimits()
    spec = spec or BoardSpec.parse(calib.board)
    if not frames:
        raise CaptureError("no frames to check with")
    detector = BoardDetector(spec)
    K, dist = calib.intrinsics.camera_matrix, np.asarray(calib.intrinsics.distortion)
    sq_errors: list[np.ndarray] = []
    drifts: list[tuple[float, float, float]] = []
    depths: list[DepthCheck] = []
    seen = 0
    for f in frames:
        gray = to_gray(f.color)
        calib.check_camera(serial, None, (gray.shape[1], gray.shape[0]), source="check")
        det = detector.detect(gray)
        if det is None:
            continue
        seen += 1
        T_cb, _ = board_pose_pnp(det.object_points, det.image_points, K, dist)
        proj, _ = cv2.projectPoints(det.object_points.astype(np.float64), rodrigues(T_cb[:3, :3]), T_cb[:3, 3], K, dist)
        sq_errors.append(((proj.reshape(-1, 2) - det.image_points) ** 2).sum(axis=1))
        e = calib.extrinsics
        if e is not None and e.board_pose is not None and f.T_base_gripper is not None:
            P = predicted_cam_board(f.T_base_gripper, e.T_parent_camera, e.board_pose, e.mode)
            dr, dt = transform_distance(P, T_cb)
            pp, _ = cv2.projectPoints(det.object_points.astype(np.float64), rodrigues(P[:3, :3]), P[:3, 3], K, dist)
            dpx = float(np.sqrt(((pp.reshape(-1, 2) - det.image_points) ** 2).sum(axis=1).mean()))
            drifts.append((dt * 1000, float(np.degrees(dr)), dpx))
        if f.depth is not None:
            depths.append(depth_check(f.depth, f.depth_units_m, calib, T_cb, det, spec, limits))
    if seen == 0:
        raise BoardNotFoundError(
            f"the board ({spec.describe()}) is not in view in any of the {len(frames)} frames: "
            "put it in front of the camera, fully visible, and check again"
        )
    result = CheckResult(seen, float(np.sqrt(np.concatenate(sq_errors).mean())))
    stored = float(calib.residuals.get("rms_px", 0.0) or 0.0)
    relative = (
        stored > 0
        and result.reprojection_px > limits.relative_floor_px
        and result.reprojection_px > limits.relative_factor * stored
    )
    if result.reprojection_px > limits.reprojection_px or relative:
        result.problems.append(
            f"intrinsics: the board reprojects with {result.reprojection_px:.2f} px RMS (limit "
            f"{limits.reprojection_px:g} px, or {limits.relative_factor:g}x the {stored:.2f} px at calibration): "
            "focus, zoom or resolution changed; "
            "run `harmowam-edge calibrate intrinsics`"
        )
    if drifts:
        arr = np.array(drifts)
        result.drift_mm, result.drift_deg, result.drift_px = (
            float(np.median(arr[:, 0])),
            float(np.median(arr[:, 1])),
            float(np.median(arr[:, 2])),
        )
        if result.drift_mm > limits.drift_mm or result.drift_deg > limits.drift_deg:
            result.problems.append(
                f"extrinsics: the board is {result.drift_mm:.1f} mm / {result.drift_deg:.2f} deg ({result.drift_px:.1f}"
                f" px) from where the stored hand-eye puts it (limits {limits.drift_mm:g} mm / {limits.drift_deg:g} "
                "deg): the camera (or the board fixture) moved; run `harmowam-edge calibrate handeye`"
            )
    if depths:
        d = depths[len(depths) // 2]
        result.depth = d
        if not d.ok:
            result.problems.append(f"depth: {d.message}")
    return result


def depth_check(
    depth: np.ndarray,
    depth_units_m: float,
    calib: CameraCalibration,
    T_cam_board: np.ndarray,
    det: Detection,
    spec: BoardSpec,
    limits: CheckLimits | None = None,
) -> DepthCheck:
    """Plane fit on the board's depth pixels vs the board plane seen in colour: bias and noise at that distance.

    Depth must be aligned to colour (as the runtime delivers it), so the colour intrinsics deproject it.
    """
    limits = limits or CheckLimits()
    h, w = depth.shape
    # The board's inner-corner area, shrunk a little so edge pixels (mixed with background) stay out.
    hull = cv2.convexHull(det.image_points.astype(np.float32)).reshape(-1, 2)
    centre = hull.mean(axis=0)
    hull = centre + 0.9 * (hull - centre)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1)
    vs, us = np.nonzero((mask > 0) & (depth > 0))
    if len(us) < 50:
        return DepthCheck(
            0.0,
            0.0,
            0.0,
            0.0,
            len(us),
            False,
            f"only {len(us)} valid depth pixels on the board: depth stream missing or not aligned",
        )
    z = depth[vs, us].astype(np.float64) * depth_units_m
    rays = calib.intrinsics.model().rays(np.column_stack([us, vs]).astype(np.float64))
    pts = np.column_stack([rays * z[:, None], z])
    n = T_cam_board[:3, 2]  # board normal in the camera frame
    dplane = float(n @ T_cam_board[:3, 3])
    z_expected = dplane / (np.column_stack([rays, np.ones(len(rays))]) @ n)
    bias = float(np.median(z - z_expected))
    c = pts.mean(axis=0)
    _, _, Vt = np.linalg.svd(pts - c, full_matrices=False)
    normal = Vt[2]
    noise = float(np.sqrt(np.mean(((pts - c) @ normal) ** 2)))
    tilt = float(np.degrees(np.arccos(min(1.0, abs(float(normal @ n))))))
    dist_mm = float(np.median(z)) * 1000
    bias_limit = max(limits.depth_bias_min_mm, limits.depth_bias_fraction * dist_mm)
    noise_limit = max(1.0, limits.depth_noise_fraction * dist_mm)
    problems = []
    if abs(bias * 1000) > bias_limit:
        problems.append(f"depth reads {bias * 1000:+.1f} mm off at {dist_mm:.0f} mm (limit {bias_limit:.1f} mm)")
    if noise * 1000 > noise_limit:
        problems.append(f"depth noise {noise * 1000:.1f} mm RMS at {dist_mm:.0f} mm (limit {noise_limit:.1f} mm)")
    msg = (
        (
            "; ".join(problems) + ": run the RealSense on-chip and tare calibration (RealSense Viewer / "
            "Depth Quality Tool), then check again"
        )
        if problems
        else (f"bias {bias * 1000:+.1f} mm, noise {noise * 1000:.1f} mm RMS at {dist_mm:.0f} mm")
    )
    return DepthCheck(dist_mm, bias * 1000, noise * 1000, tilt, len(us), not problems, msg)


def check_before_run(
    calib: CameraCalibration,
    source: Any,
    *,
    robot_pose: Callable[[], np.ndarray | None] | None = None,
    frames: int = 5,
    timeout_s: float = 5.0,
    limits: CheckLimits | None = None,
) -> CheckResult:
    """For the runtime: grab `frames` frames from a started `CameraSource`, with the robot pose at each if given,
    and check the calibration. Raises BoardNotFoundError when the board is not in view."""
    import time

    got: list[CheckFrame] = []
    last: int | None = None
    t_end = time.monotonic() + timeout_s
    serial = getattr(source, "serial", None)
    while len(got) < frames and time.monotonic() < t_end:
        f = source.wait_newer(last, timeout=max(0.0, t_end - time.monotonic()))
        if f is None:
            break
        last = f.frame_number
        got.append(CheckFrame(f.color, f.depth, f.depth_units_m, robot_pose() if robot_pose else None))
    if not got:
        raise CaptureError(f"no frames from the camera within {timeout_s:g} s")
    return check_frames(calib, got, limits=limits, serial=serial or None)


def board_pose_in_camera(calib: CameraCalibration, image: np.ndarray, spec: BoardSpec) -> np.ndarray | None:
    """T_cam_board seen in one image with the stored intrinsics (None without a board)."""
    det = BoardDetector(spec).detect(to_gray(image))
    if det is None:
        return None
    T, _ = board_pose_pnp(
        det.object_points, det.image_points, calib.intrinsics.camera_matrix, np.asarray(calib.intrinsics.distortion)
    )
    return T


__all__ = [
    "CheckFrame",
    "CheckLimits",
    "CheckResult",
    "DepthCheck",
    "board_pose_in_camera",
    "check_before_run",
    "check_frames",
    "depth_check",
]
