"""Rigid transforms in pure numpy (no OpenCV): 4x4 matrices, axis-angle, quaternions, rotation averaging.

Naming: ``T_a_b`` maps points in frame b to frame a (``p_a = T_a_b @ p_b``), so ``T_a_b @ T_b_c = T_a_c``.
"""

# Matrix names follow the maths (K camera matrix, R rotation, T_a_b transform).
# ruff: noqa: N803, N806

from __future__ import annotations

import math

import numpy as np


def make_transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.asarray(t, dtype=np.float64).ravel()
    return T


def invert(T: np.ndarray) -> np.ndarray:
    R, t = T[:3, :3], T[:3, 3]
    return make_transform(R.T, -R.T @ t)


def exp_so3(rvec: np.ndarray) -> np.ndarray:
    """Axis-angle vector (radians) -> rotation matrix (Rodrigues' formula)."""
    r = np.asarray(rvec, dtype=np.float64).ravel()
    theta = float(np.linalg.norm(r))
    if theta < 1e-12:
        return np.eye(3)
    k = r / theta
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * K + (1 - math.cos(theta)) * (K @ K)


def rodrigues(R: np.ndarray) -> np.ndarray:
    """Rotation matrix -> axis-angle vector (radians), robust near 0 and pi."""
    q = quat_from_matrix(R)  # x, y, z, w with w >= 0
    s = float(np.linalg.norm(q[:3]))
    if s < 1e-12:
        return np.zeros(3)
    angle = 2.0 * math.atan2(s, float(q[3]))
    return q[:3] / s * angle


def rotation_angle(R: np.ndarray) -> float:
    """Angle of a rotation, radians in [0, pi]."""
    return float(np.linalg.norm(rodrigues(R)))


def quat_from_matrix(R: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion (x, y, z, w), w >= 0."""
    m = np.asarray(R, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        q = np.array([(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = np.array([0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s])
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = np.array([(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s])
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = np.array([(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s])
    q = q / np.linalg.norm(q)
    return -q if q[3] < 0 else q


def matrix_from_quat(q: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> rotation matrix. The quaternion is normalised first."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def project_to_so3(M: np.ndarray) -> np.ndarray:
    """The rotation matrix nearest to M (Frobenius norm)."""
    U, _, Vt = np.linalg.svd(M)
    R = U @ Vt
    if np.linalg.det(R) < 0:
        U[:, -1] *= -1
        R = U @ Vt
    return R


def mean_transform(Ts: list[np.ndarray]) -> np.ndarray:
    """Chordal mean of the rotations and arithmetic mean of the translations."""
    R = project_to_so3(sum((T[:3, :3] for T in Ts), np.zeros((3, 3))))
    t = np.mean([T[:3, 3] for T in Ts], axis=0)
    return make_transform(R, t)


def transform_distance(A: np.ndarray, B: np.ndarray) -> tuple[float, float]:
    """(rotation difference in radians, translation difference in metres) between two transforms."""
    return rotation_angle(A[:3, :3].T @ B[:3, :3]), float(np.linalg.norm(A[:3, 3] - B[:3, 3]))
