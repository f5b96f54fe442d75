"""Real RealSense recordings for tests, made with `rs.software_device` + `rs.recorder` (no camera needed).

    from tests.recordings import make_recording
    rec = make_recording(tmp_path / "cam.db3", width=160, height=120, fps=30, frames=30, depth=True,
                         color=lambda i: my_rgb(i))
    source = RealSenseSource.playback(spec, rec.path)

The implementation is `harmowam_edge.cameras.synthetic` (the runtime bench uses it too); its docstring says what
pyrealsense2 2.59 writes (`.db3` only; it plays `.db3` and `.bag`), why frames are paced at the fps by default
(`pace=True`: the recorder stamps arrival time and real-time playback replays it) and when to use `pace=False`
(non-real-time playback, e.g. INT8 calibration reading every frame). A bad argument raises `CameraError`.
"""

from __future__ import annotations

from harmowam_edge.cameras.synthetic import (
    ColorFn,
    DepthFn,
    default_intrinsics,
    gradient_color,
    plane_depth,
)
from harmowam_edge.cameras.synthetic import SyntheticRecording as Recording
from harmowam_edge.cameras.synthetic import write_synthetic_recording as make_recording

__all__ = ["ColorFn", "DepthFn", "Recording", "default_intrinsics", "gradient_color", "make_recording", "plane_depth"]
