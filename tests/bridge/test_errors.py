"""Opening a port that is missing, busy, forbidden, silent, at the wrong baud rate or speaking another protocol:
each is a typed BridgeError whose message names the port and says what to do."""

from __future__ import annotations

import errno
import os
import threading
import tty

import pytest
import serial

from firmware_bridge import ArmLink, BridgeError
from firmware_bridge.errors import (
    FirmwareNotAnsweringError,
    PortBusyError,
    PortNotFoundError,
    PortPermissionError,
    WrongProtocolError,
)
from firmware_bridge.transport import SerialTransport, describe_open_error


def test_missing_port(tmp_path) -> None:
    port = str(tmp_path / "ttyACM9")
    with pytest.raises(PortNotFoundError, match=r"ttyACM9 does not exist: is the arm controller plugged in"):
        ArmLink.open(port)


def test_busy_port_second_exclusive_open(start_sim, open_link) -> None:
    sim = start_sim()
    open_link(sim.port)
    with pytest.raises(PortBusyError, match=r"in use by another process \(find it with: fuser"):
        ArmLink.open(sim.port)


def test_permission_denied_names_the_dialout_group(monkeypatch) -> None:
    # The tests run as root, for whom file permissions do not apply: the OS error is mocked (only this open).
    def deny(*args: object, **kwargs: object) -> None:
        raise serial.SerialException(errno.EACCES, "could not open port /dev/ttyUSB0: [Errno 13] Permission denied")

    monkeypatch.setattr(serial, "Serial", deny)
    with pytest.raises(
        PortPermissionError, match=r"permission denied opening /dev/ttyUSB0: add your user to the 'dialout'"
    ):
        SerialTransport.open("/dev/ttyUSB0", 1_000_000)


@pytest.mark.parametrize(
    ("err_no", "kind"),
    [
        (errno.ENOENT, PortNotFoundError),
        (errno.ENODEV, PortNotFoundError),
        (errno.EACCES, PortPermissionError),
        (errno.EPERM, PortPermissionError),
        (errno.EBUSY, PortBusyError),
        (errno.EAGAIN, PortBusyError),
        (errno.EIO, BridgeError),
    ],
)
def test_errno_mapping(err_no: int, kind: type[BridgeError]) -> None:
    e = describe_open_error("/dev/ttyX", err_no, "detail")
    assert isinstance(e, kind)
    assert "/dev/ttyX" in str(e)


@pytest.fixture
def silent_pty():
    """A PTY with nothing behind it: a device that is off, or not the arm controller."""
    master, slave = os.openpty()
    tty.setraw(slave)
    yield os.ttyname(slave)
    os.close(slave)
    os.close(master)


def test_firmware_not_answering(silent_pty) -> None:
    with pytest.raises(
        FirmwareNotAnsweringError, match=r"no answer from the arm firmware in 0\.3 s \(no bytes at all\)"
    ):
        ArmLink.open(silent_pty, handshake_timeout=0.1)


def test_wrong_baud_rate(start_sim) -> None:
    sim = start_sim()  # the simulated UART runs at 1 Mbaud; at 115200 both sides see garbage
    with pytest.raises(WrongProtocolError, match=r"no valid frame: wrong baud rate \(this host opened it at 115200\)"):
        ArmLink.open(sim.port, baudrate=115200, handshake_timeout=0.15)
    # and the port is usable at the right rate afterwards
    with ArmLink.open(sim.port) as link:
        assert link.info.joint_count == 6


def test_a_device_speaking_another_protocol() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def modem() -> None:  # answers anything with text, as an AT-command device would
        while not stop.is_set():
            try:
                if os.read(master, 256):
                    os.write(master, b"\r\nERROR\r\n")
            except OSError:
                return

    t = threading.Thread(target=modem, daemon=True)
    t.start()
    try:
        with pytest.raises(WrongProtocolError, match="not a harmowam arm firmware"):
            ArmLink.open(os.ttyname(slave), handshake_timeout=0.1)
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
        t.join(1.0)


def test_pyserial_url_loopback_gets_no_hello_ack() -> None:
    # loop:// echoes our own HELLO: a valid frame, but no HELLO_ACK
    with pytest.raises(WrongProtocolError, match="sent no HELLO_ACK"):
        ArmLink.open("loop://", handshake_timeout=0.05)


def test_cli_prints_bridge_errors_as_one_line(capsys, tmp_path) -> None:
    from harmowam_edge import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bridge", "ping", str(tmp_path / "nope")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("harmowam-edge: error: serial port ")
    assert "Traceback" not in err[0]


def test_no_c_compiler_is_a_clear_error(monkeypatch, tmp_path) -> None:
    from firmware_bridge.c_simulator import build_host_simulator
    from firmware_bridge.errors import CompilerNotFoundError

    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no cc, gcc or clang
    with pytest.raises(CompilerNotFoundError, match=r"no C compiler was found.*apt-get install gcc.*--impl python"):
        build_host_simulator(tmp_path / "build")


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda tmp: "/dev/null", "a character device that is not a terminal"),
        (lambda tmp: str((tmp / "notes.txt").resolve()), "a regular file"),
        (lambda tmp: str(tmp), "a directory"),
    ],
)
def test_a_path_that_is_no_serial_device_says_so(tmp_path, make, kind) -> None:
    (tmp_path / "notes.txt").write_text("not a port\n")
    port = make(tmp_path)
    with pytest.raises(BridgeError) as e:
        ArmLink.open(port)
    msg = str(e.value)
    assert msg.startswith(f"{port} is not a serial device ({kind})")
    assert "ioctl" not in msg
    assert "\n" not in msg


def test_the_cli_says_dev_null_is_not_a_serial_device(capsys) -> None:
    from harmowam_edge.cli import main

    with pytest.raises(SystemExit) as e:
        main(["bridge", "ping", "/dev/null"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        (
            "harmowam-edge: error: /dev/null is not a serial device (a character device that is not a terminal): "
            "give the arm's port, e.g. /dev/ttyACM0 or /dev/serial/by-id/..."
        )
    ]
