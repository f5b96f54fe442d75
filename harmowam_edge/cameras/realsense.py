"""Intel RealSense sources: live devices (by serial number) and recordings played back through pyrealsense2.

Live and playback share one pipeline path (`_Pipeline`): configure the streams of the bundle's `CameraSpec`,
wait for framesets, align depth to color, map device timestamps to host monotonic time, convert to `Frame`. A
playback is a RealSense device as far as librealsense is concerned, so tests and replays exercise the same code
the robot runs.

Recordings: pyrealsense2 2.59 *writes* ROS2 `.db3` files only (`rs.recorder` and `enable_record_to_file` refuse
any other extension) and *reads* both `.db3` and legacy ROS1 `.bag` files. The recorder stamps each frame with the
host time it arrived, and real-time playback replays that timing.

Fault ladder (a USB camera that stops delivering): frame timeout → restart the pipeline (up to
`FaultLadder.max_restarts`) → `hardware_reset()` and wait for the device to come back (live only) → fail. Every
step is logged and counted in `health()`; `health().failed` tells the control loop to stop safely.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harmowam_edge.bundle.schema import CameraSpec
from harmowam_edge.cameras.clock import DeviceClockMapper
from harmowam_edge.cameras.frames import CameraHealth, Frame
from harmowam_edge.errors import CameraError, MissingDependencyError

log = logging.getLogger("harmowam_edge.cameras")

RECORDING_SUFFIXES = (".db3", ".bag")


def import_realsense() -> Any:
    """pyrealsense2, imported on first use (it is optional: the robot may build librealsense itself)."""
    try:
        import pyrealsense2 as rs
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise MissingDependencyError("pyrealsense2", "realsense", "RealSense cameras and recordings") from e
    return rs


# --------------------------------------------------------------------------------------------------------------
# Plain data


@dataclass(frozen=True)
class StreamIntrinsics:
    """A stream's factory intrinsics as librealsense reports them, with the device serial they belong to."""

    stream: str  # "color" | "depth"
    width: int
    height: int
    fx: float
    fy: float
    ppx: float
    ppy: float
    model: str  # librealsense distortion model: brown_conrady, inverse_brown_conrady, modified_brown_conrady, ...
    coeffs: tuple[float, ...]
    serial: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "width": self.width,
            "height": self.height,
            "fx": self.fx,
            "fy": self.fy,
            "ppx": self.ppx,
            "ppy": self.ppy,
            "model": self.model,
            "coeffs": list(self.coeffs),
            "serial": self.serial,
        }

    @classmethod
    def from_rs(cls, intr: Any, stream: str, serial: str) -> StreamIntrinsics:
        return cls(
            stream=stream,
            width=int(intr.width),
            height=int(intr.height),
            fx=float(intr.fx),
            fy=float(intr.fy),
            ppx=float(intr.ppx),
            ppy=float(intr.ppy),
            model=str(intr.model).rsplit(".", 1)[-1],
            coeffs=tuple(float(c) for c in intr.coeffs),
            serial=serial,
        )

    def to_rs(self) -> Any:
        """The `rs.intrinsics` struct (used to build software devices and recordings)."""
        rs = import_realsense()
        intr = rs.intrinsics()
        intr.width, intr.height = self.width, self.height
        intr.fx, intr.fy, intr.ppx, intr.ppy = self.fx, self.fy, self.ppx, self.ppy
        try:
            intr.model = getattr(rs.distortion, self.model)
        except AttributeError:
            raise CameraError(f"intrinsics.model: unknown librealsense distortion model {self.model!r}") from None
        intr.coeffs = [*self.coeffs, *([0.0] * (5 - len(self.coeffs)))][:5]
        return intr


@dataclass(frozen=True)
class FaultLadder:
    """How hard a source tries before it gives up; every rung is bounded."""

    frame_timeout_s: float = 1.0  # no frameset for this long is one timeout
    max_restarts: int = 2  # pipeline restarts per incident
    hardware_reset: bool = True  # then one hardware_reset per incident (live devices only)
    reset_wait_s: float = 10.0  # how long to wait for the device to re-enumerate after a reset
    stable_s: float = 10.0  # this long without a fault closes the incident (the ladder starts over)

    def __post_init__(self) -> None:
        if self.frame_timeout_s <= 0:
            raise ValueError(f"frame_timeout_s: expected > 0, got {self.frame_timeout_s}")
        if self.max_restarts < 0:
            raise ValueError(f"max_restarts: expected >= 0, got {self.max_restarts}")


