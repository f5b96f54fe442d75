"""Servo-bus simulators (driven by the vendors' SDKs) and the bus arm client's safety, on pseudo-terminals."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge import ArmClient, ArmMode, FaultBits, LinkEventKind
from firmware_bridge.errors import RequestRejectedError
from firmware_bridge.servo_bus import (
    BusArm,
    BusConfigError,
    CalibrationFileError,
    ServoBusError,
    ServoBusSimulator,
    ServoMismatchError,
    ServoNotAnsweringError,
    SimServoSpec,
    check_rate,
    load_calibration,
    preset,
    tick_budget,
)
from firmware_bridge.servo_bus.control_tables import model
from firmware_bridge.servo_bus.servo_model import SimServo

BUSES = ["feetech", "dynamixel"]
PRESET = {"feetech": "so101", "dynamixel": "xl430"}


@pytest.fixture
def sim_bus() -> Iterator[Callable[..., ServoBusSimulator]]:
    started: list[ServoBusSimulator] = []

    def start(bus: str, servos: list[SimServoSpec] | None = None, link_path: Path | None = None) -> ServoBusSimulator:
        sim = ServoBusSimulator(bus, servos, link_path=link_path)
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def open_arm() -> Iterator[Callable[..., BusArm]]:
    arms: list[BusArm] = []

    def _open(port: str, bus: str, **kwargs: object) -> BusArm:
        """A bus arm whose timeouts a starved test thread cannot trip (a loaded CI machine can pause it for
        longer than the real 100 ms watchdog); the tests of those timeouts pass their own."""
        cfg_keys = ("calibration", "calibration_source", "watchdog_hold_s", "watchdog_off_s")
        cfg_kw: dict[str, object] = {"watchdog_hold_s": 3.0, "watchdog_off_s": 30.0}
        cfg_kw.update({k: kwargs.pop(k) for k in list(kwargs) if k in cfg_keys})
        kwargs.setdefault("state_timeout", 2.0)
        arm = BusArm.open(port, preset(PRESET[bus], **cfg_kw), **kwargs)  # type: ignore[arg-type]
        arms.append(arm)
        return arm

    yield _open
    for arm in arms:
        with contextlib.suppress(Exception):
            arm.close()


def patient_port(sdk: object, port_name: str) -> object:
    """The SDK's own PortHandler, with reply timeouts of 0.5 s instead of ~34 ms: the timeouts assume a real bus,
    and on a shared 2-core CI machine the simulator's thread can be descheduled for longer than that."""

    class PatientPort(sdk.PortHandler):  # type: ignore[attr-defined,name-defined,misc]
        def setPacketTimeout(self, packet_length: int) -> None:
            super().setPacketTimeout(packet_length)
            self.packet_timeout = max(self.packet_timeout, 500.0)

    return PatientPort(port_name)


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


# --- the vendors' SDKs drive the simulators as they would a real bus -------------------------------------------


def test_dynamixel_sdk_pings_reads_and_sync_writes_the_simulator(sim_bus: Callable[..., ServoBusSimulator]) -> None:
    sdk = pytest.importorskip("dynamixel_sdk")
    sim = sim_bus("dynamixel")
    port = patient_port(sdk, sim.port)
    assert port.openPort()
    try:
        ph = sdk.PacketHandler(2.0)
        assert ph.ping(port, 3) == (1060, sdk.COMM_SUCCESS, 0)  # XL430-W250
        assert ph.read1ByteTxRx(port, 3, 6) == (52, sdk.COMM_SUCCESS, 0)  # firmware version
        found, res = ph.broadcastPing(port)
        assert res == sdk.COMM_SUCCESS
        assert sorted(found) == [1, 2, 3, 4, 5, 6]
        assert ph.ping(port, 9)[1] == sdk.COMM_RX_TIMEOUT
        assert ph.write1ByteTxRx(port, 2, 64, 1) == (sdk.COMM_SUCCESS, 0)  # torque on
        gsw = sdk.GroupSyncWrite(port, ph, 116, 4)
        for i in range(1, 7):
            gsw.addParam(i, list((2048 + 200).to_bytes(4, "little")))
        assert gsw.txPacket() == sdk.COMM_SUCCESS
        assert wait_for(lambda: abs(sim.servo(2).present_position() - 2248) <= 1)
        gsr = sdk.GroupSyncRead(port, ph, 132, 4)
        for i in range(1, 7):
            gsr.addParam(i)
        assert gsr.txRxPacket() == sdk.COMM_SUCCESS
        got = [gsr.getData(i, 132, 4) for i in range(1, 7)]
        assert got[1] == 2248
        assert got[0] == 2048
    finally:
        port.closePort()


