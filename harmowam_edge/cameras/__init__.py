"""Camera sources: RealSense live and recordings (runtime), all producing `Frame`s in host monotonic time.

Importing this package is cheap: pyrealsense2 is imported when a RealSense source first needs it.
"""

from harmowam_edge.cameras.clock import DeviceClockMapper
from harmowam_edge.cameras.frames import CameraHealth, CameraSource, Frame
from harmowam_edge.cameras.realsense import (
    RECORDING_SUFFIXES,
    DeviceInfo,
    FaultLadder,
    RealSenseSource,
    StreamIntrinsics,
    StreamProfile,
    import_realsense,
    list_devices,
    probe_recording,
    record_live,
    recording_mismatch,
)
from harmowam_edge.cameras.synthetic import SyntheticRecording, default_intrinsics, write_synthetic_recording

__all__ = [
    "RECORDING_SUFFIXES",
    "CameraHealth",
    "CameraSource",
    "DeviceClockMapper",
    "DeviceInfo",
    "FaultLadder",
    "Frame",
    "RealSenseSource",
    "StreamIntrinsics",
    "StreamProfile",
    "SyntheticRecording",
    "default_intrinsics",
    "import_realsense",
    "list_devices",
    "probe_recording",
    "record_live",
    "recording_mismatch",
    "write_synthetic_recording",
]
