"""Synthetic board views rendered once per session: real pixels through a known camera, so detectors really run."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.boards import BoardSpec
from calibration.synthetic import Camera, render_view, sample_poses

# Small and distorted: the tests stay fast and the distortion is really estimated.
CAMERA = Camera(480, 360, 400.0, 398.0, 243.5, 177.0, (-0.14, 0.11, 0.0008, -0.0006, -0.03))
CHESSBOARD = "chessboard:9x6:0.025"
CHARUCO = "charuco:7x5:0.04:0.03:DICT_5X5_100"


def render_set(spec_text: str, n: int, seed: int, cam: Camera = CAMERA) -> tuple[list[np.ndarray], list[np.ndarray]]:
    spec = BoardSpec.parse(spec_text)
    rng = np.random.default_rng(seed)
    poses = sample_poses(spec, cam, n, rng)
    images = [render_view(spec, cam, T, rng=rng, noise_sigma=2.0) for T in poses]
    return images, poses


@pytest.fixture(scope="session")
def chessboard_views() -> tuple[list[np.ndarray], list[np.ndarray]]:
    return render_set(CHESSBOARD, 8, seed=11)


@pytest.fixture(scope="session")
def charuco_views() -> tuple[list[np.ndarray], list[np.ndarray]]:
    return render_set(CHARUCO, 8, seed=12)
