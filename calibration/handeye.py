"""Hand-eye calibration: where the camera is on the gripper (eye-in-hand) or in the robot base (eye-to-hand).

Inputs are pairs (robot pose T_base_gripper, board pose T_cam_board from solvePnP). All five of OpenCV's solvers
run (Tsai, Park, Horaud, Andreff, Daniilidis); their agreement and each one's consistency residual are reported,
and the result kept is the solver with the smallest residual. Motion sets that cannot determine the transform are
refused before solving, with the reason, because the solvers return a confident-looking wrong answer for them.

Residuals: the board does not move during a calibration (fixed in the base for eye-in-hand, held by the gripper
for eye-to-hand), so each pose gives one estimate of the board's pose in that frame; their spread (rotation and
translation) measures how well X fits all poses at once, and the reprojection of the board through the chain
gives the same in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from calibration.errors import DegenerateMotionError, TooFewViewsError
from calibration.geometry import (
    invert,
    make_transform,
    mean_transform,
    project_to_so3,
    rodrigues,
    rotation_angle,
    transform_distance,
)

# ruff: noqa: N802, N803, N806

# OpenCV's solvers, except Andreff: OpenCV 4.x's one-shot Andreff fails ("determinant(R) is null") on exact data
# from a capture that orbits the board at a fixed distance, and lands ~0.4 m off on the same data with 0.05 deg of
# robot noise (see opencv/opencv#17986, #24871; reproduced in tests/calibration/test_handeye.py), so Andreff's
# linear formulation is solved here (`_andreff`).
METHODS: dict[str, int | None] = {
    "tsai": cv2.CALIB_HAND_EYE_TSAI,
    "park": cv2.CALIB_HAND_EYE_PARK,
    "horaud": cv2.CALIB_HAND_EYE_HORAUD,
    "andreff": None,
    "daniilidis": cv2.CALIB_HAND_EYE_DANIILIDIS,
}
MODES = ("eye-in-hand", "eye-to-hand")
MIN_POSES = 3


@dataclass(frozen=True)
class HandEyeSample:
    name: str
    T_base_gripper: np.ndarray  # robot pose (FK or pose file)
    T_cam_board: np.ndarray  # board pose from solvePnP
    image_points: np.ndarray | None = None  # detected corners, for the pixel residual
    object_points: np.ndarray | None = None


@dataclass(frozen=True)
class MotionDiversity:
    poses: int
    max_rotation_deg: float  # largest relative rotation between two poses
    axis_spread: float  # second / largest eigenvalue of the rotation-axis scatter: 0 = one axis, 1 = two+ axes
    third_axis: float  # third / largest: > 0 when the axes span 3-D
    translation_spread_m: float  # RMS distance of the gripper positions from their mean
    enough: bool
    advice: str


@dataclass
class MethodResult:
    name: str
    T: np.ndarray  # T_gripper_cam (eye-in-hand) or T_base_cam (eye-to-hand)
    rotation_spread_deg: float  # RMS angle of the board-pose estimates from their mean
    translation_spread_mm: float  # RMS distance of the board-pose estimates from their mean
    reprojection_px: float | None  # RMS over all corners, board posed through the chain
    board_pose: np.ndarray  # mean board pose in the fixed frame
    rotation_vs_best_deg: float = 0.0
    translation_vs_best_mm: float = 0.0


@dataclass
class HandEyeResult:
    mode: str
    best: MethodResult
    methods: dict[str, MethodResult]
    diversity: MotionDiversity
    poses: int
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def T_parent_camera(self) -> np.ndarray:
        return self.best.T

    def agreement(self) -> tuple[float, float]:
        """Largest disagreement between any solver and the kept one: (degrees, millimetres)."""
        rot = max((m.rotation_vs_best_deg for m in self.methods.values()), default=0.0)
        tr = max((m.translation_vs_best_mm for m in self.methods.values()), default=0.0)
        return rot, tr

    def methods_dict(self) -> dict[str, dict[str, object]]:
        from calibration.geometry import quat_from_matrix

        return {
            name: {
                "translation_m": m.T[:3, 3].tolist(),
                "quaternion_xyzw": quat_from_matrix(m.T[:3, :3]).tolist(),
                "rotation_spread_deg": m.rotation_spread_deg,
                "translation_spread_mm": m.translation_spread_mm,
                "reprojection_px": m.reprojection_px,
                "rotation_vs_best_deg": m.rotation_vs_best_deg,
                "translation_vs_best_mm": m.translation_vs_best_mm,
            }
            for name, m in self.methods.items()
        } | {name: {"failed": why} for name, why in self.failed.items()}

    def residuals_dict(self) -> dict[str, object]:
        rot, tr = self.agreement()
        d = self.diversity
        return {
            "rotation_spread_deg": self.best.rotation_spread_deg,
            "translation_spread_mm": self.best.translation_spread_mm,
            "reprojection_px": self.best.reprojection_px,
            "methods_max_rotation_diff_deg": rot,
            "methods_max_translation_diff_mm": tr,
            "max_relative_rotation_deg": d.max_rotation_deg,
            "rotation_axis_spread": d.axis_spread,
        }


def _solver_poses(samples: Sequence[HandEyeSample], mode: str) -> list[np.ndarray]:
    """The robot poses as OpenCV's solver takes them: gripper->base for eye-in-hand, base->gripper for eye-to-hand
    (the standard trick: the same AX = XB with the roles of base and gripper swapped gives the camera in base)."""
    if mode == "eye-in-hand":
        return [s.T_base_gripper for s in samples]
    return [invert(s.T_base_gripper) for s in samples]


def motion_diversity(
    robot_poses: Sequence[np.ndarray],
    *,
    min_poses: int = 8,
    min_rotation_deg: float = 30.0,
    min_axis_spread: float = 0.15,
) -> MotionDiversity:
    """How well a set of robot poses constrains hand-eye: relative rotations large and about different axes."""
    n = len(robot_poses)
    axes: list[np.ndarray] = []
    max_angle = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            A = invert(robot_poses[i]) @ robot_poses[j]
            r = rodrigues(A[:3, :3])
            angle = float(np.linalg.norm(r))
            max_angle = max(max_angle, angle)
            if angle > np.radians(5.0):
                axes.append(r / angle * min(angle / np.radians(20.0), 1.0))  # weight small rotations down
    if axes:
        M = sum((np.outer(a, a) for a in axes), np.zeros((3, 3)))
        ev = np.sort(np.linalg.eigvalsh(M))[::-1]
        spread = float(ev[1] / ev[0]) if ev[0] > 0 else 0.0
        third = float(ev[2] / ev[0]) if ev[0] > 0 else 0.0
    else:
        spread = third = 0.0
    positions = np.array([T[:3, 3] for T in robot_poses]) if n else np.zeros((0, 3))
    tspread = float(np.sqrt(((positions - positions.mean(axis=0)) ** 2).sum(axis=1).mean())) if n else 0.0
    max_deg = float(np.degrees(max_angle))
    enough = n >= min_poses and max_deg >= min_rotation_deg and spread >= min_axis_spread
    if n < min_poses:
        advice = f"{n} of {min_poses} poses: keep going, rotating the gripper about different axes"
    elif max_deg < min_rotation_deg:
        advice = f"rotations too small (largest {max_deg:.0f} deg): rotate the gripper by {min_rotation_deg:.0f} deg+"
    elif spread < min_axis_spread:
        advice = "rotations are all about nearly the same axis: tilt the gripper about another axis"
    else:
        advice = "enough: motions are diverse (more poses with large rotations still help)"
    return MotionDiversity(n, max_deg, spread, third, tspread, enough, advice)


def check_motion(samples: Sequence[HandEyeSample], mode: str) -> MotionDiversity:
    """Refuse sets that cannot determine the hand-eye transform, explaining why and what to do."""
    if len(samples) < MIN_POSES:
        raise TooFewViewsError(
            f"hand-eye needs at least {MIN_POSES} poses with the board in view (8 or more "
            f"recommended), got {len(samples)}"
        )
    d = motion_diversity(_solver_poses(samples, mode))
    if d.max_rotation_deg < 5.0:
        raise DegenerateMotionError(
            f"degenerate motion: the {len(samples)} robot poses differ by translation only (largest relative "
            f"rotation {d.max_rotation_deg:.1f} deg). Pure translations cannot determine where the camera sits "
            "(its position is unobservable); rotate the gripper by 20-45 deg about at least two different axes "
            "between poses"
        )
    if d.axis_spread < 0.03:
        raise DegenerateMotionError(
            f"degenerate motion: every rotation between the {len(samples)} poses is about one axis (axis spread "
            f"{d.axis_spread:.3f}). Rotations about a single axis leave the camera's offset along that axis "
            "undetermined; add poses that rotate the gripper about a second axis (e.g. tilt the wrist as well as "
            "turning it)"
        )
    return d


def solve_hand_eye(
    samples: Sequence[HandEyeSample],
    mode: str,
    *,
    K: np.ndarray | None = None,
    dist: np.ndarray | None = None,
    methods: Sequence[str] = tuple(METHODS),
) -> HandEyeResult:
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected eye-in-hand or eye-to-hand")
    diversity = check_motion(samples, mode)
    robot = _solver_poses(samples, mode)
    R_g = [T[:3, :3] for T in robot]
    t_g = [T[:3, 3].reshape(3, 1) for T in robot]
    R_t = [s.T_cam_board[:3, :3] for s in samples]
    t_t = [s.T_cam_board[:3, 3].reshape(3, 1) for s in samples]
    results: dict[str, MethodResult] = {}
    failed: dict[str, str] = {}
    for name in methods:
        flag = METHODS[name]
        try:
            if flag is None:
                T = _andreff(robot, [s.T_cam_board for s in samples])
            else:
                R, t = cv2.calibrateHandEye(R_g, t_g, R_t, t_t, method=flag)
                T = make_transform(np.asarray(R), np.asarray(t).ravel())
        except (cv2.error, np.linalg.LinAlgError) as e:
            failed[name] = str(e).strip().splitlines()[-1]
            continue
        if not np.isfinite(T).all():
            failed[name] = "no finite solution"
            continue
        results[name] = _evaluate(name, T, samples, mode, K, dist)
    if not results:
        raise DegenerateMotionError(
            "every hand-eye solver failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
        )
    best = min(results.values(), key=lambda m: m.translation_spread_mm / 1.0 + m.rotation_spread_deg * 10.0)
    for m in results.values():
        dr, dt = transform_distance(m.T, best.T)
        m.rotation_vs_best_deg, m.translation_vs_best_mm = float(np.degrees(dr)), dt * 1000
    return HandEyeResult(mode, best, results, diversity, len(samples), failed)


def _andreff(robot: Sequence[np.ndarray], boards: Sequence[np.ndarray]) -> np.ndarray:
    """Andreff, Horaud & Espiau (2001): AX = XB linearised with Kronecker products, over all pose pairs.

    Rotation: (R_A (x) I - I (x) R_B^T) vec(R_X) = 0, the null vector of the stacked system, scaled to det +1 and
    projected onto SO(3). Translation: (R_A - I) t_X = R_X t_B - t_A by least squares.
    """
    A_list, B_list = [], []
    n = len(robot)
    for i in range(n):
        for j in range(i + 1, n):
            A_list.append(invert(robot[j]) @ robot[i])
            B_list.append(boards[j] @ invert(boards[i]))
    eye = np.eye(3)
    M = np.vstack([np.kron(A[:3, :3], eye) - np.kron(eye, B[:3, :3].T) for A, B in zip(A_list, B_list, strict=True)])
    _, _, Vt = np.linalg.svd(M)
    V = Vt[-1].reshape(3, 3)
    det = np.linalg.det(V)
    if abs(det) < 1e-12:
        raise np.linalg.LinAlgError("Andreff: rotation system is singular")
    R = project_to_so3(V * np.sign(det) / abs(det) ** (1 / 3))
    C = np.vstack([A[:3, :3] - eye for A in A_list])
    d = np.concatenate([R @ B[:3, 3] - A[:3, 3] for A, B in zip(A_list, B_list, strict=True)])
    t, *_ = np.linalg.lstsq(C, d, rcond=None)
    return make_transform(R, t)


def board_in_fixed_frame(sample: HandEyeSample, T: np.ndarray, mode: str) -> np.ndarray:
    """The board's pose in the frame it stays fixed in: base (eye-in-hand) or gripper (eye-to-hand)."""
    if mode == "eye-in-hand":
        return sample.T_base_gripper @ T @ sample.T_cam_board
    return invert(sample.T_base_gripper) @ T @ sample.T_cam_board


