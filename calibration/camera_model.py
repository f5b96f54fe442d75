"""Pinhole camera models in pure numpy (no OpenCV): projection and un-projection for the distortion models the
calibration file may hold.

- ``plumb_bob``: OpenCV's radial-tangential model, coefficients (k1, k2, p1, p2, k3); also what ROS calls it.
- ``rational_polynomial``: OpenCV's 8-coefficient model (k1, k2, p1, p2, k3, k4, k5, k6).
- ``brown_conrady``, ``inverse_brown_conrady``, ``modified_brown_conrady``, ``none``: librealsense's models of
  factory intrinsics (coefficients in librealsense order k1, k2, p1, p2, k3), projected as `rs2_project_point_to_pixel`
  does.

Pixel convention: OpenCV's and librealsense's (the centre of the top-left pixel is (0, 0)).
"""

# Matrix names follow the maths (K camera matrix, R rotation, T_a_b transform).
# ruff: noqa: N802

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPENCV_MODELS = {"plumb_bob": 5, "rational_polynomial": 8}
REALSENSE_MODELS = {"brown_conrady": 5, "inverse_brown_conrady": 5, "modified_brown_conrady": 5, "none": 5}
DISTORTION_MODELS = {**OPENCV_MODELS, **REALSENSE_MODELS}


@dataclass(frozen=True)
class PinholeModel:
    """fx, fy, cx, cy in pixels and a distortion model with its coefficients."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    model: str = "plumb_bob"
    coeffs: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.model not in DISTORTION_MODELS:
            raise ValueError(f"unknown distortion model {self.model!r}, expected one of {', '.join(DISTORTION_MODELS)}")
        if len(self.coeffs) != DISTORTION_MODELS[self.model]:
            raise ValueError(
                f"distortion model {self.model} takes {DISTORTION_MODELS[self.model]} coefficients, "
                f"got {len(self.coeffs)}"
            )

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)

    def distort(self, xy: np.ndarray) -> np.ndarray:
        """Normalised undistorted (x, y) [N, 2] -> normalised distorted."""
        x, y = xy[:, 0], xy[:, 1]
        k = np.asarray(self.coeffs, dtype=np.float64)
        r2 = x * x + y * y
        if self.model == "none":
            return xy.copy()
        if self.model in ("plumb_bob", "rational_polynomial", "brown_conrady"):
            radial = 1 + k[0] * r2 + k[1] * r2**2 + k[4] * r2**3
            if self.model == "rational_polynomial":
                radial = radial / (1 + k[5] * r2 + k[6] * r2**2 + k[7] * r2**3)
            dx = x * radial + 2 * k[2] * x * y + k[3] * (r2 + 2 * x * x)
            dy = y * radial + k[2] * (r2 + 2 * y * y) + 2 * k[3] * x * y
            return np.stack([dx, dy], axis=1)
        # librealsense's inverse and modified Brown-Conrady: the tangential terms use the radially scaled point.
        radial = 1 + k[0] * r2 + k[1] * r2**2 + k[4] * r2**3
        xs, ys = x * radial, y * radial
        dx = xs + 2 * k[2] * xs * ys + k[3] * (r2 + 2 * xs * xs)
        dy = ys + 2 * k[3] * xs * ys + k[2] * (r2 + 2 * ys * ys)
        return np.stack([dx, dy], axis=1)

    def undistort(self, xy_d: np.ndarray, iterations: int = 50) -> np.ndarray:
        """Normalised distorted -> normalised undistorted, by fixed-point iteration (as OpenCV does)."""
        xy = xy_d.astype(np.float64).copy()
        for _ in range(iterations):
            err = self.distort(xy) - xy_d
            xy = xy - err
            if float(np.abs(err).max(initial=0.0)) < 1e-12:
                break
        return xy

    def project(self, points: np.ndarray) -> np.ndarray:
        """Camera-frame 3-D points [N, 3] -> pixels [N, 2]."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        xy = self.distort(p[:, :2] / p[:, 2:3])
        return np.stack([xy[:, 0] * self.fx + self.cx, xy[:, 1] * self.fy + self.cy], axis=1)

    def rays(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels [N, 2] -> normalised undistorted (x, y) [N, 2] (the ray through each pixel is (x, y, 1))."""
        uv = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        xy_d = np.stack([(uv[:, 0] - self.cx) / self.fx, (uv[:, 1] - self.cy) / self.fy], axis=1)
        return self.undistort(xy_d)


def pixel_difference(a: PinholeModel, b: PinholeModel, grid: int = 24, border: float = 0.0) -> dict[str, float]:
    """How far apart two models put the same ray, in pixels, over a grid covering a's image.

    For each grid pixel of model a, the ray a sees there is projected through model b; the distances say how much
    a point would move in the image if one model were swapped for the other (0 = same camera model).
    """
    us = np.linspace(border * a.width, (1 - border) * a.width - 1, grid)
    vs = np.linspace(border * a.height, (1 - border) * a.height - 1, grid)
    uu, vv = np.meshgrid(us, vs)
    pix = np.stack([uu.ravel(), vv.ravel()], axis=1)
    xy = a.rays(pix)
    # b may have another resolution (same sensor, other mode): compare in a's pixels. With pixel centres at
    # integer coordinates, scaling by s maps u to (u + 0.5) * s - 0.5.
    scale = np.array([a.width / b.width, a.height / b.height])

    def to_a(uv: np.ndarray) -> np.ndarray:
        return (uv + 0.5) * scale - 0.5

    pb = to_a(b.project(np.column_stack([xy, np.ones(len(xy))])))
    d = np.linalg.norm(pb - pix, axis=1)
    centre_ray = np.column_stack([a.rays(np.array([[a.cx, a.cy]])), [1.0]])
    centre = np.linalg.norm(to_a(b.project(centre_ray)) - np.array([a.cx, a.cy]), axis=1)
    sx, sy = float(scale[0]), float(scale[1])
    bcx, bcy = to_a(np.array([b.cx, b.cy]))
    return {
        "mean_px": float(d.mean()),
        "p95_px": float(np.percentile(d, 95)),
        "max_px": float(d.max()),
        "centre_px": float(centre[0]),
        "dfx_px": float(b.fx * sx - a.fx),
        "dfy_px": float(b.fy * sy - a.fy),
        "dcx_px": float(bcx - a.cx),
        "dcy_px": float(bcy - a.cy),
    }