def test_feetech_sdk_pings_reads_and_sync_writes_the_simulator(sim_bus: Callable[..., ServoBusSimulator]) -> None:
    sdk = pytest.importorskip("scservo_sdk")
    sim = sim_bus("feetech")
    port = patient_port(sdk, sim.port)
    assert port.openPort()
    try:
        ph = sdk.PacketHandler(0)
        assert ph.ping(port, 1) == (777, sdk.COMM_SUCCESS, 0)  # STS3215 (the SDK reads address 3)
        assert ph.read1ByteTxRx(port, 1, 0)[0] == 3  # firmware major
        assert ph.write1ByteTxRx(port, 4, 40, 1) == (sdk.COMM_SUCCESS, 0)
        gsw = sdk.GroupSyncWrite(port, ph, 42, 2)
        for i in range(1, 7):
            gsw.addParam(i, [0x00, 0x09])  # 2304
        assert gsw.txPacket() == sdk.COMM_SUCCESS
        assert wait_for(lambda: sim.servo(4).present_position() == 2304)
        gsr = sdk.GroupSyncRead(port, ph, 56, 2)
        for i in range(1, 7):
            gsr.addParam(i)
        assert gsr.txRxPacket() == sdk.COMM_SUCCESS
        assert [gsr.getData(i, 56, 2) for i in range(1, 7)] == [2048, 2048, 2048, 2304, 2048, 2048]
    finally:
        port.closePort()


# --- the bus arm behind ArmClient --------------------------------------------------------------------------------


@pytest.mark.parametrize("bus", BUSES)
def test_bus_arm_tracks_within_limits_and_ramps_in_from_measured(
    bus: str, sim_bus: Callable[..., ServoBusSimulator], open_arm: Callable[..., BusArm]
) -> None:
    sim = sim_bus(bus, [SimServoSpec(i, model_name, 1500 + 100 * i) for i, model_name in _models(bus)])
    arm = open_arm(sim.port, bus)
    assert isinstance(arm, ArmClient)
    st = arm.state()
    assert st is not None
    assert st.mode == ArmMode.DISABLED
    measured = st.positions.copy()
    assert arm.enable() == ArmMode.ENABLED
    # torque came on with the goal at the measured pose: no servo jumped
    for s in sim.servos.values():
        assert s.torque_on
        assert abs(s.get("goal_position") - s.present_position()) <= 1
    target = np.clip(measured + 0.5, arm.info.position_min, arm.info.position_max)
    vmax = arm.info.max_velocity
    sim.goal_log = []
    states = []
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        arm.send_setpoint(target, gripper=0.06)
        s2 = arm.wait_state(0.2)
        if s2 is not None:
            states.append(s2)
            if np.allclose(s2.positions, target, atol=0.005) and abs((s2.gripper or 0) - 0.06) < 0.001:
                break
    final = arm.state()
    assert final is not None
    assert np.allclose(final.positions, target, atol=0.01)
    assert final.gripper is not None
    assert abs(final.gripper - 0.06) < 0.002
    # the goals moved by at most the velocity limit per control period, tick after tick (counted on the bus, not
    # in wall time: a starved thread must not matter), one tick of rounding allowed
    goals = np.array([[g[i] for i in range(1, 6)] for g in sim.goal_log if len(g) == 6])
    assert len(goals) > 10
    step_ticks = vmax * arm.period / (2 * np.pi / 4095)
    assert np.all(np.abs(np.diff(goals, axis=0)) <= step_ticks + 1)
    assert np.abs(np.diff(goals, axis=0)).max() >= 0.5 * step_ticks.min()  # and it did move that fast


def _models(bus: str) -> list[tuple[int, str]]:
    return [(i, "sts3215" if bus == "feetech" else "xl430-w250") for i in range(1, 7)]


