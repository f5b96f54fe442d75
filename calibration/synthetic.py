"""Synthetic camera views of a board: real images rendered through a known pinhole + distortion model.

Used by the tests and the accuracy bench, so the real corner detectors run on real pixels whose ground truth is
known. Each output pixel is traced back through the distortion model onto the board plane (supersampled, then
area-averaged), then blurred a little like a lens and given Gaussian pixel noise.
"""

# Matrix names follow the maths (K camera matrix, R rotation, T_a_b transform).
# ruff: noqa: N802, N803, N806

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from calibration.boards import BoardSpec, layout, rasterize
from calibration.geometry import make_transform, rodrigues


@dataclass(frozen=True)
class Camera:
    """A ground-truth camera: OpenCV pinhole K and distortion coefficients (plumb-bob or rational)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    dist: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


# A small wide-ish camera with visible barrel distortion, like a RealSense colour stream scaled down.
DEFAULT_CAMERA = Camera(640, 480, 520.0, 518.0, 324.5, 236.0, (-0.12, 0.09, 0.0007, -0.0005, -0.02))


@lru_cache(maxsize=4)
def _rays(cam: Camera, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised undistorted ray directions (x, y) of every supersampled pixel centre."""
    s = supersample
    u = (np.arange(cam.width * s, dtype=np.float64) + 0.5) / s - 0.5
    v = (np.arange(cam.height * s, dtype=np.float64) + 0.5) / s - 0.5
    uu, vv = np.meshgrid(u, v)
    pts = np.stack([uu.ravel(), vv.ravel()], axis=1).reshape(-1, 1, 2)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-12)
    und = cv2.undistortPointsIter(pts, cam.K, np.asarray(cam.dist, dtype=np.float64), np.eye(3), np.eye(3), criteria)
    und = und.reshape(cam.height * s, cam.width * s, 2)
    return und[..., 0].copy(), und[..., 1].copy()


@lru_cache(maxsize=4)
def _texture(spec: BoardSpec, px_per_m: float) -> np.ndarray:
    return rasterize(layout(spec), px_per_m)


def render_view(
    spec: BoardSpec,
    cam: Camera,
    T_cam_board: np.ndarray,
    *,
    noise_sigma: float = 1.5,
    blur_sigma: float = 0.6,
    rng: np.random.Generator | None = None,
    supersample: int = 3,
    px_per_m: float = 8000.0,
    background: int = 110,
) -> np.ndarray:
    """A grey uint8 [H, W] image of the board (with its white margin) at pose `T_cam_board` (board -> camera)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    x, y = _rays(cam, supersample)
    R, t = T_cam_board[:3, :3], T_cam_board[:3, 3]
    H = np.column_stack([R[:, 0], R[:, 1], t])  # board (x, y, 1) -> camera-normalised, homogeneous
    Hinv = np.linalg.inv(H)
    bx = Hinv[0, 0] * x + Hinv[0, 1] * y + Hinv[0, 2]
    by = Hinv[1, 0] * x + Hinv[1, 1] * y + Hinv[1, 2]
    bw = Hinv[2, 0] * x + Hinv[2, 1] * y + Hinv[2, 2]
    behind = bw <= 1e-9  # rays that meet the board plane behind the camera
    bw = np.where(behind, 1.0, bw)
    lay = layout(spec)
    page = lay.board_to_page(np.zeros(2))
    tex = _texture(spec, px_per_m)
    mapx = ((bx / bw + page[0]) * px_per_m - 0.5).astype(np.float32)
    mapy = ((by / bw + page[1]) * px_per_m - 0.5).astype(np.float32)
    mapx[behind] = -1e6
    img = cv2.remap(tex, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=background)
    img = cv2.resize(img.astype(np.float32), (cam.width, cam.height), interpolation=cv2.INTER_AREA)
    # Print is not pure black on white: 25..230 like paper under room light.
    img = 25.0 + img * (205.0 / 255.0)
    if blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur_sigma)
    if noise_sigma > 0:
        img = img + rng.normal(0.0, noise_sigma, img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def project(
    spec: BoardSpec,
    cam: Camera,
    T_cam_board: np.ndarray,
) -> np.ndarray:
    """True image positions [N, 2] of the board's corners at a pose (pixel centres at integer coordinates)."""
    rvec = rodrigues(T_cam_board[:3, :3])
    pts, _ = cv2.projectPoints(
        spec.object_points().astype(np.float64), rvec, T_cam_board[:3, 3], cam.K, np.asarray(cam.dist, np.float64)
    )
    return pts.reshape(-1, 2)


