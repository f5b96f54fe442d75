"""Mapping camera device timestamps onto the host monotonic clock (pure, no I/O).

A device clock (RealSense `hardware_clock`, or a recording's timestamps) runs on its own epoch. The host sees
each frame some transport lag after capture; the smallest lag observed over a recent window is the best estimate
of the pure offset between the clocks (Diffusion Policy and LeRobot use the same trick). Mapping
`t_host = t_device + min(t_received - t_device)` is therefore the capture time plus the minimum transport lag,
never later than the receive time, and it follows slow drift because the window slides.
"""

from __future__ import annotations

from collections import deque


class DeviceClockMapper:
    """Sliding-window minimum of `t_received - t_device` (seconds), O(1) amortised per frame."""

    def __init__(self, window: int = 300) -> None:
        if window < 1:
            raise ValueError(f"window: expected >= 1, got {window}")
        self.window = window
        self._count = 0
        # Monotonic deque of (index, offset) with increasing offsets: the front is the window minimum.
        self._mins: deque[tuple[int, float]] = deque()
        self._last_device: float | None = None
        self.resets = 0

    def reset(self) -> None:
        """Forget the estimate (after a pipeline restart, a seek or a recording that loops)."""
        self._mins.clear()
        self._last_device = None
        self.resets += 1

    def map(self, t_device_s: float, t_received_s: float) -> float:
        """Host monotonic time of a frame captured at device time `t_device_s`, received at `t_received_s`."""
        if self._last_device is not None and t_device_s < self._last_device:
            self.reset()  # the device clock went backwards: a restart, a seek or a loop
        self._last_device = t_device_s
        offset = t_received_s - t_device_s
        i = self._count
        self._count += 1
        while self._mins and self._mins[-1][1] >= offset:
            self._mins.pop()
        self._mins.append((i, offset))
        while self._mins[0][0] <= i - self.window:
            self._mins.popleft()
        return t_device_s + self._mins[0][1]
