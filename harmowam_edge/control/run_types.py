"""What a run is described by: its options and rig, the stop reasons, the per-tick record, the observer hooks and
the summary (the public types of `harmowam_edge.control.loop`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from firmware_bridge import ArmClient, FirmwareInfo
from harmowam_edge.cameras.frames import CameraSource, Frame
from harmowam_edge.control.rig import RigConfig
from harmowam_edge.control.safety import JointLimits, SafetyConfig
from harmowam_edge.control.scheduler import SchedulerConfig
from harmowam_edge.policy.policy import ActionChunk

# Stop reasons. "Clean" ones are the user's choice; every other one is a fault the summary reports as such.
DURATION = "duration"
INTERRUPTED = "interrupted"
INFERENCE_ERROR = "inference_error"
LINK_LOST = "link_lost"
STATE_STALE = "state_stale"
FIRMWARE_ESTOP = "firmware_estop"
FIRMWARE_FAULT = "firmware_fault"
CAMERA_LOST = "camera_lost"
RECORDING_ENDED = "recording_ended"  # a camera played from a recording reached its end
CAMERA_STALL = "camera_stall"
NONFINITE_ACTION = "nonfinite_action"
MEASUREMENT_FAULT = "measurement_fault"  # a measured state no arm could produce (non-finite, out of range, a jump)
OBSERVER_ERROR = "observer_error"
INTERNAL_ERROR = "internal_error"
CLEAN_REASONS = (DURATION, INTERRUPTED, RECORDING_ENDED)


@dataclass(frozen=True)
class StopReason:
    kind: str
    message: str
    t: float  # host monotonic time the stop was requested

    @property
    def clean(self) -> bool:
        return self.kind in CLEAN_REASONS


@dataclass(frozen=True)
class RunEvent:
    t: float
    kind: str  # chunk_rejected, chunk_stale, camera, link, stop, ...
    message: str


@dataclass(frozen=True)
class TickRecord:
    index: int
    t: float  # tick start (host monotonic)
    status: str  # idle | tracking | blending | holding | stopping
    chunk_id: int
    target: np.ndarray | None  # the scheduler's target, before the safety filter
    command: np.ndarray  # after the safety filter (sent unless dry run)
    measured: np.ndarray  # the action-space vector measured at this tick
    sent: bool
    missed: int  # control ticks skipped before this one
    chunk_index: int = -1  # the policy step (ActionChunk.index) of the active chunk; -1 while idle or stopping
    velocity: np.ndarray | None = None  # the command's velocity (sent as feed-forward)
    safety_flags: tuple[str, ...] = ()  # what the safety filter did: rejected, position, velocity, tracking, ...


@dataclass(frozen=True)
class RunInfo:
    bundle: Path
    task: str
    rig: str
    ports: tuple[str, ...]
    firmware: tuple[FirmwareInfo, ...]
    joint_names: tuple[str, ...]
    limits: JointLimits
    control_rate_hz: float
    action_rate_hz: float
    chunk_size: int
    cameras: tuple[str, ...]
    dry_run: bool
    backend: str
    t_start: float
    safety: SafetyConfig  # the filter's settings (its control period is the loop's)
    scheduler: SchedulerConfig
    t_safety_start: float  # when the safety filter started (its ramp-in runs from here)


@dataclass
class RunSummary:
    reason: StopReason
    info: RunInfo | None
    duration_s: float
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return self.reason.clean


class RunObserver:
    """Hooks into a run. Override what you need; every method is called from a loop thread and must not block."""

    def on_start(self, info: RunInfo) -> None:
        """Before the first tick."""

    def on_chunk(self, chunk: ActionChunk, frames: Sequence[Frame]) -> None:
        """Inference thread: a chunk and the frames it was computed from (adopted or not: see on_event)."""

    def on_tick(self, tick: TickRecord) -> None:
        """Control thread, every tick: enqueue and return."""

    def on_event(self, event: RunEvent) -> None:
        """Anything notable: rejected chunks, camera restarts, link events, the stop."""

    def on_end(self, summary: RunSummary) -> None:
        """After the arm is safe and closed: flush and close files here."""


@dataclass
class Rig:
    """What the loop drives. `arms`: one per bundle arm in action-space order, each a port to open or an open
    `ArmClient`; `cameras`: one `CameraSource` per bundle camera (matched by `spec.name`). Every arm is closed at
    the end of the run (torque off first); cameras are started if needed and stopped at the end when
    `stop_cameras`."""

    arms: Sequence[str | ArmClient]
    cameras: Sequence[CameraSource]
    config: RigConfig | None = None  # limits, scales, safety, rate, baudrates, addresses
    name: str = "rig"
    stop_cameras: bool = True


@dataclass(frozen=True)
class RunOptions:
    task: str
    duration_s: float | None = None
    dry_run: bool = False  # everything but sending setpoints (and enabling)
    control_rate_hz: float | None = None  # default: the rig config's, else 200
    seed: int = 0
    crossfade_s: float = 0.05
    replan_every_steps: int | None = None  # default: half a chunk
    safety: SafetyConfig | None = None  # default: the rig config's (with the control period)
    hold_s: float = 0.5  # controlled stop: brake, then hold this long, then torque off
    camera_stall_s: float = 2.0  # no new frame from a camera for this long: stop
    frame_timeout_s: float = 0.2  # inference waits this long for a new frame before looking again
    max_nonfinite_chunks: int = 0  # chunks with NaN/inf tolerated (rejected) before the run stops
    handle_signals: bool = True  # Ctrl-C / SIGTERM → controlled stop (only from the main thread)
    status: Callable[[str], None] | None = None  # live status line sink (e.g. a StatusLine)
    status_interval_s: float = 1.0
    stats_path: Path | None = None  # JSON stats file written at the end
    t_launch: float | None = None  # when the command started (start-up time is measured from here)
    spin_s: float = 0.001
    realtime_priority: int | None = 50  # SCHED_FIFO priority for the control thread where allowed (None: never)
