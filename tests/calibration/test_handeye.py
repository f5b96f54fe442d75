"""Hand-eye on synthetic poses with noise: every solver within tolerance, degenerate motions refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration.errors import DegenerateMotionError, TooFewViewsError
from calibration.geometry import transform_distance
from calibration.handeye import METHODS, motion_diversity, solve_hand_eye

from .conftest import CAMERA
from .handeye_data import make_samples, truth


@pytest.mark.parametrize("mode", ["eye-in-hand", "eye-to-hand"])
def test_every_method_recovers_the_transform(mode: str) -> None:
    samples = make_samples(mode, 12, seed=1)
    result = solve_hand_eye(samples, mode, K=CAMERA.K, dist=np.asarray(CAMERA.dist))
    assert set(result.methods) == set(METHODS), result.failed
    for name, m in result.methods.items():
        dr, dt = transform_distance(m.T, truth(mode))
        assert np.degrees(dr) < 0.5, name
        assert dt * 1000 < 5.0, name
        assert m.reprojection_px is not None
        assert m.reprojection_px < 2.0, name
    rot, tr = result.agreement()
    assert rot < 0.5
    assert tr < 5.0
    assert result.best.name in METHODS
    assert result.diversity.enough


def test_noise_free_data_is_solved_exactly_by_every_method() -> None:
    samples = make_samples("eye-in-hand", 8, seed=2, noise_px=0.0, noise_mm=0.0, noise_deg=0.0)
    result = solve_hand_eye(samples, "eye-in-hand", K=CAMERA.K, dist=np.asarray(CAMERA.dist))
    for name, m in result.methods.items():
        dr, dt = transform_distance(m.T, truth("eye-in-hand"))
        assert np.degrees(dr) < 1e-3, name
        assert dt < 1e-5, name


def test_opencv_andreff_is_unreliable_which_is_why_we_solve_it_ourselves() -> None:
    """OpenCV's Andreff fails outright on exact data from an orbit around the board (its rotation normalisation
    finds a null determinant); our Andreff solves the same data exactly."""
    samples = make_samples("eye-in-hand", 10, seed=0, noise_px=0.0, noise_mm=0.0, noise_deg=0.0, orbit=True)
    R_g = [s.T_base_gripper[:3, :3] for s in samples]
    t_g = [s.T_base_gripper[:3, 3] for s in samples]
    R_t = [s.T_cam_board[:3, :3] for s in samples]
    t_t = [s.T_cam_board[:3, 3] for s in samples]
    try:
        _, t = cv2.calibrateHandEye(R_g, t_g, R_t, t_t, method=cv2.CALIB_HAND_EYE_ANDREFF)
        opencv_error = float(np.linalg.norm(np.asarray(t).ravel() - truth("eye-in-hand")[:3, 3]))
    except cv2.error:
        opencv_error = float("inf")
    assert not opencv_error < 0.01  # failed or far off (NaN counts as failed)
    result = solve_hand_eye(samples, "eye-in-hand")
    assert set(result.methods) == set(METHODS)
    for m in result.methods.values():
        assert np.linalg.norm(m.T[:3, 3] - truth("eye-in-hand")[:3, 3]) < 1e-5


@pytest.mark.parametrize(
    ("motion", "words"),
    [("translation", "translation only"), ("one-axis", "about one axis")],
)
@pytest.mark.parametrize("mode", ["eye-in-hand", "eye-to-hand"])
def test_degenerate_motion_is_refused_with_an_explanation(mode: str, motion: str, words: str) -> None:
    samples = make_samples(mode, 8, seed=3, motion=motion, noise_deg=0.0, noise_mm=0.0)
    with pytest.raises(DegenerateMotionError, match=words) as e:
        solve_hand_eye(samples, mode)
    assert "rotate" in str(e.value) or "axis" in str(e.value)


def test_too_few_poses() -> None:
    with pytest.raises(TooFewViewsError, match="at least 3 poses"):
        solve_hand_eye(make_samples("eye-in-hand", 2, seed=4), "eye-in-hand")


def test_guided_capture_says_when_motions_are_diverse_enough() -> None:
    samples = make_samples("eye-in-hand", 10, seed=5)
    robot = [s.T_base_gripper for s in samples]
    assert not motion_diversity(robot[:4]).enough
    assert "keep going" in motion_diversity(robot[:4]).advice
    assert motion_diversity(robot).enough
    one_axis = [s.T_base_gripper for s in make_samples("eye-in-hand", 10, seed=5, motion="one-axis")]
    d = motion_diversity(one_axis)
    assert not d.enough
    assert "another axis" in d.advice
