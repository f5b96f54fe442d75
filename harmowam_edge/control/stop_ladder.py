"""The controlled stop every exit path ends in: e-stop where the state stream is lost, else brake and hold for
`hold_s`, then torque off and close the links."""

from __future__ import annotations

import contextlib
import logging
import time

from firmware_bridge import ArmMode, BridgeError
from harmowam_edge.control.measurement import MeasurementGuard, measurement_times
from harmowam_edge.control.run_context import RunContext
from harmowam_edge.control.run_types import (
    FIRMWARE_ESTOP,
    FIRMWARE_FAULT,
    INTERNAL_ERROR,
    LINK_LOST,
    MEASUREMENT_FAULT,
    STATE_STALE,
    TickRecord,
)
from harmowam_edge.control.timing import RateKeeper

log = logging.getLogger("harmowam_edge.run")


class StopLadder:
    """`shutdown()` once, from the control thread (or the supervisor if that never started or got stuck)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.guard: MeasurementGuard | None = None  # the control tick's, once the session has one
        self._shut = False
        self._closed = False

    def shutdown(self, started: bool) -> None:
        """Hold (brake, then stay) for hold_s, then torque off and close. Safe to call once from any thread."""
        if self._shut:
            return
        self._shut = True
        ctx = self.ctx
        reason = ctx.stop.reason
        kind = reason.kind if reason else INTERNAL_ERROR
        ctx.status = "stopping"
        if reason is not None:
            ctx.event("stop", f"{kind}: {reason.message}")
        can_talk = True
        if kind in (STATE_STALE, LINK_LOST):
            # Lost state stream → e-stop (design §4), best effort: the firmware may still hear us. If it does not,
            # its own watchdog holds and then turns torque off.
            can_talk = False
            for link in ctx.links:
                try:
                    link.estop()
                    ctx.event("estop", f"e-stop sent to {link.port}")
                except (BridgeError, OSError) as e:
                    ctx.event(
                        "estop", f"e-stop to {link.port} not acknowledged ({e}); the firmware watchdog stops the arm"
                    )
        if started and can_talk and kind not in (FIRMWARE_ESTOP, FIRMWARE_FAULT) and ctx.info is not None:
            # After a measurement fault the measurements are not trusted: the hold brakes on the commands alone.
            self.hold(trust_measurement=kind != MEASUREMENT_FAULT)
        self.torque_off_and_close()

    def hold(self, trust_measurement: bool = True) -> None:
        ctx = self.ctx
        safety = ctx.safety
        assert safety is not None
        rk = RateKeeper(ctx.rate, spin_s=ctx.opt.spin_s)
        t_end = time.monotonic() + ctx.opt.hold_s
        while True:
            tick = rk.wait()
            now = tick.t_start
            if now >= t_end:
                break
            states = []
            for link in ctx.links:
                st = link.state()
                if st is None or link.link_lost.is_set() or st.mode in (ArmMode.ESTOP, ArmMode.DISABLED):
                    return  # nobody to hold: go straight to torque off
                states.append(st)
            measured = ctx.measure(states)
            if trust_measurement and self.guard is not None:
                t = now if ctx.virtual is not None else measurement_times(states, ctx.manifest.action_space.arms)
                why = self.guard.check(measured, t)
                if why is not None:
                    trust_measurement = False  # from here on, brake on the commands alone
                    ctx.event("measurement_fault", f"while holding: {why}")
            command = safety.hold(measured if trust_measurement else None, now)
            velocity = safety.velocity
            sent = False
            if not ctx.opt.dry_run:
                try:
                    ctx.send(command, velocity)
                    sent = True
                except BridgeError as e:
                    log.warning("hold: %s", e)
                    return
            if ctx.virtual is not None:
                ctx.virtual.position = command.copy()
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
                safety.flags,
            )
            ctx.notify("on_tick", record)

    def torque_off_and_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        ctx = self.ctx
        for link in ctx.links:
            st = None
            with contextlib.suppress(Exception):
                st = link.state()
            torque_on = st is None or st.mode not in (ArmMode.DISABLED, ArmMode.ESTOP)
            if not ctx.opt.dry_run and torque_on:
                try:
                    link.disable()
                    ctx.event("torque_off", f"{link.port}: torque off")
                except (BridgeError, OSError) as e:
                    ctx.errors.append(f"{link.port}: disable failed: {e}")
                    log.error("%s: could not turn torque off: %s (the firmware watchdog will)", link.port, e)
            with contextlib.suppress(Exception):
                link.close()
