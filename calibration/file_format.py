"""The calibration file: plain JSON (or YAML), written by `calibrate`, read anywhere without OpenCV.

This module imports neither OpenCV nor anything heavy (a test checks it), so the runtime, a ROS node or a notebook
can read a calibration with `load_calibration(path)` or even `json.load`. Layout (schema_version 1)::

    {
      "schema": "harmowam-edge/camera-calibration", "schema_version": 1,
      "created_utc": "2026-01-01T12:00:00Z", "tool": "harmowam-edge 0.1.0, OpenCV 4.x",
      "camera": {"serial": "123456789012", "stream": "color", "name": "wrist", "model": "D435"},
      "image_size": {"width": 640, "height": 480},
      "intrinsics": {"fx": ..., "fy": ..., "cx": ..., "cy": ..., "camera_matrix": [[...], [...], [...]],
                     "distortion_model": "plumb_bob", "distortion": [k1, k2, p1, p2, k3],
                     "std": {"fx": ..., ...}},
      "method": {"board": "chessboard:9x6:0.025", "source": "images:/path", "solver": "...", "views_used": 14},
      "residuals": {"rms_px": 0.21, "max_view_rms_px": 0.4, "threshold_px": 1.0,
                    "views": [{"name": "img_000.png", "rms_px": 0.2, "used": true, "dropped_because": ""}]},
      "factory": null | {"fx": ..., ..., "distortion_model": "inverse_brown_conrady", "distortion": [...],
                         "difference": {"mean_px": ..., "max_px": ..., ...}},
      "extrinsics": null | {"mode": "eye-in-hand" | "eye-to-hand", "parent_frame": "gripper" | "base",
                            "parent_link": "link_6", "T_parent_camera": [[4x4]], "translation_m": [...],
                            "quaternion_xyzw": [...], "method": "park", "methods": {...},
                            "residuals": {...}, "board_pose": {"frame": "base" | "gripper", "T": [[4x4]]},
                            "poses": 12, "created_utc": "..."}
    }

Coordinates follow OpenCV: pixel centres at integer coordinates, camera frame x right, y down, z forward
(the optical frame). `T_parent_camera` maps camera-frame points into the parent frame, metres.
"""

# Matrix names follow the maths (K camera matrix, R rotation, T_a_b transform).
# ruff: noqa: N806

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from calibration.camera_model import DISTORTION_MODELS, PinholeModel
from calibration.errors import CalibrationFileError, CameraMismatchError
from calibration.geometry import quat_from_matrix
from harmowam_edge.bundle.fields import FieldReader
from harmowam_edge.bundle.fields import join as _join

SCHEMA = "harmowam-edge/camera-calibration"
SCHEMA_VERSION = 1
EXTRINSIC_MODES = {"eye-in-hand": "gripper", "eye-to-hand": "base"}


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CameraId:
    """Which camera and stream a calibration belongs to. An empty serial means "not a RealSense / unknown"."""

    serial: str = ""
    stream: str = "color"
    name: str = ""
    model: str = ""

    def describe(self) -> str:
        who = f"serial {self.serial}" if self.serial else "unknown serial"
        return f"{who}, stream {self.stream}"


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str
    distortion: tuple[float, ...]
    std: dict[str, float] = field(default_factory=dict)  # 1-sigma uncertainty of each parameter, when known

    @property
    def camera_matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def model(self) -> PinholeModel:
        return PinholeModel(
            self.width, self.height, self.fx, self.fy, self.cx, self.cy, self.distortion_model, tuple(self.distortion)
        )


@dataclass(frozen=True)
class Extrinsics:
    """Where the camera is: in the gripper frame (eye-in-hand) or in the robot base frame (eye-to-hand)."""

    mode: str  # eye-in-hand | eye-to-hand
    T_parent_camera: np.ndarray  # 4x4, camera optical frame -> parent frame
    method: str  # the hand-eye solver whose result this is
    parent_link: str = ""  # URDF link (or pose-file frame) the parent frame is
    methods: dict[str, Any] = field(default_factory=dict)  # every solver's result and its disagreement
    residuals: dict[str, Any] = field(default_factory=dict)
    board_pose: np.ndarray | None = None  # T_<base|gripper>_board seen during calibration (for drift checks)
    poses: int = 0
    created_utc: str = ""

    @property
    def parent_frame(self) -> str:
        return EXTRINSIC_MODES[self.mode]

    @property
    def board_frame(self) -> str:
        """The frame the board stays fixed in while calibrating: the base (eye-in-hand) or the gripper."""
        return "base" if self.mode == "eye-in-hand" else "gripper"


