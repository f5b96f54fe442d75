"""What a simulated firmware drives: the `Plant` protocol and the ideal plant (measured = reference).

The firmware computes the limited reference (velocity, acceleration and position limits, watchdog hold, torque
off, latched e-stop) and hands it to the plant on every control tick; the plant says what the joints measure.
The simulated rig plugs a MuJoCo plant in here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class PlantState:
    """One measurement: joint positions (rad) and velocities (rad/s), gripper opening (m), optional effort (N·m)."""

    positions: np.ndarray
    velocities: np.ndarray
    gripper: float = 0.0
    effort: np.ndarray | None = None


@runtime_checkable
class Plant(Protocol):
    """The physical arm behind a simulated firmware. Called from the simulator's thread only."""

    def measure(self) -> PlantState:
        """The joints as measured now."""
        ...

    def command(self, positions: np.ndarray, velocities: np.ndarray, gripper: float) -> None:
        """The firmware's limited reference: positions (rad), velocities (rad/s), gripper opening (m)."""
        ...

    def set_torque(self, on: bool) -> None:
        """Torque on (track the reference) or off (the joints stay where they are in the ideal plant)."""
        ...


class IdealPlant:
    """Measured = reference while torque is on; with torque off the joints stay put (ideal brakes).

    Thread-safe, so tests may read `torque_on` or `measure()` while the simulator runs.
    """

    def __init__(self, positions: np.ndarray | list[float] | tuple[float, ...], gripper: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._pos = np.array(positions, dtype=np.float64)
        self._vel = np.zeros_like(self._pos)
        self._gripper = float(gripper)
        self.torque_on = False
        self._encoder_offset = np.zeros_like(self._pos)  # fault injection: what the encoders add to the truth
        self._encoder_reading: dict[int, float] = {}  # fault injection: joints whose encoder reads a fixed value

    def measure(self) -> PlantState:
        with self._lock:
            pos = self._pos + self._encoder_offset
            for j, v in self._encoder_reading.items():
                pos[j] = v
            return PlantState(pos, self._vel.copy(), self._gripper, None)

    def set_encoder_fault(self, joint: int, offset: float = 0.0, reading: float | None = None) -> None:
        """Fault injection: joint `joint`'s encoder reads `offset` off the truth, or `reading` (NaN too) whatever
        the joint does; `set_encoder_fault(j)` clears it. The joint itself keeps tracking the reference."""
        with self._lock:
            self._encoder_offset[joint] = offset
            if reading is None:
                self._encoder_reading.pop(joint, None)
            else:
                self._encoder_reading[joint] = float(reading)

    def command(self, positions: np.ndarray, velocities: np.ndarray, gripper: float) -> None:
        with self._lock:
            if not self.torque_on:
                return
            self._pos = np.array(positions, dtype=np.float64)
            self._vel = np.array(velocities, dtype=np.float64)
            self._gripper = float(gripper)

    def set_torque(self, on: bool) -> None:
        with self._lock:
            self.torque_on = bool(on)
            if not on:
                self._vel = np.zeros_like(self._pos)
