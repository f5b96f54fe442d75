"""Byte transport on pyserial: real ports, pseudo-terminals and pyserial URLs, opened exclusively.

Opening maps the OS's errors onto typed errors that tell the user what to do. Reading waits on the port and a
wake-up pipe (so `close` interrupts a blocked reader); writing never blocks (a full OS buffer drops the frame).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import stat
import termios
from pathlib import Path
from typing import Protocol

import serial

from firmware_bridge.errors import PortBusyError, PortError, PortNotFoundError, PortPermissionError


class TransportClosedError(Exception):
    """The port went away under us (unplugged) or was closed. Internal: the client turns it into link events."""


class Transport(Protocol):
    """What a client backend needs from a byte link."""

    port: str

    def read(self, timeout: float) -> bytes:
        """Bytes received, or b"" after `timeout` seconds; raises TransportClosedError if the port is gone."""
        ...

    def write(self, data: bytes) -> bool:
        """Queue `data` without blocking; False if the OS buffer could not take all of it."""
        ...

    def flush_input(self) -> None:
        """Discard bytes received but not read (stale frames from before we opened)."""
        ...

    def interrupt(self) -> None:
        """Wake a reader blocked in `read`."""
        ...

    def close(self) -> None: ...


_BUSY_ERRNOS = {errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK}
_MISSING_ERRNOS = {errno.ENOENT, errno.ENODEV, errno.ENXIO}
_PERMISSION_ERRNOS = {errno.EACCES, errno.EPERM}


def not_a_serial_device(port: str) -> PortError | None:
    """The error for a path that exists but cannot be a serial port (a file, a folder, /dev/null), else None."""
    try:
        st = Path(port).stat()
    except OSError:
        return None  # missing or unreadable: opening says which
    if stat.S_ISCHR(st.st_mode):
        return None  # maybe a tty: only opening it tells (never opened twice: some controllers reset on open)
    kinds = {stat.S_IFREG: "a regular file", stat.S_IFDIR: "a directory", stat.S_IFIFO: "a pipe"}
    return _not_serial(port, kinds.get(stat.S_IFMT(st.st_mode), "not a character device"))


def _not_serial(port: str, kind: str) -> PortError:
    return PortError(
        port, f"{port} is not a serial device ({kind}): give the arm's port, e.g. /dev/ttyACM0 or /dev/serial/by-id/..."
    )


def describe_open_error(port: str, err_no: int | None, detail: str) -> PortError:
    """The typed error for an errno from opening `port` (public so tests can check the mapping directly)."""
    if err_no in _MISSING_ERRNOS:
        return PortNotFoundError(
            port,
            f"serial port {port} does not exist: is the arm controller plugged in and powered? "
            f"(ls /dev/serial/by-id/ lists the connected ones)",
        )
    if err_no in _PERMISSION_ERRNOS:
        return PortPermissionError(
            port,
            f"permission denied opening {port}: add your user to the 'dialout' group "
            f"(sudo usermod -aG dialout $USER), then log out and back in",
        )
    if err_no == errno.ENOTTY or os.strerror(errno.ENOTTY) in detail:
        # pyserial's "Could not configure port: (25, 'Inappropriate ioctl for device')": /dev/null and the like
        return _not_serial(port, "a character device that is not a terminal")
    if err_no in _BUSY_ERRNOS or "exclusively lock" in detail:
        return PortBusyError(
            port, f"serial port {port} is in use by another process (find it with: fuser -v {port}); close it first"
        )
    return PortError(port, f"cannot open serial port {port}: {detail}")


class SerialTransport:
    """A pyserial port. For device paths (everything but URLs) reads and writes use the file descriptor directly:
    one select + one read per chunk, one non-blocking write per frame."""

    def __init__(self, ser: serial.SerialBase, port: str) -> None:
        self.port = port
        self._ser = ser
        self._closed = False
        self._abort_r, self._abort_w = os.pipe()
        os.set_blocking(self._abort_r, False)
        try:
            self._fd: int | None = ser.fileno()  # type: ignore[attr-defined]
        except (AttributeError, NotImplementedError, serial.SerialException, OSError):
            self._fd = None

    @classmethod
    def open(cls, port: str, baudrate: int, *, exclusive: bool = True) -> SerialTransport:
        """Open `port` (a path or a pyserial URL such as loop:// or socket://host:port) exclusively."""
        try:
            if "://" in port:
                # URL handlers (loop://, socket://) have no fd; a short write timeout keeps writes from hanging
                ser = serial.serial_for_url(port, baudrate=baudrate, timeout=0, write_timeout=0.05)
            else:
                wrong = not_a_serial_device(port)
                if wrong is not None:
                    raise wrong
                ser = serial.Serial(port, baudrate=baudrate, timeout=0, write_timeout=0, exclusive=exclusive)
        except serial.SerialException as e:
            raise describe_open_error(port, e.errno, str(e)) from None
        except OSError as e:
            raise describe_open_error(port, e.errno, str(e)) from None
        except ValueError as e:
            raise PortError(port, f"cannot open serial port {port}: {e}") from None
        return cls(ser, port)

    def read(self, timeout: float) -> bytes:
        if self._closed:
            raise TransportClosedError(f"{self.port} is closed")
        fd = self._fd
        if fd is None:
            return self._read_generic(timeout)
        try:
            ready, _, _ = select.select([fd, self._abort_r], [], [], timeout)
        except (OSError, ValueError) as e:
            raise TransportClosedError(f"{self.port}: {e}") from None
        if self._abort_r in ready:
            with contextlib.suppress(OSError):
                os.read(self._abort_r, 64)
            if self._closed:
                raise TransportClosedError(f"{self.port} is closed")
        if fd not in ready:
            return b""
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return b""
        except OSError as e:
            raise TransportClosedError(f"{self.port}: {e.strerror}") from None
        if not data:
            # a vanished device is always readable and returns nothing
            raise TransportClosedError(f"{self.port} disconnected")
        return data

    def _read_generic(self, timeout: float) -> bytes:
        try:
            self._ser.timeout = timeout
            data = self._ser.read(1)
            if data:
                waiting = self._ser.in_waiting
                if waiting:
                    data += self._ser.read(waiting)
            return bytes(data)
        except (serial.SerialException, OSError) as e:
            raise TransportClosedError(f"{self.port}: {e}") from None

    def write(self, data: bytes) -> bool:
        if self._closed:
            raise TransportClosedError(f"{self.port} is closed")
        fd = self._fd
        try:
            if fd is None:
                return self._ser.write(data) == len(data)
            n = os.write(fd, data)
        except BlockingIOError:
            return False
        except serial.SerialTimeoutException:
            return False
        except (serial.SerialException, OSError) as e:
            raise TransportClosedError(f"{self.port}: {e}") from None
        return n == len(data)

    def flush_input(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError, termios.error):
            self._ser.reset_input_buffer()

    def interrupt(self) -> None:
        """Wake a reader blocked in `read` (it then raises TransportClosedError if the transport is closing)."""
        with contextlib.suppress(OSError):
            os.write(self._abort_w, b"x")

    def close(self) -> None:
        """Close the port. Stop the reader first (`interrupt`, then join it) so no thread selects on a closed fd."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._ser.close()
        for fd in (self._abort_r, self._abort_w):
            with contextlib.suppress(OSError):
                os.close(fd)
