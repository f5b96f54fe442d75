"""Guided capture for intrinsics: which frames to keep, and when there are enough.

Pure logic on detections and grey images (no camera I/O), so the same rules select views from a live RealSense,
from a recording, and in tests from synthetic frames. A frame is rejected when the board is blurred (motion or
focus) or when it nearly repeats a view already kept; capture is "enough" when the kept views cover the image,
include tilts both ways about both axes, and number at least `min_views`.
"""

from __future__ import annotations

# ruff: noqa: N806
from dataclasses import dataclass, field

import numpy as np

from calibration.detection import Detection
from calibration.intrinsics import coverage_grid


@dataclass(frozen=True)
class CaptureConfig:
    min_views: int = 12
    coverage_target: float = 0.75  # fraction of the 8x6 image cells holding a corner
    cells: tuple[int, int] = (8, 6)
    max_edge_width_px: float = 4.0  # blur: a sharp print edge spans ~1.5-2.5 px; motion blur spreads it
    duplicate_fraction: float = 0.03  # mean corner shift, as a fraction of the image diagonal
    tilt_threshold_deg: float = 15.0  # a view counts as tilted one way beyond this
    min_tilted_each_way: int = 1

    def __post_init__(self) -> None:
        if self.min_views < 3:
            raise ValueError(f"min_views: expected >= 3, got {self.min_views}")
        if not 0 < self.coverage_target <= 1:
            raise ValueError(f"coverage_target: expected in (0, 1], got {self.coverage_target}")


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str  # why not, or "kept"
    edge_width_px: float = 0.0


@dataclass
class CaptureStatus:
    views: int
    coverage: float
    grid: np.ndarray  # corner counts per cell [rows, cols]
    tilts: dict[str, int]  # left/right/top/bottom -> views with that side of the board further away
    enough: bool
    advice: str

    def coverage_map(self) -> str:
        """The image as a grid of cells: '#' holds corners, '.' does not (shown to the user while capturing)."""
        return "\n".join("".join("#" if c else "." for c in row) for row in self.grid)


@dataclass
class ViewSelector:
    image_size: tuple[int, int]
    config: CaptureConfig = field(default_factory=CaptureConfig)
    camera_matrix: np.ndarray | None = None  # factory intrinsics when known: better tilt estimates
    kept: list[Detection] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)

    def consider(self, gray: np.ndarray, detection: Detection | None) -> Verdict:
        """Keep or reject one frame; the reason says why (for the user and the tests)."""
        if detection is None:
            return self._reject("board not found")
        width = edge_width(gray, detection)
        if width > self.config.max_edge_width_px:
            return self._reject(
                f"blurred (edges {width:.1f} px wide, limit {self.config.max_edge_width_px:g} px): "
                "hold the board still",
                width,
            )
        diag = float(np.hypot(*self.image_size))
        for other in self.kept:
            shift = _mean_shift(detection, other)
            if shift is not None and shift < self.config.duplicate_fraction * diag:
                return self._reject(
                    f"too close to a view already kept (corners moved {shift:.0f} px): move or tilt the board", width
                )
        self.kept.append(detection)
        return Verdict(True, "kept", width)

    def _reject(self, reason: str, width: float = 0.0) -> Verdict:
        key = reason.split(" (")[0].split(":")[0]
        self.rejected[key] = self.rejected.get(key, 0) + 1
        return Verdict(False, reason, width)

    def status(self) -> CaptureStatus:
        cfg = self.config
        grid = coverage_grid([d.image_points for d in self.kept], self.image_size, cfg.cells)
        cov = float((grid > 0).mean())
        tilts = {"left": 0, "right": 0, "top": 0, "bottom": 0}
        for d in self.kept:
            h, v = tilt(d, self.camera_matrix)
            # n_x > 0: the board's normal points right, away from the camera: its right side is further away.
            if h > cfg.tilt_threshold_deg:
                tilts["right"] += 1
            elif h < -cfg.tilt_threshold_deg:
                tilts["left"] += 1
            if v > cfg.tilt_threshold_deg:
                tilts["bottom"] += 1
            elif v < -cfg.tilt_threshold_deg:
                tilts["top"] += 1
        missing_tilts = [k for k, n in tilts.items() if n < cfg.min_tilted_each_way]
        enough = len(self.kept) >= cfg.min_views and cov >= cfg.coverage_target and not missing_tilts
        if enough:
            advice = "enough views: coverage and tilts are sufficient (more views in empty cells still help)"
        elif cov < cfg.coverage_target:
            advice = f"move the board towards the {_emptiest_region(grid)} of the image"
        elif missing_tilts:
            advice = f"tilt the board so its {missing_tilts[0]} side is further from the camera"
        else:
            advice = f"keep going: {len(self.kept)} of {cfg.min_views} views"
        return CaptureStatus(len(self.kept), cov, grid, tilts, enough, advice)


