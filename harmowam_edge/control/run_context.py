"""What the threads of one run share: the stop latch, the chunk mailbox, the links, the observers, the counters."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from firmware_bridge import ArmClient, ArmState, FaultBits
from harmowam_edge.bundle.loader import LoadedBundle
from harmowam_edge.cameras.frames import CameraSource, Frame
from harmowam_edge.control.arms import measured_vector, split_command
from harmowam_edge.control.run_stats import RunCounters
from harmowam_edge.control.run_types import OBSERVER_ERROR, Rig, RunEvent, RunInfo, RunObserver, RunOptions, StopReason
from harmowam_edge.control.safety import SafetyFilter
from harmowam_edge.control.scheduler import ChunkScheduler
from harmowam_edge.policy.policy import ActionChunk, Policy
from harmowam_edge.telemetry.stats import PeriodRecorder

log = logging.getLogger("harmowam_edge.run")


class StopLatch:
    """The first stop request wins; later ones are recorded as events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.event = threading.Event()
        self.reason: StopReason | None = None

    def request(self, kind: str, message: str) -> bool:
        with self._lock:
            if self.reason is not None:
                return False
            self.reason = StopReason(kind, message, time.monotonic())
            self.event.set()
            return True

    def is_set(self) -> bool:
        return self.event.is_set()


class Mailbox:
    """Inference → control: the newest chunk, with the frames it came from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: tuple[ActionChunk, Sequence[Frame]] | None = None
        self.adopted = threading.Event()
        self.adopted.set()

    def put(self, chunk: ActionChunk, frames: Sequence[Frame]) -> None:
        with self._lock:
            self._item = (chunk, frames)
            self.adopted.clear()

    def take(self) -> tuple[ActionChunk, Sequence[Frame]] | None:
        """The pending chunk, if any; the caller calls `done()` once it has updated the schedule."""
        with self._lock:
            item, self._item = self._item, None
        return item

    def done(self) -> None:
        self.adopted.set()


class VirtualArm:
    """Dry run without arms: the 'measured' position is the last command (open loop)."""

    def __init__(self, start: np.ndarray) -> None:
        self.position = start.copy()


class RunContext:
    """One run's shared state. Each field is written by one thread (named in the comment), or set before the
    threads start."""

    def __init__(
        self, bundle: LoadedBundle, rig: Rig, options: RunOptions, observers: Sequence[RunObserver], rate: float
    ) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.rig = rig
        self.opt = options
        self.observers = list(observers)
        self.rate = rate
        self.t_launch = options.t_launch if options.t_launch is not None else time.monotonic()
        self.stop = StopLatch()
        self.mailbox = Mailbox()
        self.due_at = -math.inf  # when the next chunk is due (written by control, read by inference)
        # set up before the threads start
        self.links: list[ArmClient] = []
        self.opened: list[bool] = []
        self.virtual: VirtualArm | None = None
        self.cameras: list[CameraSource] = []
        self.info: RunInfo | None = None
        self.safety: SafetyFilter | None = None
        self.scheduler: ChunkScheduler | None = None
        self.policy: Policy | None = None
        self.counters = RunCounters(PeriodRecorder(1.0 / rate))
        # the newest measured vector that passed the measurement check (control), what inference observes
        self.checked_measurement: np.ndarray | None = None
        self.realtime = "not started"  # the control thread's scheduling, as set (control)
        self.status = "starting"  # control
        self.last_mode = ""  # inference
        # the policy step in progress (start time) and the last one's (start, end), host monotonic (inference)
        self.step_started: float | None = None
        self.last_step: tuple[float, float] = (-math.inf, -math.inf)
        self.t_loop_start: float | None = None  # the control loop's first tick (control)
        self.t_loop_end: float | None = None  # its last (control)
        self.errors: list[str] = []
        self.tracebacks: list[str] = []  # kept for the stats file; the console gets the reason line
        self.events: list[RunEvent] = []

    def run_time(self) -> float:
        """Seconds the control loop ran (0 before it starts)."""
        if self.t_loop_start is None or self.t_loop_end is None:
            return 0.0
        return self.t_loop_end - self.t_loop_start

    def inferring_since(self, t: float) -> bool:
        """Whether a policy step ran at some point after `t` (or runs now)."""
        started = self.step_started
        return started is not None or self.last_step[1] >= t

    def notify(self, method: str, *args: Any) -> None:
        for obs in self.observers:
            try:
                getattr(obs, method)(*args)
            except Exception as e:  # an observer bug must not leave the arm unattended
                log.exception("observer %s.%s failed", type(obs).__name__, method)
                if method != "on_end":
                    self.stop.request(OBSERVER_ERROR, f"{type(obs).__name__}.{method} raised {e!r}")

    def event(self, kind: str, message: str) -> None:
        ev = RunEvent(time.monotonic(), kind, message)
        self.events.append(ev)
        if len(self.events) > 1000:
            del self.events[:500]
        self.notify("on_event", ev)

    def measure(self, states: Sequence[ArmState]) -> np.ndarray:
        if self.virtual is not None:
            return self.virtual.position.copy()
        return measured_vector(states, self.manifest.action_space.arms)

    def send(self, command: np.ndarray, velocity: np.ndarray) -> None:
        """One setpoint per arm; the joints' velocity goes along as feed-forward, so that the firmware's target
        moves between our setpoints instead of stepping at the control rate (PROTOCOL.md §11)."""
        arms = self.manifest.action_space.arms
        cmds = split_command(command, arms)
        vels = split_command(velocity, arms)
        for link, (pos, grip), (vel, _) in zip(self.links, cmds, vels, strict=True):
            link.send_setpoint(pos, velocities=vel, gripper=grip)


def describe_faults(bits: FaultBits) -> str:
    names = [b.name for b in FaultBits if b and b in bits and b.name]
    return "|".join(names) or "none"


def describe_exception(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
