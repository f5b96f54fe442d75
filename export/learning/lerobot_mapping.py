"""How a LeRobot dataset's features map onto the policy: action-space names, cameras, task names, units.

Pure logic, no I/O except reading a mapping file. LeRobot stores whatever the robot reported (SO-100 arms in
degrees or a -100..100 normalised range, grippers in percent); the policy's action space is radians for
joints and metres of opening for a gripper. Nothing is guessed silently: a unit is either said (mapping file)
or assumed to be ours (rad, m) and checked, and values that cannot be in the assumed unit are refused with a
message naming the feature and the mapping key that fixes it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from export.config import ACTION_RATE_HZ
from export.errors import DatasetError
from harmowam_edge.bundle.fields import FieldReader, parse_yaml

JointUnit = Literal["rad", "deg"]
GripperUnit = Literal["m", "percent", "fraction"]
JOINT_UNITS: tuple[str, ...] = ("rad", "deg")
GRIPPER_UNITS: tuple[str, ...] = ("m", "percent", "fraction")

STATE = "observation.state"
ACTION = "action"
IMAGE_PREFIX = "observation.images."

# Plausibility bounds of the units (what no real reading in that unit exceeds).
_MAX_RAD = 2 * math.pi + 0.1  # more than a full turn either way: not radians
_MAX_DEG = 720.0
_GRIPPER_BOUNDS: dict[str, tuple[float, float]] = {
    "m": (-0.02, 0.3),
    "percent": (-10.0, 110.0),
    "fraction": (-0.1, 1.1),
}

_FIELDS = (
    "state",
    "action",
    "joints",
    "cameras",
    "tasks",
    "joint_unit",
    "gripper",
    "gripper_unit",
    "gripper_open_m",
    "action_rate_hz",
    "episodes",
    "cache",
    "cache_dir",
)


@dataclass(frozen=True)
class LeRobotMapping:
    """Which LeRobot features feed the policy and in which units; every field has a documented default."""

    state: str = STATE  # feature holding the measured joint positions
    action: str = ACTION  # feature holding the commanded targets
    joints: dict[str, str] = field(default_factory=dict)  # LeRobot joint name -> action-space name
    cameras: dict[str, str] = field(default_factory=dict)  # feature key -> camera name (given: only these, in order)
    tasks: dict[str, str] = field(default_factory=dict)  # task string -> task name (default: its slug)
    joint_unit: JointUnit | None = None  # None: radians assumed, checked
    gripper: str | None = None  # LeRobot name of the gripper dimension (None: the one named *gripper*)
    gripper_unit: GripperUnit | None = None  # None: metres assumed, checked
    gripper_open_m: float = 0.08  # opening at 100 % / 1.0 (the reference arm's gripper)
    action_rate_hz: float = ACTION_RATE_HZ  # the policy's chunk rate: the dataset's fps must be >= half of it
    episodes: tuple[int, ...] | None = None  # only these episode indices (None: all)
    cache: bool = True  # keep decoded frames on disk (memory-mapped on the next read)
    cache_dir: Path | None = None  # None: $XDG_CACHE_HOME/harmowam-edge/lerobot-frames

    def __post_init__(self) -> None:
        for name in ("state", "action"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v:
                raise DatasetError(f"mapping: {name}: expected a feature key, got {v!r}")
        if self.joint_unit is not None and self.joint_unit not in JOINT_UNITS:
            raise DatasetError(
                f"mapping: joint_unit: expected one of {', '.join(JOINT_UNITS)}, got {self.joint_unit!r}"
            )
        if self.gripper_unit is not None and self.gripper_unit not in GRIPPER_UNITS:
            raise DatasetError(
                f"mapping: gripper_unit: expected one of {', '.join(GRIPPER_UNITS)}, got {self.gripper_unit!r}"
            )
        if not (math.isfinite(self.gripper_open_m) and self.gripper_open_m > 0):
            raise DatasetError(f"mapping: gripper_open_m: expected a number > 0, got {self.gripper_open_m!r}")
        if not (math.isfinite(self.action_rate_hz) and self.action_rate_hz > 0):
            raise DatasetError(f"mapping: action_rate_hz: expected a number > 0, got {self.action_rate_hz!r}")
        if self.episodes is not None and any(isinstance(e, bool) or not isinstance(e, int) for e in self.episodes):
            raise DatasetError(f"mapping: episodes: expected episode indices, got {self.episodes!r}")

    @classmethod
    def from_file(cls, path: Path) -> LeRobotMapping:
        """A YAML (or JSON) file with any of the fields above; an unknown key is an error, never ignored."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise DatasetError(f"{path}: mapping file not found") from None
        raw = parse_yaml(text, str(path), DatasetError)  # a syntax error as one line: file:line:col
        return cls.from_dict(raw if raw is not None else {}, str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "mapping") -> LeRobotMapping:
        r = FieldReader(source, DatasetError)
        d = r.obj(raw, "")
        r.only(d, "", _FIELDS)
        kw: dict[str, Any] = {}
        for key in ("state", "action"):
            if key in d:
                kw[key] = r.str_(d, key, "")
        for key in ("joints", "cameras", "tasks"):
            if key in d:
                kw[key] = r.str_map(d, key, "")
        if "joint_unit" in d:
            kw["joint_unit"] = r.choice(d, "joint_unit", "", JOINT_UNITS)
        if "gripper" in d:
            kw["gripper"] = r.str_(d, "gripper", "")
        if "gripper_unit" in d:
            kw["gripper_unit"] = r.choice(d, "gripper_unit", "", GRIPPER_UNITS)
        for key in ("gripper_open_m", "action_rate_hz"):
            if key in d:
                kw[key] = r.float_(d, key, "", positive=True)
        if "episodes" in d:
            eps = r.list_(d, "episodes", "")
            if any(isinstance(e, bool) or not isinstance(e, int) or e < 0 for e in eps):
                raise r.fail("episodes", "a list of episode indices (integers >= 0)", eps)
            kw["episodes"] = tuple(eps)
        if "cache" in d:
            kw["cache"] = r.bool_(d, "cache", "")
        if "cache_dir" in d:
            kw["cache_dir"] = Path(r.str_(d, "cache_dir", ""))
        try:
            return cls(**kw)
        except DatasetError as e:
            raise DatasetError(f"{source}: {str(e).removeprefix('mapping: ')}") from None


