"""The simulated camera is a CameraSource: frames in a slot, stamped on the host clock, rendering the live world."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="the sim extra (MuJoCo) is not installed")

import itertools

from harmowam_edge.bundle.schema import CameraSpec
from harmowam_edge.cameras.frames import CameraSource
from harmowam_edge.sim.camera import SimCamera
from harmowam_edge.sim.world import SimWorld

pytestmark = pytest.mark.sim

SPEC = CameraSpec("front", 160, 120, 30, ("color", "depth"))


@pytest.fixture
def running():
    world = SimWorld(1, [SPEC], seed=0)
    world.start()
    cam = SimCamera(world, SPEC)
    cam.start()
    yield world, cam
    cam.stop()
    world.stop()


def test_sim_camera_implements_the_camera_source_protocol(running):
    _, cam = running
    assert isinstance(cam, CameraSource)
    assert cam.spec == SPEC


def test_frames_have_the_realsense_fields_and_host_monotonic_timestamps(running):
    world, cam = running
    first = cam.wait_newer(None, timeout=10.0)
    assert first is not None
    frames = [first]
    for _ in range(4):
        f = cam.wait_newer(frames[-1].frame_number, timeout=10.0)
        assert f is not None
        frames.append(f)
    now = time.monotonic()
    for f in frames:
        assert f.camera == "front"
        assert f.color.shape == (120, 160, 3)
        assert f.color.dtype == np.uint8
        assert f.depth is not None
        assert f.depth.shape == (120, 160)
        assert f.depth.dtype == np.uint16
        assert f.depth_units_m == SPEC.depth_units_m
        assert f.t_capture <= f.t_received <= now
        assert now - f.t_capture < 10.0
        # The device timestamp is the sim clock, mapped onto the host clock like a RealSense's.
        assert f.t_capture == pytest.approx(world.host_time(f.t_device_ms / 1e3))
    numbers = [f.frame_number for f in frames]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)
    assert all(b.t_capture > a.t_capture for a, b in itertools.pairwise(frames))
    # Depth in millimetres: the table a metre or so away, not empty.
    valid = frames[-1].depth[frames[-1].depth > 0]
    assert valid.size > 0.5 * frames[-1].depth.size
    assert 500 < np.median(valid) < 2500
    health = cam.health()
    assert health.frames >= 5
    assert not health.failed
    assert cam.latest() is not None


def test_frames_follow_the_arm_as_it_moves(running):
    world, cam = running
    before = cam.wait_newer(None, timeout=10.0)
    assert before is not None
    arm = world.arm_index[0]
    with world.lock:
        world.data.ctrl[arm.ctrl[0]] = 0.8  # swing the base
    deadline = time.monotonic() + 10.0
    after = before
    while time.monotonic() < deadline:
        f = cam.wait_newer(after.frame_number, timeout=5.0)
        assert f is not None
        after = f
        if abs(world.data.qpos[arm.qpos[0]] - 0.8) < 0.01 and after.t_capture > before.t_capture + 0.2:
            break
    changed = np.abs(after.color.astype(int) - before.color.astype(int)).sum(axis=-1) > 30
    assert changed.mean() > 0.01


def test_wait_newer_times_out_when_stopped():
    world = SimWorld(1, [SPEC], seed=0)
    cam = SimCamera(world, SPEC)
    assert cam.latest() is None
    t0 = time.monotonic()
    assert cam.wait_newer(None, timeout=0.2) is None
    assert time.monotonic() - t0 >= 0.19