def board_centre(spec: BoardSpec) -> np.ndarray:
    """Centre of the board's squares area in the board frame, m."""
    w, h = spec.size_m
    ox, oy = spec.origin_in_squares_area()
    return np.array([w / 2 - ox, h / 2 - oy, 0.0])


def sample_poses(
    spec: BoardSpec,
    cam: Camera,
    n: int,
    rng: np.random.Generator,
    *,
    distance: tuple[float, float] | None = None,
    max_tilt_deg: float = 40.0,
    margin_px: float = 12.0,
) -> list[np.ndarray]:
    """`n` board poses T_cam_board that keep every corner (and a margin) in the image, spread over the image.

    Views are pushed towards a different region of the image each (a 3x3 grid of targets), with tilts about both
    board axes, as a person following guided capture would.
    """
    w, h = spec.size_m
    diag = math.hypot(w, h)
    if distance is None:
        # Board covering roughly 40-70% of the image width.
        d0 = cam.fx * diag / (0.75 * cam.width)
        distance = (0.8 * d0, 1.35 * d0)
    centre = board_centre(spec)
    targets = [(u, v) for v in (0.3, 0.5, 0.7) for u in (0.3, 0.5, 0.7)]
    poses: list[np.ndarray] = []
    tries = 0
    while len(poses) < n:
        tries += 1
        if tries > 2000 * max(n, 1):
            raise RuntimeError("could not place the board in view; widen the camera or shrink the board")
        tu, tv = targets[len(poses) % len(targets)]
        tu += rng.uniform(-0.1, 0.1)
        tv += rng.uniform(-0.1, 0.1)
        d = rng.uniform(*distance)
        tilt = np.radians(rng.uniform(-max_tilt_deg, max_tilt_deg, size=2))
        spin = np.radians(rng.uniform(-25, 25))
        R = rodrigues_to_matrix(np.array([tilt[0], tilt[1], spin]))
        # Place the board centre on the ray through the target pixel, at distance d.
        ray = np.array([(tu * cam.width - cam.cx) / cam.fx, (tv * cam.height - cam.cy) / cam.fy, 1.0])
        t = ray / np.linalg.norm(ray) * d - R @ centre
        T = make_transform(R, t)
        uv = project(spec, cam, T)
        z = (R @ spec.object_points().T.astype(np.float64)).T[:, 2] + t[2]
        corners = _outline_points(spec)
        outline = (R @ corners.T).T + t
        if np.any(z < 0.05) or np.any(outline[:, 2] < 0.05):
            continue
        ok = bool(
            (uv[:, 0] > margin_px).all()
            and (uv[:, 0] < cam.width - 1 - margin_px).all()
            and (uv[:, 1] > margin_px).all()
            and (uv[:, 1] < cam.height - 1 - margin_px).all()
        )
        # The board's white margin must be in view too, or a chessboard detector may fail at the edge.
        ok = ok and _outline_in_view(outline, cam)
        if ok:
            poses.append(T)
    return poses


def _outline_points(spec: BoardSpec) -> np.ndarray:
    """The squares area's four outer corners grown by half a square of margin, in the board frame."""
    w, h = spec.size_m
    ox, oy = spec.origin_in_squares_area()
    m = spec.square * 0.5
    return np.array(
        [[-ox - m, -oy - m, 0], [w - ox + m, -oy - m, 0], [w - ox + m, h - oy + m, 0], [-ox - m, h - oy + m, 0]],
        dtype=np.float64,
    )


def _outline_in_view(outline_cam: np.ndarray, cam: Camera) -> bool:
    uv, _ = cv2.projectPoints(outline_cam, np.zeros(3), np.zeros(3), cam.K, np.asarray(cam.dist, np.float64))
    uv = uv.reshape(-1, 2)
    return bool(((uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cam.height)).all())


def rodrigues_to_matrix(rvec: np.ndarray) -> np.ndarray:
    R, _ = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3, 1))
    return np.asarray(R)
