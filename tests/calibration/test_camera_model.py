"""The pure-numpy camera models agree with OpenCV and with librealsense's own projection."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration.camera_model import PinholeModel, pixel_difference


def _points(n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.column_stack([rng.uniform(-0.5, 0.5, n), rng.uniform(-0.4, 0.4, n), rng.uniform(0.5, 2.0, n)])


@pytest.mark.parametrize(
    ("model", "coeffs"),
    [
        ("plumb_bob", (-0.14, 0.11, 0.0008, -0.0006, -0.03)),
        ("rational_polynomial", (0.3, -0.1, 0.001, 0.0005, 0.01, 0.6, -0.05, 0.02)),
    ],
)
def test_opencv_models_match_project_points(model: str, coeffs: tuple[float, ...]) -> None:
    m = PinholeModel(640, 480, 600.0, 601.0, 320.5, 240.5, model, coeffs)
    p = _points()
    ours = m.project(p)
    theirs, _ = cv2.projectPoints(p, np.zeros(3), np.zeros(3), m.K, np.asarray(coeffs))
    np.testing.assert_allclose(ours, theirs.reshape(-1, 2), atol=1e-9)
    rays = m.rays(ours)
    np.testing.assert_allclose(rays, p[:, :2] / p[:, 2:], atol=1e-9)


@pytest.mark.realsense
@pytest.mark.parametrize("model", ["brown_conrady", "inverse_brown_conrady", "modified_brown_conrady", "none"])
def test_realsense_models_match_librealsense(model: str) -> None:
    rs = pytest.importorskip("pyrealsense2", reason="pyrealsense2 (the realsense extra) is not installed")
    coeffs = [0.05, -0.08, 0.001, -0.0007, 0.02]
    intr = rs.intrinsics()
    intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = 640, 480, 605.0, 604.0, 322.0, 241.0
    intr.model = getattr(rs.distortion, model)
    intr.coeffs = coeffs
    m = PinholeModel(640, 480, 605.0, 604.0, 322.0, 241.0, model, tuple(coeffs))
    for p in _points(50):
        theirs = rs.rs2_project_point_to_pixel(intr, [float(v) for v in p])
        np.testing.assert_allclose(m.project(p[None])[0], theirs, atol=2e-3)  # librealsense computes in float32


def test_pixel_difference_is_zero_for_the_same_model_and_sees_a_shift() -> None:
    a = PinholeModel(640, 480, 600.0, 600.0, 320.0, 240.0, "plumb_bob", (-0.1, 0.02, 0, 0, 0))
    assert pixel_difference(a, a)["max_px"] < 1e-6
    b = PinholeModel(640, 480, 600.0, 600.0, 323.0, 240.0, "plumb_bob", (-0.1, 0.02, 0, 0, 0))
    d = pixel_difference(a, b)
    assert d["mean_px"] == pytest.approx(3.0, abs=1e-6)
    assert d["dcx_px"] == pytest.approx(3.0)
    # The same sensor at half resolution is the same camera.
    half = PinholeModel(320, 240, 300.0, 300.0, 159.75, 119.75, "plumb_bob", (-0.1, 0.02, 0, 0, 0))
    assert pixel_difference(a, half)["max_px"] < 0.6
