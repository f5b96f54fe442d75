"""Intrinsics end to end: a source of frames -> views -> calibration -> calibration file (+ report PNG).

The CLI (`harmowam-edge calibrate intrinsics`) is a thin shell over these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from calibration.boards import BoardSpec
from calibration.camera_model import PinholeModel, pixel_difference
from calibration.capture import CaptureConfig, CaptureStatus, ViewSelector
from calibration.detection import BoardDetector, to_gray
from calibration.errors import CaptureError, ImageReadError
from calibration.file_format import CameraCalibration, CameraId, save_calibration
from calibration.intrinsics import (
    DEFAULT_MAX_VIEW_RMS_PX,
    MIN_VIEWS,
    IntrinsicsResult,
    View,
    calibrate_intrinsics,
    detect_views,
)
from calibration.sources import iter_image_dir

Progress = Callable[[str], None]


def tool_version() -> str:
    """What wrote a calibration file (package metadata: calibration may not import the runtime's top level)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("harmowam-edge")
    except PackageNotFoundError:
        ours = "unknown"
    return f"harmowam-edge {ours}, OpenCV {cv2.__version__}"


@dataclass
class FactoryIntrinsics:
    """A RealSense stream's factory intrinsics (librealsense's model names and coefficient order)."""

    serial: str
    stream: str
    width: int
    height: int
    fx: float
    fy: float
    ppx: float
    ppy: float
    model: str
    coeffs: tuple[float, ...]

    @classmethod
    def from_stream_intrinsics(cls, si: Any) -> FactoryIntrinsics:
        """From `harmowam_edge.cameras.realsense.StreamIntrinsics`."""
        return cls(
            str(si.serial),
            str(si.stream),
            int(si.width),
            int(si.height),
            float(si.fx),
            float(si.fy),
            float(si.ppx),
            float(si.ppy),
            str(si.model),
            tuple(float(c) for c in si.coeffs),
        )

    def model_(self) -> PinholeModel:
        coeffs = tuple([*self.coeffs, 0.0, 0.0, 0.0, 0.0, 0.0][:5])
        model = (
            self.model if self.model in ("brown_conrady", "inverse_brown_conrady", "modified_brown_conrady") else "none"
        )
        return PinholeModel(self.width, self.height, self.fx, self.fy, self.ppx, self.ppy, model, coeffs)


@dataclass
class IntrinsicsRun:
    calibration: CameraCalibration
    result: IntrinsicsResult
    views: list[View]
    factory: dict[str, Any] | None = None
    capture: CaptureStatus | None = None
    rejected: dict[str, int] = field(default_factory=dict)


def factory_comparison(result: IntrinsicsResult, factory: FactoryIntrinsics) -> dict[str, Any]:
    """How far the factory model is from ours, in pixels, over the image (see `camera_model.pixel_difference`)."""
    ours = result.intrinsics.model()
    diff = pixel_difference(ours, factory.model_())
    return {
        "serial": factory.serial,
        "stream": factory.stream,
        "width": factory.width,
        "height": factory.height,
        "fx": factory.fx,
        "fy": factory.fy,
        "cx": factory.ppx,
        "cy": factory.ppy,
        "distortion_model": factory.model,
        "distortion": list(factory.coeffs),
        "difference": diff,
    }


def _finish(
    result: IntrinsicsResult,
    views: list[View],
    spec: BoardSpec,
    out: str | Path,
    report: str | Path | None,
    camera: CameraId,
    source: str,
    factory: FactoryIntrinsics | None,
) -> IntrinsicsRun:
    comparison = factory_comparison(result, factory) if factory is not None else None
    calib = CameraCalibration(
        camera=camera,
        intrinsics=result.intrinsics,
        method={
            "board": spec.describe(),
            "source": source,
            "solver": "opencv calibrateCamera",
            "views_used": len(result.used),
            "views_dropped": len(result.dropped),
            "max_view_rms_px": result.threshold_px,
        },
        residuals=result.residuals_dict(),
        factory=comparison,
        tool=tool_version(),
    )
    save_calibration(calib, out)
    if report is not None:
        from calibration.report import write_intrinsics_report

        extra = []
        if comparison is not None:
            d = comparison["difference"]
            extra.append(
                f"factory ({factory.model if factory else ''}): mean {d['mean_px']:.2f} px, "
                f"max {d['max_px']:.2f} px apart"
            )
            extra.append(
                f"  dfx {d['dfx_px']:+.2f} dfy {d['dfy_px']:+.2f} dcx {d['dcx_px']:+.2f} dcy {d['dcy_px']:+.2f} px"
            )
        else:
            extra.append("factory intrinsics: none for this source")
        write_intrinsics_report(result, views, report, extra)
    return IntrinsicsRun(calib, result, views, comparison)


def intrinsics_from_images(
    directory: str | Path,
    spec: BoardSpec,
    out: str | Path,
    *,
    report: str | Path | None = None,
    model: str = "plumb_bob",
    max_view_rms_px: float = DEFAULT_MAX_VIEW_RMS_PX,
    min_views: int = MIN_VIEWS,
    camera: CameraId | None = None,
) -> IntrinsicsRun:
    views, missing = detect_views(iter_image_dir(directory), spec, keep_images=report is not None)
    result = calibrate_intrinsics(
        views, spec, model=model, max_view_rms_px=max_view_rms_px, min_views=min_views, no_board=missing
    )
    return _finish(result, views, spec, out, report, camera or CameraId(), f"images:{Path(directory)}", None)


def select_views(
    frames: Iterable[tuple[str, np.ndarray]],
    spec: BoardSpec,
    config: CaptureConfig,
    *,
    progress: Progress | None = None,
    stop_when_enough: bool = False,
    max_views: int = 60,
    save_dir: Path | None = None,
) -> tuple[list[View], ViewSelector]:
    """Guided capture over a stream of frames: keep sharp, distinct views until enough (or the stream ends)."""
    detector = BoardDetector(spec)
    selector: ViewSelector | None = None
    views: list[View] = []
    last_advice = ""
    for name, frame in frames:
        gray = to_gray(frame)
        if selector is None:
            selector = ViewSelector((gray.shape[1], gray.shape[0]), config)
        det = detector.detect(gray)
        verdict = selector.consider(gray, det)
        if verdict.accepted and det is not None:
            views.append(View(name, det, gray))
            if save_dir is not None:
                cv2.imwrite(str(save_dir / f"{name}.png"), gray)  # nothing is lost if capture is interrupted
            st = selector.status()
            if progress:
                progress(f"kept {name}: {st.views} views, coverage {st.coverage:.0%}; {st.advice}")
                progress(st.coverage_map())
            if st.enough and stop_when_enough:
                break
            if len(views) >= max_views:
                break
        elif progress and verdict.reason != last_advice and not verdict.reason.startswith("board not found"):
            progress(f"skipped {name}: {verdict.reason}")
        last_advice = verdict.reason
    if selector is None:
        raise CaptureError("the camera delivered no frames")
    return views, selector


def _realsense_spec(width: int, height: int, fps: int) -> Any:
    from harmowam_edge.bundle.schema import CameraSpec

    return CameraSpec(name="calibration", width=width, height=height, fps=fps, streams=("color",))


def _recording_size(path: Path) -> tuple[int, int, int]:
    from harmowam_edge.cameras.realsense import probe_recording

    _, profiles = probe_recording(path)
    color = [p for p in profiles if p.stream == "color"]
    if not color:
        raise ImageReadError(f"{path}: the recording has no color stream")
    return color[0].width, color[0].height, color[0].fps


def intrinsics_from_recording(
    recording: str | Path,
    spec: BoardSpec,
    out: str | Path,
    *,
    report: str | Path | None = None,
    model: str = "plumb_bob",
    every: int = 1,
    config: CaptureConfig | None = None,
    max_view_rms_px: float = DEFAULT_MAX_VIEW_RMS_PX,
    min_views: int = MIN_VIEWS,
    progress: Progress | None = None,
    name: str = "",
) -> IntrinsicsRun:
    """Calibrate from a RealSense recording played through the runtime's RealSense source; compare with the
    factory intrinsics stored in the recording."""
    from harmowam_edge.cameras.realsense import RealSenseSource

    path = Path(recording)
    w, h, fps = _recording_size(path)
    source = RealSenseSource.playback(_realsense_spec(w, h, fps), path, realtime=False)
    factory_si = None

    def frames() -> Iterable[tuple[str, np.ndarray]]:
        nonlocal factory_si
        for i, frame in enumerate(source.frames()):
            if factory_si is None:
                factory_si = source.intrinsics("color")
            if i % max(every, 1) == 0:
                yield f"frame_{frame.frame_number:06d}", frame.color

    views, selector = select_views(frames(), spec, config or CaptureConfig(), progress=progress, max_views=10_000)
    result = calibrate_intrinsics(views, spec, model=model, max_view_rms_px=max_view_rms_px, min_views=min_views)
    factory = FactoryIntrinsics.from_stream_intrinsics(factory_si) if factory_si is not None else None
    serial = factory.serial if factory else ""
    run = _finish(result, views, spec, out, report, CameraId(serial, "color", name, ""), f"recording:{path}", factory)
    run.capture, run.rejected = selector.status(), dict(selector.rejected)
    return run


def intrinsics_live(
    serial: str,
    spec: BoardSpec,
    out: str | Path,
    *,
    width: int = 1280,
    height: int = 720,
    fps: int = 30,
    report: str | Path | None = None,
    model: str = "plumb_bob",
    config: CaptureConfig | None = None,
    save_dir: Path | None = None,
    timeout_s: float = 600.0,
    progress: Progress | None = None,
    name: str = "",
) -> IntrinsicsRun:
    """Guided capture from a live RealSense (not runnable without a camera): prints coverage and advice, keeps
    sharp and distinct views, stops when coverage and tilts are enough, then calibrates and compares with the
    factory intrinsics."""
    import time

    from harmowam_edge.cameras.realsense import RealSenseSource

    source = RealSenseSource.live(_realsense_spec(width, height, fps), serial=serial)
    source.start()
    try:

        def frames() -> Iterable[tuple[str, np.ndarray]]:
            last: int | None = None
            t_end = time.monotonic() + timeout_s
            while time.monotonic() < t_end:
                f = source.wait_newer(last, timeout=2.0)
                if f is None:
                    if source.health().failed:
                        raise CaptureError(f"camera {serial}: {source.health().last_error}")
                    continue
                last = f.frame_number
                yield f"live_{f.frame_number:06d}", f.color

        views, selector = select_views(
            frames(), spec, config or CaptureConfig(), progress=progress, stop_when_enough=True, save_dir=save_dir
        )
        factory = FactoryIntrinsics.from_stream_intrinsics(source.intrinsics("color"))
    finally:
        source.stop()
    result = calibrate_intrinsics(views, spec, model=model)
    run = _finish(
        result,
        views,
        spec,
        out,
        report,
        CameraId(factory.serial or serial, "color", name, ""),
        f"live:{serial}",
        factory,
    )
    run.capture, run.rejected = selector.status(), dict(selector.rejected)
    return run
