"""Accuracy bench on synthetic data with known ground truth (`harmowam-edge calibrate bench --json FILE`).

Intrinsics: rendered 640x480 views of each board through a known distorted camera, Gaussian pixel noise
(sigma 1.5 grey levels) and lens blur (sigma 0.6 px), solved end to end (detection included). Hand-eye: 12 poses
with 0.2 px corner noise, 0.2 mm / 0.05 deg robot noise, every solver. Figures are errors against the truth.
"""

from __future__ import annotations

# ruff: noqa: N806
import time
from typing import Any

import cv2
import numpy as np

from calibration.boards import BoardSpec
from calibration.camera_model import PinholeModel, pixel_difference
from calibration.detection import BoardDetector
from calibration.geometry import exp_so3, invert, make_transform, transform_distance
from calibration.handeye import HandEyeSample, board_pose_pnp, solve_hand_eye
from calibration.intrinsics import calibrate_intrinsics, detect_views
from calibration.synthetic import DEFAULT_CAMERA, render_view, sample_poses

BOARDS = ("chessboard:9x6:0.025", "charuco:7x5:0.04:0.03:DICT_5X5_100")


def _row(metric: str, value: float, unit: str, target: str, ok: bool) -> dict[str, Any]:
    return {"metric": metric, "value": round(float(value), 4), "unit": unit, "target": target, "ok": bool(ok)}


def intrinsics_rows(views: int = 15, seed: int = 0) -> list[dict[str, Any]]:
    cam = DEFAULT_CAMERA
    truth = PinholeModel(cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy, "plumb_bob", cam.dist)
    rows = []
    for text in BOARDS:
        spec = BoardSpec.parse(text)
        rng = np.random.default_rng(seed)
        images = [render_view(spec, cam, T, rng=rng) for T in sample_poses(spec, cam, views, rng)]
        det = BoardDetector(spec)
        times = []
        for img in images[:5]:
            t0 = time.perf_counter()
            det.detect(img)
            times.append(time.perf_counter() - t0)
        vs, _ = detect_views([(f"v{i}", im) for i, im in enumerate(images)], spec, keep_images=False)
        r = calibrate_intrinsics(vs, spec)
        i = r.intrinsics
        d = pixel_difference(truth, i.model(), border=0.05)
        name = spec.kind
        rows += [
            _row(f"{name}: RMS reprojection ({len(r.used)} views)", r.rms_px, "px", "<= 0.3 px", r.rms_px <= 0.3),
            _row(
                f"{name}: fx error",
                abs(i.fx - cam.fx) / cam.fx * 100,
                "%",
                "<= 0.5 %",
                abs(i.fx - cam.fx) / cam.fx <= 0.005,
            ),
            _row(
                f"{name}: principal point error",
                float(np.hypot(i.cx - cam.cx, i.cy - cam.cy)),
                "px",
                "<= 2 px",
                bool(np.hypot(i.cx - cam.cx, i.cy - cam.cy) <= 2),
            ),
            _row(f"{name}: model vs truth over the image, mean", d["mean_px"], "px", "<= 1 px", d["mean_px"] <= 1),
            _row(f"{name}: model vs truth over the image, max", d["max_px"], "px", "<= 2 px", d["max_px"] <= 2),
            _row(
                f"{name}: detection time per 640x480 frame (median)",
                float(np.median(times)) * 1000,
                "ms",
                "<= 100 ms",
                float(np.median(times)) <= 0.1,
            ),
        ]
    return rows


def handeye_rows(poses: int = 12, seed: int = 1) -> list[dict[str, Any]]:
    cam = DEFAULT_CAMERA
    K, dist = cam.K, np.asarray(cam.dist)
    spec = BoardSpec.parse(BOARDS[0])
    obj = spec.object_points().astype(np.float64)
    X = make_transform(exp_so3(np.array([0.1, -0.2, 1.4])), np.array([0.04, -0.02, 0.06]))
    base_board = make_transform(exp_so3(np.array([np.pi, 0, 0.2])), np.array([0.5, -0.1, 0.0]))
    rng = np.random.default_rng(seed)
    samples: list[HandEyeSample] = []
    while len(samples) < poses:
        R = exp_so3(rng.normal(size=3) * 0.35)
        board_cam = make_transform(R, np.zeros(3)) @ make_transform(
            np.eye(3), np.array([0.1, 0.07, -0.45]) + rng.normal(size=3) * 0.03
        )
        base_cam = base_board @ board_cam
        T_bg = base_cam @ invert(X)
        T_cb = invert(base_cam) @ base_board
        proj, _ = cv2.projectPoints(obj, cv2.Rodrigues(T_cb[:3, :3])[0], T_cb[:3, 3], K, dist)
        proj = proj.reshape(-1, 2)
        if not ((proj > 5).all() and (proj[:, 0] < cam.width - 5).all() and (proj[:, 1] < cam.height - 5).all()):
            continue
        img = proj + rng.normal(size=proj.shape) * 0.2
        T_cb_est, _ = board_pose_pnp(obj, img, K, dist)
        noisy = make_transform(
            exp_so3(rng.normal(size=3) * np.radians(0.05)) @ T_bg[:3, :3], T_bg[:3, 3] + rng.normal(size=3) * 0.0002
        )
        samples.append(HandEyeSample(f"p{len(samples)}", noisy, T_cb_est, img, obj))
    result = solve_hand_eye(samples, "eye-in-hand", K=K, dist=dist)
    rows = []
    for name, m in result.methods.items():
        dr, dt = transform_distance(m.T, X)
        rows.append(
            _row(f"hand-eye {name}: rotation error", float(np.degrees(dr)), "deg", "<= 0.5 deg", np.degrees(dr) <= 0.5)
        )
        rows.append(_row(f"hand-eye {name}: translation error", dt * 1000, "mm", "<= 5 mm", dt * 1000 <= 5))
    dr, dt = transform_distance(result.T_parent_camera, X)
    rows.append(
        _row(f"hand-eye kept ({result.best.name}): translation error", dt * 1000, "mm", "<= 5 mm", dt * 1000 <= 5)
    )
    return rows


def run_bench() -> list[dict[str, Any]]:
    """Every row (intrinsics, then hand-eye); the CLI adds the machine facts and writes the JSON."""
    return intrinsics_rows() + handeye_rows()
