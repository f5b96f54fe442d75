"""One run's lifecycle: open and check the arms and cameras, enable, start the control and inference threads,
supervise (signals, status line, camera health), join, and summarise. Whatever happens, the stop ladder runs."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from firmware_bridge import ArmClient, ArmLink, ArmMode, ArmState, BridgeError, FaultBits
from harmowam_edge.bundle.loader import LoadedBundle
from harmowam_edge.control.arms import firmware_limits
from harmowam_edge.control.control_tick import ControlLoop
from harmowam_edge.control.inference_worker import InferenceWorker
from harmowam_edge.control.measurement import MeasurementGuard, arm_labels, measurement_times
from harmowam_edge.control.priority import boost_link_readers, restore_priorities
from harmowam_edge.control.run_context import RunContext, VirtualArm, describe_exception, describe_faults
from harmowam_edge.control.run_stats import run_stats, status_line, write_stats
from harmowam_edge.control.run_types import (
    CAMERA_LOST,
    CAMERA_STALL,
    INTERNAL_ERROR,
    INTERRUPTED,
    RECORDING_ENDED,
    Rig,
    RunInfo,
    RunObserver,
    RunOptions,
    RunSummary,
    StopReason,
)
from harmowam_edge.control.safety import JointLimits, SafetyConfig, SafetyFilter
from harmowam_edge.control.scheduler import ChunkScheduler, SchedulerConfig
from harmowam_edge.control.stop_ladder import StopLadder
from harmowam_edge.errors import ConfigError, HarmowamError, SafetyError
from harmowam_edge.policy.policy import Policy

log = logging.getLogger("harmowam_edge.run")


class Session:
    def __init__(
        self,
        bundle: LoadedBundle,
        rig: Rig,
        options: RunOptions,
        observers: Sequence[RunObserver],
        policy: Policy | None = None,
    ) -> None:
        self._policy = policy
        cfg = rig.config
        # `is not None`: a rate of 0 is refused below, not replaced by the default.
        rate = (
            options.control_rate_hz if options.control_rate_hz is not None else (cfg.control_rate_hz if cfg else 200.0)
        )
        if not 10.0 <= rate <= 2000.0:
            raise ConfigError(f"control rate: expected 10..2000 Hz, got {rate}")
        self.ctx = RunContext(bundle, rig, options, observers, rate)
        self.ladder = StopLadder(self.ctx)
        self._startup_error: BaseException | None = None

    # ---------------------------------------------------------------------------------------------- start-up

    def open_arms(self, state_timeout_s: float) -> None:
        ctx = self.ctx
        arms = ctx.manifest.action_space.arms
        cfg = ctx.rig.config
        if not ctx.rig.arms:
            if not ctx.opt.dry_run:
                raise ConfigError("no arm given: pass a port (--port / rig config arms) or use --dry-run")
            return
        if len(ctx.rig.arms) != len(arms):
            raise ConfigError(
                f"the bundle drives {len(arms)} arm(s) ({', '.join(a.name for a in arms)}), "
                f"the rig gives {len(ctx.rig.arms)}"
            )
        for i, a in enumerate(ctx.rig.arms):
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
                ctx.opened.append(True)
            else:
                link = a
                ctx.opened.append(False)
            ctx.links.append(link)

    def compose_limits(self) -> JointLimits:
        ctx = self.ctx
        space = ctx.manifest.action_space
        limits = JointLimits.from_action_space(space)
        if ctx.links:
            fw = JointLimits.concat(
                [firmware_limits(link.info, spec, link.port) for link, spec in zip(ctx.links, space.arms, strict=True)],
                source="firmware handshake",
            )
            limits = JointLimits.tightest(limits, fw)
        cfg = ctx.rig.config
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
        ctx = self.ctx
        by_name = {c.spec.name: c for c in ctx.rig.cameras}
        for spec in ctx.manifest.cameras:
            cam = by_name.get(spec.name)
            if cam is None:
                if len(ctx.rig.cameras) == len(ctx.manifest.cameras) == 1:
                    cam = ctx.rig.cameras[0]  # one camera: its name does not have to match
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
            ctx.cameras.append(cam)
        for cam in ctx.cameras:
            cam.start()

    def wait_states(self, timeout: float = 2.0) -> list[ArmState]:
        states = []
        for link in self.ctx.links:
            st = link.state() or link.wait_state(timeout)
            if st is None:
                raise BridgeError(f"{link.port}: no state from the firmware within {timeout:.1f} s")
            states.append(st)
        return states

    def enable_arms(self, states: list[ArmState]) -> None:
        for link, st in zip(self.ctx.links, states, strict=True):
            if st.mode == ArmMode.ESTOP:
                raise SafetyError(
                    f"{link.port}: the arm is e-stopped ({describe_faults(st.fault_bits)}): release the e-stop "
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

    def _prepare(self) -> tuple[ControlLoop, SafetyConfig, JointLimits, float]:
        """Everything up to enabling the arms; raises (nothing moved yet) on a mistake."""
        ctx = self.ctx
        cfg = ctx.rig.config
        safety_cfg = ctx.opt.safety or (cfg.safety_config() if cfg else SafetyConfig())
        safety_cfg = SafetyConfig(**{**asdict(safety_cfg), "control_period_s": 1.0 / ctx.rate})
        self.open_arms(safety_cfg.state_timeout_s)
        limits = self.compose_limits()
        space = ctx.manifest.action_space
        where, units, jump_checked = arm_labels(space.arms, [link.port for link in ctx.links])
        grippers = [d.kind == "gripper" for d in space.dims]
        ctx.safety = SafetyFilter(limits, safety_cfg, valid=JointLimits.from_action_space(space), grippers=grippers)
        guard = MeasurementGuard(limits, safety_cfg, where, units, jump_checked)
        p = ctx.manifest.policy
        ctx.scheduler = ChunkScheduler(
            SchedulerConfig(
                p.action_rate_hz,
                p.chunk_size,
                crossfade_s=ctx.opt.crossfade_s,
                replan_every_steps=ctx.opt.replan_every_steps,
            )
        )
        ctx.policy = self._policy or Policy(ctx.bundle, ctx.opt.task, seed=ctx.opt.seed)
        self.open_cameras()
        states = self.wait_states()
        if not ctx.links:
            ctx.virtual = VirtualArm(np.clip(np.zeros(limits.size), limits.lower, limits.upper))
        measured = ctx.measure(states)
        t_safety = time.monotonic()
        ctx.safety.start(measured, t_safety)  # refuses an arm outside its limits (or not finite)
        guard.start(measured, t_safety if ctx.virtual is not None else measurement_times(states, space.arms))
        ctx.checked_measurement = measured
        self.ladder.guard = guard
        if not ctx.opt.dry_run:
            self.enable_arms(states)
        return ControlLoop(ctx, self.ladder, guard), safety_cfg, limits, t_safety

    # ---------------------------------------------------------------------------------------------- the run

    def run(self) -> RunSummary:
        ctx = self.ctx
        t0 = time.monotonic()
        control: threading.Thread | None = None
        inference: threading.Thread | None = None
        old_switch = sys.getswitchinterval()
        restore_signals: list[tuple[int, Any]] = []
        try:
            loop, safety_cfg, limits, t_safety = self._prepare()
            assert ctx.scheduler is not None
            p = ctx.manifest.policy
            ctx.info = RunInfo(
                bundle=ctx.bundle.root,
                task=ctx.opt.task,
                rig=ctx.rig.name,
                ports=tuple(link.port for link in ctx.links),
                firmware=tuple(link.info for link in ctx.links),
                joint_names=limits.names,
                limits=limits,
                control_rate_hz=ctx.rate,
                action_rate_hz=p.action_rate_hz,
                chunk_size=p.chunk_size,
                cameras=tuple(c.spec.name for c in ctx.cameras),
                dry_run=ctx.opt.dry_run,
                backend=ctx.bundle.backend,
                t_start=time.monotonic(),
                safety=safety_cfg,
                scheduler=ctx.scheduler.config,
                t_safety_start=t_safety,
            )
            ctx.notify("on_start", ctx.info)
            if ctx.opt.handle_signals and threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, signal.SIGTERM):
                    restore_signals.append((sig, signal.signal(sig, self._on_signal)))
            # A thread waking from sleep needs the GIL: hand it over sooner than the default 5 ms.
            sys.setswitchinterval(min(old_switch, 0.0005))
            control = threading.Thread(target=loop.run, name="control", daemon=True)
            inference = threading.Thread(target=InferenceWorker(ctx).run, name="inference", daemon=True)
            control.start()
            inference.start()
            boosted = boost_link_readers(ctx.opt.realtime_priority)
            try:
                self._supervise()
            finally:
                restore_priorities(boosted)
        except BaseException as e:
            # Start-up failures and anything unexpected in the supervisor end in the same safe stop.
            kind = INTERRUPTED if isinstance(e, KeyboardInterrupt) else INTERNAL_ERROR
            ctx.stop.request(kind, describe_exception(e) if kind != INTERRUPTED else "interrupted (Ctrl-C)")
            if control is None:
                self.ladder.shutdown(started=False)
            if not isinstance(e, (HarmowamError, BridgeError, KeyboardInterrupt)):
                log.exception("run failed")
            self._startup_error = e
        finally:
            if control is not None:
                control.join(timeout=ctx.opt.hold_s + 10.0)
                if control.is_alive():  # the control thread is stuck: last resort, torque off from here
                    log.error("control thread did not finish: disabling the arms from the supervisor")
                    self.ladder.torque_off_and_close()
            if inference is not None:
                inference.join(timeout=5.0)
            sys.setswitchinterval(old_switch)
            for signum, handler in restore_signals:
                signal.signal(signum, handler)
            self._stop_cameras()
        reason = ctx.stop.reason or StopReason(INTERNAL_ERROR, "stopped without a reason", time.monotonic())
        summary = RunSummary(reason, ctx.info, time.monotonic() - t0, run_stats(ctx, reason))
        if ctx.opt.stats_path is not None:
            write_stats(ctx.opt.stats_path, summary)
        ctx.notify("on_end", summary)
        err = self._startup_error
        if err is not None and ctx.info is None:
            # Nothing ran: a user mistake (bad port, wrong firmware, arm outside its limits) is raised as such.
            raise err
        return summary

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = "Ctrl-C" if signum == signal.SIGINT else str(signal.Signals(signum).name)
        if not self.ctx.stop.request(INTERRUPTED, f"interrupted ({name})"):
            log.warning("%s again: already stopping (hold, then torque off)", name)

    def _stop_cameras(self) -> None:
        if not self.ctx.rig.stop_cameras:
            return
        for cam in self.ctx.cameras:
            try:
                cam.stop()
            except Exception:  # best effort: the arm is already safe
                log.debug("camera %s: stop failed", cam.spec.name, exc_info=True)

    # ---------------------------------------------------------------------------------------------- supervisor

    def _supervise(self) -> None:
        ctx = self.ctx
        interval = ctx.opt.status_interval_s
        next_status = time.monotonic() + interval
        while not ctx.stop.event.wait(0.05):
            now = time.monotonic()
            self._check_cameras(now)
            if ctx.opt.status is not None and now >= next_status:
                next_status = now + interval
                ctx.opt.status(status_line(ctx, now))
        if ctx.opt.status is not None:
            ctx.opt.status(status_line(ctx, time.monotonic()))

    def _check_cameras(self, now: float) -> None:
        ctx = self.ctx
        for cam in ctx.cameras:
            h = cam.health()
            if h.failed and h.extra.get("ended"):
                ctx.stop.request(RECORDING_ENDED, f"camera {cam.spec.name!r}: {h.last_error or 'recording ended'}")
                return
            if h.failed:
                ctx.stop.request(CAMERA_LOST, f"camera {cam.spec.name!r} lost: {h.last_error or 'failed'}")
                return
            f = cam.latest()
            t_last = f.t_received if f is not None else (ctx.info.t_start if ctx.info else now)
            if now - t_last > ctx.opt.camera_stall_s:
                ctx.stop.request(
                    CAMERA_STALL,
                    f"camera {cam.spec.name!r} stalled: no frame for {now - t_last:.1f} s"
                    + (f" ({h.timeouts} timeouts, {h.restarts} restarts)" if h.timeouts else ""),
                )
                return