@pytest.mark.parametrize("bus", BUSES)
def test_servo_limits_and_rig_clamp_targets(
    bus: str, sim_bus: Callable[..., ServoBusSimulator], open_arm: Callable[..., BusArm]
) -> None:
    sim = sim_bus(bus)
    s1 = sim.servo(1)
    s1.write(
        model(s1.model.name).register("max_position_limit").address,
        (2300).to_bytes(2 if bus == "feetech" else 4, "little"),
    )
    arm = open_arm(sim.port, bus)
    hi = arm.info.position_max[0]
    assert hi == pytest.approx((2300 - 2047.5) * 2 * np.pi / 4095, abs=1e-9)  # the servo's limit won
    arm.enable()
    q = arm.state().positions.copy()  # type: ignore[union-attr]
    q[0] = 3.0  # far beyond
    saw_clamped = False
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        arm.send_setpoint(q)
        st = arm.wait_state(0.2)
        saw_clamped |= bool(st is not None and st.fault_bits & FaultBits.POSITION_CLAMPED)
        assert s1.get("goal_position") <= 2300
        if saw_clamped and st is not None and abs(st.positions[0] - hi) < 0.003:
            break
    assert saw_clamped
    assert arm.state().positions[0] == pytest.approx(hi, abs=0.003)  # type: ignore[union-attr]


def test_enable_refuses_a_joint_outside_its_limits(
    sim_bus: Callable[..., ServoBusSimulator], open_arm: Callable[..., BusArm]
) -> None:
    sim = sim_bus("feetech")
    sim.servo(2).write(11, (2100).to_bytes(2, "little"))  # max position limit below where the joint is...
    sim.move_by_hand(2, 2300)
    arm = open_arm(sim.port, "feetech")
    with pytest.raises(ServoBusError, match=r"shoulder_lift \(ID 2\) at 2300, limits \[0, 2100\]"):
        arm.enable()
    assert not any(s.torque_on for s in sim.servos.values())
    sim.move_by_hand(2, 2000)  # ... moved back inside by hand
    assert wait_for(lambda: arm.state().positions[1] < 0)  # type: ignore[union-attr]
    assert arm.enable() == ArmMode.ENABLED


@pytest.mark.parametrize("bus", BUSES)
def test_torque_off_on_close_estop_and_exceptions(
    bus: str, sim_bus: Callable[..., ServoBusSimulator], open_arm: Callable[..., BusArm]
) -> None:
    sim = sim_bus(bus)
    arm = open_arm(sim.port, bus)
    arm.enable()
    assert arm.estop() == ArmMode.ESTOP
    assert not any(s.torque_on for s in sim.servos.values())
    with pytest.raises(RequestRejectedError, match="e-stop"):
        arm.enable()
    assert arm.reset_estop() == ArmMode.DISABLED
    arm.enable()
    assert all(s.torque_on for s in sim.servos.values())

    def user_code() -> None:
        with arm:  # an exception in the user's code: the context manager turns torque off
            raise RuntimeError("user code failed")

    with pytest.raises(RuntimeError):
        user_code()
    assert not any(s.torque_on for s in sim.servos.values())


@pytest.mark.parametrize("bus", BUSES)
def test_overheating_servo_is_a_drive_fault_and_blocks_enable(
    bus: str, sim_bus: Callable[..., ServoBusSimulator], open_arm: Callable[..., BusArm]
) -> None:
    sim = sim_bus(bus)
    arm = open_arm(sim.port, bus)
    arm.enable()
    sim.overheat(3)
    assert wait_for(lambda: bool((st := arm.state()) and st.fault_bits & FaultBits.DRIVE_FAULT))
    assert wait_for(lambda: arm.state().mode == ArmMode.DISABLED)  # type: ignore[union-attr]
    assert not any(s.torque_on for s in sim.servos.values())
    messages = [e.message for e in arm.poll_events()]
    assert any("overheating" in m and "servo 3" in m for m in messages), messages
    with pytest.raises(RequestRejectedError, match="overheating"):
        arm.enable()


@pytest.mark.parametrize("bus", BUSES)
def test_a_silent_servo_is_link_loss(
    bus: str, sim_bus: Callable[..., ServoBusSimulator], open_arm: Callable[..., BusArm]
) -> None:
    sim = sim_bus(bus)
    arm = open_arm(sim.port, bus, state_timeout=0.1)
    sim.silence(5)
    assert arm.link_lost.wait(10.0)
    lost = [e for e in arm.poll_events() if e.kind == LinkEventKind.LINK_LOST]
    assert lost
    assert "[5]" in lost[0].message
    sim.silence(5, False)
    assert wait_for(lambda: not arm.link_lost.is_set())
    assert any(e.kind == LinkEventKind.LINK_RESTORED for e in arm.poll_events())


@pytest.mark.parametrize("bus", BUSES)
def test_corrupt_replies_are_counted_and_the_stream_goes_on(
    bus: str, sim_bus: Callable[..., ServoBusSimulator], open_arm: Callable[..., BusArm]
) -> None:
    sim = sim_bus(bus)
    arm = open_arm(sim.port, bus)
    n0 = arm.stats.states_rx
    sim.corrupt(2, count=3)
    assert wait_for(lambda: arm.stats.crc_errors >= 3 and arm.stats.states_rx > n0 + 5)
    assert not arm.link_lost.is_set()


