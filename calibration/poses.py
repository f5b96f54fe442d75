"""The hand-eye pose file: robot poses paired with board images, for hand-eye calibration offline.

JSON (or YAML by extension)::

    {
      "format": "harmowam-edge/handeye-poses",
      "version": 1,
      "translation_unit": "m",            # or "mm"; applies to every translation below
      "tip_link": "link_6",               # optional: which robot frame the poses are of (stored in the result)
      "poses": [
        {"image": "pose_000.png", "T_base_gripper": [[r11, r12, r13, x], [...], [...], [0, 0, 0, 1]]},
        {"image": "pose_001.png", "translation": [x, y, z], "quaternion_xyzw": [qx, qy, qz, qw]},
        {"image": "pose_002.png", "joints": [q1, q2, q3, q4, q5, q6]}
      ]
    }

Each entry has an image (relative to the pose file's folder) and exactly one of: a 4x4 `T_base_gripper` (gripper
frame in the robot base frame, row-major), `translation` + `quaternion_xyzw` (the same pose, Hamilton quaternion,
x y z w order as ROS), or `joints` (radians, chain order; needs `--urdf` for forward kinematics). `harmowam-edge
calibrate handeye --port ... --save-poses FILE` writes this format with joints and the captured images.
"""

from __future__ import annotations

# ruff: noqa: N806
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from calibration.errors import PoseFileError
from calibration.geometry import make_transform, matrix_from_quat

FORMAT = "harmowam-edge/handeye-poses"
VERSION = 1


@dataclass(frozen=True)
class PoseEntry:
    image: Path
    T_base_gripper: np.ndarray | None  # None when only joints are given
    joints: tuple[float, ...] | None = None


@dataclass(frozen=True)
class PoseFile:
    path: Path
    entries: tuple[PoseEntry, ...]
    tip_link: str = ""

    @property
    def needs_kinematics(self) -> bool:
        return any(e.T_base_gripper is None for e in self.entries)


def load_pose_file(path: str | Path) -> PoseFile:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PoseFileError(f"{path}: no such pose file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PoseFileError(f"{path}: cannot read the pose file ({e.__class__.__name__})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        from harmowam_edge.bundle.fields import parse_yaml

        data = parse_yaml(text, str(path), PoseFileError)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise PoseFileError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PoseFileError(
            f'{path}: not a hand-eye pose file (expected "format": "{FORMAT}"; see docs/calibration.md)'
        )
    if data.get("version") != VERSION:
        raise PoseFileError(f"{path}: version: expected {VERSION}, got {data.get('version')!r}")
    unit = data.get("translation_unit", "m")
    if unit not in ("m", "mm"):
        raise PoseFileError(f'{path}: translation_unit: expected "m" or "mm", got {unit!r}')
    scale = 0.001 if unit == "mm" else 1.0
    poses = data.get("poses")
    if not isinstance(poses, list) or not poses:
        raise PoseFileError(f"{path}: poses: expected a non-empty list")
    entries = [_entry(path, i, p, scale) for i, p in enumerate(poses)]
    return PoseFile(path, tuple(entries), str(data.get("tip_link", "")))


def _numbers(path: Path, where: str, v: Any, n: int) -> list[float]:
    if (
        not isinstance(v, list)
        or len(v) != n
        or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) for x in v)
    ):
        raise PoseFileError(f"{path}: {where}: expected a list of {n} finite numbers, got {v!r}"[:300])
    return [float(x) for x in v]


def _entry(path: Path, i: int, p: Any, scale: float) -> PoseEntry:
    where = f"poses[{i}]"
    if not isinstance(p, dict):
        raise PoseFileError(f"{path}: {where}: expected an object")
    image = p.get("image")
    if not isinstance(image, str) or not image:
        raise PoseFileError(f"{path}: {where}.image: expected the image file name")
    img_path = (path.parent / image).resolve() if not Path(image).is_absolute() else Path(image)
    kinds = [k for k in ("T_base_gripper", "translation", "joints") if k in p]
    if len(kinds) != 1:
        raise PoseFileError(
            f"{path}: {where}: give exactly one of T_base_gripper, translation + quaternion_xyzw, "
            f"or joints (got {', '.join(kinds) or 'none'})"
        )
    if kinds[0] == "joints":
        return PoseEntry(
            img_path,
            None,
            tuple(
                _numbers(
                    path,
                    f"{where}.joints",
                    p["joints"],
                    len(p["joints"]) if isinstance(p["joints"], list) and p["joints"] else 1,
                )
            ),
        )
    if kinds[0] == "translation":
        t = _numbers(path, f"{where}.translation", p["translation"], 3)
        if "quaternion_xyzw" not in p:
            raise PoseFileError(f"{path}: {where}: translation needs quaternion_xyzw [qx, qy, qz, qw]")
        q = np.array(_numbers(path, f"{where}.quaternion_xyzw", p["quaternion_xyzw"], 4))
        if abs(np.linalg.norm(q) - 1) > 1e-3:
            raise PoseFileError(
                f"{path}: {where}.quaternion_xyzw: not a unit quaternion (norm {np.linalg.norm(q):.4f})"
            )
        return PoseEntry(img_path, make_transform(matrix_from_quat(q), np.array(t) * scale))
    rows = p["T_base_gripper"]
    if not isinstance(rows, list) or len(rows) != 4:
        raise PoseFileError(f"{path}: {where}.T_base_gripper: expected a 4x4 matrix (4 rows)")
    T = np.array([_numbers(path, f"{where}.T_base_gripper[{r}]", row, 4) for r, row in enumerate(rows)])
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0 or not np.allclose(T[3], [0, 0, 0, 1]):
        raise PoseFileError(
            f"{path}: {where}.T_base_gripper: not a rigid transform (rotation must be orthonormal, last row 0 0 0 1)"
        )
    T[:3, 3] *= scale
    return PoseEntry(img_path, T)


def write_pose_file(path: str | Path, entries: list[dict[str, Any]], tip_link: str = "") -> Path:
    """Write entries (dicts in the format above, image names relative to the file) as JSON."""
    path = Path(path)
    data = {"format": FORMAT, "version": VERSION, "translation_unit": "m", "tip_link": tip_link, "poses": entries}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path
