"""Camera calibration: intrinsics, hand-eye, RealSense factory data, reports, the calibration file format.

OpenCV is imported only inside this package (design §2); the calibration file is readable without it.
"""
