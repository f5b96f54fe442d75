"""Trust no measurement: the check every measured state passes before the loop uses it (pure).

A measured action-space vector is a fault when a value is non-finite, lies outside the enforced position limits
by more than `measured_range_tolerance` of the joint's range, or moved since the previous measurement by more
than `jump_speed_factor` x the velocity limit allows in the time between them (the measurements' own firmware
clock), plus `jump_tolerance` of the range for encoder noise. An encoder offset, a glitch or a NaN then stops
the run on the tick that reads it, naming the arm, the joint and the value.

A gripper's opening gets the finiteness and range checks (with `gripper_range_tolerance`: fingers against their
stops read a little past them) but no jump check: fingers that close on, or slip off, an object move faster
than the gripper's commanded rate limit (seen on the simulated rig at 0.5 m/s against 0.1 m/s), so a fast
change there is physics, not a broken encoder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from firmware_bridge import ArmState
from harmowam_edge.bundle.schema import ArmSpec
from harmowam_edge.control.safety import JointLimits, SafetyConfig
from harmowam_edge.errors import SafetyError


class MeasurementGuard:
    """`start()` with the first measurement, then `check()` every tick; a clean measurement becomes the reference
    for the next jump check, a faulty one does not."""

    def __init__(
        self,
        limits: JointLimits,
        config: SafetyConfig | None = None,
        where: Sequence[str] | None = None,
        units: Sequence[str] | None = None,
        jump_checked: Sequence[bool] | None = None,
    ) -> None:
        """`where`: per dimension, the arm it belongs to (for messages); `units`: per dimension, rad or m;
        `jump_checked`: per dimension, whether its speed is bounded by its velocity limit (not a gripper's)."""
        self.limits = limits
        self.config = config or SafetyConfig()
        n = limits.size
        self.where = tuple(where) if where is not None else ("",) * n
        self.units = tuple(units) if units is not None else ("",) * n
        self.jump_checked = tuple(jump_checked) if jump_checked is not None else (True,) * n
        if len(self.where) != n or len(self.units) != n or len(self.jump_checked) != n:
            raise SafetyError(f"measurement guard: expected {n} arm names, units and jump flags")
        c = self.config
        share = np.where(self.jump_checked, c.measured_range_tolerance, c.gripper_range_tolerance)
        self._range_tol = share * limits.range
        self._jump_tol = c.jump_tolerance * limits.range
        self._prev: np.ndarray | None = None
        self._t_prev: np.ndarray | None = None

    def start(self, measured: np.ndarray, t: np.ndarray | float) -> None:
        self._prev = np.asarray(measured, dtype=np.float64).copy()
        self._t_prev = np.broadcast_to(np.asarray(t, dtype=np.float64), self._prev.shape).copy()

    def _name(self, i: int) -> str:
        return f"{self.where[i]}: {self.limits.names[i]}" if self.where[i] else self.limits.names[i]

    def _value(self, i: int, v: float) -> str:
        return f"{v:.4f} {self.units[i]}".rstrip()

    def check(self, measured: np.ndarray, t: np.ndarray | float) -> str | None:
        """Why `measured` (taken at `t`, seconds, per dimension or one for all) cannot be real, or None."""
        lim = self.limits
        m = np.asarray(measured, dtype=np.float64)
        if m.shape != (lim.size,):
            return f"measured state: expected {lim.size} values, got shape {m.shape}"
        tt = np.broadcast_to(np.asarray(t, dtype=np.float64), m.shape)
        bad = [i for i in range(lim.size) if not math.isfinite(m[i])]
        if bad:
            return "non-finite measured position: " + "; ".join(f"{self._name(i)} = {m[i]}" for i in bad)
        out = [
            i
            for i in range(lim.size)
            if m[i] < lim.lower[i] - self._range_tol[i] or m[i] > lim.upper[i] + self._range_tol[i]
        ]
        if out:
            return "measured position outside the limits: " + "; ".join(
                f"{self._name(i)} = {self._value(i, m[i])} (limits [{lim.lower[i]:.4f}, {lim.upper[i]:.4f}])"
                for i in out
            )
        if self._prev is not None and self._t_prev is not None:
            dt = tt - self._t_prev
            # A clock that went back (a firmware reboot) leaves nothing to compare against: no jump check then.
            known = dt >= 0
            step = np.abs(m - self._prev)
            allowed = self.config.jump_speed_factor * lim.max_velocity * np.where(known, dt, 0.0) + self._jump_tol
            jumped = [i for i in range(lim.size) if self.jump_checked[i] and known[i] and step[i] > allowed[i]]
            if jumped:
                return "measured position jumped: " + "; ".join(
                    f"{self._name(i)} from {self._value(i, self._prev[i])} to {self._value(i, m[i])} "
                    f"in {dt[i] * 1000:.1f} ms (at most {self._value(i, allowed[i])} within the limits)"
                    for i in jumped
                )
        self._prev = m.copy()
        self._t_prev = tt.copy()
        return None


def measurement_times(states: Sequence[ArmState], arms: Sequence[ArmSpec]) -> np.ndarray:
    """Per action dimension, when it was measured: its arm's firmware time (the clock the arm moved by)."""
    return np.concatenate(
        [np.full(len(spec.dims), st.firmware_time, dtype=np.float64) for st, spec in zip(states, arms, strict=True)]
    )


def arm_labels(arms: Sequence[ArmSpec], ports: Sequence[str]) -> tuple[list[str], list[str], list[bool]]:
    """Per action dimension: 'arm <name> on <port>', the unit (for the guard's messages), and whether its
    jumps are checked (revolute joints: yes; a gripper: no)."""
    where: list[str] = []
    units: list[str] = []
    checked: list[bool] = []
    for i, spec in enumerate(arms):
        label = f"arm {spec.name!r}" + (f" on {ports[i]}" if i < len(ports) else "")
        for d in spec.dims:
            where.append(label)
            units.append(d.unit)
            checked.append(d.kind == "revolute")
    return where, units, checked
