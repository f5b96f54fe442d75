"""Intrinsic calibration: board views -> camera matrix and distortion, with per-view errors and outlier dropping.

Views whose reprojection RMS is over the threshold (1 px by default) are dropped one at a time, worst first, and the
camera recalibrated without them: one bad view (motion blur, a misdetection, a bent board) pulls the solution and
inflates every other view's error, so dropping them all at once would throw good views away.
"""

# Matrix names follow the maths (K camera matrix, R rotation, T_a_b transform).
# ruff: noqa: N803, N806

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from calibration.boards import BoardSpec
from calibration.detection import BoardDetector, Detection
from calibration.errors import BoardNotFoundError, ImageReadError, TooFewViewsError
from calibration.file_format import Intrinsics

MIN_VIEWS = 5
DEFAULT_MAX_VIEW_RMS_PX = 1.0
_FLAGS = {"plumb_bob": 0, "rational_polynomial": cv2.CALIB_RATIONAL_MODEL}


@dataclass
class View:
    """One image in which the board was found."""

    name: str
    detection: Detection
    image: np.ndarray | None = None  # grey, kept for the report's overlay


@dataclass
class ViewResult:
    name: str
    rms_px: float  # under the final calibration (dropped views: after solvePnP with the final intrinsics)
    used: bool
    dropped_because: str = ""
    points: int = 0
    rvec: np.ndarray | None = None
    tvec: np.ndarray | None = None
    residuals: np.ndarray | None = None  # [N, 2] projected - detected, pixels


@dataclass
class IntrinsicsResult:
    intrinsics: Intrinsics
    rms_px: float
    views: list[ViewResult]
    board: BoardSpec
    threshold_px: float
    coverage: float  # fraction of image cells with a corner from the views used
    no_board: list[str] = field(default_factory=list)  # views in which the board was not found

    @property
    def dropped(self) -> list[ViewResult]:
        return [v for v in self.views if not v.used]

    @property
    def used(self) -> list[ViewResult]:
        return [v for v in self.views if v.used]

    def residuals_dict(self) -> dict[str, object]:
        used = self.used
        return {
            "rms_px": self.rms_px,
            "max_view_rms_px": max((v.rms_px for v in used), default=0.0),
            "threshold_px": self.threshold_px,
            "coverage": self.coverage,
            "views": [
                {
                    "name": v.name,
                    "rms_px": v.rms_px,
                    "points": v.points,
                    "used": v.used,
                    "dropped_because": v.dropped_because,
                }
                for v in self.views
            ],
            "no_board": list(self.no_board),
        }


def detect_views(
    images: Iterable[tuple[str, np.ndarray]], spec: BoardSpec, keep_images: bool = True
) -> tuple[list[View], list[str]]:
    """Find the board in each (name, image); returns the views with the board and the names without it.

    All images must have the same size: a calibration holds for one resolution.
    """
    detector = BoardDetector(spec)
    views: list[View] = []
    missing: list[str] = []
    size: tuple[int, int] | None = None
    first = ""
    for name, image in images:
        this = (int(image.shape[1]), int(image.shape[0]))
        if size is None:
            size, first = this, name
        elif this != size:
            raise ImageReadError(
                f"{name}: image is {this[0]}x{this[1]} but {first} is {size[0]}x{size[1]}; "
                "calibrate one resolution at a time"
            )
        det = detector.detect(image)
        if det is None:
            missing.append(name)
            continue
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        views.append(View(name, det, gray if keep_images else None))
    return views, missing


