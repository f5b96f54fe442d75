"""The control thread: every tick read and check the arms' state, adopt a new chunk, sample the trajectory, apply
the safety filter, send the setpoints; at the end, the stop ladder."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from firmware_bridge import ArmMode, ArmState, FaultBits
from harmowam_edge.cameras.frames import Frame
from harmowam_edge.control.measurement import MeasurementGuard, measurement_times
from harmowam_edge.control.priority import raise_thread_priority
from harmowam_edge.control.run_context import RunContext, describe_exception, describe_faults
from harmowam_edge.control.run_types import (
    DURATION,
    FIRMWARE_ESTOP,
    FIRMWARE_FAULT,
    INTERNAL_ERROR,
    LINK_LOST,
    MEASUREMENT_FAULT,
    NONFINITE_ACTION,
    STATE_STALE,
    TickRecord,
)
from harmowam_edge.control.stop_ladder import StopLadder
from harmowam_edge.control.timing import RateKeeper
from harmowam_edge.policy.policy import ActionChunk

log = logging.getLogger("harmowam_edge.run")


class ControlLoop:
    """The control thread's body (`run`); the safety filter, scheduler and guard are set up by the session."""

    def __init__(self, ctx: RunContext, ladder: StopLadder, guard: MeasurementGuard) -> None:
        self.ctx = ctx
        self.ladder = ladder
        self.guard = guard
        self._pending_latency: dict[int, float] = {}  # chunk id → frame capture time, until its first setpoint
        self.chunk_index: dict[int, int] = {}  # scheduler chunk id → policy step index

    def run(self) -> None:
        ctx = self.ctx
        ctx.realtime = raise_thread_priority(ctx.opt.realtime_priority)
        try:
            self._loop()
        except Exception as e:
            log.exception("control loop failed")
            ctx.stop.request(INTERNAL_ERROR, f"control loop failed: {describe_exception(e)}")
        finally:
            try:
                self.ladder.shutdown(started=True)
            except Exception:
                log.exception("shutdown failed: disabling the arms")
                self.ladder.torque_off_and_close()

    def read_states(self, now: float) -> list[ArmState] | None:
        """Every arm's newest state, or None after requesting the stop one of them calls for."""
        ctx = self.ctx
        safety = ctx.safety
        assert safety is not None
        states: list[ArmState] = []
        for link in ctx.links:
            if link.link_lost.is_set():
                ctx.stop.request(LINK_LOST, f"arm link on {link.port} lost: no state from the firmware")
                return None
            st = link.state()
            if st is None or safety.state_is_stale(st.t_received, now):
                age = "never" if st is None else f"{(now - st.t_received) * 1000:.0f} ms ago"
                ctx.stop.request(STATE_STALE, f"arm state from {link.port} is stale (last {age}): e-stop")
                return None
            if st.mode == ArmMode.ESTOP or st.fault_bits & (FaultBits.ESTOP_LATCHED | FaultBits.HARDWARE_ESTOP):
                ctx.stop.request(FIRMWARE_ESTOP, f"firmware e-stop on {link.port} ({describe_faults(st.fault_bits)})")
                return None
            if st.fault_bits & FaultBits.DRIVE_FAULT:
                ctx.stop.request(FIRMWARE_FAULT, f"joint driver fault on {link.port}")
                return None
            if not ctx.opt.dry_run and st.mode == ArmMode.DISABLED:
                ctx.stop.request(
                    FIRMWARE_FAULT,
                    f"the firmware on {link.port} turned torque off ({describe_faults(st.fault_bits)})",
                )
                return None
            states.append(st)
        return states

    def measure_checked(self, states: Sequence[ArmState], now: float) -> np.ndarray | None:
        """The measured vector if it passes the guard; else None after requesting the stop that names it."""
        ctx = self.ctx
        measured = ctx.measure(states)
        t = now if ctx.virtual is not None else measurement_times(states, ctx.manifest.action_space.arms)
        why = self.guard.check(measured, t)
        if why is not None:
            ctx.stop.request(MEASUREMENT_FAULT, why)
            return None
        ctx.checked_measurement = measured
        return measured

    def _adopt(self, now: float) -> None:
        ctx = self.ctx
        item = ctx.mailbox.take()
        if item is None:
            return
        try:
            self._check_and_schedule(*item, now)
        finally:
            assert ctx.scheduler is not None
            ctx.due_at = ctx.scheduler.due_time()
            ctx.mailbox.done()

    def _check_and_schedule(self, chunk: ActionChunk, frames: Sequence[Frame], now: float) -> None:
        ctx, c = self.ctx, self.ctx.counters
        assert ctx.safety is not None
        assert ctx.scheduler is not None
        a = chunk.actions
        if not np.isfinite(a).all():
            c.chunks_nonfinite += 1
            msg = f"chunk {chunk.index}: non-finite actions (NaN/inf) rejected"
            ctx.event("chunk_rejected", msg)
            if c.chunks_nonfinite > ctx.opt.max_nonfinite_chunks:
                ctx.stop.request(NONFINITE_ACTION, f"the policy produced non-finite actions (chunk {chunk.index})")
            return
        for k in range(a.shape[0]):
            why = ctx.safety.check_target(a[k])
            if why is not None:
                c.chunks_out_of_range += 1
                ctx.event("chunk_rejected", f"chunk {chunk.index}, action {k}: {why}")
                return
        acc = ctx.scheduler.add_chunk(a, chunk.t_obs, now)
        ctx.scheduler.record_latency(chunk.latency)
        c.chunk_latency.append(chunk.latency)
        if acc.accepted:
            c.chunks_adopted += 1
            self._pending_latency[acc.chunk_id] = min(f.t_capture for f in frames)
            self.chunk_index[acc.chunk_id] = chunk.index
            self.chunk_index.pop(acc.chunk_id - 64, None)
        else:
            c.chunks_stale += 1
            ctx.event("chunk_stale", f"chunk {chunk.index}: {acc.reason}")

    def _loop(self) -> None:
        ctx, c = self.ctx, self.ctx.counters
        safety, scheduler = ctx.safety, ctx.scheduler
        assert safety is not None
        assert scheduler is not None
        rk = RateKeeper(ctx.rate, spin_s=ctx.opt.spin_s)
        deadline = None if ctx.opt.duration_s is None else time.monotonic() + ctx.opt.duration_s
        dry = ctx.opt.dry_run
        while not ctx.stop.is_set():
            tick = rk.wait()
            now = tick.t_start
            c.period.tick(now, tick.t_due, tick.missed)
            if ctx.t_loop_start is None:
                ctx.t_loop_start = now
            ctx.t_loop_end = now
            if tick.missed:
                # The stall spans from the first missed tick's due time to now.
                if ctx.inferring_since(tick.t_due - tick.missed / ctx.rate):
                    c.missed_while_inferring += tick.missed
                else:
                    c.missed_while_idle += tick.missed
            if deadline is not None and now >= deadline:
                ctx.stop.request(DURATION, f"duration reached ({ctx.opt.duration_s:g} s)")
                break
            states = self.read_states(now)
            if states is None:
                break
            measured = self.measure_checked(states, now)
            if measured is None:
                break
            self._adopt(now)
            if ctx.stop.is_set():
                break
            smp = scheduler.sample(now)
            command = safety.step(smp.target, measured, now)
            velocity = safety.velocity
            sent = False
            if not dry:
                ctx.send(command, velocity)
                sent = True
                c.setpoints_sent += 1
            if ctx.virtual is not None:
                ctx.virtual.position = command.copy()
            if c.t_first_setpoint is None:
                c.t_first_setpoint = now
            t_cap = self._pending_latency.pop(smp.chunk_id, None) if smp.chunk_id >= 0 else None
            if t_cap is not None:
                c.frame_to_setpoint.append(now - t_cap)
                if c.t_first_chunk_setpoint is None:
                    c.t_first_chunk_setpoint = now
            ctx.status = smp.status
            c.ticks += 1
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
                self.chunk_index.get(smp.chunk_id, -1),
                velocity,
                safety.flags,
            )
            ctx.notify("on_tick", record)
