"""Typed errors of the arm link. Every `BridgeError` is a problem a user can act on: its message names the port
and says what was expected; the CLI prints it as one line (harmowam_edge/errors.py)."""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the link reports to a user (the CLI prints it as one line, no traceback)."""


# --- opening the port ---------------------------------------------------------------------------------------


class PortError(BridgeError):
    """The serial port could not be opened or used."""

    def __init__(self, port: str, message: str) -> None:
        super().__init__(message)
        self.port = port


class PortNotFoundError(PortError):
    """The port does not exist (unplugged, wrong path)."""


class PortBusyError(PortError):
    """Another process holds the port (we open ports exclusively)."""


class PortPermissionError(PortError):
    """The user may not open the port (on Linux: not in the `dialout` group)."""


# --- handshake ----------------------------------------------------------------------------------------------


class HandshakeError(BridgeError):
    """The handshake did not produce a usable link."""


class FirmwareNotAnsweringError(HandshakeError):
    """Not a single byte came back: the device is off, not the arm controller, or wired wrong."""


class WrongProtocolError(HandshakeError):
    """Bytes came back but no valid frame (wrong baud rate or not our protocol), or no HELLO_ACK."""


class ProtocolVersionError(HandshakeError):
    """Host and firmware speak different major protocol versions (or same version, different schema)."""


class SchemaMismatchError(ProtocolVersionError):
    """Same (major, minor) protocol version but a different message-layout hash: one side was built from edited
    layouts without a version bump."""


class FirmwareMismatchError(HandshakeError):
    """The firmware answered, but it is not the arm the caller expected (joint count, arm address, identity)."""


# --- using the link -----------------------------------------------------------------------------------------


class LinkDownError(BridgeError):
    """The link is closed, or the port disappeared and has not come back (yet)."""


class RequestTimeoutError(BridgeError):
    """An acknowledged request (ENABLE, DISABLE, ESTOP, RESET_ESTOP) got no ACK/NACK after all retries."""


class RequestRejectedError(BridgeError):
    """The firmware answered a request with NACK; `reason` is the protocol's NackReason."""

    def __init__(self, message: str, reason: int, detail: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail


class SetpointError(BridgeError):
    """A setpoint of the wrong shape or with non-finite values; nothing was sent."""


# --- codec --------------------------------------------------------------------------------------------------


class ProtocolError(BridgeError):
    """A frame or message that does not follow PROTOCOL.md (raised by the pure codec)."""


# --- simulators ---------------------------------------------------------------------------------------------


class SimulatorError(BridgeError):
    """A firmware simulator could not be started (PTY, compiler, bad configuration)."""


class CompilerNotFoundError(SimulatorError):
    """The C host simulator must be built, and no C compiler was found."""
