"""The Python firmware (the C firmware's twin) driven directly with a fake clock: exact watchdog times, limits,
e-stop latching, sessions, NACK reasons, reboot. The C firmware has the same tests in firmware/tests/test_hwl.c."""

from __future__ import annotations

import math

import numpy as np
import pytest

from firmware_bridge import protocol as p
from firmware_bridge.firmware_core import FirmwareCore
from firmware_bridge.plant import IdealPlant, PlantState
from firmware_bridge.protocol import ArmMode, FaultBits, NackReason
from firmware_bridge.sim_config import SimArmConfig


class Host:
    """Talks to a FirmwareCore like ArmLink would, with time under the test's control."""

    def __init__(self, config: SimArmConfig | None = None) -> None:
        self.config = config or SimArmConfig(
            joint_count=3, position_min=-2.0, position_max=2.0, max_velocity=1.0, max_acceleration=4.0, arm=1
        )
        self.plant = IdealPlant(self.config.initial, self.config.initial_gripper or 0.0)
        self.t = 100.0
        self.core = FirmwareCore(self.config, self.plant, self.t, boot_id=7)
        self.seq = 0
        self.decoder = p.StreamDecoder()
        self.received: list[p.Packet] = []

    def send(self, msg: p.Message, *, arm: int | None = None, major: int = p.PROTOCOL_MAJOR) -> list[p.Packet]:
        self.seq += 1
        wire = p.encode(msg, seq=self.seq, arm=self.config.arm if arm is None else arm, major=major)
        out = self.decoder.feed(b"".join(self.core.receive(wire, self.t)))
        self.received += out
        return out

    def run(self, seconds: float, step: float = 0.001) -> list[p.Packet]:
        out = []
        for _ in range(round(seconds / step)):
            self.t += step
            out += self.decoder.feed(b"".join(self.core.tick(self.t)))
        self.received += out
        return out

    def run_until(self, t: float, step: float = 0.001) -> None:
        while self.t + step <= t + 1e-9:
            self.t += step
            self.received += self.decoder.feed(b"".join(self.core.tick(self.t)))

    def mark(self) -> int:
        return len(self.received)

    def faults_since(self, mark: int) -> FaultBits:
        """Every fault bit reported by a STATE received after `mark` (events are reported once)."""
        bits = FaultBits.NONE
        for _, m in self.received[mark:]:
            if isinstance(m, p.State):
                bits |= FaultBits(m.fault_bits)
        return bits

    def request(self, msg: p.Message) -> p.Ack | p.Nack:
        (reply,) = [m for _, m in self.send(msg) if isinstance(m, (p.Ack, p.Nack))]
        assert reply.request_seq == self.seq
        return reply

    def open_session(self) -> p.HelloAck:
        (ack,) = [m for _, m in self.send(p.Hello()) if isinstance(m, p.HelloAck)]
        return ack

    def enabled(self) -> None:
        self.open_session()
        assert isinstance(self.request(p.Enable()), p.Ack)

    def last_state(self) -> p.State:
        return [m for _, m in self.received if isinstance(m, p.State)][-1]


def test_streams_state_from_boot_and_handshakes() -> None:
    h = Host()
    states = [m for _, m in h.run(1.0) if isinstance(m, p.State)]
    assert 195 <= len(states) <= 201  # 200 Hz
    assert all(FaultBits.NO_SESSION & s.fault_bits for s in states)
    ack = h.open_session()
    assert (ack.major, ack.minor, ack.schema_hash) == (p.PROTOCOL_MAJOR, p.PROTOCOL_MINOR, p.SCHEMA_HASH)
    assert ack.joint_count == 3
    assert ack.arms_served == 1 << 1
    assert ack.boot_id == 7
    assert ack.max_velocity == (1.0, 1.0, 1.0)
    assert (ack.watchdog_hold_ms, ack.watchdog_off_ms) == (100, 1000)


def test_requests_need_a_session_except_disable_and_estop() -> None:
    h = Host()
    reply = h.request(p.Enable())
    assert isinstance(reply, p.Nack)
    assert reply.reason == NackReason.NO_SESSION
    assert isinstance(h.request(p.Disable()), p.Ack)
    assert isinstance(h.request(p.Estop()), p.Ack)
    assert h.core.mode is ArmMode.ESTOP


def test_commands_without_a_session_are_ignored() -> None:
    h = Host()
    mark = h.mark()
    h.send(p.Command((1.0, 1.0, 1.0)))
    h.run(0.02)
    assert h.core.commands_ignored == 1
    assert FaultBits.COMMAND_IGNORED & h.faults_since(mark)
    assert not FaultBits.COMMAND_IGNORED & h.last_state().fault_bits  # an event: reported once