def predicted_cam_board(T_base_gripper: np.ndarray, T: np.ndarray, board_pose: np.ndarray, mode: str) -> np.ndarray:
    """Where the board should appear in the camera given the robot pose, the hand-eye result and the board pose."""
    if mode == "eye-in-hand":
        return invert(T_base_gripper @ T) @ board_pose
    return invert(T) @ T_base_gripper @ board_pose


def _evaluate(
    name: str,
    T: np.ndarray,
    samples: Sequence[HandEyeSample],
    mode: str,
    K: np.ndarray | None,
    dist: np.ndarray | None,
) -> MethodResult:
    boards = [board_in_fixed_frame(s, T, mode) for s in samples]
    mean = mean_transform(boards)
    rot = [rotation_angle(mean[:3, :3].T @ B[:3, :3]) for B in boards]
    tr = [float(np.linalg.norm(B[:3, 3] - mean[:3, 3])) for B in boards]
    reproj = None
    if K is not None and all(s.image_points is not None and s.object_points is not None for s in samples):
        errs = []
        for s in samples:
            P = predicted_cam_board(s.T_base_gripper, T, mean, mode)
            assert s.object_points is not None
            assert s.image_points is not None
            proj, _ = cv2.projectPoints(
                s.object_points.astype(np.float64),
                rodrigues(P[:3, :3]),
                P[:3, 3],
                K,
                np.zeros(5) if dist is None else dist,
            )
            errs.append(((proj.reshape(-1, 2) - s.image_points) ** 2).sum(axis=1))
        reproj = float(np.sqrt(np.concatenate(errs).mean()))
    return MethodResult(
        name,
        T,
        float(np.degrees(np.sqrt(np.mean(np.square(rot))))),
        float(np.sqrt(np.mean(np.square(tr))) * 1000),
        reproj,
        mean,
    )


def board_pose_pnp(
    object_points: np.ndarray, image_points: np.ndarray, K: np.ndarray, dist: np.ndarray
) -> tuple[np.ndarray, float]:
    """T_cam_board by solvePnP (IPPE for a plane, then Levenberg-Marquardt refinement) and its RMS in pixels."""
    obj = object_points.astype(np.float64).reshape(-1, 3)
    img = image_points.astype(np.float64).reshape(-1, 2)
    ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_ITERATIVE)
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, dist, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
    rms = float(np.sqrt(((proj.reshape(-1, 2) - img) ** 2).sum(axis=1).mean()))
    R, _ = cv2.Rodrigues(rvec)
    return make_transform(R, tvec.ravel()), rms
