"""End to end: a RealSense recording (software device) → playback → policy on the seeded nano bundle → scheduler →
safety filter → ArmLink → the Python firmware simulator on a pseudo-terminal; and every fault ending in a safe stop.

No timing assertions: what is checked is what happened (limits, continuity, the reason, the recording).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader

from firmware_bridge import ArmMode, FirmwareSimulator, SimArmConfig
from harmowam_edge.bundle import load_bundle
from harmowam_edge.cameras import CameraHealth, Frame, RealSenseSource
from harmowam_edge.control.loop import (
    CAMERA_STALL,
    DURATION,
    FIRMWARE_ESTOP,
    INFERENCE_ERROR,
    INTERRUPTED,
    LINK_LOST,
    NONFINITE_ACTION,
    RECORDING_ENDED,
    STATE_STALE,
    Rig,
    RunObserver,
    RunOptions,
    run_policy,
)
from harmowam_edge.control.rig import RigConfig
from harmowam_edge.control.safety import JointLimits, SafetyConfig, SafetyFilter
from harmowam_edge.control.scheduler import ChunkScheduler
from harmowam_edge.errors import SafetyError
from harmowam_edge.policy import Policy
from harmowam_edge.telemetry.episode import EpisodeRecorder, decode_image
from tests.recordings import Recording, make_recording

pytest.importorskip("pyrealsense2", reason="the end-to-end tests play a RealSense recording (pyrealsense2)")

# Generous on a loaded 2-core machine: a stale state here would be the machine, not the code under test.
SAFETY = SafetyConfig(ramp_in_s=0.3, state_timeout_s=0.5)
# Firmware limits tighter than the bundle's on joint_1 (the bundle allows ±2.9 rad, 2 rad/s).
FIRMWARE = SimArmConfig(position_min=[-1.0, -2.9, -2.9, -2.9, -2.9, -2.9], position_max=[1.0, 2.9, 2.9, 2.9, 2.9, 2.9],
                        max_velocity=[1.5, 2.0, 2.0, 2.0, 2.0, 2.0])  # fmt: skip


@pytest.fixture(scope="module")
def bundle(nano_bundle: Path):
    with load_bundle(nano_bundle) as b:
        yield b


@pytest.fixture(scope="module")
def recording(recordings_dir: Path) -> Recording:
    """One second of 160x120 colour at 30 fps (played in a loop for longer runs)."""
    return make_recording(recordings_dir / "run.db3", frames=30, fps=30)


@pytest.fixture
def firmware():
    sim = FirmwareSimulator(FIRMWARE)
    sim.start()
    yield sim
    sim.stop()


class Collect(RunObserver):
    def __init__(self) -> None:
        self.info = None
        self.ticks: list = []
        self.chunks: list = []
        self.events: list = []
        self.summary = None

    def on_start(self, info) -> None:
        self.info = info

    def on_chunk(self, chunk, frames) -> None:
        self.chunks.append(chunk)

    def on_tick(self, tick) -> None:
        self.ticks.append(tick)

    def on_event(self, event) -> None:
        self.events.append(event)

    def on_end(self, summary) -> None:
        self.summary = summary


def _camera(bundle, recording: Recording, loop: bool = True) -> RealSenseSource:
    return RealSenseSource.playback(bundle.manifest.cameras[0], recording.path, loop=loop)


def _rig_config(port: str) -> RigConfig:
    # The rig tightens joint_3 further: the command must respect the tightest of all three sources.
    return RigConfig.from_dict(
        {"arms": [{"name": "arm", "port": port, "limits": {"joint_3": {"lower": -0.5, "upper": 0.5}}}]},
        source="test-rig.yaml",
    )


def _read_mcap(path: Path) -> tuple[dict[str, list], dict[str, dict[str, str]]]:
    topics: dict[str, list] = {}
    meta: dict[str, dict[str, str]] = {}
    with open(path, "rb") as f:
        reader = make_reader(f)
        for _schema, channel, message in reader.iter_messages():
            topics.setdefault(channel.topic, []).append(message.data)
        for m in reader.iter_metadata():
            meta[m.name] = dict(m.metadata)
    return topics, meta


def test_end_to_end_recording_policy_scheduler_armlink_firmware(bundle, recording, firmware, tmp_path) -> None:
    obs = Collect()
    mcap_path = tmp_path / "episode.mcap"
    stats_path = tmp_path / "stats.json"
    rig = Rig([firmware.port], [_camera(bundle, recording)], config=_rig_config(firmware.port))
    opts = RunOptions(task="reach_red_cube", duration_s=2.5, safety=SAFETY, stats_path=stats_path, seed=0)
    summary = run_policy(bundle, rig, opts, [obs, EpisodeRecorder(mcap_path)])

    assert summary.reason.kind == DURATION, summary.reason
    assert summary.clean
    info = obs.info
    lim = info.limits
    # The tightest of the three sources, joint by joint.
    assert (lim.lower[0], lim.upper[0], lim.max_velocity[0]) == (-1.0, 1.0, 1.5)  # firmware
    assert (lim.lower[1], lim.upper[1]) == (-1.8, 1.8)  # bundle
    assert (lim.lower[2], lim.upper[2]) == (-0.5, 0.5)  # rig config

    ticks = [t for t in obs.ticks if t.status != "stopping"]
    cmds = np.array([t.command for t in obs.ticks])
    dt = 1.0 / info.control_rate_hz
    assert len(obs.chunks) >= 5
    # Inside every limit, always; continuous: no step larger than the velocity limit allows in one period.
    assert (cmds >= lim.lower - 1e-9).all()
    assert (cmds <= lim.upper + 1e-9).all()
    steps = np.abs(np.diff(cmds, axis=0))
    assert (steps <= lim.max_velocity * dt + 1e-9).all()
    acc = np.abs(np.diff(cmds, n=2, axis=0))
    # Only a position limit (a hard stop) or the pull towards the measured position may brake harder than amax.
    at_limit = (np.abs(cmds - lim.lower) < 1e-12) | (np.abs(cmds - lim.upper) < 1e-12)
    pulled = np.array([["tracking" in t.safety_flags] * lim.size for t in obs.ticks])
    excused = at_limit[2:] | at_limit[1:-1] | pulled[2:]
    assert ((acc <= lim.max_acceleration * dt * dt + 1e-9) | excused).all()
    assert pulled.sum() < 0.05 * pulled.size  # with velocity feed-forward the arm keeps up
    # The first command is the measured position (the ramp-in starts where the arm is).
    assert ticks[0].command == pytest.approx(ticks[0].measured, abs=1e-9)

    # It follows the chunks: rebuild the schedule from the recorded chunks and their adoption ticks...
    by_index = {c.index: c for c in obs.chunks}
    sched = ChunkScheduler(info.scheduler)
    seen: set[int] = set()
    followed = 0
    for t in ticks:
        if t.chunk_index >= 0 and t.chunk_index not in seen:
            seen.add(t.chunk_index)
            c = by_index[t.chunk_index]
            assert sched.add_chunk(c.actions, c.t_obs, t.t).accepted
        smp = sched.sample(t.t)
        if t.target is None:
            assert smp.target is None
        else:
            np.testing.assert_allclose(t.target, smp.target, atol=1e-9)
            followed += 1
    assert followed > len(ticks) // 2
    # ... and the commands are exactly the safety filter applied to those targets and the measured positions.
    f = SafetyFilter(lim, info.safety, valid=JointLimits.from_action_space(bundle.manifest.action_space))
    f.start(ticks[0].command, info.t_safety_start)
    for t in ticks:
        np.testing.assert_allclose(f.step(t.target, t.measured, t.t), t.command, atol=1e-9)

    # Velocity feed-forward went along with every setpoint.
    assert all(t.velocity is not None for t in obs.ticks)
    # The setpoints went over the wire; the firmware never had to reject one; the run ended with torque off.
    status = firmware.status()
    assert status.commands >= summary.stats["setpoints_sent"] * 0.9
    assert status.commands_rejected == 0
    assert not status.torque_on
    assert status.mode == ArmMode.DISABLED
    assert any(t.status == "stopping" and t.sent for t in obs.ticks)  # the controlled stop held the arm

    stats = json.loads(stats_path.read_text())
    assert stats["reason"]["kind"] == DURATION
    assert stats["chunks"]["adopted"] >= 5
    assert stats["loop"]["ticks"] == len(ticks) + 1  # the tick that saw the deadline sends nothing
    assert stats["startup_s"]["first_setpoint"] is not None

    topics, meta = _read_mcap(mcap_path)
    assert meta["summary"]["reason"] == DURATION
    assert json.loads(meta["run"]["joint_names"])[0] == "joint_1"
    assert len(topics["/control/tick"]) == len(obs.ticks)
    chunk_msgs = [json.loads(d) for d in topics["/policy/chunk"]]
    assert len(chunk_msgs) == len(obs.chunks)
    assert np.array(chunk_msgs[0]["actions"]) == pytest.approx(obs.chunks[0].actions, abs=1e-6)
    enc, img = decode_image(topics["/camera/cam0/color"][0])
    assert enc == "rgb8"
    assert img.shape == (120, 160, 3)


# --------------------------------------------------------------------------------------------------------------
# Faults: each ends in a safe stop, with the reason reported and the recording intact.


class StallingCamera:
    """Test double for a USB camera whose stream stops (cannot be produced here): forwards a real playback source
    for `after` frames, then delivers nothing more."""

    def __init__(self, inner: RealSenseSource, after: int) -> None:
        self.inner = inner
        self.after = after
        self._frozen: Frame | None = None

    @property
    def spec(self):
        return self.inner.spec

    def start(self) -> None:
        self.inner.start()

    def stop(self) -> None:
        self.inner.stop()

    def _frame(self) -> Frame | None:
        if self._frozen is not None:
            return self._frozen
        f = self.inner.latest()
        if f is not None and self.inner.health().frames >= self.after:
            self._frozen = f
        return f

    def latest(self) -> Frame | None:
        return self._frame()

    def wait_newer(self, after_frame_number, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            f = self._frame()
            if f is not None and f.frame_number != after_frame_number and self._frozen is None:
                return f
            time.sleep(0.005)
        return None

    def health(self) -> CameraHealth:
        return self.inner.health()


class FailingPolicy(Policy):
    def __init__(self, *a, fail_at: int, nan: bool = False, **kw) -> None:
        super().__init__(*a, **kw)
        self.fail_at = fail_at
        self.nan = nan

    def step(self, obs, force=None):
        chunk = super().step(obs, force)
        if chunk.index >= self.fail_at:
            if not self.nan:
                raise RuntimeError("engine exploded")
            chunk.actions[3, 1] = np.nan
        return chunk


def _after(seconds: float, fn) -> threading.Timer:
    t = threading.Timer(seconds, fn)
    t.daemon = True
    t.start()
    return t


FAULTS = {
    "camera_stall": CAMERA_STALL,
    "recording_ends": RECORDING_ENDED,
    "inference_exception": INFERENCE_ERROR,
    "nan_action": NONFINITE_ACTION,
    "link_loss": (LINK_LOST, STATE_STALE),
    "firmware_estop": FIRMWARE_ESTOP,
    "ctrl_c": INTERRUPTED,
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_fault_ends_in_a_safe_stop(fault, bundle, recording, firmware, tmp_path) -> None:
    camera = _camera(bundle, recording, loop=fault != "recording_ends")
    source = StallingCamera(camera, after=10) if fault == "camera_stall" else camera
    policy = None
    if fault in ("inference_exception", "nan_action"):
        policy = FailingPolicy(bundle, "reach_red_cube", fail_at=3, nan=fault == "nan_action")
    timers = []
    if fault == "link_loss":
        timers.append(_after(0.8, firmware.stop_answering))
    elif fault == "firmware_estop":
        timers.append(_after(0.8, firmware.press_estop))
    elif fault == "ctrl_c":
        timers.append(_after(0.8, lambda: os.kill(os.getpid(), signal.SIGINT)))
    obs = Collect()
    mcap_path = tmp_path / f"{fault}.mcap"
    opts = RunOptions(task="reach_red_cube", duration_s=10.0, safety=SAFETY, camera_stall_s=0.5, hold_s=0.3)
    summary = run_policy(bundle, Rig([firmware.port], [source]), opts, [obs, EpisodeRecorder(mcap_path)], policy=policy)
    for t in timers:
        t.cancel()

    want = FAULTS[fault]
    assert summary.reason.kind in (want if isinstance(want, tuple) else (want,)), summary.reason
    assert summary.duration_s < 9.0  # it stopped because of the fault, not the duration
    assert summary.clean == (fault in ("ctrl_c", "recording_ends"))
    # The arm is safe: torque off (or e-stopped). After a lost link nothing we send arrives: the firmware's own
    # watchdog holds, then turns torque off after watchdog_off_s.
    deadline = time.monotonic() + FIRMWARE.watchdog_off_s + 3.0
    while firmware.status().torque_on and time.monotonic() < deadline:
        time.sleep(0.05)
    firmware.resume()
    status = firmware.status()
    assert not status.torque_on
    assert status.mode in (ArmMode.DISABLED, ArmMode.ESTOP)
    cmds = np.array([t.command for t in obs.ticks])
    lim = obs.info.limits
    assert (cmds >= lim.lower - 1e-9).all()
    assert (cmds <= lim.upper + 1e-9).all()
    stopping = [t for t in obs.ticks if t.status == "stopping"]
    if fault in ("camera_stall", "recording_ends", "inference_exception", "nan_action", "ctrl_c"):
        # A controlled stop: braking at the acceleration limit, never faster than before.
        assert stopping
        speeds = np.abs(np.diff([t.command for t in stopping], axis=0)).max(axis=1)
        assert (np.diff(speeds) <= lim.max_acceleration.max() / obs.info.control_rate_hz**2 + 1e-9).all()
    # The reason is reported, in the summary, the events and the episode file, which is intact.
    assert any(e.kind == "stop" and summary.reason.kind in e.message for e in obs.events)
    topics, meta = _read_mcap(mcap_path)
    assert meta["summary"]["reason"] == summary.reason.kind
    assert meta["summary"]["message"] == summary.reason.message
    assert len(topics["/control/tick"]) == len(obs.ticks)
    assert json.loads(topics["/events"][-1])["kind"] in ("stop", "torque_off", "estop")
    if fault == "nan_action":
        assert summary.stats["chunks"]["rejected_nonfinite"] == 1
        assert not any(np.isnan(t.command).any() for t in obs.ticks)
    if fault == "inference_exception":
        assert "engine exploded" in summary.reason.message


def test_an_arm_outside_its_limits_is_refused_before_anything_moves(bundle, recording, tmp_path) -> None:
    cfg = SimArmConfig(initial_positions=[0.0, 0.0, 2.6, 0.0, 0.0, 0.0])  # joint_3 beyond the bundle's 2.5
    with FirmwareSimulator(cfg) as sim:
        port = sim.port
        with pytest.raises(SafetyError, match=r"joint_3 at 2\.6000"):
            run_policy(
                bundle, Rig([port], [_camera(bundle, recording)]), RunOptions(task="reach_red_cube", duration_s=1.0)
            )
        status = sim.status()
        assert status.commands == 0
        assert not status.torque_on


def test_dual_arm_bundle_drives_both_arms_in_action_space_order(nano_bundle_dual_arm, recording, tmp_path) -> None:
    with load_bundle(nano_bundle_dual_arm) as bundle, FirmwareSimulator() as left, FirmwareSimulator() as right:
        obs = Collect()
        rig = Rig([left.port, right.port], [_camera(bundle, recording)])
        summary = run_policy(bundle, rig, RunOptions(task="reach_red_cube", duration_s=1.5, safety=SAFETY), [obs])
        assert summary.reason.kind == DURATION, summary.reason
        assert obs.info.joint_names[:7] == tuple(f"left_{j}" for j in (*(f"joint_{i}" for i in range(1, 7)), "gripper"))
        assert obs.info.ports == (left.port, right.port)
        sent = [t for t in obs.ticks if t.sent]
        for sim in (left, right):
            status = sim.status()
            assert status.commands >= len(sent) * 0.9
            assert not status.torque_on
        # Each firmware tracked its own half of the command vector (the last setpoints reached each arm).
        last = sent[-1].command
        np.testing.assert_allclose(left.status().target, last[:6], atol=1e-5)
        np.testing.assert_allclose(right.status().target, last[7:13], atol=1e-5)