class RecordingPlant(IdealPlant):
    """An ideal plant that keeps every reference the firmware sent it."""

    def __init__(self, positions: tuple[float, ...], gripper: float) -> None:
        super().__init__(positions, gripper)
        self.references: list[tuple[np.ndarray, np.ndarray, float]] = []

    def command(self, positions: np.ndarray, velocities: np.ndarray, gripper: float) -> None:
        self.references.append((positions.copy(), velocities.copy(), gripper))
        super().command(positions, velocities, gripper)


def test_tracking_respects_velocity_acceleration_and_position_limits() -> None:
    h = Host()
    h.plant = RecordingPlant(h.config.initial, 0.0)
    h.core = FirmwareCore(h.config, h.plant, h.t, boot_id=7)
    h.enabled()
    for _ in range(600):  # 3 s of setpoints at 200 Hz toward a target beyond joint 1's limit
        h.send(p.Command((1.5, -5.0, 0.0), gripper=0.08))
        h.run(0.005)
    pos = h.plant.measure().positions
    assert pos[0] == pytest.approx(1.5, abs=1e-6)
    assert pos[1] == pytest.approx(-2.0, abs=1e-6)  # clamped to the limit
    assert h.plant.measure().gripper == pytest.approx(0.08)
    q = np.array([r[0] for r in h.plant.references])
    v = np.array([r[1] for r in h.plant.references])
    dt = 1.0 / h.config.control_rate_hz
    assert np.abs(v).max() <= 1.0 + 1e-9
    assert np.abs(np.diff(v, axis=0)).max() <= 4.0 * dt + 1e-9
    assert q[:, 0].max() <= 1.5 + 1e-9  # no overshoot
    assert q[:, 1].min() >= -2.0
    g = np.array([r[2] for r in h.plant.references])
    assert np.abs(np.diff(g)).max() <= 0.1 * dt + 1e-9  # gripper velocity limit
    states = [m for _, m in h.received if isinstance(m, p.State)]
    assert any(FaultBits.POSITION_CLAMPED & s.fault_bits for s in states)
    assert any(FaultBits.VELOCITY_LIMITED & s.fault_bits for s in states)
    # streaming at the state rate: exactly one STATE per COMMAND (a reply postpones the timer by 1.5 periods)
    recent = states[-200:]
    assert all(s.reply for s in recent)


def test_every_command_gets_an_immediate_state_echoing_its_seq() -> None:
    h = Host()
    h.enabled()
    out = h.send(p.Command((0.1, 0.0, 0.0)))
    (st,) = [m for _, m in out if isinstance(m, p.State)]
    assert st.reply
    assert st.last_command_seq == h.seq


def test_watchdog_holds_at_100_ms_and_turns_torque_off_at_1_s() -> None:
    h = Host()
    h.enabled()
    for _ in range(40):
        h.run(0.005)
        h.send(p.Command((1.0, 0.0, 0.0)))
    t_last = h.t
    h.run_until(t_last + 0.098)
    assert h.core.mode is ArmMode.ENABLED
    assert h.plant.measure().velocities[0] > 0.1  # still moving
    h.run_until(t_last + 0.102)
    assert h.core.mode is ArmMode.HOLD
    h.run_until(t_last + 0.6)
    p_hold = h.plant.measure().positions[0]
    mark = h.mark()
    h.run_until(t_last + 0.8)
    assert h.plant.measure().positions[0] == pytest.approx(p_hold)  # braked to a stop and holding
    assert h.plant.torque_on
    assert FaultBits.WATCHDOG_HOLD & h.faults_since(mark)
    h.run_until(t_last + 0.998)
    assert h.core.mode is ArmMode.HOLD
    mark = h.mark()
    h.run_until(t_last + 1.006)
    assert h.core.mode is ArmMode.DISABLED
    assert not h.plant.torque_on
    h.run(0.01)
    assert FaultBits.WATCHDOG_TORQUE_OFF & h.last_state().fault_bits  # latched
    assert FaultBits.WATCHDOG_TORQUE_OFF & h.faults_since(mark)
    assert isinstance(h.request(p.Enable()), p.Ack)
    h.run(0.01)
    assert not FaultBits.WATCHDOG_TORQUE_OFF & h.last_state().fault_bits