@dataclass(frozen=True)
class CameraCalibration:
    camera: CameraId
    intrinsics: Intrinsics
    method: dict[str, Any] = field(default_factory=dict)
    residuals: dict[str, Any] = field(default_factory=dict)
    factory: dict[str, Any] | None = None
    extrinsics: Extrinsics | None = None
    created_utc: str = field(default_factory=utc_now)
    tool: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def board(self) -> str:
        return str(self.method.get("board", ""))

    def with_extrinsics(self, extrinsics: Extrinsics) -> CameraCalibration:
        return replace(self, extrinsics=extrinsics)

    def check_camera(
        self, serial: str | None, stream: str | None, size: tuple[int, int] | None, source: str = ""
    ) -> None:
        """Refuse to use this calibration for another camera: serial, stream or image size differ.

        A None argument is not checked (e.g. an image directory has no serial). The message gives both sides.
        """
        where = f"{source}: " if source else ""
        ours = f"{self.camera.describe()}, {self.intrinsics.width}x{self.intrinsics.height}"
        if serial and self.camera.serial and serial != self.camera.serial:
            raise CameraMismatchError(
                f"{where}calibration is for camera serial {self.camera.serial} but the camera in "
                f"use is serial {serial} (calibration: {ours}); calibrate this camera"
            )
        if stream and self.camera.stream and stream != self.camera.stream:
            raise CameraMismatchError(
                f"{where}calibration is for the {self.camera.stream} stream but the stream in use "
                f"is {stream} (calibration: {ours})"
            )
        if size is not None and tuple(size) != self.intrinsics.size:
            raise CameraMismatchError(
                f"{where}calibration is for {self.intrinsics.width}x{self.intrinsics.height} "
                f"images but the images are {size[0]}x{size[1]} (calibration: {ours}); "
                "intrinsics change with resolution: calibrate at the resolution you run"
            )

    # -- (de)serialisation ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        i = self.intrinsics
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "schema_version": self.schema_version,
            "created_utc": self.created_utc,
            "tool": self.tool,
            "camera": {
                "serial": self.camera.serial,
                "stream": self.camera.stream,
                "name": self.camera.name,
                "model": self.camera.model,
            },
            "image_size": {"width": i.width, "height": i.height},
            "intrinsics": {
                "fx": i.fx,
                "fy": i.fy,
                "cx": i.cx,
                "cy": i.cy,
                "camera_matrix": i.camera_matrix.tolist(),
                "distortion_model": i.distortion_model,
                "distortion": list(i.distortion),
                "std": dict(i.std),
            },
            "method": _jsonable(self.method),
            "residuals": _jsonable(self.residuals),
            "factory": _jsonable(self.factory),
            "extrinsics": None,
        }
        e = self.extrinsics
        if e is not None:
            out["extrinsics"] = {
                "mode": e.mode,
                "parent_frame": e.parent_frame,
                "parent_link": e.parent_link,
                "T_parent_camera": np.asarray(e.T_parent_camera).tolist(),
                "translation_m": np.asarray(e.T_parent_camera)[:3, 3].tolist(),
                "quaternion_xyzw": quat_from_matrix(np.asarray(e.T_parent_camera)[:3, :3]).tolist(),
                "method": e.method,
                "methods": _jsonable(e.methods),
                "residuals": _jsonable(e.residuals),
                "board_pose": None
                if e.board_pose is None
                else {"frame": e.board_frame, "T": np.asarray(e.board_pose).tolist()},
                "poses": e.poses,
                "created_utc": e.created_utc,
            }
        return out

    @classmethod
    def from_dict(cls, d: Any, source: str = "calibration") -> CameraCalibration:
        r = _Reader(source)
        d = r.obj(d, "")
        if d.get("schema") != SCHEMA:
            raise CalibrationFileError(
                f"{source}: not a harmowam-edge camera calibration (schema field is "
                f"{d.get('schema')!r}, expected {SCHEMA!r})"
            )
        version = r.int_(d, "schema_version", "")
        if version > SCHEMA_VERSION or version < 1:
            raise CalibrationFileError(
                f"{source}: schema_version {version} is not supported (this tool reads "
                f"1..{SCHEMA_VERSION}); update harmowam-edge"
            )
        cam = r.obj(r.get(d, "camera", ""), "camera")
        size = r.obj(r.get(d, "image_size", ""), "image_size")
        width, height = r.int_(size, "width", "image_size", 1), r.int_(size, "height", "image_size", 1)
        intr = r.obj(r.get(d, "intrinsics", ""), "intrinsics")
        model = r.str_(intr, "distortion_model", "intrinsics")
        if model not in DISTORTION_MODELS:
            raise r.fail("intrinsics.distortion_model", "one of " + ", ".join(DISTORTION_MODELS), model)
        coeffs = r.floats(intr, "distortion", "intrinsics", DISTORTION_MODELS[model])
        std_raw = intr.get("std") or {}
        intrinsics = Intrinsics(
            width,
            height,
            r.float_(intr, "fx", "intrinsics", positive=True),
            r.float_(intr, "fy", "intrinsics", positive=True),
            r.float_(intr, "cx", "intrinsics"),
            r.float_(intr, "cy", "intrinsics"),
            model,
            tuple(coeffs),
            {str(k): float(v) for k, v in r.obj(std_raw, "intrinsics.std").items()},
        )
        extrinsics = None
        e = d.get("extrinsics")
        if e is not None:
            e = r.obj(e, "extrinsics")
            mode = r.str_(e, "mode", "extrinsics")
            if mode not in EXTRINSIC_MODES:
                raise r.fail("extrinsics.mode", "eye-in-hand or eye-to-hand", mode)
            board_pose = None
            if e.get("board_pose") is not None:
                board_pose = r.transform(r.obj(e["board_pose"], "extrinsics.board_pose"), "T", "extrinsics.board_pose")
            extrinsics = Extrinsics(
                mode=mode,
                T_parent_camera=r.transform(e, "T_parent_camera", "extrinsics"),
                method=r.str_(e, "method", "extrinsics"),
                parent_link=str(e.get("parent_link", "")),
                methods=dict(r.obj(e.get("methods") or {}, "extrinsics.methods")),
                residuals=dict(r.obj(e.get("residuals") or {}, "extrinsics.residuals")),
                board_pose=board_pose,
                poses=int(e.get("poses", 0)),
                created_utc=str(e.get("created_utc", "")),
            )
        factory = d.get("factory")
        return cls(
            camera=CameraId(
                str(cam.get("serial", "")),
                str(cam.get("stream", "color")),
                str(cam.get("name", "")),
                str(cam.get("model", "")),
            ),
            intrinsics=intrinsics,
            method=dict(r.obj(d.get("method") or {}, "method")),
            residuals=dict(r.obj(d.get("residuals") or {}, "residuals")),
            factory=None if factory is None else dict(r.obj(factory, "factory")),
            extrinsics=extrinsics,
            created_utc=str(d.get("created_utc", "")),
            tool=str(d.get("tool", "")),
            schema_version=version,
        )


