"""The firmware's behaviour in Python (the twin of firmware/hwl_firmware.c): bytes in → frames out, pure.

No I/O and no clock: every call takes `now` (seconds), so tests drive it with a fake clock and the simulator
with `time.monotonic()`. Modes, watchdog, limits, sessions and replies follow PROTOCOL.md §7–§9.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from firmware_bridge import protocol as p
from firmware_bridge.framing import FrameDecoder
from firmware_bridge.limiter import step_reference, stopping_point
from firmware_bridge.plant import Plant, PlantState
from firmware_bridge.protocol import ArmMode, FaultBits, MsgType, NackReason
from firmware_bridge.sim_config import SimArmConfig

_MAX_CATCH_UP_STEPS = 50


@dataclass(frozen=True)
class FirmwareStatus:
    """A snapshot of the simulated firmware for tests and the CLI."""

    mode: ArmMode
    session_open: bool
    torque_on: bool
    fault_bits: FaultBits
    reference: tuple[float, ...]
    target: tuple[float, ...]
    gripper_reference: float | None
    last_command_seq: int
    boot_id: int
    frames_rx: int
    frames_tx: int
    rx_errors: int
    commands: int
    commands_ignored: int
    commands_rejected: int


class FirmwareCore:
    """One arm's firmware: protocol handling, session, modes, watchdog, reference limiter, STATE stream."""

    def __init__(self, config: SimArmConfig, plant: Plant, now: float, boot_id: int | None = None) -> None:
        self.config = config
        self.plant = plant
        n = config.joint_count
        g = 1 if config.has_gripper else 0
        self._n = n
        self._lo = np.array(config.lower + ((config.gripper_min,) if g else ()), dtype=np.float64)
        self._hi = np.array(config.upper + ((config.gripper_max,) if g else ()), dtype=np.float64)
        self._vmax = np.array(config.velocity_limits + ((config.gripper_max_velocity,) if g else ()))
        self._amax = np.array(config.acceleration_limits + ((config.gripper_max_acceleration,) if g else ()))
        self._dt = 1.0 / config.control_rate_hz
        self._state_period = 1.0 / config.state_rate_hz
        self.hardware_estop = False
        self.drive_fault = False
        self._boot(now, boot_id)

    # ---------------------------------------------------------------------------------------------- lifecycle

    def _boot(self, now: float, boot_id: int | None) -> None:
        self.boot_time = now
        self.boot_id = random.getrandbits(32) if boot_id is None else boot_id & 0xFFFFFFFF
        self.mode = ArmMode.DISABLED
        self.session_open = False
        self._torque = False
        self.plant.set_torque(False)
        self._frames = FrameDecoder()
        self._bad_frames = 0
        self._tx_seq = 0
        self.last_command_seq = 0
        self._last_feed = now
        self._t_ctrl = now
        self._next_state = now
        self._events = FaultBits.NONE
        self._sample: tuple[float, PlantState] | None = None
        self._watchdog_off_latched = False
        self._rx_errors_seen = 0
        self.frames_rx = 0
        self.frames_tx = 0
        self.commands = 0
        self.commands_ignored = 0
        self.commands_rejected = 0
        self._follow_measured()
        self._target = self._ref_p.copy()
        self._vff = np.zeros_like(self._ref_p)
        self._t_target = now

    def reboot(self, now: float, boot_id: int | None = None) -> None:
        """A power cycle of the controller: everything resets, the joints stay where they are."""
        self._boot(now, boot_id)

    # ---------------------------------------------------------------------------------------------- helpers

    def _measured(self) -> np.ndarray:
        m = self.plant.measure()
        if self.config.has_gripper:
            return np.append(np.asarray(m.positions, dtype=np.float64), m.gripper)
        return np.array(m.positions, dtype=np.float64)

    def _follow_measured(self) -> None:
        self._ref_p = self._measured()
        self._ref_v = np.zeros_like(self._ref_p)

    def _set_torque(self, on: bool) -> None:
        if on != self._torque:
            self._torque = on
            self.plant.set_torque(on)

    def _disable(self, mode: ArmMode = ArmMode.DISABLED) -> None:
        self._set_torque(False)
        self.mode = mode
        self._follow_measured()

    def _frame(self, msg: p.Message) -> bytes:
        self._tx_seq = (self._tx_seq + 1) & 0xFFFFFFFF
        self.frames_tx += 1
        return p.encode(msg, seq=self._tx_seq, arm=self.config.arm)

    def _conditions(self) -> FaultBits:
        bits = self._events
        if self.mode is ArmMode.HOLD:
            bits |= FaultBits.WATCHDOG_HOLD
        if self._watchdog_off_latched:
            bits |= FaultBits.WATCHDOG_TORQUE_OFF
        if self.mode is ArmMode.ESTOP:
            bits |= FaultBits.ESTOP_LATCHED
        if self.hardware_estop:
            bits |= FaultBits.HARDWARE_ESTOP
        if self.drive_fault:
            bits |= FaultBits.DRIVE_FAULT
        if not self.session_open:
            bits |= FaultBits.NO_SESSION
        return bits

    def _state(self, now: float, reply: bool) -> bytes:
        # One encoder sample per firmware instant: a reply and a periodic STATE stamped with the same time carry
        # the same positions. The simulated plant moves on its own physics thread, which catches up in bursts
        # after a stall; two reads at one time stamp then showed the host a jump "in 0.0 ms", a measurement fault.
        if self._sample is None or self._sample[0] != now:
            self._sample = (now, self.plant.measure())
        m = self._sample[1]
        msg = p.State(
            firmware_time_us=int((now - self.boot_time) * 1e6),
            last_command_seq=self.last_command_seq,
            fault_bits=int(self._conditions()),
            mode=int(self.mode),
            positions=tuple(np.asarray(m.positions, dtype=np.float64).tolist()),
            velocities=tuple(np.asarray(m.velocities, dtype=np.float64).tolist()),
            effort=None if m.effort is None else tuple(np.asarray(m.effort, dtype=np.float64).tolist()),
            gripper=float(m.gripper) if self.config.has_gripper else None,
            rx_errors=self._rx_errors_seen & 0xFFFF,
            reply=reply,
        )
        self._events = FaultBits.NONE
        # a reply postpones the timer by 1.5 periods: a host streaming at the state rate with some jitter gets
        # exactly one STATE per COMMAND, and the timer takes over once it stops
        self._next_state = now + (1.5 if reply else 1.0) * self._state_period
        return self._frame(msg)

    def hello_ack(self, request_seq: int) -> p.HelloAck:
        c = self.config
        caps = p.Capability.VELOCITY_FEEDFORWARD | p.Capability.HARDWARE_ESTOP
        if c.has_gripper:
            caps |= p.Capability.GRIPPER
        if self.plant.measure().effort is not None:
            caps |= p.Capability.EFFORT
        grip = (c.gripper_min, c.gripper_max, c.gripper_max_velocity, c.gripper_max_acceleration)
        return p.HelloAck(
            major=p.PROTOCOL_MAJOR,
            minor=p.PROTOCOL_MINOR,
            schema_hash=p.SCHEMA_HASH,
            request_seq=request_seq,
            boot_id=self.boot_id,
            firmware_id=c.firmware_id,
            firmware_version=c.firmware_version,
            joint_count=c.joint_count,
            arms_served=1 << c.arm,
            capabilities=int(caps),
            state_rate_hz=c.state_rate_hz,
            watchdog_hold_ms=round(c.watchdog_hold_s * 1000),
            watchdog_off_ms=round(c.watchdog_off_s * 1000),
            mode=int(self.mode),
            gripper_limits=grip if c.has_gripper else (0.0, 0.0, 0.0, 0.0),
            position_min=c.lower,
            position_max=c.upper,
            max_velocity=c.velocity_limits,
            max_acceleration=c.acceleration_limits,
        )

    # ---------------------------------------------------------------------------------------------- time

    def next_deadline(self) -> float:
        """When `tick` next has work: the next control step or STATE, whichever comes first."""
        return min(self._t_ctrl + self._dt, self._next_state)

    def _control_step(self, t: float, dt: float) -> None:
        if self.hardware_estop and self.mode is not ArmMode.ESTOP:
            self._disable(ArmMode.ESTOP)
        if self.mode in (ArmMode.ENABLED, ArmMode.HOLD):
            if self.drive_fault:
                self._disable()
                return
            quiet = t - self._last_feed
            if quiet > self.config.watchdog_off_s:
                self._watchdog_off_latched = True
                self._disable()
                return
            if self.mode is ArmMode.ENABLED and quiet > self.config.watchdog_hold_s:
                self.mode = ArmMode.HOLD
                self._target = stopping_point(self._ref_p, self._ref_v, self._amax, self._lo, self._hi, self._dt)
                self._vff[:] = 0.0
            target = self._target
            if self.mode is ArmMode.ENABLED and self._vff.any():
                ahead = min(t - self._t_target, self.config.watchdog_hold_s)
                target = np.clip(self._target + self._vff * ahead, self._lo, self._hi)
            ev = step_reference(self._ref_p, self._ref_v, target, self._vmax, self._amax, self._lo, self._hi, dt)
            if ev.velocity_limited:
                self._events |= FaultBits.VELOCITY_LIMITED
            if ev.acceleration_limited:
                self._events |= FaultBits.ACCELERATION_LIMITED
            n = self._n
            gripper = float(self._ref_p[n]) if self.config.has_gripper else 0.0
            self.plant.command(self._ref_p[:n].copy(), self._ref_v[:n].copy(), gripper)
        else:
            self._follow_measured()

    def _advance(self, now: float) -> None:
        steps = 0
        while self._t_ctrl + self._dt <= now:
            if steps == _MAX_CATCH_UP_STEPS:
                # the process stalled: one long step (still within the limits) instead of hundreds of short ones
                self._control_step(now, now - self._t_ctrl)
                self._t_ctrl = now
                break
            self._t_ctrl += self._dt
            self._control_step(self._t_ctrl, self._dt)
            steps += 1

    def tick(self, now: float) -> list[bytes]:
        """Run the control steps due by `now`; return the periodic STATE frame if one is due."""
        self._advance(now)
        if now >= self._next_state:
            return [self._state(now, reply=False)]
        return []

    # ---------------------------------------------------------------------------------------------- receive

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """Bytes from the host → reply frames (HELLO_ACK, ACK/NACK, STATE in reply to COMMAND)."""
        self._advance(now)
        out: list[bytes] = []
        fc = self._frames.counters
        for content in self._frames.feed(data):
            try:
                hdr, msg = p.decode(content)
            except p.ProtocolError as e:
                out.extend(self._reject(content, e))
                continue
            self.frames_rx += 1
            out.extend(self._handle(hdr, msg, now))
        errors = fc.crc_errors + fc.cobs_errors + fc.runts + fc.oversize + self._bad_frames
        if errors != self._rx_errors_seen:
            self._events |= FaultBits.RX_ERROR
            self._rx_errors_seen = errors
        return out

    def _reject(self, content: bytes, error: p.ProtocolError) -> list[bytes]:
        """A frame with a valid CRC that we cannot use: answer requests with a NACK saying why."""
        if len(content) < p.HEADER_SIZE:
            self._bad_frames += 1
            return []
        hdr = p.Header(*p.HEADER.unpack_from(content))
        answerable = hdr.type < 0x80 and hdr.type not in (MsgType.COMMAND, MsgType.HEARTBEAT)
        answerable = answerable and hdr.arm == self.config.arm
        if isinstance(error, p.UnknownTypeError):
            # a newer host may send types we lack: the NACK tells it so (not a link error)
            return [self._nack(hdr, NackReason.UNKNOWN_TYPE, hdr.type)] if answerable else []
        self._bad_frames += 1
        if isinstance(error, p.VersionMismatchError):
            detail = (p.PROTOCOL_MAJOR << 8) | p.PROTOCOL_MINOR
            return [self._nack(hdr, NackReason.VERSION_MISMATCH, detail)] if answerable else []
        if isinstance(error, p.BadLengthError):
            body = len(content) - p.HEADER_SIZE
            return [self._nack(hdr, NackReason.BAD_LENGTH, body)] if answerable else []
        return []

    def _nack(self, hdr: p.Header, reason: NackReason, detail: int = 0) -> bytes:
        return self._frame(p.Nack(hdr.type, int(reason), int(self.mode), hdr.seq, detail))

    def _ack(self, hdr: p.Header) -> bytes:
        return self._frame(p.Ack(hdr.type, int(self.mode), hdr.seq))

    def _handle(self, hdr: p.Header, msg: p.Message, now: float) -> list[bytes]:
        c = self.config
        t = hdr.type
        is_request = t in (MsgType.HELLO, *p.REQUEST_TYPES)
        if hdr.arm != c.arm and not (hdr.arm == p.BROADCAST_ARM and t == MsgType.ESTOP):
            return [self._nack(hdr, NackReason.WRONG_ARM, 1 << c.arm)] if is_request else []
        if isinstance(msg, p.Estop):
            # honoured in every state, without a session, from any protocol version
            self._disable(ArmMode.ESTOP)
            return [self._ack(hdr)]
        if isinstance(msg, p.Hello):
            ok = msg.major == p.PROTOCOL_MAJOR and (msg.minor != p.PROTOCOL_MINOR or msg.schema_hash == p.SCHEMA_HASH)
            self.session_open = ok
            if self.mode in (ArmMode.ENABLED, ArmMode.HOLD):
                self._disable()  # a new session starts disabled: the host must enable explicitly
            return [self._frame(self.hello_ack(hdr.seq))]
        if hdr.major != p.PROTOCOL_MAJOR:
            return []  # decode() only lets HELLO and ESTOP through from another major
        if isinstance(msg, p.Command):
            return self._command(hdr, msg, now)
        if isinstance(msg, p.Heartbeat):
            if self.session_open:
                self._last_feed = now
            return []
        if isinstance(msg, p.Disable):
            if self.mode is not ArmMode.ESTOP:
                self._disable()
            return [self._ack(hdr)]
        if not self.session_open:
            return [self._nack(hdr, NackReason.NO_SESSION)] if is_request else []
        if isinstance(msg, p.Enable):
            if self.mode is ArmMode.ESTOP:
                return [self._nack(hdr, NackReason.ESTOP_LATCHED)]
            if self.hardware_estop:
                return [self._nack(hdr, NackReason.HARDWARE_ESTOP)]
            if self.drive_fault:
                return [self._nack(hdr, NackReason.DRIVE_FAULT)]
            if self.mode is ArmMode.DISABLED:
                self._follow_measured()
                self._target = self._ref_p.copy()
                self._vff[:] = 0.0
                self._set_torque(True)
            self.mode = ArmMode.ENABLED
            self._watchdog_off_latched = False
            self._last_feed = now
            self._t_target = now
            return [self._ack(hdr)]
        if isinstance(msg, p.ResetEstop):
            if self.hardware_estop:
                return [self._nack(hdr, NackReason.HARDWARE_ESTOP)]
            if self.mode is ArmMode.ESTOP:
                self.mode = ArmMode.DISABLED
            return [self._ack(hdr)]
        return []  # firmware → host messages sent to the firmware: ignored

    def _command(self, hdr: p.Header, cmd: p.Command, now: float) -> list[bytes]:
        if not self.session_open:
            self._events |= FaultBits.COMMAND_IGNORED
            self.commands_ignored += 1
            return []
        n = self._n
        values = cmd.positions + (cmd.velocities or ()) + ((cmd.gripper,) if cmd.gripper is not None else ())
        if len(cmd.positions) != n or not all(math.isfinite(v) for v in values):
            self._events |= FaultBits.COMMAND_REJECTED
            self.commands_rejected += 1
            return []
        self.commands += 1
        self.last_command_seq = hdr.seq
        self._last_feed = now
        if self.mode in (ArmMode.ENABLED, ArmMode.HOLD):
            target = self._target.copy()
            target[:n] = cmd.positions
            if cmd.gripper is not None and self.config.has_gripper:
                target[n] = cmd.gripper
            clamped = np.clip(target, self._lo, self._hi)
            if np.any(clamped != target):
                self._events |= FaultBits.POSITION_CLAMPED
            self._target = clamped
            self._vff[:] = 0.0
            if cmd.velocities is not None:
                self._vff[:n] = np.clip(cmd.velocities, -self._vmax[:n], self._vmax[:n])
            self._t_target = now
            self.mode = ArmMode.ENABLED
        else:
            self._events |= FaultBits.COMMAND_IGNORED
            self.commands_ignored += 1
        return [self._state(now, reply=True)]

    def status(self) -> FirmwareStatus:
        n = self._n
        return FirmwareStatus(
            mode=self.mode,
            session_open=self.session_open,
            torque_on=self._torque,
            fault_bits=self._conditions(),
            reference=tuple(self._ref_p[:n].tolist()),
            target=tuple(self._target[:n].tolist()),
            gripper_reference=float(self._ref_p[n]) if self.config.has_gripper else None,
            last_command_seq=self.last_command_seq,
            boot_id=self.boot_id,
            frames_rx=self.frames_rx,
            frames_tx=self.frames_tx,
            rx_errors=self._rx_errors_seen,
            commands=self.commands,
            commands_ignored=self.commands_ignored,
            commands_rejected=self.commands_rejected,
        )