def test_hold_brakes_within_the_acceleration_limit() -> None:
    h = Host()
    h.enabled()
    for _ in range(60):
        h.send(p.Command((2.5, 0.0, 0.0)))
        h.run(0.005)
    v0 = h.plant.measure().velocities[0]
    p0 = h.plant.measure().positions[0]
    h.run(1.0 - 0.01)  # the watchdog holds after 0.1 s, then the joint stops
    stop = h.plant.measure().positions[0]
    # 0.1 s of coasting at most, then a braking distance of v²/(2a)
    assert p0 < stop <= p0 + v0 * 0.1 + v0 * v0 / (2 * 4.0) + 1e-3


def test_a_command_after_hold_resumes_tracking() -> None:
    h = Host()
    h.enabled()
    h.run(0.2)
    assert h.core.mode is ArmMode.HOLD
    h.send(p.Command((0.2, 0.0, 0.0)))
    assert h.core.mode is ArmMode.ENABLED


def test_heartbeats_keep_the_arm_enabled() -> None:
    h = Host()
    h.enabled()
    for _ in range(40):
        h.send(p.Heartbeat(0))
        h.run(0.05)
    assert h.core.mode is ArmMode.ENABLED


def test_estop_is_latched_until_reset() -> None:
    h = Host()
    h.enabled()
    assert isinstance(h.request(p.Estop()), p.Ack)
    assert h.core.mode is ArmMode.ESTOP
    assert not h.plant.torque_on
    h.send(p.Command((1.0, 0.0, 0.0)))
    h.run(2.0)  # no timeout clears it; commands do not move the arm
    assert h.core.mode is ArmMode.ESTOP
    assert h.plant.measure().positions[0] == 0.0
    nack = h.request(p.Enable())
    assert isinstance(nack, p.Nack)
    assert nack.reason == NackReason.ESTOP_LATCHED
    assert isinstance(h.request(p.Disable()), p.Ack)
    assert h.core.mode is ArmMode.ESTOP
    assert isinstance(h.request(p.ResetEstop()), p.Ack)
    assert h.core.mode is ArmMode.DISABLED
    assert not h.plant.torque_on  # reset does not enable


def test_hardware_estop_latches_and_blocks_reset() -> None:
    h = Host()
    h.enabled()
    h.core.hardware_estop = True
    h.run(0.01)
    assert h.core.mode is ArmMode.ESTOP
    nack = h.request(p.ResetEstop())
    assert isinstance(nack, p.Nack)
    assert nack.reason == NackReason.HARDWARE_ESTOP
    h.core.hardware_estop = False
    assert isinstance(h.request(p.ResetEstop()), p.Ack)


def test_broadcast_estop_and_wrong_arm() -> None:
    h = Host()
    h.enabled()
    nack = next(m for _, m in h.send(p.Enable(), arm=3) if isinstance(m, p.Nack))
    assert nack.reason == NackReason.WRONG_ARM
    assert nack.detail == 1 << 1
    h.send(p.Command((1.0, 0.0, 0.0)), arm=3)  # a stream frame for another arm: ignored, unanswered
    assert h.core.commands == 0
    h.send(p.Estop(), arm=p.BROADCAST_ARM)
    assert h.core.mode is ArmMode.ESTOP


def test_bad_commands_are_rejected() -> None:
    h = Host()
    h.enabled()
    mark = h.mark()
    h.send(p.Command((0.0, math.nan, 0.0)))
    h.send(p.Command((0.0, 0.0)))
    h.send(p.Command((0.0, 0.0, 0.0), velocities=(0.0, math.inf, 0.0)))
    assert h.core.commands_rejected == 3
    assert h.core.commands == 0
    h.run(0.01)
    assert FaultBits.COMMAND_REJECTED & h.faults_since(mark)


def test_version_and_schema_rules() -> None:
    h = Host()
    # same major, other minor: a compatible session even though the hash differs
    h.send(p.Hello(p.PROTOCOL_MAJOR, p.PROTOCOL_MINOR + 1, 0x1234))
    assert h.core.session_open
    # same version, other hash: answered (so the host can name us) but no session
    h.send(p.Hello(p.PROTOCOL_MAJOR, p.PROTOCOL_MINOR, p.SCHEMA_HASH ^ 1))
    assert not h.core.session_open
    # another major: answered, no session, its requests NACKed VERSION_MISMATCH
    out = h.send(p.Hello(p.PROTOCOL_MAJOR + 1, 0, 0), major=p.PROTOCOL_MAJOR + 1)
    assert any(isinstance(m, p.HelloAck) for _, m in out)
    assert not h.core.session_open
    out = h.send(p.Enable(), major=p.PROTOCOL_MAJOR + 1)
    nack = next(m for _, m in out if isinstance(m, p.Nack))
    assert nack.reason == NackReason.VERSION_MISMATCH
    assert nack.detail == (p.PROTOCOL_MAJOR << 8) | p.PROTOCOL_MINOR
    # and a foreign-major ESTOP is still honoured
    h.send(p.Estop(), major=p.PROTOCOL_MAJOR + 1)
    assert h.core.mode is ArmMode.ESTOP