def slug(task: str) -> str:
    """A task string as a bundle task name: "Grab the black cube." -> "grab_the_black_cube"."""
    s = re.sub(r"[^a-z0-9]+", "_", task.strip().lower()).strip("_")
    return s or "task"


def task_name(task: str, mapping: LeRobotMapping) -> str:
    return mapping.tasks.get(task) or slug(task)


def joint_name(lerobot_name: str, mapping: LeRobotMapping) -> str:
    """LeRobot >= 0.2 names motors `shoulder_pan.pos`; the action space has no unit suffix."""
    if lerobot_name in mapping.joints:
        return mapping.joints[lerobot_name]
    return lerobot_name.removesuffix(".pos")


def camera_name(key: str, mapping: LeRobotMapping) -> str:
    return mapping.cameras.get(key) or key.removeprefix(IMAGE_PREFIX).replace(".", "_")


def gripper_index(names: tuple[str, ...], mapping: LeRobotMapping, where: str) -> int | None:
    """Which dimension is the gripper: the mapping's, else the one whose name contains "gripper"."""
    if mapping.gripper is not None:
        if mapping.gripper not in names:
            raise DatasetError(f"{where}: mapping gripper {mapping.gripper!r} is not one of its names {list(names)}")
        return names.index(mapping.gripper)
    hits = [i for i, n in enumerate(names) if "gripper" in n.lower()]
    if len(hits) > 1:
        raise DatasetError(
            f"{where}: several dimensions look like a gripper ({', '.join(names[i] for i in hits)}); "
            "say which one with the mapping's `gripper`"
        )
    return hits[0] if hits else None


