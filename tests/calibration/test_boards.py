"""Board specs, printable layouts and corner detection on rendered images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration.boards import BoardSpec, layout, make_cv_board, rasterize
from calibration.detection import BoardDetector
from calibration.errors import BoardSpecError
from calibration.geometry import exp_so3, make_transform
from calibration.synthetic import project, render_view, sample_poses

from .conftest import CAMERA, CHARUCO, CHESSBOARD


def test_specs_parse_and_print_back() -> None:
    cb = BoardSpec.parse("chessboard:9x6:0.025")
    assert (cb.kind, cb.cols, cb.rows, cb.square) == ("chessboard", 9, 6, 0.025)
    assert cb.corner_count == 54
    assert cb.squares == (10, 7)
    assert cb.size_m == pytest.approx((0.25, 0.175))
    ch = BoardSpec.parse("charuco:7x5:0.04:0.03:DICT_5X5_100")
    assert (ch.kind, ch.cols, ch.rows, ch.marker, ch.dictionary) == ("charuco", 7, 5, 0.03, "DICT_5X5_100")
    assert ch.corner_grid == (6, 4)
    assert BoardSpec.parse("charuco:7x5:0.04:0.03").dictionary == "DICT_5X5_100"
    for s in (cb, ch):
        assert BoardSpec.parse(s.describe()) == s
    assert BoardSpec.parse("chessboard:8x6:0.02").symmetric
    assert not cb.symmetric


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("checker:9x6:0.025", "unknown board type"),
        ("chessboard:9by6:0.025", "COLSxROWS"),
        ("chessboard:9x6", "expected chessboard:COLSxROWS:SQUARE_M"),
        ("chessboard:9x6:abc", "not a number"),
        ("chessboard:9x6:25", "did you mean 0.025"),
        ("chessboard:2x6:0.025", "at least 3x3 inner corners"),
        ("charuco:7x5:0.04:0.05:DICT_5X5_100", "smaller than the square"),
        ("charuco:7x5:0.04:0.03:DICT_9X9_1", "unknown ArUco dictionary"),
        ("charuco:12x10:0.04:0.03:DICT_4X4_50", "needs 60 markers"),
    ],
)
def test_bad_specs_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(BoardSpecError, match=words) as e:
        BoardSpec.parse(text)
    assert text in str(e.value)


def test_charuco_layout_matches_opencv_board_image() -> None:
    """Our vector layout (printed and used to render views) is OpenCV's board, pixel for pixel."""
    spec = BoardSpec.parse(CHARUCO)
    ppm = 2000.0
    ours = rasterize(layout(spec, margin_m=0.0), ppm)
    board = make_cv_board(spec)
    theirs = board.generateImage((ours.shape[1], ours.shape[0]), marginSize=0, borderBits=1)
    mismatch = np.mean(np.abs(ours.astype(int) - theirs.astype(int)) > 128)
    assert mismatch < 0.01


def test_printed_charuco_board_is_detected_with_all_ids() -> None:
    spec = BoardSpec.parse(CHARUCO)
    img = rasterize(layout(spec), 3000.0)
    det = BoardDetector(spec).detect(img)
    assert det is not None
    assert det.count == spec.corner_count
    assert sorted(det.ids.tolist()) == list(range(spec.corner_count))


@pytest.mark.parametrize("spec_text", [CHESSBOARD, CHARUCO])
def test_detected_corners_match_ground_truth(spec_text: str, chessboard_views, charuco_views) -> None:
    images, poses = chessboard_views if spec_text == CHESSBOARD else charuco_views
    spec = BoardSpec.parse(spec_text)
    det = BoardDetector(spec)
    errors = []
    for img, T in zip(images, poses, strict=True):
        d = det.detect(img)
        assert d is not None
        truth = project(spec, CAMERA, T)[d.ids]
        errors.append(np.linalg.norm(d.image_points - truth, axis=1))
    err = np.concatenate(errors)
    assert np.median(err) < 0.15
    # OpenCV's ChArUco corners have a longer tail on steep views than refined chessboard corners.
    assert err.max() < (0.6 if spec.kind == "chessboard" else 1.5)


def test_chessboard_numbering_follows_the_board_when_upside_down() -> None:
    """The same board seen rotated 180° in the image must still be numbered from its own first corner."""
    spec = BoardSpec.parse(CHESSBOARD)
    rng = np.random.default_rng(5)
    T = sample_poses(spec, CAMERA, 1, rng, max_tilt_deg=10)[0]
    centre = np.array([spec.square * (spec.cols - 1) / 2, spec.square * (spec.rows - 1) / 2, 0.0])
    flip = make_transform(
        exp_so3(np.array([0, 0, np.pi])), centre + np.array([[-1, 0, 0], [0, -1, 0], [0, 0, 1]]) @ -centre
    )
    for pose in (T, T @ flip):
        img = render_view(spec, CAMERA, pose, rng=rng)
        d = BoardDetector(spec).detect(img)
        assert d is not None
        assert np.abs(d.image_points - project(spec, CAMERA, pose)).max() < 0.6


def test_no_board_gives_no_detection() -> None:
    blank = np.full((240, 320), 128, np.uint8)
    noise = np.random.default_rng(0).integers(0, 255, (240, 320), dtype=np.uint8)
    for spec_text in (CHESSBOARD, CHARUCO):
        det = BoardDetector(BoardSpec.parse(spec_text))
        assert det.detect(blank) is None
        assert det.detect(cv2.GaussianBlur(noise, (5, 5), 2)) is None
