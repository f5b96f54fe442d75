"""Typed errors of camera calibration. Each is a user-facing problem: the CLI prints it as one line and exits 2.

Messages name the file, option or view at fault and what was expected, so the user can act without a traceback.
"""

from __future__ import annotations


class CalibrationError(Exception):
    """Base of every calibration error the CLI reports as one line (see `harmowam_edge.errors`)."""


class BoardSpecError(CalibrationError):
    """A board spec such as `chessboard:9x6:0.025` that does not parse or describes an impossible board."""


class ImageReadError(CalibrationError):
    """An image file or directory that cannot be read (missing, not an image, wrong size)."""


class BoardNotFoundError(CalibrationError):
    """The calibration board was not found in the views given."""


class TooFewViewsError(CalibrationError):
    """Too few usable views to solve (after dropping views without the board or with large errors)."""


class CalibrationFileError(CalibrationError):
    """A calibration file that is missing, not JSON/YAML, or does not follow the schema (the field is named)."""


class CameraMismatchError(CalibrationError):
    """A calibration file made for another camera (serial, stream or image size differ); both are named."""


class PoseFileError(CalibrationError):
    """A hand-eye pose file that does not follow the documented format (the entry and field are named)."""


class DegenerateMotionError(CalibrationError):
    """Robot motions that cannot determine the hand-eye transform (pure translation, one rotation axis)."""


class KinematicsError(CalibrationError):
    """A URDF that cannot be loaded or does not have the links/joints the arm reports."""


class CaptureError(CalibrationError):
    """Guided capture could not proceed (no frames from the camera, no state from the arm)."""
