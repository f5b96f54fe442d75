"""Finding the board in an image: `findChessboardCornersSB` for chessboards, `cv2.aruco.CharucoDetector` for ChArUco.

A detection pairs image points with the board's object points, so the solvers do not care which board it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from calibration.boards import BoardSpec, make_cv_board

# Fewest ChArUco corners a view must show to constrain a pose (non-collinear points, some margin for noise).
MIN_CHARUCO_CORNERS = 6


@dataclass(frozen=True)
class Detection:
    """Board corners found in one image."""

    image_points: np.ndarray  # float32 [N, 2], pixels (pixel centres at integer coordinates)
    object_points: np.ndarray  # float32 [N, 3], board frame, m
    ids: np.ndarray  # int32 [N], corner index in `BoardSpec.object_points()` order
    image_size: tuple[int, int]  # width, height

    @property
    def count(self) -> int:
        return int(self.ids.shape[0])


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 grey from grey, RGB or RGBA (frames are RGB, `cv2.imread` gives BGR: channel order barely matters
    for a black-and-white board, so both are converted the same way)."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


class BoardDetector:
    """Detects one board spec; holds the OpenCV detector objects so a stream of frames reuses them."""

    def __init__(self, spec: BoardSpec) -> None:
        self.spec = spec
        self._object_points = spec.object_points()
        self._charuco: cv2.aruco.CharucoDetector | None = None
        if spec.kind == "charuco":
            board = make_cv_board(spec)
            params = cv2.aruco.CharucoParameters()
            params.minMarkers = 2  # a corner needs both its neighbouring markers: fewer false corners
            self._charuco = cv2.aruco.CharucoDetector(board, params)

    def detect(self, image: np.ndarray) -> Detection | None:
        """The board's corners in `image`, or None when the board is not (sufficiently) visible."""
        gray = to_gray(image)
        size = (int(gray.shape[1]), int(gray.shape[0]))
        if self._charuco is None:
            pts = _find_chessboard(gray, (self.spec.cols, self.spec.rows))
            if pts is None:
                return None
            if not _all_x_junctions(gray, pts, self.spec):
                return None
            pts = _normalize_chessboard_order(gray, pts, self.spec)
            grid = pts.reshape(self.spec.rows, self.spec.cols, 2)
            spacing = min(
                float(np.linalg.norm(np.diff(grid, axis=0), axis=2).min()),
                float(np.linalg.norm(np.diff(grid, axis=1), axis=2).min()),
            )
            pts = _refine(gray, pts, spacing)
            order = np.arange(pts.shape[0], dtype=np.int32)
            return Detection(pts, self._object_points[order], order, size)
        corners, ids, _, _ = self._charuco.detectBoard(gray)
        if ids is None or corners is None or len(ids) < MIN_CHARUCO_CORNERS:
            return None
        found_ids = np.asarray(ids, dtype=np.int32).ravel()
        pts = np.asarray(corners, dtype=np.float32).reshape(-1, 2)
        if _collinear(self._object_points[found_ids]):
            return None
        # No extra cornerSubPix here: the markers sit close to each corner and pull a refinement window off it;
        # OpenCV's own ChArUco refinement is the better estimate (median 0.06 px on the synthetic views).
        return Detection(pts, self._object_points[found_ids], found_ids, size)


