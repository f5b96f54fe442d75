"""LeRobot-compatible calibration and the tick ↔ radian (gripper: tick ↔ metre) maps. Pure except load/save.

LeRobot keeps one JSON per arm (`~/.cache/huggingface/lerobot/calibration/robots/<type>/<id>.json`):

    {"shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -1470, "range_min": 758, "range_max": 3292}, ...}

`homing_offset` is what sits in the servo's Homing_Offset register (Feetech: present = actual - offset;
Dynamixel: present = actual + offset); `range_min`/`range_max` are present-position ticks the joint reached
while calibrating. Joints map as LeRobot's degrees mode does, 0 at mid-range: rad = s·(ticks - mid)·2π/(res-1)
with s = -1 for drive_mode 1 (LeRobot's degrees mode ignores drive_mode; its range modes flip, as we do). The
gripper maps range_min..range_max onto 0..opening (m), reversed for drive_mode 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_bridge.servo_bus.errors import CalibrationFileError

_KEYS = ("id", "drive_mode", "homing_offset", "range_min", "range_max")


@dataclass(frozen=True)
class MotorCalibration:
    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int

    def to_dict(self) -> dict[str, int]:
        return {k: int(getattr(self, k)) for k in _KEYS}


def load_calibration(path: str | Path) -> dict[str, MotorCalibration]:
    """Read LeRobot's per-arm calibration JSON; every error names the file and the motor field."""
    p = Path(path)
    try:
        data: Any = json.loads(p.read_text())
    except FileNotFoundError:
        raise CalibrationFileError(f"{p}: calibration file not found") from None
    except (OSError, ValueError) as e:
        raise CalibrationFileError(f"{p}: not a readable JSON calibration file ({e})") from None
    return calibration_from_dict(data, str(p))


def calibration_from_dict(data: Any, source: str) -> dict[str, MotorCalibration]:
    if not isinstance(data, dict) or not data:
        raise CalibrationFileError(f"{source}: expected an object of motors (LeRobot's calibration format)")
    out: dict[str, MotorCalibration] = {}
    for name, m in data.items():
        if not isinstance(m, dict):
            raise CalibrationFileError(f"{source}: {name}: expected an object with {', '.join(_KEYS)}")
        vals = {}
        for k in _KEYS:
            v = m.get(k)
            if isinstance(v, bool) or not isinstance(v, int):
                raise CalibrationFileError(f"{source}: {name}.{k}: expected an integer, got {v!r}")
            vals[k] = v
        if vals["drive_mode"] not in (0, 1):
            raise CalibrationFileError(f"{source}: {name}.drive_mode: expected 0 or 1, got {vals['drive_mode']}")
        if not vals["range_min"] < vals["range_max"]:
            raise CalibrationFileError(
                f"{source}: {name}.range_max: expected more than range_min ({vals['range_min']}), "
                f"got {vals['range_max']}"
            )
        out[str(name)] = MotorCalibration(**vals)
    return out


def save_calibration(path: str | Path, calibration: Mapping[str, MotorCalibration]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({k: c.to_dict() for k, c in calibration.items()}, indent=4) + "\n")


def half_turn_homing(bus: str, present_without_offset: int, resolution: int) -> int:
    """The homing offset that puts the current pose at mid-range (LeRobot's half-turn homing), given the present
    position read with a zero offset."""
    half = (resolution - 1) // 2
    if bus == "dynamixel":
        return half - present_without_offset
    return present_without_offset - half


@dataclass(frozen=True)
class JointMap:
    """One servo's ticks ↔ joint units (rad, or m for a gripper)."""

    resolution: int
    range_min: int
    range_max: int
    reversed: bool
    gripper_opening_m: float | None = None  # None: a revolute joint

    @property
    def mid(self) -> float:
        return (self.range_min + self.range_max) / 2.0

    @property
    def rad_per_tick(self) -> float:
        return 2.0 * math.pi / (self.resolution - 1)

    def to_unit(self, ticks: float) -> float:
        if self.gripper_opening_m is not None:
            f = (ticks - self.range_min) / (self.range_max - self.range_min)
            return (1.0 - f if self.reversed else f) * self.gripper_opening_m
        s = -1.0 if self.reversed else 1.0
        return s * (ticks - self.mid) * self.rad_per_tick

    def to_ticks(self, value: float) -> int:
        if self.gripper_opening_m is not None:
            f = value / self.gripper_opening_m
            f = 1.0 - f if self.reversed else f
            return round(self.range_min + f * (self.range_max - self.range_min))
        s = -1.0 if self.reversed else 1.0
        return round(self.mid + s * value / self.rad_per_tick)

    def velocity_to_unit(self, ticks_per_s: float) -> float:
        if self.gripper_opening_m is not None:
            f = ticks_per_s / (self.range_max - self.range_min) * self.gripper_opening_m
            return -f if self.reversed else f
        return (-1.0 if self.reversed else 1.0) * ticks_per_s * self.rad_per_tick

    def unit_limits(self, lo_ticks: int, hi_ticks: int) -> tuple[float, float]:
        """[lo, hi] ticks (calibrated range ∩ the servo's own limits) in joint units, low first."""
        a, b = self.to_unit(lo_ticks), self.to_unit(hi_ticks)
        return (a, b) if a <= b else (b, a)