def calibrate_intrinsics(
    views: Sequence[View],
    spec: BoardSpec,
    *,
    model: str = "plumb_bob",
    max_view_rms_px: float = DEFAULT_MAX_VIEW_RMS_PX,
    min_views: int = MIN_VIEWS,
    no_board: Sequence[str] = (),
) -> IntrinsicsResult:
    """Calibrate from board views; drop views over `max_view_rms_px`, worst first, and recalibrate."""
    if model not in _FLAGS:
        raise ValueError(f"distortion model {model!r}: expected one of {', '.join(_FLAGS)}")
    if not views:
        shown = ", ".join(list(no_board)[:5]) + (" ..." if len(no_board) > 5 else "")
        raise BoardNotFoundError(
            f"the board ({spec.describe()}) was not found in any of the {len(no_board)} views"
            + (f" ({shown})" if shown else "")
            + "; check the board spec (chessboards count inner corners), lighting and focus"
        )
    if len(views) < min_views:
        raise TooFewViewsError(
            f"only {len(views)} view(s) show the board ({spec.describe()}), at least {min_views} "
            f"are needed"
            + (f"; the board was not found in {len(no_board)} more" if no_board else "")
            + ": capture more views covering the whole image, tilted in different directions"
        )
    size = views[0].detection.image_size
    active = list(views)
    dropped: dict[str, str] = {}
    while True:
        K, dist, rms, rvecs, tvecs, std = _solve(active, size, model)
        errors = [_view_rms(v.detection, K, dist, r, t) for v, r, t in zip(active, rvecs, tvecs, strict=True)]
        worst = int(np.argmax(errors))
        if errors[worst] <= max_view_rms_px:
            break
        if len(active) - 1 < min_views:
            bad = ", ".join(f"{v.name} {e:.2f} px" for v, e in zip(active, errors, strict=True) if e > max_view_rms_px)
            raise TooFewViewsError(
                f"views over {max_view_rms_px:g} px ({bad}) leave fewer than {min_views} good views"
                + (f" (already dropped: {', '.join(dropped)})" if dropped else "")
                + ": check for motion blur, a bent or badly printed board, or a wrong board size; capture again"
            )
        dropped[active[worst].name] = f"{errors[worst]:.2f} px > {max_view_rms_px:g} px"
        del active[worst]
    by_name = {v.name: (r, t, e) for v, r, t, e in zip(active, rvecs, tvecs, errors, strict=True)}
    results: list[ViewResult] = []
    for v in views:
        if v.name in by_name:
            r, t, e = by_name[v.name]
            results.append(
                ViewResult(v.name, e, True, "", v.detection.count, r, t, _residuals(v.detection, K, dist, r, t))
            )
        else:
            r, t = _pose(v.detection, K, dist)
            res = _residuals(v.detection, K, dist, r, t)
            results.append(
                ViewResult(
                    v.name,
                    float(np.sqrt((res**2).sum(axis=1).mean())),
                    False,
                    dropped[v.name],
                    v.detection.count,
                    r,
                    t,
                    res,
                )
            )
    coeffs = tuple(float(c) for c in dist.ravel()[: 5 if model == "plumb_bob" else 8])
    names = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")
    stds = {n: float(s) for n, s in zip(names, std.ravel(), strict=False) if n in names[: 4 + len(coeffs)]}
    intr = Intrinsics(
        size[0], size[1], float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), model, coeffs, stds
    )
    cov = coverage([v.detection.image_points for v in active], size)
    return IntrinsicsResult(intr, float(rms), results, spec, max_view_rms_px, cov, list(no_board))


def _solve(
    views: Sequence[View], size: tuple[int, int], model: str
) -> tuple[np.ndarray, np.ndarray, float, list[np.ndarray], list[np.ndarray], np.ndarray]:
    obj = [v.detection.object_points.reshape(-1, 1, 3).astype(np.float32) for v in views]
    img = [v.detection.image_points.reshape(-1, 1, 2).astype(np.float32) for v in views]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-10)
    rms, K, dist, rvecs, tvecs, std, _, _ = cv2.calibrateCameraExtended(
        obj, img, size, np.zeros((3, 3)), np.zeros(8), flags=_FLAGS[model], criteria=criteria
    )
    return K, dist, float(rms), list(rvecs), list(tvecs), std


def _pose(det: Detection, K: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok, rvec, tvec = cv2.solvePnP(
        det.object_points.astype(np.float64), det.image_points.astype(np.float64), K, dist, flags=cv2.SOLVEPNP_ITERATIVE
    )
    if not ok:
        raise BoardNotFoundError("solvePnP failed on a view with a detected board")
    return rvec, tvec


def _residuals(det: Detection, K: np.ndarray, dist: np.ndarray, rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    proj, _ = cv2.projectPoints(det.object_points.astype(np.float64), rvec, tvec, K, dist)
    return proj.reshape(-1, 2) - det.image_points.astype(np.float64)


def _view_rms(det: Detection, K: np.ndarray, dist: np.ndarray, rvec: np.ndarray, tvec: np.ndarray) -> float:
    res = _residuals(det, K, dist, rvec, tvec)
    return float(np.sqrt((res**2).sum(axis=1).mean()))


def coverage(points: Sequence[np.ndarray], size: tuple[int, int], cells: tuple[int, int] = (8, 6)) -> float:
    """Fraction of an `cells` grid over the image that holds at least one corner: 1.0 = corners everywhere."""
    grid = coverage_grid(points, size, cells)
    return float((grid > 0).mean())


def coverage_grid(points: Sequence[np.ndarray], size: tuple[int, int], cells: tuple[int, int] = (8, 6)) -> np.ndarray:
    """Corner count per image cell, int [rows, cols]."""
    grid = np.zeros((cells[1], cells[0]), dtype=np.int64)
    for p in points:
        p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        cx = np.clip((p[:, 0] / size[0] * cells[0]).astype(int), 0, cells[0] - 1)
        cy = np.clip((p[:, 1] / size[1] * cells[1]).astype(int), 0, cells[1] - 1)
        np.add.at(grid, (cy, cx), 1)
    return grid
