"""The real-time loop: a loaded bundle, a rig (arm links + camera sources), a task → joint setpoints until stopped.

    summary = run_policy(bundle, Rig(arms=["/dev/ttyACM0"], cameras=[source]), RunOptions(task="reach"),
                         observers=[EpisodeRecorder("episode.mcap")])

Threads (design §4): each camera source runs its own; *inference* runs the policy on a new frame whenever the
scheduler says a chunk is due; *control* (default 200 Hz, sleep then spin the last ~1 ms) adopts new chunks,
samples the trajectory, applies the safety filter, sends setpoints and reads state; the calling thread supervises
(signals, status line, camera health). Whatever ends the run — the duration, Ctrl-C/SIGTERM, an inference
exception, a lost link, a stale state stream, a lost or stalled camera, a firmware e-stop or fault, non-finite
actions, a bug — it ends the same way: brake and hold, torque off, close, and the summary says why.

Observers (`RunObserver`) see the run: `on_start`, `on_chunk` (inference thread), `on_tick` (control thread,
200 Hz: must only enqueue), `on_event`, `on_end`. The MCAP episode recorder is one; the simulated rig's video
overlay is another. An observer that raises stops the run safely.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from firmware_bridge import ArmClient, ArmLink, ArmMode, ArmState, BridgeError, FaultBits, FirmwareInfo
from harmowam_edge.bundle.loader import LoadedBundle
from harmowam_edge.cameras.frames import CameraSource, Frame
from harmowam_edge.control.arms import firmware_limits, measured_vector, split_command
from harmowam_edge.control.rig import RigConfig
from harmowam_edge.control.safety import JointLimits, SafetyConfig, SafetyFilter
from harmowam_edge.control.scheduler import ChunkScheduler, SchedulerConfig
from harmowam_edge.control.timing import RateKeeper
from harmowam_edge.errors import ConfigError, HarmowamError, SafetyError
from harmowam_edge.policy.policy import STAGES, ActionChunk, Observation, Policy
from harmowam_edge.telemetry.stats import LatencyWindow, PeriodRecorder, json_default, summarize

log = logging.getLogger("harmowam_edge.run")

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


class _Stop:
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


class _Mailbox:
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


class _VirtualArm:
    """Dry run without arms: the 'measured' position is the last command (open loop)."""

    def __init__(self, start: np.ndarray) -> None:
        self.position = start.copy()


def _describe_faults(bits: FaultBits) -> str:
    names = [b.name for b in FaultBits if b and b in bits and b.name]
    return "|".join(names) or "none"


class _Session:
    def __init__(
        self,
        bundle: LoadedBundle,
        rig: Rig,
        options: RunOptions,
        observers: Sequence[RunObserver],
        policy: Policy | None = None,
    ) -> None:
        self._policy = policy
        self.bundle = bundle
        self.rig = rig
        self.opt = options
        self.observers = list(observers)
        self.manifest = bundle.manifest
        self.t_launch = options.t_launch if options.t_launch is not None else time.monotonic()
        self.stop = _Stop()
        self.mailbox = _Mailbox()
        self.due_at = -math.inf  # when the next chunk is due (written by control, read by inference)
        self.links: list[ArmClient] = []
        self.opened: list[bool] = []
        self.virtual: _VirtualArm | None = None
        self.cameras: list[CameraSource] = []
        self.info: RunInfo | None = None
        cfg = rig.config
        self.rate = options.control_rate_hz or (cfg.control_rate_hz if cfg else 200.0)
        if not 10.0 <= self.rate <= 2000.0:
            raise ConfigError(f"control rate: expected 10..2000 Hz, got {self.rate}")
        # counters and statistics (written by one thread each, read by the supervisor)
        self.period = PeriodRecorder(1.0 / self.rate)
        self.stage_times: dict[str, list[float]] = {s: [] for s in STAGES}
        self.chunk_latency: list[float] = []  # observation → chunk ready
        self.frame_to_setpoint: list[float] = []  # frame capture → first setpoint that uses its chunk
        self.inference_window = LatencyWindow(64)
        self.chunks_made = 0
        self.chunks_adopted = 0
        self.chunks_stale = 0
        self.chunks_nonfinite = 0
        self.chunks_out_of_range = 0
        self.setpoints_sent = 0
        self.ticks = 0
        self.t_first_setpoint: float | None = None
        self.t_first_chunk_setpoint: float | None = None
        self.status = "starting"
        self.last_mode = ""
        self._pending_latency: dict[int, float] = {}  # chunk id → frame capture time, until its first setpoint
        self._chunk_index: dict[int, int] = {}  # scheduler chunk id → policy step index
        self.errors: list[str] = []
        self.camera_stalled_since: list[float | None] = []
        self.events: list[RunEvent] = []

    # ---------------------------------------------------------------------------------------------- observers

    def _notify(self, method: str, *args: Any) -> None:
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
        self._notify("on_event", ev)

    # ---------------------------------------------------------------------------------------------- start-up

    def open_arms(self, state_timeout_s: float) -> None:
        arms = self.manifest.action_space.arms
        cfg = self.rig.config
        if not self.rig.arms:
            if not self.opt.dry_run:
                raise ConfigError("no arm given: pass a port (--port / rig config arms) or use --dry-run")
            return
        if len(self.rig.arms) != len(arms):
            raise ConfigError(
                f"the bundle drives {len(arms)} arm(s) ({', '.join(a.name for a in arms)}), "
                f"the rig gives {len(self.rig.arms)}"
            )
        for i, a in enumerate(self.rig.arms):
            if isinstance(a, str):
                kwargs: dict[str, Any] = {}
                if cfg is not None:
                    if cfg.arms[i].baudrate:
                        kwargs["baudrate"] = cfg.arms[i].baudrate
                    kwargs["arm"] = cfg.arms[i].address
                # The link declares itself lost after the same silence that makes the safety filter e-stop.
                link: ArmClient = ArmLink.open(
                    a, expect_joints=len(arms[i].joints), state_timeout=state_timeout_s, **kwargs
                )
                self.opened.append(True)
            else:
                link = a
                self.opened.append(False)
            self.links.append(link)

    def compose_limits(self) -> JointLimits:
        space = self.manifest.action_space
        limits = JointLimits.from_action_space(space)
        if self.links:
            fw = JointLimits.concat(
                [
                    firmware_limits(link.info, spec, link.port)
                    for link, spec in zip(self.links, space.arms, strict=True)
                ],
                source="firmware handshake",
            )
            limits = JointLimits.tightest(limits, fw)
        cfg = self.rig.config
        if cfg is not None:
            slices = space.arm_slices()
            parts = []
            for i, sl in enumerate(slices):
                base = JointLimits(
                    limits.names[sl],
                    limits.lower[sl],
                    limits.upper[sl],
                    limits.max_velocity[sl],
                    limits.max_acceleration[sl],
                    limits.source,
                )
                parts.append(cfg.limits_for(i, base) if i < len(cfg.arms) else base)
            limits = JointLimits.tightest(limits, JointLimits.concat(parts, source=cfg.source))
        return limits

    def open_cameras(self) -> None:
        by_name = {c.spec.name: c for c in self.rig.cameras}
        for spec in self.manifest.cameras:
            cam = by_name.get(spec.name)
            if cam is None:
                if len(self.rig.cameras) == len(self.manifest.cameras) == 1:
                    cam = self.rig.cameras[0]  # one camera: its name does not have to match
                else:
                    raise ConfigError(
                        f"no camera source for the bundle's camera {spec.name!r} "
                        f"(sources: {', '.join(sorted(by_name)) or 'none'})"
                    )
            s = cam.spec
            if (s.width, s.height, s.fps) != (spec.width, spec.height, spec.fps) or (
                spec.has_depth and not s.has_depth
            ):
                raise ConfigError(
                    f"camera {spec.name!r}: the source delivers {s.describe()}, the bundle expects {spec.describe()}"
                )
            self.cameras.append(cam)
        for cam in self.cameras:
            cam.start()
        self.camera_stalled_since = [None] * len(self.cameras)

    def wait_states(self, timeout: float = 2.0) -> list[ArmState]:
        states = []
        for link in self.links:
            st = link.state() or link.wait_state(timeout)
            if st is None:
                raise BridgeError(f"{link.port}: no state from the firmware within {timeout:.1f} s")
            states.append(st)
        return states

    def enable_arms(self, states: list[ArmState]) -> None:
        for link, st in zip(self.links, states, strict=True):
            if st.mode == ArmMode.ESTOP:
                raise SafetyError(
                    f"{link.port}: the arm is e-stopped ({_describe_faults(st.fault_bits)}): release the e-stop "
                    f"and reset it (harmowam-edge bridge reset) before running"
                )
            if st.fault_bits & FaultBits.DRIVE_FAULT:
                raise SafetyError(f"{link.port}: a joint driver reports a fault: clear it before running")
            mode = link.enable()
            if mode not in (ArmMode.ENABLED, ArmMode.HOLD):
                raise SafetyError(f"{link.port}: enable() left the arm in mode {mode.name}")
            # The state stream catches up with the acknowledged mode change within a few state periods.
            deadline = time.monotonic() + 1.0
            while True:
                latest = link.wait_state(0.1) or link.state()
                if latest is not None and latest.mode in (ArmMode.ENABLED, ArmMode.HOLD):
                    break
                if time.monotonic() > deadline:
                    raise SafetyError(f"{link.port}: the state stream does not report the arm enabled")

    # ---------------------------------------------------------------------------------------------- the run

    def run(self) -> RunSummary:
        t0 = time.monotonic()
        policy: Policy | None = None
        control: threading.Thread | None = None
        inference: threading.Thread | None = None
        old_switch = sys.getswitchinterval()
        restore_signals: list[tuple[int, Any]] = []
        try:
            cfg = self.rig.config
            safety_cfg = self.opt.safety or (cfg.safety_config() if cfg else SafetyConfig())
            safety_cfg = SafetyConfig(**{**asdict(safety_cfg), "control_period_s": 1.0 / self.rate})
            self.open_arms(safety_cfg.state_timeout_s)
            limits = self.compose_limits()
            valid = JointLimits.from_action_space(self.manifest.action_space)
            self.safety = SafetyFilter(limits, safety_cfg, valid=valid)
            p = self.manifest.policy
            self.scheduler = ChunkScheduler(
                SchedulerConfig(
                    p.action_rate_hz,
                    p.chunk_size,
                    crossfade_s=self.opt.crossfade_s,
                    replan_every_steps=self.opt.replan_every_steps,
                )
            )
            policy = self._policy or Policy(self.bundle, self.opt.task, seed=self.opt.seed)
            self.policy = policy
            self.open_cameras()
            states = self.wait_states()
            if not self.links:
                self.virtual = _VirtualArm(np.clip(np.zeros(limits.size), limits.lower, limits.upper))
            measured = self.measure(states)
            t_safety = time.monotonic()
            self.safety.start(measured, t_safety)  # refuses an arm outside its limits
            if not self.opt.dry_run:
                self.enable_arms(states)
            self.info = RunInfo(
                bundle=self.bundle.root,
                task=self.opt.task,
                rig=self.rig.name,
                ports=tuple(link.port for link in self.links),
                firmware=tuple(link.info for link in self.links),
                joint_names=limits.names,
                limits=limits,
                control_rate_hz=self.rate,
                action_rate_hz=p.action_rate_hz,
                chunk_size=p.chunk_size,
                cameras=tuple(c.spec.name for c in self.cameras),
                dry_run=self.opt.dry_run,
                backend=self.bundle.backend,
                t_start=time.monotonic(),
                safety=safety_cfg,
                scheduler=self.scheduler.config,
                t_safety_start=t_safety,
            )
            self._notify("on_start", self.info)
            if self.opt.handle_signals and threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, signal.SIGTERM):
                    restore_signals.append((sig, signal.signal(sig, self._on_signal)))
            # A thread waking from sleep needs the GIL: hand it over sooner than the default 5 ms.
            sys.setswitchinterval(min(old_switch, 0.0005))
            control = threading.Thread(target=self._control_thread, name="control", daemon=True)
            inference = threading.Thread(target=self._inference_thread, name="inference", daemon=True)
            control.start()
            inference.start()
            boosted = self._boost_link_readers()
            try:
                self._supervise()
            finally:
                _restore_priorities(boosted)
        except BaseException as e:
            # Start-up failures and anything unexpected in the supervisor end in the same safe stop.
            kind = INTERRUPTED if isinstance(e, KeyboardInterrupt) else INTERNAL_ERROR
            self.stop.request(kind, _describe_exception(e) if kind != INTERRUPTED else "interrupted (Ctrl-C)")
            if control is None:
                self._shutdown_arms(started=False)
            if not isinstance(e, (HarmowamError, BridgeError, KeyboardInterrupt)):
                log.exception("run failed")
            self._startup_error = e
        finally:
            if control is not None:
                control.join(timeout=self.opt.hold_s + 10.0)
                if control.is_alive():  # the control thread is stuck: last resort, torque off from here
                    log.error("control thread did not finish: disabling the arms from the supervisor")
                    self._torque_off_and_close()
            if inference is not None:
                inference.join(timeout=5.0)
            sys.setswitchinterval(old_switch)
            for signum, handler in restore_signals:
                signal.signal(signum, handler)
            self._stop_cameras()
        reason = self.stop.reason or StopReason(INTERNAL_ERROR, "stopped without a reason", time.monotonic())
        summary = RunSummary(reason, self.info, time.monotonic() - t0, self.stats(reason))
        if self.opt.stats_path is not None:
            write_stats(self.opt.stats_path, summary)
        self._notify("on_end", summary)
        err = getattr(self, "_startup_error", None)
        if err is not None and self.info is None:
            # Nothing ran: a user mistake (bad port, wrong firmware, arm outside its limits) is raised as such.
            raise err
        return summary

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = "Ctrl-C" if signum == signal.SIGINT else str(signal.Signals(signum).name)
        if not self.stop.request(INTERRUPTED, f"interrupted ({name})"):
            log.warning("%s again: already stopping (hold, then torque off)", name)

    def measure(self, states: Sequence[ArmState]) -> np.ndarray:
        if self.virtual is not None:
            return self.virtual.position.copy()
        return measured_vector(states, self.manifest.action_space.arms)

    # ---------------------------------------------------------------------------------------------- supervisor

    def _supervise(self) -> None:
        interval = self.opt.status_interval_s
        next_status = time.monotonic() + interval
        while not self.stop.event.wait(0.05):
            now = time.monotonic()
            self._check_cameras(now)
            if self.opt.status is not None and now >= next_status:
                next_status = now + interval
                self.opt.status(self.status_line(now))
        if self.opt.status is not None:
            self.opt.status(self.status_line(time.monotonic()))

    def _check_cameras(self, now: float) -> None:
        for cam in self.cameras:
            h = cam.health()
            if h.failed and h.extra.get("ended"):
                self.stop.request(RECORDING_ENDED, f"camera {cam.spec.name!r}: {h.last_error or 'recording ended'}")
                return
            if h.failed:
                self.stop.request(CAMERA_LOST, f"camera {cam.spec.name!r} lost: {h.last_error or 'failed'}")
                return
            f = cam.latest()
            t_last = f.t_received if f is not None else (self.info.t_start if self.info else now)
            if now - t_last > self.opt.camera_stall_s:
                self.stop.request(
                    CAMERA_STALL,
                    f"camera {cam.spec.name!r} stalled: no frame for {now - t_last:.1f} s"
                    + (f" ({h.timeouts} timeouts, {h.restarts} restarts)" if h.timeouts else ""),
                )
                return

    def status_line(self, now: float) -> str:
        t = now - (self.info.t_start if self.info else now)
        per = self.period.summary()
        inf = self.inference_window
        parts = [
            f"{t:6.1f}s",
            f"loop {per['rate_hz']:.0f}Hz jitter p99 {per['jitter_ms_p99']:.2f}ms missed {per['missed_ticks']}",
            f"infer p50 {inf.p50 * 1000:.1f} p99 {inf.p99 * 1000:.1f}ms",
            f"gate {self.last_mode or '-'}",
            f"{self.status}",
        ]
        for link in self.links:
            st = link.state()
            mode = st.mode.name if st is not None else "?"
            rtt = link.stats.rtt_p50_s
            parts.append(f"{link.port.rsplit('/', 1)[-1]} {mode}" + (f" rtt {rtt * 1000:.1f}ms" if rtt else ""))
        for cam in self.cameras:
            h = cam.health()
            parts.append(f"{cam.spec.name} {h.fps:.0f}fps" + (f" ({h.restarts} restarts)" if h.restarts else ""))
        if self.opt.dry_run:
            parts.append("DRY RUN")
        return " | ".join(parts)

    # ---------------------------------------------------------------------------------------------- inference

    def _inference_thread(self) -> None:
        last: list[int | None] = [None] * len(self.cameras)
        try:
            while not self.stop.is_set():
                wait = self.due_at - time.monotonic()
                if wait > 0 or not self.mailbox.adopted.is_set():
                    time.sleep(min(max(wait, 0.001), 0.005))
                    continue
                # A chunk is due: run on the next frame of the first camera (the freshest observation, since
                # actions are anchored to its capture time), with the newest unused frame of the others.
                frames: list[Frame] = []
                for i, cam in enumerate(self.cameras):
                    after = last[i]
                    if i == 0:
                        newest = cam.latest()
                        after = newest.frame_number if newest is not None else None
                    f = cam.wait_newer(after, self.opt.frame_timeout_s)
                    if f is None:
                        break
                    frames.append(f)
                if len(frames) != len(self.cameras) or self.stop.is_set():
                    continue  # no new frame yet: the supervisor watches for stalls
                for i, f in enumerate(frames):
                    last[i] = f.frame_number
                if self.links:
                    states = [link.state() for link in self.links]
                    if any(s is None for s in states):
                        continue
                    joint_pos = measured_vector(states, self.manifest.action_space.arms)  # type: ignore[arg-type]
                else:
                    assert self.virtual is not None
                    joint_pos = self.virtual.position.copy()
                chunk = self.policy.step(Observation(frames, joint_pos))
                self.chunks_made += 1
                self.last_mode = chunk.mode
                for s in STAGES:
                    self.stage_times[s].append(chunk.timings[s])
                self.inference_window.add(chunk.timings["total"])
                self.mailbox.put(chunk, frames)
                self._notify("on_chunk", chunk, frames)
                # One chunk in flight at a time: wait until the control thread has adopted (or refused) it.
                while not self.mailbox.adopted.wait(0.05):
                    if self.stop.is_set():
                        return
        except Exception as e:
            log.exception("inference failed")
            self.stop.request(INFERENCE_ERROR, f"inference failed: {_describe_exception(e)}")

    # ---------------------------------------------------------------------------------------------- control

    def _control_thread(self) -> None:
        self._raise_priority()
        try:
            self._control_loop()
        except Exception as e:
            log.exception("control loop failed")
            self.stop.request(INTERNAL_ERROR, f"control loop failed: {_describe_exception(e)}")
        finally:
            try:
                self._shutdown_arms(started=True)
            except Exception:
                log.exception("shutdown failed: disabling the arms")
                self._torque_off_and_close()

    def _raise_priority(self) -> None:
        """SCHED_FIFO for this thread (Linux: needs CAP_SYS_NICE or an rtprio limit, e.g. in limits.conf), so that
        other processes cannot delay a tick; without the permission the loop runs at normal priority."""
        prio = self.opt.realtime_priority
        if prio is None or not hasattr(os, "sched_setscheduler"):
            self.realtime = "off"
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))  # 0: this thread
            self.realtime = f"SCHED_FIFO {prio}"
        except (PermissionError, OSError) as e:
            self.realtime = f"normal priority ({e.strerror or e}; allow rtprio {prio} for a steadier loop)"
            log.info("control thread: %s", self.realtime)

    def _boost_link_readers(self) -> list[tuple[int, int, int]]:
        """The arm links' reader threads get a SCHED_FIFO priority just below the control thread's for the run:
        starved of CPU by inference, they would deliver states late and the safety filter would e-stop a healthy
        arm (seen with ONNX Runtime on every core of a loaded 2-core machine). Returns what to restore."""
        prio = self.opt.realtime_priority
        if prio is None or not hasattr(os, "sched_setscheduler"):
            return []
        changed = []
        for t in threading.enumerate():
            if not t.name.startswith("armlink-") or t.native_id is None:
                continue
            tid = t.native_id
            try:
                old = (os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority)
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(max(1, prio - 1)))
                changed.append((tid, *old))
            except (PermissionError, OSError):
                break
        return changed

    def _read_states(self, now: float) -> list[ArmState] | None:
        states: list[ArmState] = []
        for link in self.links:
            if link.link_lost.is_set():
                self.stop.request(LINK_LOST, f"arm link on {link.port} lost: no state from the firmware")
                return None
            st = link.state()
            if st is None or self.safety.state_is_stale(st.t_received, now):
                age = "never" if st is None else f"{(now - st.t_received) * 1000:.0f} ms ago"
                self.stop.request(STATE_STALE, f"arm state from {link.port} is stale (last {age}): e-stop")
                return None
            if st.mode == ArmMode.ESTOP or st.fault_bits & (FaultBits.ESTOP_LATCHED | FaultBits.HARDWARE_ESTOP):
                self.stop.request(FIRMWARE_ESTOP, f"firmware e-stop on {link.port} ({_describe_faults(st.fault_bits)})")
                return None
            if st.fault_bits & FaultBits.DRIVE_FAULT:
                self.stop.request(FIRMWARE_FAULT, f"joint driver fault on {link.port}")
                return None
            if not self.opt.dry_run and st.mode == ArmMode.DISABLED:
                self.stop.request(
                    FIRMWARE_FAULT,
                    f"the firmware on {link.port} turned torque off ({_describe_faults(st.fault_bits)})",
                )
                return None
            states.append(st)
        return states

    def _adopt(self, now: float) -> None:
        item = self.mailbox.take()
        if item is None:
            return
        try:
            self._check_and_schedule(*item, now)
        finally:
            self.due_at = self.scheduler.due_time()
            self.mailbox.done()

    def _check_and_schedule(self, chunk: ActionChunk, frames: Sequence[Frame], now: float) -> None:
        a = chunk.actions
        if not np.isfinite(a).all():
            self.chunks_nonfinite += 1
            msg = f"chunk {chunk.index}: non-finite actions (NaN/inf) rejected"
            self.event("chunk_rejected", msg)
            if self.chunks_nonfinite > self.opt.max_nonfinite_chunks:
                self.stop.request(NONFINITE_ACTION, f"the policy produced non-finite actions (chunk {chunk.index})")
            return
        for k in range(a.shape[0]):
            why = self.safety.check_target(a[k])
            if why is not None:
                self.chunks_out_of_range += 1
                self.event("chunk_rejected", f"chunk {chunk.index}, action {k}: {why}")
                return
        acc = self.scheduler.add_chunk(a, chunk.t_obs, now)
        self.scheduler.record_latency(chunk.latency)
        self.chunk_latency.append(chunk.latency)
        if acc.accepted:
            self.chunks_adopted += 1
            self._pending_latency[acc.chunk_id] = min(f.t_capture for f in frames)
            self._chunk_index[acc.chunk_id] = chunk.index
            self._chunk_index.pop(acc.chunk_id - 64, None)
        else:
            self.chunks_stale += 1
            self.event("chunk_stale", f"chunk {chunk.index}: {acc.reason}")

    def _send(self, command: np.ndarray, velocity: np.ndarray) -> None:
        """One setpoint per arm; the joints' velocity goes along as feed-forward, so that the firmware's target
        moves between our setpoints instead of stepping at the control rate (PROTOCOL.md §11)."""
        arms = self.manifest.action_space.arms
        cmds = split_command(command, arms)
        vels = split_command(velocity, arms)
        for link, (pos, grip), (vel, _) in zip(self.links, cmds, vels, strict=True):
            link.send_setpoint(pos, velocities=vel, gripper=grip)

    def _control_loop(self) -> None:
        rk = RateKeeper(self.rate, spin_s=self.opt.spin_s)
        deadline = None if self.opt.duration_s is None else time.monotonic() + self.opt.duration_s
        dry = self.opt.dry_run
        while not self.stop.is_set():
            tick = rk.wait()
            now = tick.t_start
            self.period.tick(now, tick.t_due, tick.missed)
            if deadline is not None and now >= deadline:
                self.stop.request(DURATION, f"duration reached ({self.opt.duration_s:g} s)")
                break
            states = self._read_states(now)
            if states is None:
                break
            measured = self.measure(states)
            self._adopt(now)
            if self.stop.is_set():
                break
            smp = self.scheduler.sample(now)
            command = self.safety.step(smp.target, measured, now)
            velocity = self.safety.velocity
            sent = False
            if not dry:
                self._send(command, velocity)
                sent = True
                self.setpoints_sent += 1
            if self.virtual is not None:
                self.virtual.position = command.copy()
            if self.t_first_setpoint is None:
                self.t_first_setpoint = now
            t_cap = self._pending_latency.pop(smp.chunk_id, None) if smp.chunk_id >= 0 else None
            if t_cap is not None:
                self.frame_to_setpoint.append(now - t_cap)
                if self.t_first_chunk_setpoint is None:
                    self.t_first_chunk_setpoint = now
            self.status = smp.status
            self.ticks += 1
            record = TickRecord(
                tick.index,
                now,
                smp.status,
                smp.chunk_id,
                smp.target,
                command,
                measured,
                sent,
                tick.missed,
                self._chunk_index.get(smp.chunk_id, -1),
                velocity,
                self.safety.flags,
            )
            self._notify("on_tick", record)

    def _shutdown_arms(self, started: bool) -> None:
        """Hold (brake, then stay) for hold_s, then torque off and close. Safe to call once from any thread."""
        if getattr(self, "_shut", False):
            return
        self._shut = True
        reason = self.stop.reason
        kind = reason.kind if reason else INTERNAL_ERROR
        self.status = "stopping"
        if reason is not None:
            self.event("stop", f"{kind}: {reason.message}")
        can_talk = True
        if kind in (STATE_STALE, LINK_LOST):
            # Lost state stream → e-stop (design §4), best effort: the firmware may still hear us. If it does not,
            # its own watchdog holds and then turns torque off.
            can_talk = False
            for link in self.links:
                try:
                    link.estop()
                    self.event("estop", f"e-stop sent to {link.port}")
                except (BridgeError, OSError) as e:
                    self.event(
                        "estop", f"e-stop to {link.port} not acknowledged ({e}); the firmware watchdog stops the arm"
                    )
        if started and can_talk and kind not in (FIRMWARE_ESTOP, FIRMWARE_FAULT) and self.info is not None:
            self._hold()
        self._torque_off_and_close()

    def _hold(self) -> None:
        rk = RateKeeper(self.rate, spin_s=self.opt.spin_s)
        t_end = time.monotonic() + self.opt.hold_s
        while True:
            tick = rk.wait()
            now = tick.t_start
            if now >= t_end:
                break
            states = []
            for link in self.links:
                st = link.state()
                if st is None or link.link_lost.is_set() or st.mode in (ArmMode.ESTOP, ArmMode.DISABLED):
                    return  # nobody to hold: go straight to torque off
                states.append(st)
            measured = self.measure(states)
            command = self.safety.hold(measured, now)
            velocity = self.safety.velocity
            sent = False
            if not self.opt.dry_run:
                try:
                    self._send(command, velocity)
                    sent = True
                except BridgeError as e:
                    log.warning("hold: %s", e)
                    return
            if self.virtual is not None:
                self.virtual.position = command.copy()
            record = TickRecord(
                tick.index,
                now,
                "stopping",
                -1,
                None,
                command,
                measured,
                sent,
                tick.missed,
                -1,
                velocity,
                self.safety.flags,
            )
            self._notify("on_tick", record)

    def _torque_off_and_close(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        for link in self.links:
            st = None
            with contextlib.suppress(Exception):
                st = link.state()
            torque_on = st is None or st.mode not in (ArmMode.DISABLED, ArmMode.ESTOP)
            if not self.opt.dry_run and torque_on:
                try:
                    link.disable()
                    self.event("torque_off", f"{link.port}: torque off")
                except (BridgeError, OSError) as e:
                    self.errors.append(f"{link.port}: disable failed: {e}")
                    log.error("%s: could not turn torque off: %s (the firmware watchdog will)", link.port, e)
            with contextlib.suppress(Exception):
                link.close()

    def _stop_cameras(self) -> None:
        if not self.rig.stop_cameras:
            return
        for cam in self.cameras:
            with contextlib.suppress(Exception):
                cam.stop()

    # ---------------------------------------------------------------------------------------------- statistics

    def stats(self, reason: StopReason) -> dict[str, Any]:
        stages = {s: summarize(v) for s, v in self.stage_times.items()}
        gate = self.policy.gate if hasattr(self, "policy") else None
        out: dict[str, Any] = {
            "reason": {"kind": reason.kind, "message": reason.message, "clean": reason.clean},
            "bundle": str(self.bundle.root),
            "backend": self.bundle.backend,
            "task": self.opt.task,
            "rig": self.rig.name,
            "dry_run": self.opt.dry_run,
            "control_rate_hz": self.rate,
            "control_priority": getattr(self, "realtime", "not started"),
            "loop": self.period.summary(),
            "startup_s": {
                "first_setpoint": None if self.t_first_setpoint is None else self.t_first_setpoint - self.t_launch,
                "first_policy_setpoint": None
                if self.t_first_chunk_setpoint is None
                else self.t_first_chunk_setpoint - self.t_launch,
            },
            "inference_ms": stages,
            "chunk_latency_ms": summarize(self.chunk_latency),
            "frame_to_setpoint_ms": summarize(self.frame_to_setpoint),
            "chunks": {
                "made": self.chunks_made,
                "adopted": self.chunks_adopted,
                "stale": self.chunks_stale,
                "rejected_nonfinite": self.chunks_nonfinite,
                "rejected_out_of_range": self.chunks_out_of_range,
                "stale_steps_skipped": self.scheduler.stale_steps if hasattr(self, "scheduler") else 0,
            },
            "gate": {"counts": dict(gate.counts), "switches": gate.switches} if gate else {},
            "setpoints_sent": self.setpoints_sent,
            "safety": self.safety.counters.to_dict() if hasattr(self, "safety") else {},
            "links": {link.port: _link_stats(link) for link in self.links},
            "cameras": {c.spec.name: asdict(c.health()) for c in self.cameras},
            "errors": list(self.errors),
        }
        return out


def _restore_priorities(changed: list[tuple[int, int, int]]) -> None:
    for tid, policy, prio in changed:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(tid, policy, os.sched_param(prio))


def _link_stats(link: ArmClient) -> dict[str, Any]:
    try:
        return {k: v for k, v in asdict(link.stats).items() if v is not None}
    except Exception as e:  # a closed link may not answer
        return {"error": str(e)}


def _describe_exception(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def write_stats(path: Path, summary: RunSummary) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(summary.stats)
    data["duration_s"] = summary.duration_s
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=json_default) + "\n")
    tmp.replace(path)


def run_policy(
    bundle: LoadedBundle,
    rig: Rig,
    options: RunOptions,
    observers: Sequence[RunObserver] = (),
    *,
    policy: Policy | None = None,
) -> RunSummary:
    """Run `options.task` on `rig` until a stop; see the module docstring. Always returns with the arm safe.

    Raises (after closing what it opened) only when the run could not start: a bad port, a firmware that does
    not match the bundle, an arm outside its limits, a camera that does not match. Everything after the start
    ends in a `RunSummary` whose `reason` says why it stopped. `policy`: a ready `Policy` over `bundle` (default:
    one for `options.task` seeded with `options.seed`).
    """
    return _Session(bundle, rig, options, observers, policy).run()
