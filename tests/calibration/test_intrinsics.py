"""Intrinsics from rendered views of a board through a known distorted camera, plus guided-capture rules."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.boards import BoardSpec
from calibration.camera_model import PinholeModel, pixel_difference
from calibration.capture import CaptureConfig, ViewSelector
from calibration.detection import BoardDetector
from calibration.errors import BoardNotFoundError, TooFewViewsError
from calibration.intrinsics import calibrate_intrinsics, detect_views
from calibration.synthetic import render_view, sample_poses

from .conftest import CAMERA, CHARUCO, CHESSBOARD

TRUE = PinholeModel(CAMERA.width, CAMERA.height, CAMERA.fx, CAMERA.fy, CAMERA.cx, CAMERA.cy, "plumb_bob", CAMERA.dist)


@pytest.mark.parametrize("spec_text", [CHESSBOARD, CHARUCO])
def test_recovers_the_true_camera(spec_text: str, chessboard_views, charuco_views) -> None:
    images, _ = chessboard_views if spec_text == CHESSBOARD else charuco_views
    spec = BoardSpec.parse(spec_text)
    views, missing = detect_views([(f"v{i}", im) for i, im in enumerate(images)], spec)
    assert not missing
    r = calibrate_intrinsics(views, spec)
    i = r.intrinsics
    assert r.rms_px < 0.3
    assert not r.dropped
    # Distortion coefficients trade off against each other; what matters is where points land in the image.
    d = pixel_difference(TRUE, i.model(), border=0.1)
    if spec.kind == "chessboard":  # 54 refined corners a view: tight
        assert abs(i.fx - CAMERA.fx) / CAMERA.fx < 0.005
        assert abs(i.fy - CAMERA.fy) / CAMERA.fy < 0.005
        assert abs(i.cx - CAMERA.cx) < 2.0
        assert abs(i.cy - CAMERA.cy) < 2.0
        assert d["max_px"] < 1.0
        assert d["mean_px"] < 0.4
    else:  # 24 corners a view with small markers at 480x360: looser (about 1 px at 640x480, see the bench)
        assert abs(i.fx - CAMERA.fx) / CAMERA.fx < 0.01
        assert abs(i.fy - CAMERA.fy) / CAMERA.fy < 0.01
        assert abs(i.cx - CAMERA.cx) < 3.0
        assert abs(i.cy - CAMERA.cy) < 3.0
        assert d["mean_px"] < 3.0
    assert i.std["fx"] < 2.0


def test_a_bad_view_is_dropped_and_reported(chessboard_views) -> None:
    images, _ = chessboard_views
    spec = BoardSpec.parse(CHESSBOARD)
    views, _ = detect_views([(f"v{i}", im) for i, im in enumerate(images)], spec)
    # One view's corners bent by a few pixels, like a warped print or a misdetection.
    bad = views[2].detection
    bad.image_points[:20] += np.array([3.0, -2.5], dtype=np.float32)
    r = calibrate_intrinsics(views, spec)
    assert [v.name for v in r.dropped] == ["v2"]
    assert "> 1 px" in r.dropped[0].dropped_because
    assert r.dropped[0].rms_px > 1.0
    assert all(v.rms_px < 1.0 for v in r.used)
    assert abs(r.intrinsics.fx - CAMERA.fx) / CAMERA.fx < 0.005
    assert r.residuals_dict()["views"][2]["used"] is False


def test_too_few_views_and_no_board(chessboard_views) -> None:
    images, _ = chessboard_views
    spec = BoardSpec.parse(CHESSBOARD)
    views, _ = detect_views([(f"v{i}", im) for i, im in enumerate(images[:3])], spec)
    with pytest.raises(TooFewViewsError, match="only 3 view"):
        calibrate_intrinsics(views, spec)
    blank = np.full((CAMERA.height, CAMERA.width), 120, np.uint8)
    views, missing = detect_views([("blank.png", blank)], spec)
    with pytest.raises(BoardNotFoundError, match=r"not found in any of the 1 views \(blank.png\)"):
        calibrate_intrinsics(views, spec, no_board=missing)


def test_view_selector_rejects_blur_and_duplicates_and_says_when_enough() -> None:
    spec = BoardSpec.parse(CHESSBOARD)
    det = BoardDetector(spec)
    rng = np.random.default_rng(7)
    poses = sample_poses(spec, CAMERA, 14, rng, max_tilt_deg=45)
    sel = ViewSelector(CAMERA.size, CaptureConfig(min_views=10, coverage_target=0.6))
    sharp = render_view(spec, CAMERA, poses[0], rng=rng)
    assert sel.consider(sharp, det.detect(sharp)).accepted
    blurred = render_view(spec, CAMERA, poses[1], rng=rng, blur_sigma=3.0)
    d = det.detect(blurred)
    if d is not None:  # a board this blurred may not even be found
        v = sel.consider(blurred, d)
        assert not v.accepted
        assert "blurred" in v.reason
    again = render_view(spec, CAMERA, poses[0], rng=rng)
    v = sel.consider(again, det.detect(again))
    assert not v.accepted
    assert "too close to a view already kept" in v.reason
    assert not sel.status().enough
    for T in poses[1:]:
        img = render_view(spec, CAMERA, T, rng=rng)
        sel.consider(img, det.detect(img))
    st = sel.status()
    assert st.views >= 10
    assert st.enough, st.advice
    assert "enough" in st.advice
    assert set(st.coverage_map()) <= {"#", ".", "\n"}
