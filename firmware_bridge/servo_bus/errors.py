"""Typed errors of the servo buses (all `BridgeError`: the CLI prints them as one line, exit 2)."""

from __future__ import annotations

from firmware_bridge.errors import BridgeError, FirmwareMismatchError, FirmwareNotAnsweringError


class ServoBusError(BridgeError):
    """A servo refused an instruction, or the bus is used wrongly."""


class ServoNotAnsweringError(FirmwareNotAnsweringError):
    """A servo the arm needs did not answer (unpowered, wrong ID, wrong baud rate, loose cable)."""


class ServoMismatchError(FirmwareMismatchError):
    """A servo answered, but it is not the model (or setup) the rig names."""


class BusConfigError(ServoBusError):
    """A bus arm configuration that cannot work (names the field)."""


class CalibrationFileError(ServoBusError):
    """A calibration file (LeRobot's per-arm JSON) that cannot be read or does not fit the arm (names the field)."""
