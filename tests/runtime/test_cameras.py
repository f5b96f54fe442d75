"""Camera sources on real pyrealsense2 playback of recordings made with rs.software_device + rs.recorder."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmowam_edge.bundle.schema import CameraSpec
from harmowam_edge.cameras import (
    CameraSource,
    DeviceClockMapper,
    FaultLadder,
    RealSenseSource,
    probe_recording,
)
from harmowam_edge.errors import CameraError
from tests.recordings import Recording, make_recording

pytest.importorskip("pyrealsense2", reason="camera tests need pyrealsense2 (the realsense or dev extra)")

RGBD = CameraSpec(name="front", width=160, height=120, fps=30, streams=("color", "depth"))
COLOR = CameraSpec(name="front", width=160, height=120, fps=30)


def _drain(src: RealSenseSource, timeout: float = 2.0) -> list:
    frames, last = [], None
    while True:
        f = src.wait_newer(last, timeout)
        if f is None:
            return frames
        frames.append(f)
        last = f.frame_number


def test_recorder_writes_db3_and_refuses_other_names(tmp_path: Path, fast_recording: Recording) -> None:
    assert fast_recording.path.read_bytes()[:16] == b"SQLite format 3\x00"  # rosbag2 storage
    serial, profiles = probe_recording(fast_recording.path)
    assert serial == "424242"
    assert [p.describe() for p in profiles] == ["color 160x120 rgb8 @ 30 fps"]
    with pytest.raises(CameraError, match=r"\.db3"):
        make_recording(tmp_path / "x.bag", frames=1)


def test_realtime_playback_delivers_ordered_frames_with_aligned_depth(rgbd_recording: Recording) -> None:
    src = RealSenseSource.playback(RGBD, rgbd_recording.path)
    assert isinstance(src, CameraSource)
    src.start()
    try:
        frames = _drain(src)
    finally:
        src.stop()
    # Real time: a pipeline may skip a frame or two while it starts, and a reader that is late (a loaded machine)
    # sees only the newest frame of the slot; whatever arrives, arrives in order.
    assert len(frames) >= rgbd_recording.frames // 2
    numbers = [f.frame_number for f in frames]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)
    for f in frames:
        i = f.frame_number - 1
        assert f.camera == "front"
        assert f.color.shape == (120, 160, 3)
        assert f.color.dtype == np.uint8
        assert int(f.color[0, 0, 2]) == i % 256  # content written for frame i
        assert f.depth is not None
        assert f.depth.shape == (120, 160)
        assert f.depth.dtype == np.uint16
        assert int(f.depth[60, 80]) == 800 + 60 * 2 + i  # aligned to color: identity extrinsics, same intrinsics
        assert f.depth_units_m == pytest.approx(0.001)
        assert f.t_capture <= f.t_received
        assert f.t_device_ms == pytest.approx(i * 1000 / 30, abs=1e-3)
    caps = [f.t_capture for f in frames]
    assert all(b > a for a, b in itertools.pairwise(caps))
    h = src.health()
    assert h.failed
    assert h.extra["ended"] == 1.0
    assert "ended" in h.last_error
    assert h.frames >= len(frames)


def test_intrinsics_and_serial_are_the_recorded_ones(rgbd_recording: Recording) -> None:
    src = RealSenseSource.playback(RGBD, rgbd_recording.path)
    src.start()
    try:
        intr = src.intrinsics("color")
        depth_intr = src.intrinsics("depth")
    finally:
        src.stop()
    want = rgbd_recording.intrinsics
    assert src.serial == rgbd_recording.serial == intr.serial
    assert (intr.width, intr.height, intr.model) == (160, 120, "brown_conrady")
    assert intr.fx == pytest.approx(want.fx)
    assert intr.ppy == pytest.approx(want.ppy)
    assert depth_intr.stream == "depth"
    assert depth_intr.fy == pytest.approx(want.fy)


def test_non_realtime_playback_hands_over_every_frame(fast_recording: Recording) -> None:
    src = RealSenseSource.playback(COLOR, fast_recording.path, realtime=False)
    frames = list(src.frames())
    assert [f.frame_number for f in frames] == list(range(1, 21))
    assert [int(f.color[0, 0, 2]) for f in frames] == list(range(20))


def test_recording_that_does_not_match_the_bundle_is_refused(rgbd_recording: Recording, fast_recording: Recording):
    wrong_size = CameraSpec(name="wrist", width=320, height=240, fps=30)
    with pytest.raises(CameraError) as e:
        RealSenseSource.playback(wrong_size, rgbd_recording.path).start()
    msg = str(e.value)
    assert "rgbd.db3" in msg
    assert "'wrist'" in msg
    assert "color 320x240 @ 30 fps" in msg  # what the bundle expects
    assert "color 160x120 rgb8 @ 30 fps" in msg  # what the recording has
    with pytest.raises(CameraError, match="missing a z16 depth stream"):
        RealSenseSource.playback(RGBD, fast_recording.path).start()
    with pytest.raises(CameraError, match="recording not found"):
        RealSenseSource.playback(COLOR, fast_recording.path.with_name("nope.db3")).start()


def test_fault_ladder_restarts_a_stalled_pipeline(rgbd_recording: Recording) -> None:
    ladder = FaultLadder(frame_timeout_s=0.3, max_restarts=1)
    src = RealSenseSource.playback(COLOR, rgbd_recording.path, ladder=ladder)
    src.start()
    try:
        first = src.wait_newer(None, 2.0)
        assert first is not None
        src.playback_device().pause()  # the camera stops delivering
        deadline = time.monotonic() + 5.0
        while src.health().restarts == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        # The restarted pipeline plays the recording again from its start.
        again = src.wait_newer(src.latest().frame_number, 3.0)  # type: ignore[union-attr]
        h = src.health()
    finally:
        src.stop()
    assert h.restarts == 1
    assert h.timeouts >= 1
    assert not h.failed
    assert again is not None
    assert "no frame for 0.3 s" in h.last_error


def test_fault_ladder_gives_up_when_exhausted(rgbd_recording: Recording) -> None:
    src = RealSenseSource.playback(COLOR, rgbd_recording.path, ladder=FaultLadder(frame_timeout_s=0.2, max_restarts=0))
    src.start()
    try:
        assert src.wait_newer(None, 2.0) is not None
        src.playback_device().pause()
        deadline = time.monotonic() + 5.0
        while not src.health().failed and time.monotonic() < deadline:
            time.sleep(0.05)
        h = src.health()
        assert src.wait_newer(src.latest().frame_number, 0.5) is None  # type: ignore[union-attr]
    finally:
        src.stop()
    assert h.failed
    assert h.restarts == 0
    assert h.hardware_resets == 0
    assert "no frame for 0.2 s after 0 pipeline restart(s)" in h.last_error


# --------------------------------------------------------------------------------------------------------------
# Device clock -> host clock


@settings(max_examples=60, deadline=None)
@given(
    offset=st.floats(-1e5, 1e5),
    lags=st.lists(st.floats(0.0, 0.02), min_size=2, max_size=200),
    period=st.floats(0.005, 0.1),
)
def test_clock_mapping_never_runs_ahead_of_arrival_and_recovers_the_offset(offset, lags, period) -> None:
    m = DeviceClockMapper(window=1000)
    for i, lag in enumerate(lags):
        t_dev = i * period
        t_recv = t_dev + offset + lag
        t_host = m.map(t_dev, t_recv)
        assert t_host <= t_recv + 1e-9
        # The estimate is the capture time plus the smallest lag seen so far.
        assert t_host - (t_dev + offset) == pytest.approx(min(lags[: i + 1]), abs=1e-6)


def test_clock_mapping_window_follows_a_jump_and_resets_when_time_goes_back() -> None:
    m = DeviceClockMapper(window=5)
    for i in range(10):
        m.map(i * 0.1, i * 0.1 + 10.0)
    # The host clock offset grows (drift, a suspended host): the old minimum leaves the window.
    for i in range(10, 16):
        t = m.map(i * 0.1, i * 0.1 + 12.0)
    assert t == pytest.approx(1.5 + 12.0)
    m.map(0.0, 50.0)  # device time went backwards: a restart or a looping recording
    assert m.resets == 1
    assert m.map(0.1, 50.2) == pytest.approx(50.1)