@dataclass(frozen=True)
class StreamProfile:
    stream: str
    width: int
    height: int
    fps: int
    format: str

    def describe(self) -> str:
        return f"{self.stream} {self.width}x{self.height} {self.format} @ {self.fps} fps"


@dataclass(frozen=True)
class DeviceInfo:
    """One connected RealSense device, for `harmowam-edge camera list` and `doctor`."""

    name: str
    serial: str
    firmware: str
    usb: str
    product_line: str
    profiles: tuple[StreamProfile, ...] = field(default_factory=tuple)


def _info(dev: Any, key: str) -> str:
    rs = import_realsense()
    attr = getattr(rs.camera_info, key)
    try:
        return str(dev.get_info(attr)) if dev.supports(attr) else ""
    except RuntimeError:
        return ""


def _profiles_of(dev: Any) -> tuple[StreamProfile, ...]:
    rs = import_realsense()
    out: set[StreamProfile] = set()
    for sensor in dev.query_sensors():
        for p in sensor.get_stream_profiles():
            st = p.stream_type()
            if st not in (rs.stream.color, rs.stream.depth) or not p.is_video_stream_profile():
                continue
            v = p.as_video_stream_profile()
            out.add(
                StreamProfile(
                    stream="color" if st == rs.stream.color else "depth",
                    width=v.width(),
                    height=v.height(),
                    fps=p.fps(),
                    format=str(p.format()).rsplit(".", 1)[-1],
                )
            )
    return tuple(sorted(out, key=lambda s: (s.stream, s.width, s.height, s.fps, s.format)))


def list_devices() -> list[DeviceInfo]:
    """The RealSense devices connected now (an empty list when there are none)."""
    rs = import_realsense()
    devices = []
    for dev in rs.context().query_devices():
        devices.append(
            DeviceInfo(
                name=_info(dev, "name"),
                serial=_info(dev, "serial_number"),
                firmware=_info(dev, "firmware_version"),
                usb=_info(dev, "usb_type_descriptor"),
                product_line=_info(dev, "product_line"),
                profiles=_profiles_of(dev),
            )
        )
    return devices


def probe_recording(path: str | Path) -> tuple[str, tuple[StreamProfile, ...]]:
    """(serial, recorded streams) of a recording; a CameraError names the file when it cannot be read."""
    rs = import_realsense()
    p = Path(path)
    if not p.is_file():
        raise CameraError(f"{p}: recording not found")
    if p.suffix not in RECORDING_SUFFIXES:
        raise CameraError(f"{p}: expected a RealSense recording ({', '.join(RECORDING_SUFFIXES)}), got {p.suffix!r}")
    ctx = rs.context()
    try:
        dev = ctx.load_device(str(p))
    except RuntimeError as e:
        raise CameraError(f"{p}: not a readable RealSense recording: {e}") from None
    try:
        return _info(dev, "serial_number"), _profiles_of(dev)
    finally:
        with contextlib.suppress(RuntimeError):
            ctx.unload_device(str(p))


def recording_mismatch(spec: CameraSpec, profiles: tuple[StreamProfile, ...]) -> str | None:
    """Why a recording's streams cannot feed `spec`, or None when they can."""
    color = [
        p
        for p in profiles
        if p.stream == "color"
        and p.format in ("rgb8", "bgr8")
        and (p.width, p.height, p.fps) == (spec.width, spec.height, spec.fps)
    ]
    missing = []
    if not color:
        missing.append(f"color {spec.width}x{spec.height} rgb8/bgr8 @ {spec.fps} fps")
    if spec.has_depth and not any(p.stream == "depth" and p.format == "z16" for p in profiles):
        missing.append("a z16 depth stream")
    if not missing:
        return None
    have = "; ".join(p.describe() for p in profiles) or "no video streams"
    return f"the bundle expects {spec.describe()} (missing {' and '.join(missing)}), the recording has {have}"


