"""Synthetic RealSense recordings: a real `.db3` written by `rs.software_device` + `rs.recorder`, no camera needed.

Used by the tests (`tests/recordings.py`), `harmowam-edge bench` and anyone who wants a recording to try
`run --dry-run` / `replay` with. pyrealsense2 2.59 writes ROS2 `.db3` files only (`rs.recorder` refuses any other
extension: "Output file must have .db3 extension") and plays `.db3` and legacy ROS1 `.bag` files alike.

The recorder stamps each frame with the host time it arrived, and real-time playback replays that timing, so by
default (`pace=True`) frames are fed 1/fps apart (a 30-frame 30 fps recording takes about a second to write and
plays back like a camera). `pace=False` writes as fast as possible, for non-real-time playback
(`RealSenseSource(..., realtime=False).frames()`), which hands over every frame. Device timestamps are
`i * 1000 / fps` ms (hardware-clock domain); frame numbers start at `first_frame_number`. A real-time pipeline may
skip the first frame or two while it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harmowam_edge.cameras.realsense import StreamIntrinsics, import_realsense
from harmowam_edge.errors import CameraError

ColorFn = Callable[[int], np.ndarray]  # frame index -> uint8 [H, W, 3] RGB
DepthFn = Callable[[int], np.ndarray]  # frame index -> uint16 [H, W] z16


@dataclass(frozen=True)
class SyntheticRecording:
    path: Path
    width: int
    height: int
    fps: int
    frames: int
    depth: bool
    serial: str
    intrinsics: StreamIntrinsics  # color (depth has the same intrinsics and identity extrinsics to color)
    depth_units: float


def default_intrinsics(width: int, height: int, serial: str = "000000000001") -> StreamIntrinsics:
    """D435-like color intrinsics scaled to the image size (about 69° horizontal field of view)."""
    f = 0.72 * width
    return StreamIntrinsics(
        stream="color",
        width=width,
        height=height,
        fx=f,
        fy=f,
        ppx=(width - 1) / 2.0,
        ppy=(height - 1) / 2.0,
        model="brown_conrady",
        coeffs=(0.0, 0.0, 0.0, 0.0, 0.0),
        serial=serial,
    )


def gradient_color(width: int, height: int) -> ColorFn:
    """A moving gradient: every frame differs, and the frame index can be read back from pixel (0, 0)."""
    yy, xx = np.mgrid[0:height, 0:width]

    def color(i: int) -> np.ndarray:
        img = np.empty((height, width, 3), np.uint8)
        img[..., 0] = (xx * 255 // max(1, width - 1) + 5 * i) % 256
        img[..., 1] = (yy * 255 // max(1, height - 1)) % 256
        img[..., 2] = i % 256
        return img

    return color


def plane_depth(width: int, height: int, base_mm: int = 800) -> DepthFn:
    yy = np.mgrid[0:height, 0:width][0]

    def depth(i: int) -> np.ndarray:
        return (base_mm + yy * 2 + i).astype(np.uint16)

    return depth


def write_synthetic_recording(
    path: str | Path,
    *,
    width: int = 160,
    height: int = 120,
    fps: int = 30,
    frames: int = 30,
    depth: bool = False,
    color: ColorFn | None = None,
    depth_fn: DepthFn | None = None,
    intrinsics: StreamIntrinsics | None = None,
    serial: str = "000000000001",
    name: str = "Intel RealSense D435 (software device)",
    depth_units: float = 0.001,
    pace: bool = True,
    first_frame_number: int = 1,
) -> SyntheticRecording:
    """Write a RealSense recording (`.db3`) of `frames` frames from a software device; see the module docstring."""
    rs = import_realsense()
    path = Path(path)
    if path.suffix != ".db3":
        raise CameraError(f"{path}: pyrealsense2 {rs.__version__} records .db3 files only")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    intr = intrinsics or default_intrinsics(width, height, serial)
    if (intr.width, intr.height) != (width, height):
        raise CameraError(f"intrinsics are for {intr.width}x{intr.height}, the recording is {width}x{height}")
    color = color or gradient_color(width, height)
    depth_fn = depth_fn or plane_depth(width, height)

    dev = rs.software_device()
    dev.register_info(rs.camera_info.name, name)
    dev.register_info(rs.camera_info.serial_number, serial)
    dev.register_info(rs.camera_info.product_line, "D400")
    dev.register_info(rs.camera_info.firmware_version, "5.16.0.1")
    color_sensor = dev.add_sensor("RGB Camera")
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid = rs.stream.color, 0, 1
    vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = width, height, fps, 3, rs.format.rgb8
    vs.intrinsics = intr.to_rs()
    color_profile = color_sensor.add_video_stream(vs, True)
    sensors = [(color_sensor, color_profile)]
    depth_profile = None
    if depth:
        depth_sensor = dev.add_sensor("Stereo Module")
        ds = rs.video_stream()
        ds.type, ds.index, ds.uid = rs.stream.depth, 0, 2
        ds.width, ds.height, ds.fps, ds.bpp, ds.fmt = width, height, fps, 2, rs.format.z16
        ds.intrinsics = intr.to_rs()
        depth_profile = depth_sensor.add_video_stream(ds, True)
        depth_sensor.add_read_only_option(rs.option.depth_units, depth_units)
        ext = rs.extrinsics()
        ext.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        ext.translation = [0.0, 0.0, 0.0]
        depth_profile.register_extrinsics_to(color_profile, ext)  # rs.align needs depth -> color extrinsics
        sensors.append((depth_sensor, depth_profile))

    recorder = rs.recorder(str(path), dev)
    sink = rs.frame_queue(max(2, frames * len(sensors)))
    for sensor, profile in sensors:
        sensor.open(profile)
        sensor.start(sink)
    period = 1.0 / fps
    t0 = time.monotonic()
    for i in range(frames):
        ts_ms = i * 1000.0 / fps
        rgb = np.ascontiguousarray(color(i), dtype=np.uint8)
        if rgb.shape != (height, width, 3):
            raise CameraError(f"color({i}): expected uint8 [{height}, {width}, 3], got {rgb.shape}")
        f = rs.software_video_frame()
        f.pixels, f.stride, f.bpp = rgb, width * 3, 3
        f.timestamp, f.domain, f.frame_number = ts_ms, rs.timestamp_domain.hardware_clock, first_frame_number + i
        f.profile = color_profile.as_video_stream_profile()
        color_sensor.on_video_frame(f)
        if depth_profile is not None:
            z = np.ascontiguousarray(depth_fn(i), dtype=np.uint16)
            if z.shape != (height, width):
                raise CameraError(f"depth_fn({i}): expected uint16 [{height}, {width}], got {z.shape}")
            g = rs.software_video_frame()
            g.pixels, g.stride, g.bpp = z, width * 2, 2
            g.timestamp, g.domain, g.frame_number = ts_ms, rs.timestamp_domain.hardware_clock, first_frame_number + i
            g.profile = depth_profile.as_video_stream_profile()
            g.depth_units = depth_units
            sensors[1][0].on_video_frame(g)
        if pace:
            delay = t0 + (i + 1) * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    for sensor, _ in sensors:
        sensor.stop()
        sensor.close()
    del recorder  # the file is finalised when the recorder goes away
    return SyntheticRecording(
        path=path,
        width=width,
        height=height,
        fps=fps,
        frames=frames,
        depth=depth,
        serial=serial,
        intrinsics=intr,
        depth_units=depth_units,
    )
