"""The whole loop closed on the simulated rig: the runtime's control loop, the seeded nano bundle, the firmware
simulator behind a pseudo-terminal and the MuJoCo camera, exactly as `run --sim` wires them."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the runtime needs ONNX Runtime")

pytestmark = pytest.mark.sim


class _FirmwareWatch:
    """Polls the simulated firmware(s) and the world's ground truth while the loop runs."""

    def __init__(self, rig) -> None:
        self.rig = rig
        self.modes: set[str] = set()
        self.positions: list[np.ndarray] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            for sim in self.rig.simulators:
                self.modes.add(sim.status().mode.name)
            for plant in self.rig.plants:
                self.positions.append(plant.measure().positions)
            time.sleep(0.005)


class _Ticks:
    """A run observer that keeps what the control loop measured and commanded."""

    def __init__(self) -> None:
        self.measured: list[np.ndarray] = []
        self.commands: list[np.ndarray] = []
        self.sent = 0
        self.ticks = 0
        self.chunks = 0

    def on_start(self, info) -> None:
        self.info = info

    def on_chunk(self, chunk, frames) -> None:
        self.chunks += 1

    def on_tick(self, tick) -> None:
        self.ticks += 1
        self.sent += int(tick.sent)

        self.measured.append(tick.measured)
        self.commands.append(tick.command)

    def on_event(self, event) -> None:
        pass

    def on_end(self, summary) -> None:
        self.summary = summary


def test_closed_loop_runs_for_a_set_time_within_limits_and_sends_every_setpoint(nano_bundle, tmp_path):
    from harmowam_edge.bundle.loader import load_bundle
    from harmowam_edge.control.loop import Rig, RunObserver, RunOptions, run_policy
    from harmowam_edge.control.safety import SafetyConfig
    from harmowam_edge.sim.observer import SimVideoObserver
    from harmowam_edge.sim.rig import open_sim_rig

    bundle = load_bundle(nano_bundle)
    m = bundle.manifest
    recorder = type("TickObserver", (_Ticks, RunObserver), {})()  # the runtime's observer base, our hooks
    with open_sim_rig(1, list(m.cameras), seed=3, action_space=m.action_space) as rig:
        video = SimVideoObserver(tmp_path / "run.mp4", rig.cameras[0], untrained=True, expected_duration_s=3)
        with _FirmwareWatch(rig) as watch:
            summary = run_policy(
                bundle,
                Rig(arms=rig.arm_ports, cameras=rig.cameras, name="sim"),
                # As `run --sim`: the sim's state stream may pause longer on a loaded machine than a real arm's.
                RunOptions(
                    task="reach_red_cube",
                    duration_s=3.0,
                    handle_signals=False,
                    safety=SafetyConfig(state_timeout_s=0.5),
                ),
                observers=[recorder, video],
            )
        status = rig.simulators[0].status()
    ticks = recorder
    assert summary.reason.kind == "duration", summary.reason
    assert ticks.chunks > 5  # the policy ran, on frames the sim camera rendered
    # Every control tick (the controlled stop's included) sent its setpoint; the firmware accepted every one.
    assert ticks.ticks > 100
    assert ticks.sent == ticks.ticks
    assert summary.stats["setpoints_sent"] <= ticks.sent
    assert status.commands == ticks.sent
    assert status.commands_rejected == 0
    assert status.commands_ignored == 0
    # The firmware never had to hold for lack of setpoints (a watchdog hold) and ends disabled (torque off).
    assert "HOLD" not in watch.modes
    assert "ESTOP" not in watch.modes
    assert "ENABLED" in watch.modes
    assert status.mode.name == "DISABLED"
    # No limit violation: not in what the loop commanded, measured, or what the physics did.
    space = m.action_space
    lower = np.array([d.lower for d in space.dims])
    upper = np.array([d.upper for d in space.dims])
    cmds, meas = np.array(ticks.commands), np.array(ticks.measured)
    assert np.all(cmds >= lower - 1e-9)
    assert np.all(cmds <= upper + 1e-9)
    assert np.all(meas >= lower - 1e-3)
    assert np.all(meas <= upper + 1e-3)
    truth = np.array(watch.positions)
    assert np.all(truth >= lower[:6] - 1e-3)
    assert np.all(truth <= upper[:6] + 1e-3)
    safety = summary.stats["safety"]
    assert safety["rejected_nonfinite"] == 0
    # The untrained policy did move the arm: the loop is closed, not idling.
    assert np.ptp(meas[:, :6], axis=0).max() > 0.01
    # --video: the observer filmed it.
    assert video.written == tmp_path / "run.mp4"
    assert video.recorder.frames > 10