# --------------------------------------------------------------------------------------------------------------
# The pipeline both sources share


class _Pipeline:
    """One rs.pipeline configured for a CameraSpec, from a live device or a recording; converts to `Frame`s."""

    def __init__(
        self,
        spec: CameraSpec,
        serial: str | None,
        recording: Path | None,
        realtime: bool,
        loop: bool,
    ) -> None:
        self.spec = spec
        self.serial = serial or ""
        self.recording = recording
        self.realtime = realtime
        self.loop = loop
        self.clock = DeviceClockMapper()
        self._pipe: Any = None
        self._profile: Any = None
        self._align: Any = None
        self._bgr = False
        self.last_frame_number = -1
        self.dropped = 0

    # -- lifecycle

    def open(self) -> None:
        rs = import_realsense()
        cfg = rs.config()
        spec = self.spec
        if self.recording is not None:
            serial, profiles = probe_recording(self.recording)
            why = recording_mismatch(spec, profiles)
            if why:
                raise CameraError(f"{self.recording}: does not match the bundle's camera {spec.name!r}: {why}")
            self.serial = serial
            color = next(
                p
                for p in profiles
                if p.stream == "color" and (p.width, p.height, p.fps) == (spec.width, spec.height, spec.fps)
            )
            self._bgr = color.format == "bgr8"
            cfg.enable_device_from_file(str(self.recording), repeat_playback=self.loop)
            cfg.enable_stream(rs.stream.color, spec.width, spec.height, getattr(rs.format, color.format), spec.fps)
            if spec.has_depth:
                d = next(p for p in profiles if p.stream == "depth" and p.format == "z16")
                cfg.enable_stream(rs.stream.depth, d.width, d.height, rs.format.z16, d.fps)
        else:
            if self.serial:
                cfg.enable_device(self.serial)
            cfg.enable_stream(rs.stream.color, spec.width, spec.height, rs.format.rgb8, spec.fps)
            if spec.has_depth:
                depth = self._live_depth_profile()
                cfg.enable_stream(rs.stream.depth, depth.width, depth.height, rs.format.z16, depth.fps)
        pipe = rs.pipeline()
        try:
            if self.recording is not None and not self.realtime:
                # Non-real-time playback hands over every frame, as fast as the reader takes them (replay, INT8
                # calibration). Switched on the device `resolve` caches for `start`, before any frame flows:
                # pausing after `start` races the first frames (they would go by in real time).
                cfg.resolve(rs.pipeline_wrapper(pipe)).get_device().as_playback().set_real_time(False)
            profile = pipe.start(cfg)
        except RuntimeError as e:
            where = str(self.recording) if self.recording else f"RealSense {self.serial or '(first found)'}"
            raise CameraError(f"{where}: cannot start {spec.describe()} for camera {spec.name!r}: {e}") from None
        self._pipe, self._profile = pipe, profile
        dev = profile.get_device()
        if not self.serial:
            self.serial = _info(dev, "serial_number")
        self._align = rs.align(rs.stream.color) if spec.has_depth else None
        self.clock.reset()
        self.last_frame_number = -1

    def close(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            with contextlib.suppress(RuntimeError):
                pipe.stop()

    @property
    def is_open(self) -> bool:
        return self._pipe is not None

    def _live_depth_profile(self) -> StreamProfile:
        """The depth profile to align to color: the color size if the sensor has it, else the largest at the fps."""
        rs = import_realsense()
        devices = rs.context().query_devices()
        dev = next((d for d in devices if not self.serial or _info(d, "serial_number") == self.serial), None)
        if dev is None:
            raise CameraError(f"RealSense {self.serial or '(any)'}: no such device connected")
        spec = self.spec
        depth = [p for p in _profiles_of(dev) if p.stream == "depth" and p.format == "z16" and p.fps == spec.fps]
        exact = [p for p in depth if (p.width, p.height) == (spec.width, spec.height)]
        if exact:
            return exact[0]
        if not depth:
            raise CameraError(
                f"RealSense {self.serial}: no z16 depth stream at {spec.fps} fps for camera {spec.name!r}"
            )
        return max(depth, key=lambda p: p.width * p.height)

    # -- reading

    def intrinsics(self, stream: str) -> StreamIntrinsics:
        rs = import_realsense()
        if self._profile is None:
            raise CameraError(f"camera {self.spec.name!r}: not started")
        kind = {"color": rs.stream.color, "depth": rs.stream.depth}[stream]
        try:
            sp = self._profile.get_stream(kind).as_video_stream_profile()
        except RuntimeError:
            raise CameraError(f"camera {self.spec.name!r}: no {stream} stream") from None
        return StreamIntrinsics.from_rs(sp.get_intrinsics(), stream, self.serial)

    def playback_device(self) -> Any:
        if self._profile is None or self.recording is None:
            return None
        return self._profile.get_device().as_playback()

    def playback_ended(self) -> bool:
        rs = import_realsense()
        pb = self.playback_device()
        return pb is not None and not self.loop and pb.current_status() == rs.playback_status.stopped

    def read(self, timeout_s: float) -> Frame | None:
        """The next frame, or None on timeout. Raises RuntimeError from librealsense on a device error."""
        ok, fs = self._pipe.try_wait_for_frames(max(1, int(timeout_s * 1000)))
        if not ok:
            return None
        return self._convert(fs)

    def _convert(self, fs: Any) -> Frame | None:
        t_received = time.monotonic()
        rs = import_realsense()
        if self._align is not None:
            fs = self._align.process(fs)
        c = fs.get_color_frame()
        if not c:
            return None
        color = np.array(np.asanyarray(c.get_data()), copy=True)
        if self._bgr:
            color = np.ascontiguousarray(color[..., ::-1])
        depth = None
        units = self.spec.depth_units_m
        if self.spec.has_depth:
            d = fs.get_depth_frame()
            if not d:
                return None
            depth = np.array(np.asanyarray(d.get_data()), copy=True)
            units = float(d.get_units())
        t_dev_ms = float(c.get_timestamp())
        domain = c.get_frame_timestamp_domain()
        if self.recording is None and domain in (rs.timestamp_domain.global_time, rs.timestamp_domain.system_time):
            # Host-synchronised wall-clock milliseconds: convert the epoch, no estimate needed.
            t_capture = t_dev_ms / 1000.0 - (time.time() - time.monotonic())
        else:
            t_capture = self.clock.map(t_dev_ms / 1000.0, t_received)
        fn = int(c.get_frame_number())
        if self.last_frame_number >= 0 and fn > self.last_frame_number + 1:
            self.dropped += fn - self.last_frame_number - 1
        self.last_frame_number = fn
        return Frame(
            camera=self.spec.name,
            color=color,
            t_capture=min(t_capture, t_received),
            frame_number=fn,
            depth=depth,
            depth_units_m=units,
            t_device_ms=t_dev_ms,
            t_received=t_received,
        )

    def hardware_reset(self) -> None:
        rs = import_realsense()
        devices = rs.context().query_devices()
        dev = next((d for d in devices if _info(d, "serial_number") == self.serial), None)
        if dev is None:
            raise RuntimeError(f"device {self.serial} is not connected")
        dev.hardware_reset()

    def wait_for_device(self, timeout_s: float) -> bool:
        rs = import_realsense()
        deadline = time.monotonic() + timeout_s
        time.sleep(min(2.0, timeout_s))  # the device drops off the bus first
        while time.monotonic() < deadline:
            if any(_info(d, "serial_number") == self.serial for d in rs.context().query_devices()):
                return True
            time.sleep(0.2)
        return False


# --------------------------------------------------------------------------------------------------------------
# The source


class RealSenseSource:
    """A `CameraSource` over a live RealSense device or a recording; the newest frame waits in a slot.

    `start()` runs the pipeline on a thread of its own with the fault ladder. `frames()` instead reads in the
    caller's thread, every frame in order (used by `replay` with `realtime=False`).
    """

    def __init__(
        self,
        spec: CameraSpec,
        *,
        serial: str | None = None,
        recording: str | Path | None = None,
        realtime: bool = True,
        loop: bool = False,
        ladder: FaultLadder | None = None,
    ) -> None:
        if serial and recording:
            raise CameraError(f"camera {spec.name!r}: give a serial number or a recording, not both")
        self._spec = spec
        self._ladder = ladder or FaultLadder()
        self._pipeline = _Pipeline(spec, serial, Path(recording) if recording else None, realtime, loop)
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._frames = 0
        self._timeouts = 0
        self._restarts = 0
        self._resets = 0
        self._failed = False
        self._ended = False
        self._last_error = ""
        self._recent: deque[float] = deque(maxlen=64)

    @classmethod
    def live(cls, spec: CameraSpec, serial: str | None = None, **kw: Any) -> RealSenseSource:
        return cls(spec, serial=serial, **kw)

    @classmethod
    def playback(cls, spec: CameraSpec, recording: str | Path, **kw: Any) -> RealSenseSource:
        return cls(spec, recording=recording, **kw)

    # -- CameraSource

    @property
    def spec(self) -> CameraSpec:
        return self._spec

    @property
    def serial(self) -> str:
        """The device serial (known once started; a recording keeps the serial of the device it was made with)."""
        return self._pipeline.serial

    @property
    def recording(self) -> Path | None:
        return self._pipeline.recording

    def start(self) -> None:
        if self._thread is not None:
            return
        self._pipeline.open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self._spec.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None:
            t.join(timeout=self._ladder.frame_timeout_s + 2.0)
        self._pipeline.close()
        with self._cond:
            self._cond.notify_all()

    def latest(self) -> Frame | None:
        return self._latest

    def wait_newer(self, after_frame_number: int | None, timeout: float) -> Frame | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                f = self._latest
                # "Another frame than `after`" rather than "a larger number": a restarted pipeline or a looping
                # recording numbers its frames from the start again.
                if f is not None and (after_frame_number is None or f.frame_number != after_frame_number):
                    return f
                left = deadline - time.monotonic()
                if left <= 0 or self._failed or self._stop.is_set():
                    return None
                self._cond.wait(left)

    def health(self) -> CameraHealth:
        recent = list(self._recent)
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
        return CameraHealth(
            frames=self._frames,
            timeouts=self._timeouts,
            restarts=self._restarts,
            hardware_resets=self._resets,
            dropped=self._pipeline.dropped,
            fps=fps,
            last_error=self._last_error,
            failed=self._failed,
            extra={"ended": float(self._ended)},
        )

    # -- RealSense specifics

    def intrinsics(self, stream: str = "color") -> StreamIntrinsics:
        """The stream's factory intrinsics (as the device, or the recorded device, reports them)."""
        return self._pipeline.intrinsics(stream)

    def playback_device(self) -> Any:
        """The `rs.playback` of a started recording (pause, seek, ...), or None for a live device."""
        return self._pipeline.playback_device()

    def frames(self, timeout_s: float | None = None) -> Iterator[Frame]:
        """Every frame in order, read in the caller's thread, until a recording ends (or a timeout)."""
        if self._thread is not None:
            raise CameraError(f"camera {self._spec.name!r}: frames() cannot be used while the source is started")
        timeout = timeout_s if timeout_s is not None else self._ladder.frame_timeout_s
        if not self._pipeline.is_open:
            self._pipeline.open()
        try:
            waited = 0.0
            while True:
                frame = self._pipeline.read(min(timeout, 0.1))
                if frame is None:
                    waited += min(timeout, 0.1)
                    if self._pipeline.playback_ended():
                        return
                    if waited >= timeout:
                        if self._pipeline.recording is not None:
                            return  # a recording that stops delivering has ended
                        raise CameraError(f"camera {self._spec.name!r}: no frame for {timeout:.1f} s")
                    continue
                waited = 0.0
                self._frames += 1
                yield frame
        finally:
            self._pipeline.close()

    # -- the thread

    def _publish(self, frame: Frame) -> None:
        self._frames += 1
        self._recent.append(frame.t_received)
        with self._cond:
            self._latest = frame
            self._cond.notify_all()

    def _run(self) -> None:
        ladder = self._ladder
        restarts_in_incident = 0
        reset_in_incident = False
        last_fault = 0.0
        waited = 0.0
        # Read in short slices so that the end of a recording (or a stop request) is seen at once; a timeout of
        # the ladder is `frame_timeout_s` without a frame.
        slice_s = min(0.1, ladder.frame_timeout_s)
        while not self._stop.is_set():
            try:
                frame = self._pipeline.read(slice_s)
                error = ""
            except RuntimeError as e:
                frame, error = None, str(e)
            if self._stop.is_set():
                break
            if frame is not None:
                waited = 0.0
                self._publish(frame)
                if last_fault and time.monotonic() - last_fault > ladder.stable_s:
                    restarts_in_incident, reset_in_incident, last_fault = 0, False, 0.0
                continue
            if not error and self._pipeline.playback_ended():
                self._ended = True
                self._fail(f"recording {self._pipeline.recording} ended after {self._frames} frames")
                return
            waited += slice_s
            if not error and waited < ladder.frame_timeout_s - 1e-9:
                continue
            waited = 0.0
            self._timeouts += 1
            last_fault = time.monotonic()
            why = error or f"no frame for {ladder.frame_timeout_s:.1f} s"
            name = self._spec.name
            if restarts_in_incident < ladder.max_restarts:
                restarts_in_incident += 1
                self._restarts += 1
                log.warning(
                    "camera %s: %s: restarting the pipeline (%d/%d)", name, why, restarts_in_incident,
                    ladder.max_restarts,
                )  # fmt: skip
                self._reopen(why)
            elif ladder.hardware_reset and self._pipeline.recording is None and not reset_in_incident:
                reset_in_incident = True
                self._resets += 1
                log.warning("camera %s: %s after %d restarts: hardware reset", name, why, restarts_in_incident)
                self._pipeline.close()
                try:
                    self._pipeline.hardware_reset()
                    if not self._pipeline.wait_for_device(ladder.reset_wait_s):
                        raise RuntimeError(f"device did not come back within {ladder.reset_wait_s:.0f} s")
                except RuntimeError as e:
                    self._fail(f"{why}; hardware reset failed: {e}")
                    return
                self._reopen(why)
            else:
                steps = f"{restarts_in_incident} pipeline restart(s)"
                if reset_in_incident:
                    steps += " and a hardware reset"
                self._fail(f"{why} after {steps}")
                return

    def _reopen(self, why: str) -> None:
        self._last_error = why
        self._pipeline.close()
        try:
            self._pipeline.open()
        except (CameraError, RuntimeError) as e:
            # The next read fails fast and climbs the ladder again.
            self._last_error = f"{why}; restart failed: {e}"
            log.warning("camera %s: restart failed: %s", self._spec.name, e)

    def _fail(self, why: str) -> None:
        if self._ended:
            log.info("camera %s: %s", self._spec.name, why)
        else:
            log.error("camera %s failed: %s", self._spec.name, why)
        self._last_error = why
        self._failed = True
        self._pipeline.close()
        with self._cond:
            self._cond.notify_all()


def record_live(
    out: str | Path,
    *,
    serial: str | None,
    duration_s: float,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    depth: bool = False,
) -> int:
    """Record a live RealSense device to a `.db3` file for `duration_s`; returns the number of framesets."""
    rs = import_realsense()
    out = Path(out)
    if out.suffix != ".db3":
        raise CameraError(f"{out}: pyrealsense2 {rs.__version__} records ROS2 .db3 files only; name it *.db3")
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = rs.config()
    if serial:
        cfg.enable_device(serial)
    cfg.enable_stream(rs.stream.color, width, height, rs.format.rgb8, fps)
    if depth:
        cfg.enable_stream(rs.stream.depth, width, height, rs.format.z16, fps)
    cfg.enable_record_to_file(str(out))
    pipe = rs.pipeline()
    try:
        pipe.start(cfg)
    except RuntimeError as e:
        raise CameraError(
            f"RealSense {serial or '(first found)'}: cannot record {width}x{height} @ {fps}: {e}"
        ) from None
    n = 0
    try:
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            ok, _ = pipe.try_wait_for_frames(2000)
            if not ok:
                raise CameraError(f"RealSense {serial or '(first found)'}: no frames for 2 s while recording")
            n += 1
    finally:
        pipe.stop()
    return n