def save_calibration(calib: CameraCalibration, path: str | Path) -> Path:
    """Write atomically (temp file + rename): a crash never leaves a half-written calibration. YAML for .yaml/.yml."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise CalibrationFileError(f"{path}: folder {path.parent} does not exist")
    data = calib.to_dict()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(data, sort_keys=False)
    else:
        text = json.dumps(data, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_calibration(path: str | Path) -> CameraCalibration:
    """Read a calibration file (JSON, or YAML by extension); errors name the file and the field."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CalibrationFileError(f"{path}: no such calibration file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise CalibrationFileError(f"{path}: cannot read the calibration file ({e.__class__.__name__})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        from harmowam_edge.bundle.fields import parse_yaml

        data = parse_yaml(text, str(path), CalibrationFileError)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise CalibrationFileError(f"{path}: not valid JSON ({e})") from None
    return CameraCalibration.from_dict(data, source=str(path))


def _jsonable(x: Any) -> Any:
    if x is None or isinstance(x, (str, bool, int)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return str(x)


class _Reader(FieldReader):
    """The project's field reader (errors name the file and field) plus rigid transforms."""

    def __init__(self, source: str) -> None:
        super().__init__(source, CalibrationFileError)

    def transform(self, d: Mapping[str, Any], key: str, path: str) -> np.ndarray:
        v = self.get(d, key, path)
        where = _join(path, key)
        try:
            T = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.fail(where, "a 4x4 matrix", v) from None
        if T.shape != (4, 4) or not np.isfinite(T).all():
            raise self.fail(where, "a 4x4 matrix of finite numbers", v)
        R = T[:3, :3]
        if (
            not np.allclose(R @ R.T, np.eye(3), atol=1e-5)
            or np.linalg.det(R) < 0
            or not np.allclose(T[3], [0, 0, 0, 1])
        ):
            raise self.fail(where, "a rigid transform (orthonormal rotation, last row 0 0 0 1)", v)
        return T