def edge_width(gray: np.ndarray, detection: Detection) -> float:
    """Width of the board's black/white edges in pixels (contrast / steepest gradient): ~1.5-2.5 sharp, more blurred.

    For a step edge blurred by a Gaussian of sigma s the steepest gradient is C / (s * sqrt(2 pi)), so this is
    about 2.5 s: independent of lighting and of how big the board appears.
    """
    pts = detection.image_points
    x0, y0 = np.floor(pts.min(axis=0)).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
    roi = gray[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1].astype(np.float64)
    if roi.shape[0] < 5 or roi.shape[1] < 5:
        return float("inf")
    gy, gx = np.gradient(roi)
    mag = np.hypot(gx, gy)
    steep = float(np.percentile(mag, 99.5))
    contrast = float(np.percentile(roi, 97) - np.percentile(roi, 3))
    if steep <= 1e-6:
        return float("inf")
    return contrast / steep


def tilt(detection: Detection, camera_matrix: np.ndarray | None = None) -> tuple[float, float]:
    """How the board is turned away from the camera, degrees: (about the image's vertical axis, about its horizontal
    axis); 0 = facing the camera. From solvePnP with the camera matrix if known, else a rough guess (focal length
    0.9 x image width, centred): the sign and rough size of a tilt survive a 20-30% error in the guess.
    """
    import cv2

    w, h = detection.image_size
    K = (
        camera_matrix
        if camera_matrix is not None
        else np.array([[0.9 * w, 0, (w - 1) / 2], [0, 0.9 * w, (h - 1) / 2], [0, 0, 1]], dtype=np.float64)
    )
    ok, rvec, _ = cv2.solvePnP(
        detection.object_points.astype(np.float64),
        detection.image_points.astype(np.float64),
        K,
        None,
        flags=cv2.SOLVEPNP_IPPE,
    )
    if not ok:
        return 0.0, 0.0
    R, _ = cv2.Rodrigues(rvec)
    n = R[:, 2]  # board normal, pointing away from the camera
    return float(np.degrees(np.arctan2(n[0], n[2]))), float(np.degrees(np.arctan2(n[1], n[2])))


def _mean_shift(a: Detection, b: Detection) -> float | None:
    common, ia, ib = np.intersect1d(a.ids, b.ids, return_indices=True)
    if len(common) < 4:
        return None
    return float(np.linalg.norm(a.image_points[ia] - b.image_points[ib], axis=1).mean())


def _emptiest_region(grid: np.ndarray) -> str:
    rows, cols = grid.shape
    empty = np.argwhere(grid == 0)
    if len(empty) == 0:
        return "centre"
    r, c = empty.mean(axis=0)
    vert = "top" if r < rows / 3 else "bottom" if r > 2 * rows / 3 - 1 else ""
    horiz = "left" if c < cols / 3 else "right" if c > 2 * cols / 3 - 1 else ""
    where = "-".join(p for p in (vert, horiz) if p)
    return f"{where} corner" if vert and horiz else (f"{where} edge" if where else "edges")