@pytest.mark.parametrize("bus", BUSES)
def test_reconnect_after_unplug_comes_back_disabled(
    bus: str, tmp_path: Path, sim_bus: Callable[..., ServoBusSimulator], open_arm: Callable[..., BusArm]
) -> None:
    sim = sim_bus(bus, link_path=tmp_path / "ttyUSB-servos")
    arm = open_arm(sim.port, bus)
    arm.enable()
    sim.unplug()
    assert arm.link_lost.wait(10.0)
    time.sleep(0.1)
    sim.replug()
    assert wait_for(lambda: arm.connected and not arm.link_lost.is_set())
    kinds = [e.kind for e in arm.poll_events()]
    assert LinkEventKind.DISCONNECTED in kinds
    assert LinkEventKind.RECONNECTED in kinds
    assert arm.state().mode == ArmMode.DISABLED  # type: ignore[union-attr]
    assert not any(s.torque_on for s in sim.servos.values())  # servos that kept power were turned off
    assert arm.enable() == ArmMode.ENABLED


def test_host_watchdog_holds_then_turns_torque_off(
    sim_bus: Callable[..., ServoBusSimulator], open_arm: Callable[..., BusArm]
) -> None:
    sim = sim_bus("feetech")
    arm = open_arm(sim.port, "feetech", watchdog_hold_s=0.1, watchdog_off_s=0.4)
    arm.enable()
    arm.poll_events()
    changes: list[str] = []

    def torque_went_off() -> bool:
        changes.extend(e.message for e in arm.poll_events() if e.kind == LinkEventKind.MODE_CHANGED)
        return any(c.startswith("HOLD → DISABLED") for c in changes)

    assert wait_for(torque_went_off)
    assert changes[0].startswith("ENABLED → HOLD (no setpoint or heartbeat for")
    assert changes[1].startswith("HOLD → DISABLED")
    assert wait_for(lambda: arm.state().mode == ArmMode.DISABLED)  # type: ignore[union-attr]
    assert arm.state().fault_bits & FaultBits.WATCHDOG_TORQUE_OFF  # type: ignore[union-attr]
    assert not any(s.torque_on for s in sim.servos.values())


def test_dynamixel_bus_watchdog_is_armed_and_stops_a_servo_whose_host_died(
    sim_bus: Callable[..., ServoBusSimulator], open_arm: Callable[..., BusArm]
) -> None:
    sim = sim_bus("dynamixel")
    arm = open_arm(sim.port, "dynamixel")
    arm.enable()
    assert all(s.get("bus_watchdog") == 5 for s in sim.servos.values())  # 100 ms
    # the servo's own behaviour, on a fake clock: silence past the watchdog → it holds, goals are refused
    s = SimServo(model("xl430-w250"), 1)
    s.write(64, b"\x01")
    s.write(98, b"\x05")
    s.write(116, (3000).to_bytes(4, "little"))
    s.heard(0.0)
    s.step(0.05, 0.05)
    assert not s.watchdog_fired
    s.step(0.2, 0.01)
    assert s.watchdog_fired
    assert s.get("bus_watchdog") == 0xFF
    assert s.write(116, (100).to_bytes(4, "little")) != 0  # range error while fired
    assert s.write(98, b"\x00") == 0
    assert s.write(116, (100).to_bytes(4, "little")) == 0


# --- opening refuses what does not fit ----------------------------------------------------------------------------


def test_missing_and_wrong_servos_are_refused(sim_bus: Callable[..., ServoBusSimulator]) -> None:
    sim = sim_bus("feetech", [SimServoSpec(i, "sts3215") for i in range(1, 6)])
    with pytest.raises(ServoNotAnsweringError, match="ID 6 \\(gripper"):
        BusArm.open(sim.port, preset("so101"))
    sim2 = sim_bus("dynamixel", [SimServoSpec(i, "xl330-m288") for i in range(1, 7)])
    with pytest.raises(ServoMismatchError, match=r"xl330-m288.*xl430-w250"):
        BusArm.open(sim2.port, preset("xl430"))


