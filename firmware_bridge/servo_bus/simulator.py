"""A servo bus on a pseudo-terminal: one `SimServo` per ID, answering Dynamixel 2.0 or Feetech STS packets.

The vendors' SDKs open the PTY as they open /dev/ttyUSB0 and ping, read and sync-write it. Fault injection: a
servo that stops answering, corrupt replies, a servo that overheats (hardware error → torque off), unplug/replug
of the USB adapter (a stable symlink re-pointed at a fresh PTY, as udev does; the servos keep their power).
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import select
import termios
import threading
import time
import tty
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from firmware_bridge.errors import SimulatorError
from firmware_bridge.plant import Plant
from firmware_bridge.servo_bus import dynamixel as dxl
from firmware_bridge.servo_bus.calibration import JointMap
from firmware_bridge.servo_bus.control_tables import model as servo_model
from firmware_bridge.servo_bus.packets import Packet, PacketParser
from firmware_bridge.servo_bus.servo_model import SimServo
from firmware_bridge.servo_bus.timing import codec_for

_STEP_S = 0.002


@dataclass(frozen=True)
class SimServoSpec:
    servo_id: int
    model: str
    position: int = 2048  # ticks at start (shaft, before any homing offset)


def default_servos(bus: str) -> list[SimServoSpec]:
    """The arms people have: an SO-101 follower (6 × STS3215) or six XL430-W250, IDs 1-6, at mid-range."""
    model = "sts3215" if bus == "feetech" else "xl430-w250"
    return [SimServoSpec(i, model) for i in range(1, 7)]


class ServoBusSimulator:
    """Serve a bus of simulated servos on a PTY; `start()` returns the port to open."""

    def __init__(
        self,
        bus: str,
        servos: Sequence[SimServoSpec] | None = None,
        *,
        link_path: pathlib.Path | None = None,
        baudrate: int = 1_000_000,
        plant: Plant | None = None,
        gripper_opening_m: float | None = 0.08,
    ) -> None:
        """`plant`: the servos drive it instead of moving by themselves (the MuJoCo rig): goal positions go to
        it as joint angles (mid-range = 0 rad; the last servo is its gripper when `gripper_opening_m` is set, its
        range mapped onto 0..that opening), present positions come from its measurement."""
        self.bus = bus
        self.codec = codec_for(bus)
        specs = list(servos) if servos is not None else default_servos(bus)
        if len({s.servo_id for s in specs}) != len(specs):
            raise SimulatorError("servo bus simulator: servo IDs must be unique")
        try:
            self.servos = {s.servo_id: SimServo(servo_model(s.model, bus), s.servo_id, s.position) for s in specs}
        except KeyError as e:
            raise SimulatorError(f"servo bus simulator: {e.args[0]}") from None
        self.link_path = pathlib.Path(link_path) if link_path is not None else None
        self._baud_const = getattr(termios, f"B{baudrate}", None)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._pty_path = ""
        self._wake_r, self._wake_w = -1, -1
        self._parser = PacketParser(self.codec, status=False)
        self.plant = plant
        self._plant_torque = False
        self._maps = [
            JointMap(s.model.resolution, 0, s.model.resolution - 1, False,
                     gripper_opening_m if (k == len(self.servos) - 1 and gripper_opening_m) else None)
            for k, s in enumerate(self.servos.values())
        ]  # fmt: skip
        if plant is not None:
            for srv in self.servos.values():
                srv.external = True
        self._last_step = 0.0
        self.packets_rx = 0
        self.replies_tx = 0
        self.goal_log: list[dict[int, int]] | None = None  # set to [] to record every sync-written goal (tests)
        self._error: BaseException | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        if self._thread is not None:
            raise SimulatorError("servo bus simulator already started")
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._open_pty()
        self._stop.clear()
        self._last_step = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"servo-bus-sim-{self.bus}", daemon=True)
        self._thread.start()
        return self.port

    @property
    def port(self) -> str:
        if not self._pty_path:
            raise SimulatorError("servo bus simulator not started: call start() first")
        return str(self.link_path) if self.link_path is not None else self._pty_path

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake()
        thread.join(timeout=5.0)
        self._thread = None
        with self._lock:
            self._close_pty()
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_r = self._wake_w = -1

    def __enter__(self) -> ServoBusSimulator:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        if self._baud_const is not None:
            attrs = termios.tcgetattr(slave)
            attrs[4] = attrs[5] = self._baud_const
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._pty_path = os.ttyname(slave)
        self._parser.clear()
        if self.link_path is not None:
            tmp = self.link_path.with_name(f".{self.link_path.name}.{os.getpid()}.tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            try:
                tmp.symlink_to(self._pty_path)
                tmp.replace(self.link_path)
            except OSError as e:
                raise SimulatorError(f"cannot create the port symlink {self.link_path}: {e.strerror}") from None

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                if self.link_path.is_symlink():
                    self.link_path.unlink()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")

    # ------------------------------------------------------------------------------------------ the loop

    def _baud_ok(self) -> bool:
        if self._baud_const is None or self._slave is None:
            return True
        try:
            return termios.tcgetattr(self._slave)[4] == self._baud_const
        except termios.error:
            return True

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:
            self._error = e
            raise

    def _loop(self) -> None:
        while not self._stop.is_set():
            master = self._master
            fds = [self._wake_r] if master is None else [self._wake_r, master]
            try:
                ready, _, _ = select.select(fds, [], [], _STEP_S)
            except (OSError, ValueError):
                ready = []
            if self._wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 4096)
            data = b""
            if master is not None and master in ready:
                try:
                    data = os.read(master, 4096)
                except BlockingIOError:
                    pass
                except OSError as e:
                    if e.errno not in (errno.EIO, errno.EBADF):
                        raise
            with self._lock:
                now = time.monotonic()
                self._advance(now)
                if data and self._master is master and self._baud_ok():
                    out = bytearray()
                    for pkt in self._parser.feed(data):
                        self.packets_rx += 1
                        out += self._handle(pkt, now)
                    if out:
                        self._write(bytes(out))

    def _drive_plant(self) -> None:
        """Goals to the plant, its measurement back into the present registers (the servos' own motion is off)."""
        plant = self.plant
        assert plant is not None
        servos = list(self.servos.values())
        torque = all(s.torque_on for s in servos)
        if torque != self._plant_torque:
            plant.set_torque(torque)
            self._plant_torque = torque
        grip = self._maps[-1].gripper_opening_m is not None
        n = len(servos) - 1 if grip else len(servos)
        if torque:
            goals = [m.to_unit(s.get("goal_position")) for m, s in zip(self._maps, servos, strict=True)]
            plant.command(np.array(goals[:n]), np.zeros(n), goals[n] if grip else 0.0)
        st = plant.measure()
        units = [*np.asarray(st.positions, dtype=float)[:n], *([st.gripper] if grip else [])]
        vels = [*np.asarray(st.velocities, dtype=float)[:n], *([0.0] if grip else [])]
        for m, s, u, v in zip(self._maps, servos, units, vels, strict=True):
            s.actual = s._actual_of(m.to_ticks(float(u)))
            s.velocity = float(v) / m.rad_per_tick if m.gripper_opening_m is None else 0.0

    def _advance(self, now: float) -> None:
        if self.plant is not None:
            self._drive_plant()
        dt = now - self._last_step
        while dt > 0:
            h = min(dt, 0.005)
            for s in self.servos.values():
                s.step(now, h)
            dt -= h
        self._last_step = now

    def _write(self, data: bytes) -> None:
        if self._master is None:
            return
        with contextlib.suppress(BlockingIOError):
            try:
                os.write(self._master, data)
            except OSError as e:
                if e.errno not in (errno.EIO, errno.EBADF):
                    raise

    # ------------------------------------------------------------------------------------------ packets

    def _reply(self, servo: SimServo, error: int, params: bytes = b"") -> bytes:
        if not servo.answering:
            return b""
        pkt = self.codec.status(servo.servo_id, error | servo.error_byte(), params)
        self.replies_tx += 1
        if servo.corrupt_replies:
            servo.corrupt_replies -= 1
            b = bytearray(pkt)
            b[-1] ^= 0x5A
            pkt = bytes(b)
        return pkt

    def _handle(self, pkt: Packet, now: float) -> bytes:
        c = self.codec
        broadcast = pkt.servo_id == c.broadcast_id
        if pkt.code == c.inst_sync_write:
            try:
                address, _n, records = c.parse_sync_write(pkt.params)
            except ValueError:
                return b""
            goals: dict[int, int] = {}
            for sid, data in records.items():
                s = self.servos.get(sid)
                if s is not None and s.answering:
                    s.heard(now)
                    s.write(address, data)
                    goals[sid] = s.get("goal_position")
            if self.goal_log is not None and goals:
                self.goal_log.append(goals)
            return b""
        if pkt.code == c.inst_sync_read:
            try:
                address, length, ids = c.parse_sync_read(pkt.params)
            except ValueError:
                return b""
            out = bytearray()
            for sid in ids:
                s = self.servos.get(sid)
                if s is None or not s.answering:
                    continue
                s.heard(now)
                block = s.read(address, length)
                out += self._reply(s, dxl.ERRNUM_ACCESS if block is None else 0, block or b"")
            return bytes(out)
        targets = list(self.servos.values()) if broadcast else [s for s in [self.servos.get(pkt.servo_id)] if s]
        out = bytearray()
        for s in targets:
            if not s.answering:
                continue
            s.heard(now)
            out += self._instruction(s, pkt, broadcast)
        return bytes(out)

    def _instruction(self, s: SimServo, pkt: Packet, broadcast: bool) -> bytes:
        c = self.codec
        dynamixel = self.bus == "dynamixel"
        if pkt.code == c.inst_ping:
            if dynamixel:
                params = s.model.model_number.to_bytes(2, "little") + bytes([s.model.firmware])
                return self._reply(s, 0, params)
            return b"" if broadcast else self._reply(s, 0)
        if broadcast:
            if pkt.code == c.inst_write:
                with contextlib.suppress(ValueError):
                    address, data = c.parse_write(pkt.params)
                    s.write(address, data)
            return b""
        if pkt.code == c.inst_read:
            try:
                address, length = c.parse_read(pkt.params)
            except ValueError:
                return self._reply(s, dxl.ERRNUM_DATA_LENGTH if dynamixel else 0)
            block = s.read(address, length)
            if block is None:
                return self._reply(s, dxl.ERRNUM_ACCESS if dynamixel else 0)
            return self._reply(s, 0, block)
        if pkt.code == c.inst_write:
            try:
                address, data = c.parse_write(pkt.params)
            except ValueError:
                return self._reply(s, dxl.ERRNUM_DATA_LENGTH if dynamixel else 0)
            err = s.write(address, data)
            return self._reply(s, err if dynamixel else 0)
        if dynamixel and pkt.code == dxl.INST_REBOOT:
            reply = self._reply(s, 0)
            s.reboot()
            return reply
        return self._reply(s, dxl.ERRNUM_INSTRUCTION if dynamixel else 0)

    # ------------------------------------------------------------------------------------------ faults, hands

    def servo(self, servo_id: int) -> SimServo:
        s = self.servos.get(servo_id)
        if s is None:
            raise SimulatorError(f"no simulated servo with ID {servo_id} (IDs: {sorted(self.servos)})")
        return s

    def silence(self, servo_id: int, silent: bool = True) -> None:
        """The servo stops answering (a loose cable, a dead servo): it neither replies nor acts."""
        with self._lock:
            self.servo(servo_id).answering = not silent

    def corrupt(self, servo_id: int, count: int = 1) -> None:
        """Its next `count` replies arrive with a bad checksum."""
        with self._lock:
            self.servo(servo_id).corrupt_replies += count

    def overheat(self, servo_id: int, on: bool = True) -> None:
        """Its temperature passes the limit: overheating error bit, torque off (until reboot / power cycle)."""
        with self._lock:
            self.servo(servo_id).overheat(on)

    def move_by_hand(self, servo_id: int, ticks: float) -> None:
        """Put a joint somewhere, as a hand does with torque off (the calibration routine's moves)."""
        with self._lock:
            s = self.servo(servo_id)
            s.actual = float(ticks)
            s.target = float(ticks)

    def power_cycle(self) -> None:
        """Servo power off and on: every servo reboots (RAM defaults, torque off, unsaved EEPROM lost)."""
        with self._lock:
            for s in self.servos.values():
                s.reboot()

    def unplug(self) -> None:
        """The USB adapter goes away: the PTY closes (the servos keep their own power and state)."""
        with self._lock:
            self._close_pty()

    def replug(self) -> None:
        with self._lock:
            if self._master is None:
                self._open_pty()
        self._wake()
