"""The Python firmware simulator: one arm's firmware (`FirmwareCore`) on a pseudo-terminal, with fault injection.

A client opens the PTY with pyserial exactly as it would open /dev/ttyACM0. Several simulators may run in one
process (one per arm of a dual-arm rig): each has its own PTY and thread.

Unplug/replug: a PTY cannot come back once closed, just as /dev/ttyACM0 vanishes on a USB unplug. With
`link_path`, the simulator keeps a stable symlink (like /dev/serial/by-id/...) and re-points it at a fresh PTY on
replug, so a client that opened the symlink can reconnect. This stands in for a USB unplug, which cannot be done
here; the controller keeps running while unplugged (a self-powered controller), so its watchdog fires.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import random
import select
import termios
import threading
import time
import tty
from collections import deque
from types import TracebackType

from firmware_bridge.errors import SimulatorError
from firmware_bridge.firmware_core import FirmwareCore, FirmwareStatus
from firmware_bridge.framing import cobs_decode, cobs_encode
from firmware_bridge.plant import IdealPlant, Plant
from firmware_bridge.sim_config import SimArmConfig

_DIRECTIONS = ("tx", "rx")


def _check_direction(direction: str) -> None:
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction: expected 'tx' (firmware → host) or 'rx' (host → firmware), got {direction!r}")


def _corrupt_frame(frame: bytes) -> bytes:
    """Flip one content bit of an encoded frame (0x00 COBS 0x00) and keep the old CRC: a sure CRC error."""
    raw = bytearray(cobs_decode(frame.strip(b"\x00")))
    raw[len(raw) // 2] ^= 0x10
    return b"\x00" + cobs_encode(bytes(raw)) + b"\x00"


def _garble(data: bytes) -> bytes:
    """What a UART at the wrong baud rate makes of bytes: other bytes, no valid frame."""
    return bytes(((b * 37 + 11) & 0xFF) | 0x01 for b in data)


class FirmwareSimulator:
    """One simulated arm firmware serving a pseudo-terminal; `start()` returns the port to open."""

    #: The firmware behaviour; tests swap in a subclass (e.g. a firmware of another protocol version).
    core_class: type[FirmwareCore] = FirmwareCore

    def __init__(
        self,
        config: SimArmConfig | None = None,
        plant: Plant | None = None,
        link_path: pathlib.Path | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        self.config = config or SimArmConfig()
        c = self.config
        self.plant: Plant = plant if plant is not None else IdealPlant(c.initial, c.initial_gripper or 0.0)
        self.link_path = pathlib.Path(link_path) if link_path is not None else None
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._core: FirmwareCore | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._master: int | None = None
        self._slave: int | None = None
        self._pty_path = ""
        self._baud_const = getattr(termios, f"B{c.baudrate}", None)
        # fault injection state
        self._drop = {"tx": 0, "rx": 0}
        self._corrupt = {"tx": 0, "rx": 0}
        self._delay = 0.0
        self._delayed: deque[tuple[float, bytes]] = deque()
        self._muted = False
        self._rx_buf = bytearray()
        self.frames_dropped = {"tx": 0, "rx": 0}
        self.frames_corrupted = {"tx": 0, "rx": 0}
        self.tx_overflows = 0
        self.garbled_bytes = 0
        self._error: BaseException | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Open the PTY, start serving; return the path a client should open (the symlink if there is one)."""
        if self._thread is not None:
            raise SimulatorError("simulator already started")
        self._core = self.core_class(self.config, self.plant, time.monotonic(), self._rng.getrandbits(32))
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._open_pty()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"firmware-sim-{self._pty_path}", daemon=True)
        self._thread.start()
        return self.port

    @property
    def port(self) -> str:
        """The path to open: the stable symlink if `link_path` was given, else the PTY itself."""
        if not self._pty_path:
            raise SimulatorError("simulator not started: call start() first")
        return str(self.link_path) if self.link_path is not None else self._pty_path

    @property
    def pty_path(self) -> str:
        """The current PTY (changes on replug)."""
        return self._pty_path

    def stop(self) -> None:
        """Stop serving, close the PTY, remove the symlink. Idempotent."""
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

    def __enter__(self) -> FirmwareSimulator:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        # raw at once: otherwise the line discipline echoes our frames back and cooks bytes until a client opens
        tty.setraw(slave)
        if self._baud_const is not None:
            attrs = termios.tcgetattr(slave)
            attrs[4] = attrs[5] = self._baud_const
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        # we keep our own slave fd open: with no slave open, reads on the master fail with EIO
        self._master, self._slave = master, slave
        self._pty_path = os.ttyname(slave)
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

    @property
    def core(self) -> FirmwareCore:
        if self._core is None:
            raise SimulatorError("simulator not started: call start() first")
        return self._core

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
        except BaseException as e:  # surfaced by status(); a dead simulator must not pass silently
            self._error = e
            raise

    def _loop(self) -> None:
        core = self.core
        while not self._stop.is_set():
            with self._lock:
                deadline = core.next_deadline()
                if self._delayed:
                    deadline = min(deadline, self._delayed[0][0])
                master = self._master
            timeout = min(max(deadline - time.monotonic(), 0.0), 0.05)
            fds = [self._wake_r] if master is None else [self._wake_r, master]
            try:
                ready, _, _ = select.select(fds, [], [], timeout)
            except (OSError, ValueError):
                ready = []  # the master was closed under us (unplug): next round
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
                if self._master is not master:
                    data = b""  # unplugged/replugged meanwhile
                now = time.monotonic()
                out: list[bytes] = []
                if data and not self._muted:
                    if self._baud_ok():
                        out += core.receive(self._filter_rx(data), now)
                    else:
                        self.garbled_bytes += len(data)
                out += core.tick(now)
                self._transmit(out, now)

    def _filter_rx(self, data: bytes) -> bytes:
        """Apply rx faults frame by frame (a frame = bytes up to a 0x00)."""
        if not (self._drop["rx"] or self._corrupt["rx"]):
            return data
        self._rx_buf += data
        *frames, rest = bytes(self._rx_buf).split(b"\x00")
        self._rx_buf = bytearray(rest)
        out = bytearray()
        for f in frames:
            if not f:
                continue
            frame = b"\x00" + f + b"\x00"
            if self._drop["rx"]:
                self._drop["rx"] -= 1
                self.frames_dropped["rx"] += 1
                continue
            if self._corrupt["rx"]:
                self._corrupt["rx"] -= 1
                self.frames_corrupted["rx"] += 1
                frame = _corrupt_frame(frame)
            out += frame
        if not (self._drop["rx"] or self._corrupt["rx"]) and self._rx_buf:
            out += self._rx_buf
            self._rx_buf.clear()
        return bytes(out)

    def _transmit(self, frames: list[bytes], now: float) -> None:
        for frame in frames:
            if self._muted:
                continue
            if self._drop["tx"]:
                self._drop["tx"] -= 1
                self.frames_dropped["tx"] += 1
                continue
            if self._corrupt["tx"]:
                self._corrupt["tx"] -= 1
                self.frames_corrupted["tx"] += 1
                frame = _corrupt_frame(frame)
            if self._delay > 0 or self._delayed:
                self._delayed.append((now + self._delay, frame))
            else:
                self._write(frame)
        while self._delayed and self._delayed[0][0] <= now:
            self._write(self._delayed.popleft()[1])

    def _write(self, data: bytes) -> None:
        if self._master is None:
            return  # unplugged: the bytes go nowhere
        if not self._baud_ok():
            data = _garble(data)
            self.garbled_bytes += len(data)
        try:
            n = os.write(self._master, data)
        except BlockingIOError:
            n = 0
        except OSError as e:
            if e.errno in (errno.EIO, errno.EBADF):
                return
            raise
        if n < len(data):
            self.tx_overflows += 1  # nobody reads the port: drop, as a UART with a full FIFO would

    # ------------------------------------------------------------------------------------------ fault injection

    def drop(self, count: int = 1, direction: str = "tx") -> None:
        """Drop the next `count` frames the firmware sends ("tx") or receives ("rx")."""
        _check_direction(direction)
        with self._lock:
            self._drop[direction] += count

    def corrupt(self, count: int = 1, direction: str = "tx") -> None:
        """Flip a bit in the next `count` frames (the CRC no longer matches)."""
        _check_direction(direction)
        with self._lock:
            self._corrupt[direction] += count

    def delay(self, seconds: float) -> None:
        """Hold every frame the firmware sends for `seconds` (0 ends the delay once the queue has drained)."""
        with self._lock:
            self._delay = max(0.0, float(seconds))
        self._wake()

    def inject(self, data: bytes) -> None:
        """Write raw bytes to the host (garbage on the line)."""
        with self._lock:
            self._write(bytes(data))

    def stop_answering(self) -> None:
        """The firmware's link goes silent: it reads nothing and sends nothing; its control loop and watchdog run."""
        with self._lock:
            self._muted = True

    def resume(self) -> None:
        """Undo `stop_answering`."""
        with self._lock:
            self._muted = False
            self._wake()

    def reboot(self, uptime: float = 0.0) -> None:
        """Power-cycle the controller: mode DISABLED, new boot id, sequence numbers from zero, no session.

        The firmware clock restarts at `uptime` seconds: a value above the old uptime makes a reboot that the
        firmware time alone does not reveal.
        """
        with self._lock:
            self.core.reboot(time.monotonic() - uptime, self._rng.getrandbits(32))
        self._wake()

    def unplug(self) -> None:
        """Pull the USB cable: the PTY closes (the client's reads fail) and the symlink disappears."""
        with self._lock:
            if self._master is None:
                return
            self._close_pty()
            self._rx_buf.clear()
            self._delayed.clear()
        self._wake()

    def replug(self) -> None:
        """Plug the cable back in: a fresh PTY, the symlink re-pointed at it."""
        with self._lock:
            if self._master is not None:
                return
            self._open_pty()
        self._wake()

    def press_estop(self) -> None:
        """Press the arm's hardware e-stop button (latches ESTOP; RESET_ESTOP is refused while pressed)."""
        with self._lock:
            self.core.hardware_estop = True
        self._wake()

    def release_estop(self) -> None:
        with self._lock:
            self.core.hardware_estop = False

    def set_drive_fault(self, active: bool) -> None:
        """A joint driver reports a fault (torque goes off, ENABLE is refused while it lasts)."""
        with self._lock:
            self.core.drive_fault = bool(active)

    def status(self) -> FirmwareStatus:
        """A snapshot of the firmware (mode, torque, reference, counters)."""
        if self._error is not None:
            raise SimulatorError(f"the simulator thread died: {self._error!r}")
        with self._lock:
            return self.core.status()
