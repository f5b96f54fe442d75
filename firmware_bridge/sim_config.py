"""`SimArmConfig`: the arm a firmware simulator pretends to be (joints, limits, gripper, identity, rates).

firmware_bridge imports nothing of harmowam_edge, so the default is its own 6-joint arm with a parallel gripper;
the simulated rig passes the reference arm's limits explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

from firmware_bridge.errors import SimulatorError
from firmware_bridge.protocol import DEFAULT_BAUDRATE, FIRMWARE_ID_SIZE, MAX_ARM, MAX_JOINTS

PerJoint = float | Sequence[float]

DEFAULT_POSITION_LIMIT = 2.9  # rad, symmetric
DEFAULT_MAX_VELOCITY = 2.0  # rad/s
DEFAULT_MAX_ACCELERATION = 8.0  # rad/s²


def _per_joint(name: str, value: PerJoint | None, n: int, default: float) -> tuple[float, ...]:
    if value is None:
        return (float(default),) * n
    if isinstance(value, (int, float)):
        return (float(value),) * n
    out = tuple(float(v) for v in value)
    if len(out) != n:
        raise SimulatorError(f"SimArmConfig.{name}: expected {n} values (one per joint), got {len(out)}")
    return out


@dataclass(frozen=True)
class SimArmConfig:
    """A simulated arm. Per-joint fields take one value for every joint or a sequence of `joint_count` values."""

    joint_count: int = 6
    position_min: PerJoint | None = None  # rad; default -2.9
    position_max: PerJoint | None = None  # rad; default +2.9
    max_velocity: PerJoint | None = None  # rad/s; default 2.0
    max_acceleration: PerJoint | None = None  # rad/s²; default 8.0
    has_gripper: bool = True
    gripper_min: float = 0.0  # m
    gripper_max: float = 0.08  # m
    gripper_max_velocity: float = 0.1  # m/s
    gripper_max_acceleration: float = 0.5  # m/s²
    initial_positions: PerJoint | None = None  # rad; default 0 (clamped into the limits)
    initial_gripper: float | None = None  # m; default gripper_min
    firmware_id: str = "harmowam-sim-py"
    firmware_version: tuple[int, int, int] = (0, 1, 0)
    arm: int = 0  # the address this firmware answers to (header byte 2)
    state_rate_hz: int = 200
    control_rate_hz: int = 500
    watchdog_hold_s: float = 0.1
    watchdog_off_s: float = 1.0
    baudrate: int = DEFAULT_BAUDRATE  # a client opening the PTY at another rate sees garbage, as on a real UART

    def __post_init__(self) -> None:
        n = self.joint_count
        if not isinstance(n, int) or not 1 <= n <= MAX_JOINTS:
            raise SimulatorError(f"SimArmConfig.joint_count: expected an integer in 1..{MAX_JOINTS}, got {n!r}")
        lo = _per_joint("position_min", self.position_min, n, -DEFAULT_POSITION_LIMIT)
        hi = _per_joint("position_max", self.position_max, n, DEFAULT_POSITION_LIMIT)
        vmax = _per_joint("max_velocity", self.max_velocity, n, DEFAULT_MAX_VELOCITY)
        amax = _per_joint("max_acceleration", self.max_acceleration, n, DEFAULT_MAX_ACCELERATION)
        init = _per_joint("initial_positions", self.initial_positions, n, 0.0)
        for i in range(n):
            if not (math.isfinite(lo[i]) and math.isfinite(hi[i]) and lo[i] < hi[i]):
                raise SimulatorError(
                    f"SimArmConfig.position_min/max: joint {i} needs finite min < max, got {lo[i]}..{hi[i]}"
                )
            for name, seq in (("max_velocity", vmax), ("max_acceleration", amax)):
                if not (math.isfinite(seq[i]) and seq[i] > 0):
                    raise SimulatorError(f"SimArmConfig.{name}: joint {i} needs a finite value > 0, got {seq[i]}")
        init = tuple(min(max(p, lo[i]), hi[i]) for i, p in enumerate(init))
        object.__setattr__(self, "position_min", lo)
        object.__setattr__(self, "position_max", hi)
        object.__setattr__(self, "max_velocity", vmax)
        object.__setattr__(self, "max_acceleration", amax)
        object.__setattr__(self, "initial_positions", init)
        if self.has_gripper:
            if not (self.gripper_min < self.gripper_max):
                raise SimulatorError(
                    f"SimArmConfig.gripper_min/max: need min < max, got {self.gripper_min}..{self.gripper_max}"
                )
            if not (self.gripper_max_velocity > 0 and self.gripper_max_acceleration > 0):
                raise SimulatorError("SimArmConfig.gripper_max_velocity/acceleration: need values > 0")
        g0 = self.gripper_min if self.initial_gripper is None else self.initial_gripper
        object.__setattr__(self, "initial_gripper", min(max(float(g0), self.gripper_min), self.gripper_max))
        if not 0 <= self.arm <= MAX_ARM:
            raise SimulatorError(f"SimArmConfig.arm: expected an address in 0..{MAX_ARM}, got {self.arm}")
        if len(self.firmware_id.encode("ascii", "replace")) > FIRMWARE_ID_SIZE:
            raise SimulatorError(f"SimArmConfig.firmware_id: at most {FIRMWARE_ID_SIZE} ASCII characters")
        if not 1 <= self.state_rate_hz <= 2000:
            raise SimulatorError(f"SimArmConfig.state_rate_hz: expected 1..2000, got {self.state_rate_hz}")
        if not 50 <= self.control_rate_hz <= 10000:
            raise SimulatorError(f"SimArmConfig.control_rate_hz: expected 50..10000, got {self.control_rate_hz}")
        if not 0 < self.watchdog_hold_s < self.watchdog_off_s:
            raise SimulatorError("SimArmConfig.watchdog_hold_s/off_s: need 0 < hold < off")

    # Typed views of the normalised per-joint fields (always tuples after __post_init__).
    @property
    def lower(self) -> tuple[float, ...]:
        return self.position_min  # type: ignore[return-value]

    @property
    def upper(self) -> tuple[float, ...]:
        return self.position_max  # type: ignore[return-value]

    @property
    def velocity_limits(self) -> tuple[float, ...]:
        return self.max_velocity  # type: ignore[return-value]

    @property
    def acceleration_limits(self) -> tuple[float, ...]:
        return self.max_acceleration  # type: ignore[return-value]

    @property
    def initial(self) -> tuple[float, ...]:
        return self.initial_positions  # type: ignore[return-value]

    def describe(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