def _find_chessboard(gray: np.ndarray, pattern: tuple[int, int]) -> np.ndarray | None:
    """`findChessboardCornersSB`, retried on a half- and quarter-size image when the squares are big.

    The SB detector works best with squares of some tens of pixels; on a large, close board (a printed page,
    squares of 100+ px) it fails intermittently, while the same board at half size is found every time. Corners
    found small are scaled back (pixel centres kept) and refined at full size afterwards.
    """
    flags = cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY
    scale = 1.0
    img = gray
    while True:
        found, corners = cv2.findChessboardCornersSB(img, pattern, flags=flags)
        if found and corners is not None:
            pts = corners.reshape(-1, 2).astype(np.float64)
            return ((pts + 0.5) / scale - 0.5).astype(np.float32)
        if min(img.shape) < 480:
            return None
        scale /= 2
        img = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _all_x_junctions(gray: np.ndarray, pts: np.ndarray, spec: BoardSpec) -> bool:
    """Every corner must sit where four squares meet in alternating shades.

    On small, steep boards the SB detector can return a grid shifted by one row onto the board's edge, whose
    "corners" border the white margin; a calibration fed such a view is ruined, so such detections are dropped.
    """
    grid = pts.reshape(spec.rows, spec.cols, 2).astype(np.float64)
    u = np.asarray(np.gradient(grid, axis=1))  # one corner along the row
    v = np.asarray(np.gradient(grid, axis=0))  # one corner down the column
    step = float(np.median(np.linalg.norm(u, axis=2)))
    k = max(1, int(0.15 * step))
    smooth = cv2.blur(gray, (2 * k + 1, 2 * k + 1)).astype(np.float64)
    h, w = smooth.shape

    def at(offset: np.ndarray) -> np.ndarray:
        q = np.rint(grid + offset).astype(int)
        q[..., 0] = np.clip(q[..., 0], 0, w - 1)
        q[..., 1] = np.clip(q[..., 1], 0, h - 1)
        return smooth[q[..., 1], q[..., 0]]

    a = (at(0.3 * (u + v)) + at(-0.3 * (u + v))) / 2  # one diagonal pair of squares
    b = (at(0.3 * (u - v)) + at(-0.3 * (u - v))) / 2  # the other pair
    spread_a = np.abs(at(0.3 * (u + v)) - at(-0.3 * (u + v)))
    spread_b = np.abs(at(0.3 * (u - v)) - at(-0.3 * (u - v)))
    contrast = np.abs(a - b)
    scale = float(np.percentile(contrast, 75))
    if scale < 10:
        return False
    ok = (contrast > 0.4 * scale) & (spread_a < 0.5 * contrast + 5) & (spread_b < 0.5 * contrast + 5)
    return bool(ok.all())


def _normalize_chessboard_order(gray: np.ndarray, pts: np.ndarray, spec: BoardSpec) -> np.ndarray:
    """Renumber detected chessboard corners to match `BoardSpec.object_points()`.

    The detector may number the grid mirrored (left-handed) or from the far end depending on the view. The camera
    always sees the printed face, so the board's x and y axes appear counter-clockwise-ordered in the image: a
    mirrored numbering is undone by reversing each row. The 180° ambiguity is resolved by the square colours,
    except on symmetric boards (odd x odd or even x even corners), where no view can tell.
    """
    cols, rows = spec.cols, spec.rows
    grid = pts.reshape(rows, cols, 2)
    dx = grid[:, -1].mean(axis=0) - grid[:, 0].mean(axis=0)  # along a row
    dy = grid[-1].mean(axis=0) - grid[0].mean(axis=0)  # down a column
    if dx[0] * dy[1] - dx[1] * dy[0] < 0:
        grid = grid[:, ::-1]
    pts = grid.reshape(-1, 2).copy()
    if not spec.symmetric and _first_corner_flipped(gray, pts, cols):
        pts = pts[::-1].copy()
    return pts


def _refine(gray: np.ndarray, pts: np.ndarray, spacing: float) -> np.ndarray:
    """Sub-pixel refinement with a window scaled to the smallest square seen: the detectors' own corners are
    robust but off by up to a few pixels on steep views; `cornerSubPix` brings them to about 0.1 px.
    """
    half = int(np.clip(0.4 * spacing, 2, 15))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-3)
    refined = cv2.cornerSubPix(gray, pts.reshape(-1, 1, 2).copy(), (half, half), (-1, -1), criteria)
    refined = refined.reshape(-1, 2)
    # A corner that wandered far (a blob of glare, a board edge) keeps the detector's estimate.
    moved = np.linalg.norm(refined - pts, axis=1) > 0.5 * spacing
    refined[moved] = pts[moved]
    return refined.astype(np.float32)


def _first_corner_flipped(gray: np.ndarray, pts: np.ndarray, cols: int) -> bool:
    """True when the detector numbered an asymmetric chessboard from the far end (180° from our board frame).

    The detector's choice between the two 180°-apart numberings varies with the view, but the printed board is not
    symmetric: in `boards.layout` the square diagonally inside the first corner is white. Compare it with its
    neighbour along the row, which is black.
    """

    def shade(i: int) -> float:
        quad = pts[[i, i + 1, i + cols, i + cols + 1]]
        x, y = quad.mean(axis=0)
        r = max(1, int(0.15 * float(np.linalg.norm(quad[3] - quad[0]))))
        xi, yi = round(float(x)), round(float(y))
        patch = gray[max(yi - r, 0) : yi + r + 1, max(xi - r, 0) : xi + r + 1]
        return float(patch.mean()) if patch.size else 0.0

    return shade(0) < shade(1)


def _collinear(obj: np.ndarray) -> bool:
    centred = obj[:, :2] - obj[:, :2].mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)
    return bool(s[-1] < 1e-6 * max(float(s[0]), 1e-12))
