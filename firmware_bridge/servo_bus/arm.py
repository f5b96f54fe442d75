"""`BusArm`: an arm of serial-bus servos behind `ArmClient`, with the safety of our own firmware path.

The servos have no notion of our modes, watchdog or limiter, so this client runs them on the host, in one bus
thread at the control rate: per tick it moves the limited reference one step toward the newest setpoint (the
firmware's own limiter, `limiter.step_reference`, from the measured pose at enable: ramp-in), sync-writes the goal
positions, then sync-reads the present values and publishes an `ArmState`. What the servos cannot see of a dead
host is covered where the servo can: a Dynamixel's Bus Watchdog stops it 100 ms after the last packet; an STS
servo has no watchdog and holds its last goal with torque on until power is cut, so on an STS bus only the host's
stop ladder (hold → torque off on every exit path, atexit included) turns torque off.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from types import TracebackType

import numpy as np
import numpy.typing as npt

from firmware_bridge.arm_interface import (
    ArmState,
    EventCallback,
    FirmwareInfo,
    GripperLimits,
    LinkEvent,
    LinkEventKind,
    LinkStats,
)
from firmware_bridge.errors import BridgeError, LinkDownError, PortError, RequestRejectedError, SetpointError
from firmware_bridge.limiter import step_reference, stopping_point
from firmware_bridge.protocol import ArmMode, FaultBits, NackReason
from firmware_bridge.servo_bus.bus import ServoBus, TransportFactory
from firmware_bridge.servo_bus.calibration import JointMap
from firmware_bridge.servo_bus.config import BusArmConfig
from firmware_bridge.servo_bus.control_tables import Register, ServoModel
from firmware_bridge.servo_bus.errors import BusConfigError, ServoBusError, ServoMismatchError, ServoNotAnsweringError
from firmware_bridge.servo_bus.timing import check_rate
from firmware_bridge.transport import TransportClosedError

log = logging.getLogger(__name__)

HARDWARE_ERROR_NAMES = {
    "dynamixel": {0: "input voltage", 2: "overheating", 3: "motor encoder", 4: "electrical shock", 5: "overload"},
    "feetech": {0: "input voltage", 1: "angle sensor", 2: "overheating", 3: "overcurrent", 5: "overload"},
}
# per tick: (start address, length) of the present values, and where each sits in that block
_PRESENT = {"dynamixel": (126, 10, 6, 2, 4), "feetech": (56, 6, 0, 2, 2)}  # addr, len, pos@, vel@, vel size


_ENABLE_SLACK_TICKS = 6  # ~0.5°: a joint resting on its calibrated end stop may read a tick or two beyond it


def describe_hardware_error(bus: str, bits: int) -> str:
    names = HARDWARE_ERROR_NAMES[bus]
    return ", ".join(names.get(b, f"bit {b}") for b in range(8) if bits & (1 << b)) or "none"


def _ro(a: npt.ArrayLike) -> npt.NDArray[np.float64]:
    out = np.array(a, dtype=np.float64)
    out.flags.writeable = False
    return out


class BusArm:
    """One arm on one servo bus (`BusArm.open(port, config)`); close with `close()` or `with`."""

    def __init__(
        self,
        port: str,
        config: BusArmConfig,
        *,
        state_timeout: float | None,
        reconnect: bool,
        reconnect_interval: float,
        transport_factory: TransportFactory | None,
        read_timeout: float | None,
    ) -> None:
        self._port = port
        self.config = config
        self.reconnect = reconnect
        self.reconnect_interval = reconnect_interval
        self._factory = transport_factory
        c = config
        self._servos = c.servos
        self._ids = [s.servo_id for s in self._servos]
        self._models: list[ServoModel] = [s.servo_model(c.bus) for s in self._servos]
        self._n_joints = len(c.joints)
        self.budget = check_rate(
            c.bus,
            len(self._ids),
            c.baudrate,
            c.rate_hz,
            return_delay_us=c.return_delay_us,
            latency_s=c.latency_s,
            batched_reads=not c.sync_read,
        )
        self.period = 1.0 / c.rate_hz
        self.state_timeout = state_timeout if state_timeout is not None else max(0.1, 5.0 * self.period)
        self._read_timeout = read_timeout if read_timeout is not None else max(0.02, 3.0 * self.budget.tick_s)
        self._bus: ServoBus | None = None
        self._lock = threading.RLock()  # the bus: one transaction at a time
        self._state_cv = threading.Condition()
        self._latest: ArmState | None = None
        self._latest_n = 0
        self._returned_n = 0
        self.link_lost = threading.Event()
        self._events: deque[LinkEvent] = deque(maxlen=256)
        self._subscribers: list[EventCallback] = []
        self._events_lock = threading.Lock()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._info: FirmwareInfo | None = None
        self._maps: list[JointMap] = []
        self._lo_ticks: list[int] = []
        self._hi_ticks: list[int] = []
        # control state (bus thread and requests, under _lock)
        self.mode = ArmMode.DISABLED
        self._latched = FaultBits.NONE
        self._events_bits = FaultBits.NONE
        self._hw: dict[int, int] = {}  # servo ID → hardware error bits
        self._ref_p = np.zeros(len(self._ids))
        self._ref_v = np.zeros(len(self._ids))
        # the setpoint mailbox: written by the caller's control thread, read by the bus thread once per tick; its
        # own lock, so that send_setpoint never waits for a bus transaction
        self._sp_lock = threading.Lock()
        self._resume = False
        self._ignored = False
        self._target = np.zeros(len(self._ids))
        self._setpoint_seq = 0
        self._written_seq = 0
        self._sent_t: dict[int, float] = {}
        self._last_feed = 0.0
        self._measured: np.ndarray | None = None
        self._t_open = time.monotonic()
        self._last_state_t = time.monotonic()
        self._rtts: deque[float] = deque(maxlen=1024)
        self._n: dict[str, int] = dict.fromkeys(
            ("states_rx", "requests", "request_retries", "link_lost", "disconnects", "reconnects", "seq_gaps"), 0
        )
        self._retired = {"frames_rx": 0, "frames_tx": 0, "bytes_rx": 0, "bytes_tx": 0, "crc_errors": 0, "discarded": 0}

    # ------------------------------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        port: str,
        config: BusArmConfig,
        *,
        state_timeout: float | None = None,
        reconnect: bool = True,
        reconnect_interval: float = 0.2,
        transport_factory: TransportFactory | None = None,
        read_timeout: float | None = None,
    ) -> BusArm:
        """Open the bus, find every servo of `config`, turn torque off, check it against the config and the
        calibration, start the bus thread. Returns once the first state is in; typed `BridgeError`s otherwise."""
        try:
            arm = cls(
                port,
                config,
                state_timeout=state_timeout,
                reconnect=reconnect,
                reconnect_interval=reconnect_interval,
                transport_factory=transport_factory,
                read_timeout=read_timeout,
            )
        except ValueError as e:
            raise BusConfigError(f"{config.source}: rate_hz: {e}") from None
        bus = ServoBus.open(port, config.bus, config.baudrate, transport_factory=transport_factory)
        try:
            arm._setup(bus, first=True)
        except BaseException:
            bus.close()
            raise
        arm._bus = bus
        arm._thread = threading.Thread(target=arm._run, name=f"busarm-{port}", daemon=True)
        arm._thread.start()
        if arm.wait_state(max(3.0, 20 * arm.period)) is None:
            arm.close()
            raise ServoNotAnsweringError(f"{port}: the servos answered the setup but no full state read came back")
        _OPEN.add(arm)
        return arm

    def _reg(self, i: int, name: str) -> Register:
        return self._models[i].register(name)

    def _setup(self, bus: ServoBus, *, first: bool) -> None:
        """Identify the servos, torque off, read limits and homing; build the maps and the info."""
        c = self.config
        port = self._port
        firmware = ""
        for i, (s, m) in enumerate(zip(self._servos, self._models, strict=True)):
            info = None
            for _ in range(3):
                info = bus.ping(s.servo_id)
                if info is not None:
                    break
            if info is None:
                raise ServoNotAnsweringError(
                    f"{port}: no {c.bus} servo answers at ID {s.servo_id} ({s.name}, {m.name}) at {c.baudrate} baud: "
                    f"is the bus powered, the ID right (harmowam-edge bridge ping {port} --bus {c.bus}) and the "
                    f"baud rate the servos use?"
                )
            if info.model_number != m.model_number:
                raise ServoMismatchError(
                    f"{port}: servo ID {s.servo_id} ({s.name}) is model {info.model or info.model_number}, the rig "
                    f"says {m.name} (model number {m.model_number})"
                )
            firmware = firmware or info.firmware
            bus.write(s.servo_id, "torque_enable", self._reg(i, "torque_enable"), 0)
        lo_t, hi_t, maps = [], [], []
        cal = c.calibration
        for i, (s, m) in enumerate(zip(self._servos, self._models, strict=True)):
            sid = s.servo_id
            mode = bus.read(sid, "operating_mode", self._reg(i, "operating_mode"))
            if mode not in m.position_modes:
                raise ServoMismatchError(
                    f"{port}: servo ID {sid} ({s.name}) is in operating mode {mode}, not position control "
                    f"({'/'.join(map(str, m.position_modes))}): set it (LeRobot's motor setup does) and retry"
                )
            delay_us = 2.0 * bus.read(sid, "return_delay_time", self._reg(i, "return_delay_time"))
            if delay_us > c.return_delay_us:
                raise BusConfigError(
                    f"{port}: servo ID {sid} ({s.name}) waits {delay_us:.0f} µs before answering, the rig's "
                    f"return_delay_us budgets {c.return_delay_us:.0f} µs: set its Return_Delay_Time to 0 (as "
                    f"LeRobot's motor setup does) or raise return_delay_us"
                )
            servo_lo = bus.read(sid, "min_position_limit", self._reg(i, "min_position_limit"))
            servo_hi = bus.read(sid, "max_position_limit", self._reg(i, "max_position_limit"))
            offset = bus.read(sid, "homing_offset", self._reg(i, "homing_offset"))
            if cal is not None:
                mc = cal[s.name]
                if mc.homing_offset != offset:
                    raise ServoMismatchError(
                        f"{c.calibration_source}: {s.name}.homing_offset: the file says {mc.homing_offset}, servo "
                        f"ID {sid} holds {offset}: this calibration was made for other servos (or the servos were "
                        f"reset): recalibrate (harmowam-edge bridge calibrate) or pick the right file"
                    )
                rmin, rmax, rev = mc.range_min, mc.range_max, bool(mc.drive_mode)
            else:
                rmin, rmax, rev = 0, m.resolution - 1, False
            lo, hi = max(rmin, servo_lo), min(rmax, servo_hi)
            if not lo < hi:
                raise ServoMismatchError(
                    f"{port}: servo ID {sid} ({s.name}): its position limits [{servo_lo}, {servo_hi}] and the "
                    f"calibrated range [{rmin}, {rmax}] do not overlap"
                )
            grip = c.gripper_opening_m if i == self._n_joints else None
            maps.append(JointMap(m.resolution, rmin, rmax, rev, grip))
            lo_t.append(lo)
            hi_t.append(hi)
        if first:
            self._maps, self._lo_ticks, self._hi_ticks = maps, lo_t, hi_t
            self._info = self._make_info(firmware)
        elif (lo_t, hi_t) != (self._lo_ticks, self._hi_ticks):
            raise ServoMismatchError(f"{port}: after reconnecting, the servos report other limits: refusing them")
        with self._lock:
            self.mode = ArmMode.DISABLED

    def _make_info(self, firmware: str) -> FirmwareInfo:
        c = self.config
        lo, hi, vmax, amax = [], [], [], []
        for i, (jm, m) in enumerate(zip(self._maps, self._models, strict=True)):
            a, b = jm.unit_limits(self._lo_ticks[i], self._hi_ticks[i])
            ticks_per_s = m.max_velocity_rad_s * c.velocity_scale / m.rad_per_tick
            unit_per_tick = abs(jm.to_unit(jm.mid + 1) - jm.to_unit(jm.mid))
            lo.append(a)
            hi.append(b)
            vmax.append(ticks_per_s * unit_per_tick)
            # the acceleration limit is in rad/s²; the gripper's is the same angular rate in its units
            amax.append(c.max_acceleration * unit_per_tick / m.rad_per_tick)
        self._lo, self._hi = np.array(lo), np.array(hi)
        self._vmax, self._amax = np.array(vmax), np.array(amax)
        n = self._n_joints
        parts = [int(p) for p in firmware.replace(".", " ").split() if p.isdigit()][:3]
        version = tuple(parts + [0] * (3 - len(parts)))
        grip = None
        if c.gripper is not None:
            grip = GripperLimits(lo[n], hi[n], vmax[n], amax[n])
        models = sorted({m.name for m in self._models})
        return FirmwareInfo(
            firmware_id=f"{c.bus}:{'+'.join(models)}",
            firmware_version=(version[0], version[1], version[2]),
            protocol=(2, 0) if c.bus == "dynamixel" else (1, 0),
            schema_hash=0,
            joint_count=n,
            has_gripper=c.gripper is not None,
            position_min=_ro(lo[:n]),
            position_max=_ro(hi[:n]),
            max_velocity=_ro(vmax[:n]),
            max_acceleration=_ro(amax[:n]),
            gripper_limits=grip,
            state_rate_hz=c.rate_hz,
            arm=0,
            boot_id=0,
            watchdog_hold_s=c.watchdog_hold_s,
            watchdog_off_s=c.watchdog_off_s,
            reports_effort=False,
            backend=c.bus,
        )

    # ------------------------------------------------------------------------------------------ public API

    @property
    def info(self) -> FirmwareInfo:
        assert self._info is not None
        return self._info

    @property
    def port(self) -> str:
        return self._port

    @property
    def connected(self) -> bool:
        return self._bus is not None and not self._closing.is_set()

    @property
    def hardware_errors(self) -> dict[int, int]:
        """Servo ID → hardware error bits, for the servos that report one."""
        return dict(self._hw)

    def state(self) -> ArmState | None:
        with self._state_cv:
            self._returned_n = self._latest_n
            return self._latest

    def wait_state(self, timeout: float) -> ArmState | None:
        deadline = time.monotonic() + timeout
        with self._state_cv:
            if self._closing.is_set():
                return None
            while self._latest_n <= self._returned_n:
                left = deadline - time.monotonic()
                if left <= 0 or self._closing.is_set():
                    return None
                self._state_cv.wait(left)
            self._returned_n = self._latest_n
            return self._latest

    def _check_usable(self) -> None:
        if self._closing.is_set():
            raise LinkDownError(f"{self._port}: the bus arm is closed")
        if self._bus is None:
            raise LinkDownError(
                f"{self._port}: the bus adapter is gone (unplugged?)" + ("; reconnecting" if self.reconnect else "")
            )

    def send_setpoint(
        self, positions: npt.ArrayLike, velocities: npt.ArrayLike | None = None, gripper: float | None = None
    ) -> int:
        """Joint targets (rad; gripper m); the bus thread moves toward them within the limits. Returns the seq."""
        self._check_usable()
        n = self._n_joints
        pos = np.asarray(positions, dtype=np.float64)
        if pos.shape != (n,):
            raise SetpointError(f"setpoint: expected {n} joint positions, got shape {pos.shape}")
        if not np.isfinite(pos).all():
            raise SetpointError(f"setpoint: non-finite joint position in {pos.tolist()}; nothing sent")
        if velocities is not None:
            v = np.asarray(velocities, dtype=np.float64)
            if v.shape != (n,) or not np.isfinite(v).all():
                raise SetpointError(f"setpoint: expected {n} finite velocities, got {v.tolist()}")
        if gripper is not None:
            if self.config.gripper is None:
                raise SetpointError(f"setpoint: {self._port} has no gripper, but a gripper target was given")
            gripper = float(gripper)
            if not np.isfinite(gripper):
                raise SetpointError(f"setpoint: non-finite gripper target {gripper}")
        with self._sp_lock:
            now = time.monotonic()
            self._setpoint_seq += 1
            seq = self._setpoint_seq
            mode = self.mode
            if mode in (ArmMode.ENABLED, ArmMode.HOLD):
                self._target[:n] = pos
                if gripper is not None:
                    self._target[n] = gripper
                self._last_feed = now
                self._resume = mode == ArmMode.HOLD
            else:
                self._ignored = True
            self._sent_t[seq] = now
            if len(self._sent_t) > 256:
                self._sent_t.pop(next(iter(self._sent_t)))
        return seq

    def heartbeat(self) -> None:
        self._check_usable()
        self._last_feed = time.monotonic()

    def enable(self) -> ArmMode:
        """Torque on where the arm stands (goal = measured position first), bus watchdog armed. Refused while
        e-stopped or while a servo reports a hardware error."""
        self._n["requests"] += 1
        with self._lock:
            self._check_usable()
            if self.mode == ArmMode.ESTOP:
                raise RequestRejectedError(
                    f"{self._port}: enable refused: e-stop latched (reset it first)", NackReason.ESTOP_LATCHED
                )
            if self._hw:
                raise RequestRejectedError(
                    f"{self._port}: enable refused: {self._describe_hw()}", NackReason.DRIVE_FAULT
                )
            if self.mode in (ArmMode.ENABLED, ArmMode.HOLD):
                self._last_feed = time.monotonic()
                return self.mode
            bus = self._bus
            assert bus is not None
            try:
                measured = None
                for _ in range(3):
                    measured = measured or self._read_present(bus, 0.05)
                if measured is None:
                    raise ServoNotAnsweringError(f"{self._port}: enable: not every servo answered the position read")
                pos_ticks = measured[0]
                outside = [
                    f"{s.name} (ID {s.servo_id}) at {t}, limits [{lo}, {hi}]"
                    for s, t, lo, hi in zip(self._servos, pos_ticks, self._lo_ticks, self._hi_ticks, strict=True)
                    if not lo - _ENABLE_SLACK_TICKS <= t <= hi + _ENABLE_SLACK_TICKS
                ]
                if outside:
                    # torque on there would snap the joint to its limit at full speed: refuse instead
                    raise ServoBusError(
                        f"{self._port}: enable refused: joint(s) outside their limits: {'; '.join(outside)}: move "
                        f"them inside by hand (torque is off) or recalibrate"
                    )
                if self.config.bus == "dynamixel":
                    for i, sid in enumerate(self._ids):
                        bus.write(sid, "bus_watchdog", self._reg(i, "bus_watchdog"), 0)  # clear a fired watchdog
                self._write_goals(bus, pos_ticks)
                for i, sid in enumerate(self._ids):
                    bus.write(sid, "torque_enable", self._reg(i, "torque_enable"), 1)
                if self.config.bus == "dynamixel":
                    units = max(1, round(self.config.bus_watchdog_ms / 20))
                    for i, sid in enumerate(self._ids):
                        bus.write(sid, "bus_watchdog", self._reg(i, "bus_watchdog"), units)
            except TransportClosedError as e:
                raise LinkDownError(f"{self._port}: the bus went away during enable ({e})") from None
            except BridgeError:
                self._torque_off_all(bus)
                raise
            units_now = np.array([jm.to_unit(t) for jm, t in zip(self._maps, pos_ticks, strict=True)])
            self._ref_p = units_now.copy()
            self._ref_v = np.zeros_like(units_now)
            with self._sp_lock:
                self._target = units_now.copy()
            self._latched &= ~FaultBits.WATCHDOG_TORQUE_OFF
            self._last_feed = time.monotonic()
            self._set_mode(ArmMode.ENABLED, "enabled")
            return self.mode

    def disable(self) -> ArmMode:
        """Torque off on every servo (acknowledged per servo; raises if one does not confirm)."""
        self._n["requests"] += 1
        with self._lock:
            self._check_usable()
            bus = self._bus
            assert bus is not None
            failed = self._torque_off_all(bus)
            if self.mode != ArmMode.ESTOP:
                self._set_mode(ArmMode.DISABLED, "disabled")
            if failed:
                raise ServoNotAnsweringError(f"{self._port}: torque off not confirmed by servo(s) {failed}")
            return self.mode

    def estop(self) -> ArmMode:
        """Torque off at once on every servo, latched until `reset_estop()`."""
        self._n["requests"] += 1
        with self._lock:
            self._check_usable()
            bus = self._bus
            assert bus is not None
            failed = self._torque_off_all(bus)
            self._set_mode(ArmMode.ESTOP, "e-stop")
            if failed:
                raise ServoNotAnsweringError(f"{self._port}: e-stop: torque off not confirmed by servo(s) {failed}")
            return self.mode

    def reset_estop(self) -> ArmMode:
        """Clear a latched e-stop (the arm is then DISABLED). Dynamixel servos with a hardware error are
        rebooted, which clears the error if its cause is gone."""
        self._n["requests"] += 1
        with self._lock:
            self._check_usable()
            bus = self._bus
            assert bus is not None
            if self._hw and self.config.bus == "dynamixel":
                for sid in list(self._hw):
                    bus.reboot(sid)
                time.sleep(0.05)
                self._hw.clear()
            if self.mode == ArmMode.ESTOP:
                self._set_mode(ArmMode.DISABLED, "e-stop reset")
            return self.mode

    @property
    def stats(self) -> LinkStats:
        bus = self._bus
        r = self._retired
        c = bus.counters if bus is not None else None
        pc = bus.parser.counters if bus is not None else None
        rtts = np.array(self._rtts, dtype=np.float64)
        return LinkStats(
            frames_rx=r["frames_rx"] + (pc.packets if pc else 0),
            frames_tx=r["frames_tx"] + (c.transactions if c else 0),
            bytes_rx=r["bytes_rx"] + (c.bytes_rx if c else 0),
            bytes_tx=r["bytes_tx"] + (c.bytes_tx if c else 0),
            states_rx=self._n["states_rx"],
            crc_errors=r["crc_errors"] + (pc.checksum_errors if pc else 0),
            discarded_bytes=r["discarded"] + (pc.discarded_bytes if pc else 0),
            seq_gaps=self._n["seq_gaps"],
            requests=self._n["requests"],
            link_lost=self._n["link_lost"],
            disconnects=self._n["disconnects"],
            reconnects=self._n["reconnects"],
            rtt_samples=len(rtts),
            rtt_last_s=float(rtts[-1]) if len(rtts) else None,
            rtt_p50_s=float(np.percentile(rtts, 50)) if len(rtts) else None,
            rtt_p99_s=float(np.percentile(rtts, 99)) if len(rtts) else None,
            rtt_max_s=float(rtts.max()) if len(rtts) else None,
        )

    def poll_events(self) -> list[LinkEvent]:
        with self._events_lock:
            out = list(self._events)
            self._events.clear()
        return out

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        with self._events_lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._events_lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def close(self, *, disable: bool = True) -> None:
        """Torque off (whatever the mode: the servos may hold a goal we do not know of), stop, close the port."""
        if self._closing.is_set():
            return
        with self._lock:
            bus = self._bus
            if disable and bus is not None:
                with contextlib.suppress(BridgeError, TransportClosedError, OSError):
                    self._torque_off_all(bus)
                if self.mode != ArmMode.ESTOP:
                    self.mode = ArmMode.DISABLED
            self._closing.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        with self._lock:
            if self._bus is not None:
                self._bus.close()
            self._bus = None
        with self._state_cv:
            self._state_cv.notify_all()
        _OPEN.discard(self)

    def __enter__(self) -> BusArm:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BusArm({self._port!r}, {self.config.bus}, ids={self._ids})"

    # ------------------------------------------------------------------------------------------ internals

    def _emit(self, kind: LinkEventKind, message: str, mode: ArmMode | None = None) -> None:
        ev = LinkEvent(kind, time.monotonic(), message, mode)
        log.info("%s: %s: %s", self._port, kind.value, message)
        with self._events_lock:
            self._events.append(ev)
            subscribers = list(self._subscribers)
        for cb in subscribers:
            try:
                cb(ev)
            except Exception:
                log.exception("link event subscriber failed")

    def _set_mode(self, mode: ArmMode, why: str) -> None:
        if mode != self.mode:
            old = self.mode
            self.mode = mode
            self._emit(LinkEventKind.MODE_CHANGED, f"{old.name} → {mode.name} ({why})", mode)

    def _describe_hw(self) -> str:
        names = {s.servo_id: s.name for s in self._servos}
        return "; ".join(
            f"servo {sid} ({names.get(sid, '?')}): {describe_hardware_error(self.config.bus, bits)}"
            for sid, bits in sorted(self._hw.items())
        )

    def _torque_off_all(self, bus: ServoBus) -> list[int]:
        """Sync-write torque off (one packet reaches all at once), then confirm per servo. Returns the silent."""
        reg = self._reg(0, "torque_enable")
        bus.sync_write(reg.address, 1, dict.fromkeys(self._ids, b"\x00"))
        failed = []
        for i, sid in enumerate(self._ids):
            try:
                bus.write(sid, "torque_enable", self._reg(i, "torque_enable"), 0)
            except ServoBusError:
                failed.append(sid)
            except ServoNotAnsweringError:
                failed.append(sid)
        return failed

    def _write_goals(self, bus: ServoBus, ticks: list[int]) -> None:
        reg = self._reg(0, "goal_position")
        bus.sync_write(reg.address, reg.size, {sid: reg.encode(t) for sid, t in zip(self._ids, ticks, strict=True)})

    def _read_present(
        self, bus: ServoBus, timeout: float | None = None
    ) -> tuple[list[int], list[int], dict[int, int]] | None:
        """(position ticks, velocity raw, status error bytes) of every servo, or None if one is missing."""
        addr, length, pos_at, vel_at, vel_size = _PRESENT[self.config.bus]
        if self.config.sync_read:
            got = bus.sync_read(self._ids, addr, length, timeout or self._read_timeout)
        else:
            got = bus.batched_read(self._ids, addr, length, timeout or self._read_timeout)
        if len(got) != len(self._ids):
            return None
        pos, vel, errs = [], [], {}
        for i, sid in enumerate(self._ids):
            st = got[sid]
            pos.append(self._reg(i, "present_position").decode(st.params[pos_at : pos_at + 4]))
            vel.append(self._reg(i, "present_velocity").decode(st.params[vel_at : vel_at + vel_size]))
            errs[sid] = st.code
        return pos, vel, errs

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._closing.is_set():
            now = time.monotonic()
            if now < next_t:
                self._closing.wait(next_t - now)
                continue
            next_t = max(next_t + self.period, now)
            with self._lock:
                if self._closing.is_set():
                    break
                bus = self._bus
                if bus is None:
                    self._reconnect_step(now)
                    next_t = time.monotonic() + self.reconnect_interval
                    continue
                try:
                    self._tick(bus, now)
                except TransportClosedError as e:
                    self._on_disconnect(bus, str(e))
                except BridgeError as e:
                    log.warning("%s: bus tick: %s", self._port, e)
            self._watch(time.monotonic())

    def _tick(self, bus: ServoBus, now: float) -> None:
        n_all = len(self._ids)
        with self._sp_lock:
            target = self._target.copy()
            seq = self._setpoint_seq
            resume, self._resume = self._resume, False
            if self._ignored:
                self._events_bits |= FaultBits.COMMAND_IGNORED
                self._ignored = False
        if self.mode in (ArmMode.ENABLED, ArmMode.HOLD):
            since = now - self._last_feed
            if resume and self.mode == ArmMode.HOLD and since <= self.config.watchdog_hold_s:
                self._set_mode(ArmMode.ENABLED, "a setpoint after the watchdog hold")
            if since > self.config.watchdog_off_s:
                self._torque_off_all(bus)
                self._latched |= FaultBits.WATCHDOG_TORQUE_OFF
                self._set_mode(ArmMode.DISABLED, f"no setpoint or heartbeat for {since:.2f} s: torque off")
            else:
                if since > self.config.watchdog_hold_s and self.mode == ArmMode.ENABLED:
                    target = stopping_point(self._ref_p, self._ref_v, self._amax, self._lo, self._hi, self.period)
                    with self._sp_lock:
                        self._target = target.copy()
                    self._set_mode(ArmMode.HOLD, f"no setpoint or heartbeat for {since * 1000:.0f} ms: holding")
                clamped = np.clip(target, self._lo, self._hi)
                if not np.array_equal(clamped, target):
                    self._events_bits |= FaultBits.POSITION_CLAMPED
                ev = step_reference(
                    self._ref_p, self._ref_v, clamped, self._vmax, self._amax, self._lo, self._hi, self.period
                )
                if ev.velocity_limited:
                    self._events_bits |= FaultBits.VELOCITY_LIMITED
                if ev.acceleration_limited:
                    self._events_bits |= FaultBits.ACCELERATION_LIMITED
                ticks = [
                    max(lo, min(hi, jm.to_ticks(v)))
                    for jm, v, lo, hi in zip(self._maps, self._ref_p, self._lo_ticks, self._hi_ticks, strict=True)
                ]
                self._write_goals(bus, ticks)
                self._written_seq = seq
        crc_before = bus.parser.counters.checksum_errors
        present = self._read_present(bus)
        if bus.parser.counters.checksum_errors != crc_before:
            self._events_bits |= FaultBits.RX_ERROR
        if present is None:
            return  # a silent servo: no state; after state_timeout the link is lost
        pos_t, vel_raw, errs = present
        self._check_hardware(bus, errs)
        t = time.monotonic()
        units = [jm.to_unit(p) for jm, p in zip(self._maps, pos_t, strict=True)]
        vels = [
            jm.velocity_to_unit(v * m.velocity_unit_rad_s / m.rad_per_tick)
            for jm, v, m in zip(self._maps, vel_raw, self._models, strict=True)
        ]
        bits = self._latched | self._events_bits
        if self.mode == ArmMode.HOLD:
            bits |= FaultBits.WATCHDOG_HOLD
        if self.mode == ArmMode.ESTOP:
            bits |= FaultBits.ESTOP_LATCHED
        if self._hw:
            bits |= FaultBits.DRIVE_FAULT
        self._events_bits = FaultBits.NONE
        n = self._n_joints
        seq = self._written_seq
        with self._sp_lock:
            sent = self._sent_t.pop(seq, None)
        if sent is not None:
            self._rtts.append(t - sent)
        state = ArmState(
            positions=_ro(units[:n]),
            velocities=_ro(vels[:n]),
            effort=None,
            gripper=units[n] if n < n_all else None,
            fault_bits=bits,
            mode=self.mode,
            firmware_time=t - self._t_open,
            last_command_seq=seq,
            t_received=t,
            seq=self._n["states_rx"] + 1,
        )
        self._n["states_rx"] += 1
        with self._state_cv:
            self._latest = state
            self._latest_n += 1
            self._state_cv.notify_all()
        self._last_state_t = t
        if self.link_lost.is_set():
            self.link_lost.clear()
            self._emit(LinkEventKind.LINK_RESTORED, "every servo answers again", self.mode)

    def _check_hardware(self, bus: ServoBus, errs: dict[int, int]) -> None:
        """Hardware error bits as faults: the servo turned itself off; turn the whole arm off and say why."""
        codec = bus.codec
        new = False
        for i, sid in enumerate(self._ids):
            if not codec.hardware_alert(errs[sid]):
                self._hw.pop(sid, None)
                continue
            if sid in self._hw:
                continue
            bits = errs[sid]
            if self.config.bus == "dynamixel":
                with contextlib.suppress(BridgeError):
                    bits = bus.read(sid, "hardware_error_status", self._reg(i, "hardware_error_status"))
            self._hw[sid] = bits or 0x80
            new = True
        if new and self.mode in (ArmMode.ENABLED, ArmMode.HOLD):
            self._torque_off_all(bus)
            self._set_mode(ArmMode.DISABLED, f"hardware error: {self._describe_hw()}: torque off")
        elif new:
            self._emit(LinkEventKind.MODE_CHANGED, f"hardware error: {self._describe_hw()}", self.mode)

    def _watch(self, now: float) -> None:
        if not self.link_lost.is_set() and now - self._last_state_t > self.state_timeout:
            bus = self._bus
            missing = ""
            if bus is not None:
                addr, length, *_ = _PRESENT[self.config.bus]
                with self._lock, contextlib.suppress(BridgeError, TransportClosedError):
                    got = bus.sync_read(self._ids, addr, length, self._read_timeout)
                    missing = f": servo(s) {[s for s in self._ids if s not in got]} do not answer"
            self._n["link_lost"] += 1
            self._emit(
                LinkEventKind.LINK_LOST,
                f"no full state for {now - self._last_state_t:.3f} s (timeout {self.state_timeout:.3f} s){missing}",
            )
            self.link_lost.set()  # after the event: a waiter that sees it set finds the event too

    def _on_disconnect(self, bus: ServoBus, why: str) -> None:
        self.link_lost.set()
        self._bus = None
        r = self._retired
        r["frames_rx"] += bus.parser.counters.packets
        r["frames_tx"] += bus.counters.transactions
        r["bytes_rx"] += bus.counters.bytes_rx
        r["bytes_tx"] += bus.counters.bytes_tx
        r["crc_errors"] += bus.parser.counters.checksum_errors
        r["discarded"] += bus.parser.counters.discarded_bytes
        with contextlib.suppress(Exception):
            bus.close()
        self._n["disconnects"] += 1
        if self.mode != ArmMode.ESTOP:
            self.mode = ArmMode.DISABLED
        self._emit(LinkEventKind.DISCONNECTED, f"the bus adapter went away ({why})", ArmMode.DISABLED)

    def _reconnect_step(self, now: float) -> None:
        if not self.reconnect:
            return
        try:
            bus = ServoBus.open(self._port, self.config.bus, self.config.baudrate, transport_factory=self._factory)
        except PortError:
            return
        try:
            self._setup(bus, first=False)  # torque off on every servo: the arm comes back DISABLED
        except ServoMismatchError as e:
            bus.close()
            self.reconnect = False
            self._emit(LinkEventKind.RECONNECT_FAILED, str(e))
            return
        except (BridgeError, TransportClosedError):
            bus.close()
            return
        self._bus = bus
        self._hw.clear()
        self._n["reconnects"] += 1
        self._last_state_t = time.monotonic()
        self._emit(
            LinkEventKind.RECONNECTED,
            f"bus reopened, every servo found and torque off; the arm is {self.mode.name}: enable() to move again",
            self.mode,
        )


_OPEN: weakref.WeakSet[BusArm] = weakref.WeakSet()


@atexit.register
def _torque_off_at_exit() -> None:
    """An interpreter that exits with bus arms still open turns their torque off first (an STS servo would
    otherwise hold its last goal with torque on for as long as it has power)."""
    for arm in list(_OPEN):
        with contextlib.suppress(Exception):
            arm.close()