def test_unknown_request_types_are_nacked() -> None:
    from firmware_bridge.framing import encode_frame

    h = Host()
    out = h.decoder.feed(b"".join(h.core.receive(encode_frame(p.HEADER.pack(1, 0x42, 1, 0, 77)), h.t)))
    nack = next(m for _, m in out if isinstance(m, p.Nack))
    assert (nack.reason, nack.detail, nack.request_seq) == (NackReason.UNKNOWN_TYPE, 0x42, 77)


def test_a_new_session_starts_disabled() -> None:
    h = Host()
    h.enabled()
    assert h.plant.torque_on
    h.open_session()
    assert h.core.mode is ArmMode.DISABLED
    assert not h.plant.torque_on


def test_reboot_resets_everything_but_the_joints() -> None:
    h = Host()
    h.enabled()
    for _ in range(20):
        h.send(p.Command((0.5, 0.0, 0.0)))
        h.run(0.005)
    q = h.plant.measure().positions.copy()
    h.core.reboot(h.t, boot_id=8)
    assert h.core.mode is ArmMode.DISABLED
    assert not h.core.session_open
    assert not h.plant.torque_on
    h.decoder = p.StreamDecoder()
    st = next(m for hdr, m in h.run(0.01) if isinstance(m, p.State))
    assert st.firmware_time_us < 20_000
    assert st.last_command_seq == 0
    np.testing.assert_allclose(st.positions, q, atol=1e-6)


def test_rx_errors_are_counted_and_reported_once() -> None:
    h = Host()
    h.run(0.01)
    mark = h.mark()
    h.core.receive(b"\x00\x05\x11\x22\x33\x44\x00", h.t)  # a runt
    h.run(0.006)
    assert h.last_state().rx_errors == 1
    assert FaultBits.RX_ERROR & h.faults_since(mark)
    mark = h.mark()
    h.run(0.02)
    assert not FaultBits.RX_ERROR & h.faults_since(mark)


def test_velocity_feedforward_moves_the_target_for_at_most_the_hold_time() -> None:
    h = Host()
    h.enabled()
    h.send(p.Command((0.0, 0.0, 0.0), velocities=(0.5, 0.0, 0.0)))
    h.run(0.099)
    # one command with 0.5 rad/s feed-forward: the target drifts 0.5 · 0.1 s at most, then the watchdog holds
    h.run(0.5)
    assert 0.0 < h.plant.measure().positions[0] <= 0.05 + 1e-6


def test_config_errors_name_the_field() -> None:
    from firmware_bridge.errors import SimulatorError

    with pytest.raises(SimulatorError, match="joint_count"):
        SimArmConfig(joint_count=0)
    with pytest.raises(SimulatorError, match="max_velocity"):
        SimArmConfig(joint_count=2, max_velocity=(1.0, -1.0))
    with pytest.raises(SimulatorError, match="position_min"):
        SimArmConfig(joint_count=2, position_min=(0.0, 0.0, 0.0))


class _DriftingPlant(IdealPlant):
    """Moves 0.01 rad at every read, as a physics thread catching up between two reads would."""

    drift = 0.0

    def measure(self) -> PlantState:
        m = super().measure()
        self.drift += 0.01
        return PlantState(np.asarray(m.positions) + self.drift, m.velocities, m.gripper, m.effort)


def test_two_states_stamped_with_one_firmware_time_carry_one_sample() -> None:
    """A reply STATE and a periodic one at the same instant must agree: else the host's guard sees a jump in
    0 ms (seen on the simulated rig under load as a measurement fault)."""
    host = Host()
    host.core = FirmwareCore(host.config, _DriftingPlant(host.config.initial, 0.0), host.t, boot_id=7)
    host.run(0.05)
    host.enabled()
    mark = host.mark()
    while not any(isinstance(m, p.State) for _, m in host.run(0.001)):  # up to a periodic STATE
        pass
    host.send(p.Command(positions=tuple(host.config.initial), velocities=(0.0,) * 3))  # its reply, same instant
    states = [m for _, m in host.received[mark:] if isinstance(m, p.State)]
    assert states[-1].reply
    assert states[-1].firmware_time_us == states[-2].firmware_time_us
    assert states[-1].positions == states[-2].positions
    host.run(0.02)
    assert host.last_state().positions != states[-1].positions  # a later instant is a new sample