def to_action_units(values: np.ndarray, names: tuple[str, ...], mapping: LeRobotMapping, where: str) -> np.ndarray:
    """[T, A] values in the dataset's units -> float32 in the action space's (rad, gripper opening in m).

    `where` names the file and feature in every refusal.
    """
    out = np.asarray(values, dtype=np.float64).copy()
    if out.size and not np.isfinite(out).all():
        t, a = np.argwhere(~np.isfinite(out))[0]
        raise DatasetError(f"{where}: non-finite value {out[t, a]} at frame {t}, {names[a]}")
    g = gripper_index(names, mapping, where)
    joints = [i for i in range(len(names)) if i != g]
    if joints and out.size:
        peak = float(np.abs(out[:, joints]).max())
        unit = mapping.joint_unit or "rad"
        if unit == "rad" and peak > _MAX_RAD:
            worst = names[joints[int(np.abs(out[:, joints]).max(axis=0).argmax())]]
            raise DatasetError(
                f"{where}: {worst} reaches {peak:.3g}, more than a full turn in radians (the unit assumed); "
                "if the dataset is in degrees set `joint_unit: deg` in the mapping file. LeRobot's "
                "-100..100 normalised range cannot be converted without the arm's calibration: record in degrees"
            )
        if unit == "deg" and peak > _MAX_DEG:
            raise DatasetError(f"{where}: joints reach {peak:.3g} degrees, more than two turns: not degrees")
        if unit == "deg":
            out[:, joints] = np.deg2rad(out[:, joints])
    if g is not None and out.size:
        gunit = mapping.gripper_unit or "m"
        lo, hi = _GRIPPER_BOUNDS[gunit]
        gmin, gmax = float(out[:, g].min()), float(out[:, g].max())
        if gmin < lo or gmax > hi:
            hint = {"m": "percent (0..100) or fraction (0..1)", "percent": "m or fraction", "fraction": "m or percent"}
            assumed = " (the unit assumed)" if mapping.gripper_unit is None else ""
            raise DatasetError(
                f"{where}: {names[g]} spans {gmin:.3g}..{gmax:.3g}, outside {lo:g}..{hi:g} for gripper_unit "
                f"{gunit!r}{assumed}; set `gripper_unit` "
                f"({hint[gunit]}) and `gripper_open_m` in the mapping file"
            )
        if gunit == "percent":
            out[:, g] = out[:, g] / 100.0 * mapping.gripper_open_m
        elif gunit == "fraction":
            out[:, g] = out[:, g] * mapping.gripper_open_m
    return out.astype(np.float32)


def units_note(mapping: LeRobotMapping) -> str:
    """One line saying which units were assumed or given (the --check output and the episode meta)."""
    j = mapping.joint_unit or "rad (assumed)"
    g = mapping.gripper_unit or "m (assumed)"
    extra = f", open = {mapping.gripper_open_m:g} m" if mapping.gripper_unit in ("percent", "fraction") else ""
    return f"joints {j}, gripper {g}{extra}"


def cast_mapping(m: LeRobotMapping | Mapping[str, Any] | str | Path | None) -> LeRobotMapping:
    """A mapping, a dict of its fields, or the path of a mapping file (None: every default)."""
    if m is None:
        return LeRobotMapping()
    if isinstance(m, LeRobotMapping):
        return m
    if isinstance(m, (str, Path)):
        return LeRobotMapping.from_file(Path(m))
    return LeRobotMapping.from_dict(dict(m))


__all__ = [
    "GRIPPER_UNITS",
    "JOINT_UNITS",
    "GripperUnit",
    "JointUnit",
    "LeRobotMapping",
    "camera_name",
    "cast_mapping",
    "joint_name",
    "slug",
    "task_name",
    "to_action_units",
    "units_note",
]
