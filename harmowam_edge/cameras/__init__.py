"""Camera sources: RealSense live and recordings (runtime), all producing `Frame`s in host monotonic time."""

from harmowam_edge.cameras.frames import CameraHealth, CameraSource, Frame

__all__ = ["CameraHealth", "CameraSource", "Frame"]
