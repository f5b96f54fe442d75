"""Report PNGs a person can read: where the corners were, how well each view fits, and what the fit looks like.

Drawn with OpenCV only (no plotting library): four panels on one canvas.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from calibration.errors import CalibrationError
from calibration.intrinsics import IntrinsicsResult, View, coverage_grid

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_W, _H = 760, 520  # one panel
_BG = (250, 250, 250)
_INK = (30, 30, 30)
_GREEN = (60, 160, 60)
_RED = (40, 40, 220)
_BLUE = (200, 120, 40)
_GREY = (170, 170, 170)


def _text(
    img: np.ndarray,
    s: str,
    org: tuple[int, int],
    scale: float = 0.5,
    color: tuple[int, int, int] = _INK,
    thick: int = 1,
) -> None:
    cv2.putText(img, s, org, _FONT, scale, color, thick, cv2.LINE_AA)


def _fit(size: tuple[int, int], box: tuple[int, int]) -> float:
    return min(box[0] / size[0], box[1] / size[1])


def _palette(n: int) -> list[tuple[int, int, int]]:
    hues = np.linspace(0, 170, max(n, 1), endpoint=False).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 200), np.full_like(hues, 200)], axis=1)[None]
    bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]
    return [tuple(int(c) for c in px) for px in bgr]  # type: ignore[misc]


def coverage_panel(result: IntrinsicsResult, views: Sequence[View]) -> np.ndarray:
    panel = np.full((_H, _W, 3), _BG, np.uint8)
    size = (result.intrinsics.width, result.intrinsics.height)
    s = _fit(size, (_W - 40, _H - 80))
    ox, oy = 20, 50
    w, h = int(size[0] * s), int(size[1] * s)
    used = {v.name for v in result.used}
    pts_used = [v.detection.image_points for v in views if v.name in used]
    grid = coverage_grid(pts_used, size)
    rows, cols = grid.shape
    for r in range(rows):
        for c in range(cols):
            x0, y0 = ox + c * w // cols, oy + r * h // rows
            x1, y1 = ox + (c + 1) * w // cols, oy + (r + 1) * h // rows
            shade = (215, 215, 255) if grid[r, c] == 0 else (225, 245, 225)
            cv2.rectangle(panel, (x0, y0), (x1, y1), shade, -1)
            cv2.rectangle(panel, (x0, y0), (x1, y1), (225, 225, 225), 1)
    colors = _palette(len(views))
    for v, color in zip(views, colors, strict=True):
        for x, y in v.detection.image_points:
            p = (int(ox + x * s), int(oy + y * s))
            if v.name in used:
                cv2.circle(panel, p, 2, color, -1, cv2.LINE_AA)
            else:
                cv2.drawMarker(panel, p, _RED, cv2.MARKER_TILTED_CROSS, 5, 1)
    cv2.rectangle(panel, (ox, oy), (ox + w, oy + h), _INK, 1)
    empty = int((grid == 0).sum())
    _text(panel, f"Corner coverage: {result.coverage:.0%} of image cells", (20, 25), 0.6, _INK, 2)
    _text(panel, f"{len(pts_used)} views used; red cells hold no corner ({empty}); x = dropped views", (20, 42), 0.42)
    return panel


def error_panel(result: IntrinsicsResult) -> np.ndarray:
    panel = np.full((_H, _W, 3), _BG, np.uint8)
    _text(panel, f"Per-view reprojection RMS (px): overall {result.rms_px:.3f} px", (20, 25), 0.6, _INK, 2)
    _text(
        panel,
        f"red = dropped (> {result.threshold_px:g} px) and recalibrated without; line = threshold",
        (20, 42),
        0.42,
    )
    views = result.views
    x0, y0, x1, y1 = 60, 60, _W - 20, _H - 60
    top = max(result.threshold_px * 1.5, max((v.rms_px for v in views), default=0.0) * 1.1)
    cv2.line(panel, (x0, y1), (x1, y1), _INK, 1)
    cv2.line(panel, (x0, y0), (x0, y1), _INK, 1)
    for k in range(5):
        val = top * k / 4
        y = int(y1 - (y1 - y0) * val / top)
        cv2.line(panel, (x0 - 4, y), (x1, y), (230, 230, 230), 1)
        _text(panel, f"{val:.2f}", (8, y + 4), 0.38)
    n = max(len(views), 1)
    bw = (x1 - x0) / n
    for i, v in enumerate(views):
        h = int((y1 - y0) * min(v.rms_px, top) / top)
        a, b = int(x0 + i * bw + bw * 0.15), int(x0 + (i + 1) * bw - bw * 0.15)
        cv2.rectangle(panel, (a, y1 - h), (max(b, a + 1), y1), _GREEN if v.used else _RED, -1)
        if n <= 40 or i % max(1, n // 20) == 0:
            _text(panel, str(i), (a, y1 + 14), 0.33)
    ty = int(y1 - (y1 - y0) * result.threshold_px / top)
    for x in range(x0, x1, 12):
        cv2.line(panel, (x, ty), (min(x + 6, x1), ty), _RED, 1)
    dropped = [f"{i}:{v.name}" for i, v in enumerate(views) if not v.used]
    line = "dropped: " + (", ".join(dropped) if dropped else "none")
    _text(panel, line[:110], (20, _H - 25), 0.42, _RED if dropped else _INK)
    _text(panel, "view index (names in the calibration file, residuals.views)", (20, _H - 8), 0.38, _GREY)
    return panel


def overlay_panel(result: IntrinsicsResult, views: Sequence[View], magnify: float = 20.0) -> np.ndarray:
    """The worst used view: detected corners (green), reprojected (red), error vectors magnified."""
    panel = np.full((_H, _W, 3), _BG, np.uint8)
    by_name = {v.name: v for v in views}
    candidates = [r for r in result.used if by_name.get(r.name) is not None and by_name[r.name].image is not None]
    if not candidates:
        _text(panel, "no image kept for the overlay", (20, 40))
        return panel
    worst = max(candidates, key=lambda r: r.rms_px)
    view = by_name[worst.name]
    assert view.image is not None
    assert worst.residuals is not None
    img = view.image if view.image.ndim == 3 else cv2.cvtColor(view.image, cv2.COLOR_GRAY2BGR)
    s = _fit((img.shape[1], img.shape[0]), (_W - 20, _H - 60))
    small = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
    small = (small.astype(np.float32) * 0.6 + 100).clip(0, 255).astype(np.uint8)  # fade so marks stand out
    ox, oy = 10, 50
    panel[oy : oy + small.shape[0], ox : ox + small.shape[1]] = small
    det = view.detection.image_points.astype(np.float64)
    proj = det + worst.residuals
    for d, p in zip(det, proj, strict=True):
        pd = (int(ox + d[0] * s), int(oy + d[1] * s))
        tip = d + (p - d) * magnify
        cv2.line(panel, pd, (int(ox + tip[0] * s), int(oy + tip[1] * s)), (0, 200, 255), 1, cv2.LINE_AA)
        cv2.circle(panel, pd, 3, _GREEN, 1, cv2.LINE_AA)
        cv2.drawMarker(panel, (int(ox + p[0] * s), int(oy + p[1] * s)), _RED, cv2.MARKER_CROSS, 6, 1)
    _text(
        panel, f"Reprojection on the worst used view: {worst.name} ({worst.rms_px:.3f} px RMS)", (10, 25), 0.55, _INK, 2
    )
    _text(panel, f"o detected   + reprojected   orange = error x{magnify:g}", (10, 42), 0.42)
    return panel


def summary_panel(result: IntrinsicsResult, extra: Sequence[str] = ()) -> np.ndarray:
    panel = np.full((_H, _W, 3), _BG, np.uint8)
    i = result.intrinsics
    std = i.std
    lines = [
        f"board {result.board.describe()}",
        f"image {i.width}x{i.height}, {len(result.used)} of {len(result.views)} views used"
        + (f", board not found in {len(result.no_board)}" if result.no_board else ""),
        f"RMS reprojection error {result.rms_px:.3f} px (threshold per view {result.threshold_px:g} px)",
        "",
        f"fx {i.fx:9.3f}  +/- {std.get('fx', float('nan')):.3f} px",
        f"fy {i.fy:9.3f}  +/- {std.get('fy', float('nan')):.3f} px",
        f"cx {i.cx:9.3f}  +/- {std.get('cx', float('nan')):.3f} px",
        f"cy {i.cy:9.3f}  +/- {std.get('cy', float('nan')):.3f} px",
        f"distortion ({i.distortion_model}):",
        "  " + " ".join(f"{c:+.5f}" for c in i.distortion[:5]),
    ]
    if len(i.distortion) > 5:
        lines.append("  " + " ".join(f"{c:+.5f}" for c in i.distortion[5:]))
    lines += ["", *extra]
    bw = 220
    bh = int(bw * i.height / i.width)
    bx, by = _W - bw - 25, _H - bh - 45
    _text(panel, "Intrinsic calibration", (20, 30), 0.7, _INK, 2)
    y = 62
    for line in lines:
        _text(panel, line[:52] if y > by - 10 else line[:95], (20, y), 0.5)
        y += 24
    # The distortion as a displacement field: how far each image point moves between distorted and ideal.
    from calibration.camera_model import PinholeModel

    m = PinholeModel(i.width, i.height, i.fx, i.fy, i.cx, i.cy, i.distortion_model, tuple(i.distortion))
    gx, gy = np.meshgrid(np.linspace(0, i.width - 1, 9), np.linspace(0, i.height - 1, 7))
    pix = np.stack([gx.ravel(), gy.ravel()], axis=1)
    ideal = m.rays(pix) * np.array([i.fx, i.fy]) + np.array([i.cx, i.cy])
    shift = np.linalg.norm(ideal - pix, axis=1)
    cv2.rectangle(panel, (bx, by), (bx + bw, by + bh), _INK, 1)
    sc = bw / i.width
    for p, q in zip(pix, ideal, strict=True):
        cv2.arrowedLine(
            panel,
            (int(bx + p[0] * sc), int(by + p[1] * sc)),
            (int(bx + q[0] * sc), int(by + q[1] * sc)),
            _BLUE,
            1,
            cv2.LINE_AA,
            tipLength=0.3,
        )
    _text(panel, "distortion field (arrows: distorted", (bx, by + bh + 16), 0.38)
    _text(panel, f"-> ideal position), max {shift.max():.1f} px", (bx, by + bh + 32), 0.38)
    return panel


def write_intrinsics_report(
    result: IntrinsicsResult, views: Sequence[View], path: str | Path, extra: Sequence[str] = ()
) -> Path:
    path = Path(path)
    if not path.parent.exists():
        raise CalibrationError(f"{path}: folder {path.parent} does not exist")
    top = np.hstack([coverage_panel(result, views), error_panel(result)])
    bottom = np.hstack([overlay_panel(result, views), summary_panel(result, extra)])
    canvas = np.vstack([top, bottom])
    cv2.line(canvas, (0, _H), (2 * _W, _H), _GREY, 1)
    cv2.line(canvas, (_W, 0), (_W, 2 * _H), _GREY, 1)
    if not cv2.imwrite(str(path), canvas):
        raise CalibrationError(f"{path}: could not write the report PNG")
    return path
