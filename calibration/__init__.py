"""Camera calibration: intrinsics, hand-eye, RealSense factory data, reports, the calibration file format.

OpenCV is imported only inside this package (design §2), and only by the modules that solve or detect: importing
`calibration` or reading a calibration file (`calibration.file_format`) needs neither OpenCV nor anything heavy.
The solvers live in `calibration.intrinsics`, `calibration.handeye`, `calibration.check`; the CLI is
`harmowam-edge calibrate` (harmowam_edge/commands/calibrate.py).
"""

from calibration.boards import BoardSpec
from calibration.camera_model import PinholeModel, pixel_difference
from calibration.errors import CalibrationError
from calibration.file_format import (
    CameraCalibration,
    CameraId,
    Extrinsics,
    Intrinsics,
    load_calibration,
    save_calibration,
)

__all__ = [
    "BoardSpec",
    "CalibrationError",
    "CameraCalibration",
    "CameraId",
    "Extrinsics",
    "Intrinsics",
    "PinholeModel",
    "load_calibration",
    "pixel_difference",
    "save_calibration",
]
