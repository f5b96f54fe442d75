"""The rig behind its serial links: the plant follows the firmware's limited reference; e-stop and link loss
stop the arm; the dual-arm rig runs. Everything goes through ArmLink over the pseudo-terminals."""

from __future__ import annotations

import time

import numpy as np
import pytest

from harmowam_edge.bundle.schema import reference_action_space
from harmowam_edge.errors import ConfigError
from harmowam_edge.sim import arm as arm_desc

pytestmark = pytest.mark.sim

LIMITS = reference_action_space(1).arms[0]
LOWER = np.array([j.lower for j in LIMITS.joints])
UPPER = np.array([j.upper for j in LIMITS.joints])
VMAX = np.array([j.max_velocity for j in LIMITS.joints])


def _stream(link, fn, seconds: float, rate: float = 200.0, on_tick=None) -> None:
    """Send fn(t) -> (positions, gripper) at `rate` for `seconds`."""
    t0 = time.monotonic()
    k = 0
    while (t := time.monotonic() - t0) < seconds:
        q, g = fn(t)
        link.send_setpoint(q, None, g)
        if on_tick is not None:
            on_tick(t)
        k += 1
        time.sleep(max(0.0, t0 + k / rate - time.monotonic()))


def kept_time(times: np.ndarray, lags: np.ndarray, period: float, window: float = 0.15) -> np.ndarray:
    """Per sample: no host gap over two periods and no physics slip over 10 ms in the `window` before it (what a
    loaded machine does; a healthy run keeps time everywhere)."""
    late = np.zeros(len(times), bool)
    late[1:] = np.diff(times) > 2 * period
    late[1:] |= np.abs(np.diff(lags)) > 0.01
    return np.array([not late[(times > t - window) & (times <= t)].any() for t in times])


def _settled(plant, seconds: float = 0.3) -> tuple[np.ndarray, float]:
    """After the brakes' transient (0.2 s), sample the plant: (position drift over the window, max |velocity|)."""
    time.sleep(0.2)
    first = plant.measure()
    speeds = []
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        speeds.append(np.abs(plant.measure().velocities).max())
        time.sleep(0.01)
    last = plant.measure()
    return np.abs(last.positions - first.positions), float(max(speeds))


def test_kept_time_leaves_out_the_samples_after_a_stall():
    times = np.arange(100) * 0.005
    lags = np.full(100, 0.3)
    assert kept_time(times, lags, 0.005).all()  # a healthy run: every sample judged
    times[20:] += 0.05  # the stream stalled 50 ms before sample 20
    lags[80:] += 0.08  # physics dropped 80 ms of debt before sample 80
    judged = kept_time(times, lags, 0.005)
    assert judged[:20].all()
    assert not judged[20:50].any()  # 0.15 s (30 samples) after the stall ...
    assert judged[51:80].all()  # ... then judged again
    assert not judged[80:].any()  # the rest lies within 0.15 s of the physics slip


def test_handshake_reports_the_reference_arm_limits(open_rig):
    _rig, (link,) = open_rig()
    info = link.info
    assert info.joint_count == 6
    assert info.has_gripper
    assert np.allclose(info.position_min, LOWER, atol=1e-6)
    assert np.allclose(info.position_max, UPPER, atol=1e-6)
    assert np.allclose(info.max_velocity, VMAX, atol=1e-6)
    assert info.gripper_limits.max == pytest.approx(0.08, abs=1e-6)
    state = link.wait_state(1.0)
    assert state is not None
    assert state.positions == pytest.approx(arm_desc.HOME, abs=2e-3)
    assert state.gripper == pytest.approx(arm_desc.HOME_GRIPPER, abs=1e-3)
    assert not state.enabled  # a firmware boots disabled: the runtime must enable it


def test_plant_follows_the_firmware_reference_within_limits(open_rig):
    """Targets that jump and leave the limits: the firmware limits the reference, the arm follows it."""
    rig, (link,) = open_rig()
    link.wait_state(1.0)
    link.enable()
    sim, plant = rig.simulators[0], rig.plants[0]
    home = np.array(arm_desc.HOME)
    errors, speeds, positions, times, lags = [], [], [], [], []

    def target(t):
        q = home.copy()
        q[0] = 3.5 if t < 1.2 else -0.5  # beyond joint_1's upper limit (2.9), then a 4-rad jump back
        q[2] = home[2] + 0.4 * np.sin(2 * np.pi * 0.7 * t)
        return q, 0.0 if t < 1.0 else 0.08

    def check(t):
        ref = np.array(sim.status().reference[:6])
        m = plant.measure()
        errors.append(np.abs(ref - m.positions).max())
        speeds.append(np.abs(m.velocities) / VMAX)
        positions.append(m.positions)
        times.append(t)
        lags.append(time.monotonic() - rig.world.sim_time)  # constant while physics keeps up with the host clock

    _stream(link, target, 2.6, on_tick=check)
    positions = np.array(positions)
    assert np.all(positions >= LOWER - 1e-3)
    assert np.all(positions <= UPPER + 1e-3)
    # Speed and tracking are judged where the machine kept time: a starved physics thread (or stream) catches up
    # in a burst, and the servo then races after a reference that moved on meanwhile.
    judged = kept_time(np.array(times), np.array(lags), period=1 / 200)
    print(f"\n{judged.sum()} of {len(times)} samples kept time")
    if judged.sum() < len(times) // 2:
        pytest.skip(f"the machine was too loaded: {judged.sum()} of {len(times)} samples kept time, not judged")
    assert np.max(np.array(speeds)[judged]) <= 1.1  # the firmware's velocity limit, give or take the overshoot
    assert np.median(np.array(errors)[judged]) < 0.01
    assert np.max(np.array(errors)[judged]) < 0.05
    # joint_1 went as far as it may: toward 2.9 at 2 rad/s for ~1.2 s, then on its way back
    assert positions[:, 0].max() > 2.0
    final = link.wait_state(1.0)
    assert final is not None
    assert final.positions[0] < positions[:, 0].max()


