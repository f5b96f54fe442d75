"""Synthetic hand-eye data: robot poses and board poses from noisy corner projections through a known camera."""

from __future__ import annotations

import cv2
import numpy as np

from calibration.boards import BoardSpec
from calibration.geometry import exp_so3, invert, make_transform
from calibration.handeye import HandEyeSample, board_pose_pnp

from .conftest import CAMERA

SPEC = BoardSpec.parse("chessboard:9x6:0.025")
X_GRIPPER_CAM = make_transform(exp_so3(np.array([0.1, -0.2, 1.4])), np.array([0.04, -0.02, 0.06]))
BASE_BOARD = make_transform(exp_so3(np.array([np.pi, 0, 0.2])), np.array([0.5, -0.1, 0.0]))
BASE_CAM = make_transform(exp_so3(np.array([np.pi * 0.8, 0.1, 0.3])), np.array([0.5, 0.0, 0.8]))
GRIPPER_BOARD = make_transform(exp_so3(np.array([0.0, 0.0, 0.3])), np.array([-0.05, -0.05, 0.08]))


def truth(mode: str) -> np.ndarray:
    return X_GRIPPER_CAM if mode == "eye-in-hand" else BASE_CAM


def _rotation(rng: np.random.Generator, motion: str, scale: float) -> np.ndarray:
    if motion == "diverse":
        return exp_so3(rng.normal(size=3) * scale)
    if motion == "one-axis":
        return exp_so3(np.array([0.0, 0.0, 1.0]) * rng.normal() * 2 * scale)
    return np.eye(3)  # translation only


def make_samples(
    mode: str,
    n: int = 10,
    *,
    seed: int = 0,
    noise_px: float = 0.2,
    noise_mm: float = 0.2,
    noise_deg: float = 0.05,
    motion: str = "diverse",
    orbit: bool = False,
) -> list[HandEyeSample]:
    """`orbit`: the camera keeps its distance to the board (poses on a sphere around it, as a person capturing
    "around the board" does); otherwise the distance varies too."""
    rng = np.random.default_rng(seed)
    obj = SPEC.object_points().astype(np.float64)
    K, dist = CAMERA.K, np.asarray(CAMERA.dist)
    out: list[HandEyeSample] = []
    while len(out) < n:
        R = _rotation(rng, motion, 0.35)
        if mode == "eye-in-hand":
            shift = np.zeros(3) if orbit else rng.normal(size=3) * 0.03
            board_cam = make_transform(R, np.zeros(3)) @ make_transform(np.eye(3), np.array([0.1, 0.07, -0.45]) + shift)
            base_cam = BASE_BOARD @ board_cam
            T_bg = base_cam @ invert(X_GRIPPER_CAM)
            T_cb = invert(base_cam) @ BASE_BOARD
        else:
            t = np.array([0.5, 0.0, 0.35]) + rng.normal(size=3) * 0.05
            T_bg = make_transform(exp_so3(np.array([np.pi, 0, 0])) @ R, t)
            T_cb = invert(BASE_CAM) @ T_bg @ GRIPPER_BOARD
        proj, _ = cv2.projectPoints(obj, cv2.Rodrigues(T_cb[:3, :3])[0], T_cb[:3, 3], K, dist)
        proj = proj.reshape(-1, 2)
        inside = (proj > 5).all() and (proj[:, 0] < CAMERA.width - 5).all() and (proj[:, 1] < CAMERA.height - 5).all()
        if not inside or T_cb[2, 3] <= 0:
            continue
        img = proj + rng.normal(size=proj.shape) * noise_px
        T_cb_est, _ = board_pose_pnp(obj, img, K, dist)
        noisy_R = exp_so3(rng.normal(size=3) * np.radians(noise_deg)) @ T_bg[:3, :3]
        T_bg_noisy = make_transform(noisy_R, T_bg[:3, 3] + rng.normal(size=3) * noise_mm / 1000)
        out.append(HandEyeSample(f"p{len(out):02d}", T_bg_noisy, T_cb_est, img, obj))
    return out
