"""What every camera source produces: timestamped frames in host monotonic time.

A RealSense device, a recording played back through pyrealsense2 and the simulated rig's MuJoCo camera all hand
the policy the same `Frame`, so the policy and scheduler code paths are the ones used on the robot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from harmowam_edge.bundle.schema import CameraSpec


@dataclass(frozen=True)
class Frame:
    """One camera's frame. `t_capture` is the exposure time mapped to host `time.monotonic()` seconds."""

    camera: str  # CameraSpec.name it belongs to
    color: np.ndarray  # uint8 [H, W, 3], RGB
    t_capture: float  # host monotonic seconds (device timestamp mapped to the host clock)
    frame_number: int  # device frame counter (gaps = dropped frames)
    depth: np.ndarray | None = None  # uint16 [H, W], z16 units, aligned to color; None without a depth stream
    depth_units_m: float = 0.001  # metres per z16 unit
    t_device_ms: float = 0.0  # raw device timestamp, for diagnostics
    t_received: float = 0.0  # host monotonic seconds when the host got it (t_received - t_capture = transport lag)


@dataclass(frozen=True)
class CameraHealth:
    frames: int = 0
    timeouts: int = 0
    restarts: int = 0  # pipeline restarts
    hardware_resets: int = 0
    dropped: int = 0  # frame_number gaps
    fps: float = 0.0  # measured over the last second or so
    last_error: str = ""
    failed: bool = False  # the fault ladder ran out: the control loop must stop safely
    extra: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class CameraSource(Protocol):
    """A started source keeps the newest frame in a slot; readers never block the producer."""

    @property
    def spec(self) -> CameraSpec: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def latest(self) -> Frame | None:
        """The newest frame, or None before the first one. Never blocks."""
        ...

    def wait_newer(self, after_frame_number: int | None, timeout: float) -> Frame | None:
        """Block until a frame newer than `after_frame_number` arrives (None = any frame); None on timeout."""
        ...

    def health(self) -> CameraHealth: ...