def test_estop_stops_the_arm_and_holds_it(open_rig):
    rig, (link,) = open_rig()
    link.wait_state(1.0)
    link.enable()
    home = np.array(arm_desc.HOME)

    def swing(t):
        q = home.copy()
        q[0] = 1.5 * np.sin(2 * np.pi * 0.5 * t)
        return q, 0.08

    _stream(link, swing, 0.6)
    assert np.abs(rig.plants[0].measure().velocities).max() > 0.5  # it was moving
    link.estop()
    time.sleep(0.1)
    state = link.wait_state(1.0)
    assert state is not None
    assert state.mode.name == "ESTOP"
    assert not rig.plants[0].torque_on
    # Setpoints after the e-stop are ignored: the arm stays where the brakes caught it.
    _stream(link, lambda t: (home, 0.08), 0.3)
    drift, speed = _settled(rig.plants[0])
    assert drift.max() < 0.01
    assert speed < 0.05


def test_hardware_estop_button_stops_the_arm(open_rig):
    rig, (link,) = open_rig()
    link.wait_state(1.0)
    link.enable()
    home = np.array(arm_desc.HOME)
    moving = home.copy()
    moving[1] += 0.6
    _stream(link, lambda t: (moving if t > 0.05 else home, 0.08), 0.25)
    rig.simulators[0].press_estop()
    time.sleep(0.1)
    assert not rig.plants[0].torque_on
    drift, speed = _settled(rig.plants[0])
    assert drift.max() < 0.01
    assert speed < 0.05
    state = link.wait_state(1.0)
    assert state is not None
    assert state.mode.name == "ESTOP"


def test_link_loss_stops_the_arm(open_rig):
    """The host goes silent mid-move: the firmware's watchdog brings the arm to a stop, then turns torque off."""
    rig, (link,) = open_rig()
    link.wait_state(1.0)
    link.enable()
    home = np.array(arm_desc.HOME)
    far = home.copy()
    far[0] = 2.5
    _stream(link, lambda t: (far, 0.08), 0.5)  # joint_1 on its way at up to 2 rad/s
    assert abs(rig.plants[0].measure().velocities[0]) > 0.5
    rig.simulators[0].stop_answering()  # the link is gone both ways; the controller runs on
    time.sleep(0.5)
    drift, speed = _settled(rig.plants[0], 0.3)
    assert speed < 0.05
    assert drift.max() < 0.01
    assert rig.plants[0].measure().positions[0] < 2.4  # stopped short of the target: it did not run on
    deadline = time.monotonic() + 3.0
    while rig.plants[0].torque_on and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not rig.plants[0].torque_on  # the watchdog's second stage
    assert link.link_lost.wait(2.0)  # and the host knows


def test_unplugged_cable_stops_the_arm(open_rig):
    rig, (link,) = open_rig()
    link.wait_state(1.0)
    link.enable()
    home = np.array(arm_desc.HOME)
    far = home.copy()
    far[2] = 0.5
    _stream(link, lambda t: (far, 0.08), 0.4)
    rig.simulators[0].unplug()
    time.sleep(0.5)
    drift, speed = _settled(rig.plants[0], 0.3)
    assert speed < 0.05
    assert drift.max() < 0.01
    assert link.link_lost.wait(2.0)


def test_dual_arm_rig_runs_both_arms_independently(open_rig, small_camera):
    rig, links = open_rig(arms=2, cameras=[small_camera])
    assert [a.name for a in rig.action_space.arms] == ["left", "right"]
    assert len(rig.arm_ports) == 2
    assert len(set(rig.arm_ports)) == 2
    for link in links:
        link.wait_state(1.0)
        link.enable()
    home = np.array(arm_desc.HOME)
    left_target = home.copy()
    left_target[0] = 0.7
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.2:
        links[0].send_setpoint(left_target, None, 0.02)
        links[1].send_setpoint(home, None, 0.08)
        time.sleep(0.005)
    left, right = links[0].wait_state(1.0), links[1].wait_state(1.0)
    assert left is not None
    assert right is not None
    assert left.positions[0] == pytest.approx(0.7, abs=0.02)
    assert left.gripper == pytest.approx(0.02, abs=0.005)
    assert right.positions == pytest.approx(home, abs=0.01)
    assert right.gripper == pytest.approx(0.08, abs=0.005)
    frame = rig.cameras[0].wait_newer(None, timeout=5.0)
    assert frame is not None
    assert frame.color.shape == (120, 160, 3)


def test_rig_refuses_a_bundle_for_another_arm():
    from harmowam_edge.bundle.schema import ActionSpace, ArmSpec, JointSpec
    from harmowam_edge.sim.rig import open_sim_rig

    odd = ActionSpace(arms=(ArmSpec("arm", (JointSpec("shoulder", "revolute", "rad", -1, 1, 1, 1),)),))
    with pytest.raises(ConfigError, match="reference arm"):
        open_sim_rig(1, [], action_space=odd)
    with pytest.raises(ConfigError, match="--arms 2"):
        open_sim_rig(1, [], action_space=reference_action_space(2))


def test_closing_the_rig_removes_its_ports(open_rig):
    from pathlib import Path

    rig, (link,) = open_rig()
    port = Path(rig.arm_ports[0])
    assert port.exists()
    link.close()
    rig.close()
    assert not port.exists()
    assert not rig.world.running