def test_calibration_file_must_match_the_servos(
    tmp_path: Path, sim_bus: Callable[..., ServoBusSimulator], open_arm: Callable[..., BusArm]
) -> None:
    names = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    cal = {
        n: {"id": i + 1, "drive_mode": 1 if n == "elbow_flex" else 0, "homing_offset": -100 - i,
            "range_min": 800, "range_max": 3200}
        for i, n in enumerate(names)
    }  # fmt: skip
    path = tmp_path / "so101_follower.json"
    path.write_text(json.dumps(cal))
    calibration = load_calibration(path)
    sim = sim_bus("feetech")
    with pytest.raises(
        ServoMismatchError, match=r"shoulder_pan\.homing_offset: the file says -100, servo ID 1 holds 0"
    ):
        BusArm.open(sim.port, preset("so101", calibration=calibration, calibration_source=str(path)))
    for i, s in enumerate(sim.servos.values()):
        s.write(31, (100 + i | 1 << 11).to_bytes(2, "little"))  # -100-i, sign-magnitude
        s.actual = 2000.0 - 100 - i  # so that present = 2000 for all
    arm = open_arm(sim.port, "feetech", calibration=calibration, calibration_source=str(path))
    st = arm.state()
    assert st is not None
    rad = (2000 - 2000) * 2 * np.pi / 4095
    assert st.positions[0] == pytest.approx(rad, abs=1e-9)
    # range 800..3200 → limits ±(1200 ticks); elbow_flex reversed
    assert arm.info.position_max[0] == pytest.approx(1200 * 2 * np.pi / 4095)
    assert st.gripper == pytest.approx(0.08 * (2000 - 800) / 2400)
    bad = dict(cal)
    bad["wrist_roll"] = {**cal["wrist_roll"], "range_max": 100}
    path.write_text(json.dumps(bad))
    with pytest.raises(CalibrationFileError, match=r"wrist_roll\.range_max"):
        load_calibration(path)


# --- the bus timing budget -------------------------------------------------------------------------------------------


def test_tick_budget_counts_the_bytes_on_the_wire() -> None:
    b = tick_budget("dynamixel", 6, 1_000_000)
    # sync write 14 + 6·5, sync read 14 + 6, six status packets of 11 + 10
    assert (b.write_bytes, b.read_request_bytes, b.read_reply_bytes) == (44, 20, 126)
    assert b.wire_s == pytest.approx(190 * 10 / 1e6)
    f = tick_budget("feetech", 6, 1_000_000, return_delay_us=20.0)
    assert (f.write_bytes, f.read_request_bytes, f.read_reply_bytes) == (26, 14, 72)
    assert f.tick_s == pytest.approx(112e-5 + 6 * 20e-6)


def test_batched_reads_cost_a_latency_per_servo_and_still_work(
    sim_bus: Callable[..., ServoBusSimulator], open_arm: Callable[..., BusArm]
) -> None:
    sync = tick_budget("feetech", 6, 1_000_000, latency_s=0.001)
    batched = tick_budget("feetech", 6, 1_000_000, latency_s=0.001, batched_reads=True)
    assert batched.read_request_bytes == 6 * 8
    assert batched.tick_s == pytest.approx(sync.tick_s + 5 * 0.001 + (48 - 14) * 1e-5)
    sim = sim_bus("feetech")
    with pytest.raises(BusConfigError, match=r"rate_hz: .*latency 6\.00 ms.*lower the rate to 107 Hz"):
        BusArm.open(sim.port, preset("so101", sync_read=False))
    arm = BusArm.open(sim.port, preset("so101", sync_read=False, rate_hz=100.0))
    try:
        n = arm.stats.states_rx
        assert wait_for(lambda: arm.stats.states_rx > n + 3)
        assert arm.budget.read_request_bytes == 48
    finally:
        arm.close()


def test_rates_that_fit_and_rates_refused() -> None:
    check_rate("feetech", 6, 1_000_000, 200.0, latency_s=0.001)
    check_rate("dynamixel", 6, 1_000_000, 200.0, latency_s=0.001)
    with pytest.raises(ValueError, match=r"14 dynamixel servos at 1000000 baud.*lower the rate"):
        check_rate("dynamixel", 14, 1_000_000, 200.0, latency_s=0.001)
    with pytest.raises(ValueError, match="57600"):
        check_rate("feetech", 6, 57_600, 200.0)


def test_bus_arm_config_names_bad_fields() -> None:
    with pytest.raises(BusConfigError, match="rate_hz"):
        preset("so101", rate_hz=0.0)
    with pytest.raises(BusConfigError, match="bus: expected one of"):
        preset("so101").__class__(bus="can", joints=preset("so101").joints)
