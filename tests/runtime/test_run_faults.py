"""Through `run_policy` against the Python firmware simulator on a pseudo-terminal: a measured state no arm can
produce (an encoder offset, a reading out of range, a NaN) stops the run on the tick that reads it, naming the
arm, the joint and the value; an inference error keeps its traceback out of the console, in the stats file.

No timing assertions: what is checked is what happened (the reason, the setpoints, the files).
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge import ArmMode, FirmwareSimulator
from harmowam_edge.bundle import load_bundle
from harmowam_edge.control.loop import INFERENCE_ERROR, MEASUREMENT_FAULT, Rig, RunOptions, run_policy
from tests.recordings import Recording, make_recording
from tests.runtime.test_run_loop import FIRMWARE, SAFETY, Collect, FailingPolicy, _camera

pytest.importorskip("pyrealsense2", reason="the runs play a RealSense recording (pyrealsense2)")


@pytest.fixture(scope="module")
def bundle(nano_bundle: Path):
    with load_bundle(nano_bundle) as b:
        yield b


@pytest.fixture(scope="module")
def recording(recordings_dir: Path) -> Recording:
    return make_recording(recordings_dir / "faults.db3", frames=30, fps=30)


@pytest.fixture
def firmware():
    sim = FirmwareSimulator(FIRMWARE)
    sim.start()
    yield sim
    sim.stop()


def _task(bundle) -> str:
    return bundle.manifest.tasks.names[0]


ENCODER_FAULTS = {
    # joint index, fault, what the reason must say
    "offset": (1, {"offset": 1.5}, r"measured position jumped: arm '\w+' on .+: joint_2 from -?\d\.\d{4} rad to "),
    "out_of_range": (3, {"reading": 4.4}, r"outside the limits: arm '\w+' on .+: joint_4 = 4\.4000 rad"),
    "nan": (2, {"reading": math.nan}, r"non-finite measured position: arm '\w+' on .+: joint_3 = nan"),
}


@pytest.mark.parametrize("fault", list(ENCODER_FAULTS))
def test_an_impossible_measurement_stops_the_run_on_that_tick(fault, bundle, recording, firmware) -> None:
    joint, kwargs, reason = ENCODER_FAULTS[fault]

    class InjectOnce(Collect):
        """After 40 ticks, the encoder fault appears (from the control thread: no wall-clock timer)."""

        def on_tick(self, tick) -> None:
            super().on_tick(tick)
            if len(self.ticks) == 40:
                firmware.plant.set_encoder_fault(joint, **kwargs)

    obs = InjectOnce()
    opts = RunOptions(task=_task(bundle), duration_s=20.0, safety=SAFETY, hold_s=0.3)
    summary = run_policy(bundle, Rig([firmware.port], [_camera(bundle, recording)]), opts, [obs])

    assert summary.reason.kind == MEASUREMENT_FAULT, summary.reason
    assert not summary.clean  # exit 1 on the command line
    assert summary.reason.message.count(firmware.port) == 1
    assert re.search(reason, summary.reason.message), summary.reason.message
    # Not blamed on the policy: no chunk was rejected, none was computed from the bad reading.
    assert summary.stats["chunks"]["rejected_nonfinite"] == 0
    assert all(np.isfinite(c.actions).all() for c in obs.chunks)
    # On that tick: no tick of the run proper used the faulty measurement; the first one to see it stopped.
    running = [t for t in obs.ticks if t.status != "stopping"]
    stopping = [t for t in obs.ticks if t.status == "stopping"]
    lim = obs.info.limits
    good = np.array([t.measured for t in running])
    assert np.isfinite(good).all()
    assert (np.abs(np.diff(good, axis=0)) <= lim.max_velocity / obs.info.control_rate_hz * 2 + 0.05).all()
    # Hold, then torque off: the stop braked on the commands (never faster than the velocity limit, never
    # towards the reading), then turned torque off.
    assert stopping
    cmds = np.array([t.command for t in obs.ticks])
    assert (np.abs(np.diff(cmds, axis=0)) <= lim.max_velocity / obs.info.control_rate_hz + 1e-9).all()
    speeds = np.abs(np.diff([running[-1].command] + [t.command for t in stopping], axis=0))
    assert (np.diff(speeds, axis=0) <= lim.max_acceleration / obs.info.control_rate_hz**2 + 1e-9).all()
    status = firmware.status()
    assert not status.torque_on
    assert status.mode == ArmMode.DISABLED
    assert any(e.kind == "torque_off" for e in obs.events)


def test_an_inference_error_prints_one_line_and_keeps_the_traceback_in_the_stats(
    bundle, recording, firmware, tmp_path, capfd, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="harmowam_edge")
    stats_path = tmp_path / "stats.json"
    policy = FailingPolicy(bundle, _task(bundle), fail_at=2)
    opts = RunOptions(task=_task(bundle), duration_s=20.0, safety=SAFETY, hold_s=0.2, stats_path=stats_path)
    summary = run_policy(bundle, Rig([firmware.port], [_camera(bundle, recording)]), opts, policy=policy)

    assert summary.reason.kind == INFERENCE_ERROR
    assert summary.reason.message == "inference failed: RuntimeError: engine exploded"
    # The command line configures no logging: Python prints records of WARNING and above on stderr, with their
    # traceback. None of those may carry one; the summary prints the reason.
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.exc_info]
    stats = json.loads(stats_path.read_text())
    assert stats["reason"]["message"] == summary.reason.message
    (tb,) = stats["tracebacks"]
    assert tb.startswith("Traceback (most recent call last)")
    assert "RuntimeError: engine exploded" in tb
    assert "in step" in tb  # the frame that raised
